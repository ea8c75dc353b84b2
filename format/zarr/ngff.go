package zarr

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// ngffRef names a coordinate system in a transformation's "input" or
// "output": a plain string in 0.6.dev1, an object {"name", "path"} in later
// 0.6 drafts. Anything else is ignored rather than failing the group.
type ngffRef struct {
	Name string
	Path string
}

func (r *ngffRef) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		r.Name = s
		return nil
	}
	var o struct {
		Name any `json:"name"`
		Path any `json:"path"`
	}
	if json.Unmarshal(b, &o) == nil {
		r.Name, _ = o.Name.(string)
		r.Path, _ = o.Path.(string)
	}
	return nil
}

// ngffTransform is one coordinateTransformations entry. It decodes leniently:
// a malformed field is recorded in bad (and reported as a warning) instead of
// failing the whole group. The children of a "sequence" stay raw and are
// decoded during resolution, depth by depth, so that deep nesting costs no
// more than maxTransformDepth passes over the metadata.
type ngffTransform struct {
	Type            string
	Scale           []float64
	Translation     []float64
	Path            string
	Transformations []json.RawMessage
	Input, Output   ngffRef
	bad             string // the first field that did not decode
}

func (t *ngffTransform) UnmarshalJSON(b []byte) error {
	*t = ngffTransform{}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.bad = "transformation (not a JSON object)"
		return nil
	}
	fields := []struct {
		key string
		dst any
	}{
		{"type", &t.Type},
		{"scale", &t.Scale},
		{"translation", &t.Translation},
		{"path", &t.Path},
		{"transformations", &t.Transformations},
		{"input", &t.Input},
		{"output", &t.Output},
	}
	for _, f := range fields {
		raw, ok := m[f.key]
		if !ok || string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil && t.bad == "" {
			t.bad = f.key
		}
	}
	return nil
}

// ngffAxis accepts both the 0.4 object form and the 0.3 plain-string form.
type ngffAxis struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Unit string `json:"unit"`
}

func (a *ngffAxis) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		a.Name = s
		return nil
	}
	type plain ngffAxis
	return json.Unmarshal(b, (*plain)(a))
}

type ngffDataset struct {
	Path                      string          `json:"path"`
	CoordinateTransformations []ngffTransform `json:"coordinateTransformations"`
}

type ngffMultiscale struct {
	Version                   string          `json:"version"`
	Name                      string          `json:"name"`
	Type                      any             `json:"type"`
	Axes                      []ngffAxis      `json:"axes"`
	Datasets                  []ngffDataset   `json:"datasets"`
	CoordinateTransformations []ngffTransform `json:"coordinateTransformations"`
	// CoordinateSystems carries the axes in the 0.6 development layout (RFC-5).
	CoordinateSystems []struct {
		Name string     `json:"name"`
		Axes []ngffAxis `json:"axes"`
	} `json:"coordinateSystems"`

	// defaultCS is the name of the coordinate system the datasets map into
	// (RFC-5 layout only); Axes are its axes.
	defaultCS string
}

// rfc5 reports whether the multiscale uses the RFC-5 (0.6 development)
// layout, where transformations name their coordinate systems.
func (ms *ngffMultiscale) rfc5() bool { return len(ms.CoordinateSystems) > 0 }

// ngffGroup is the OME-NGFF content of a group's attributes.
type ngffGroup struct {
	version     string
	multiscales []ngffMultiscale
	omero       json.RawMessage
	// imageLabel is the "image-label" object of a label image (nil otherwise).
	imageLabel json.RawMessage
	// prefix is the group's key in the store; set by the opener.
	prefix string
	// v3 is true when the attributes came from a zarr.json.
	v3 bool
}

// parseNGFF reads multiscales from group attributes: top level (0.4 and
// earlier) or under "ome" (0.5 and the 0.6 drafts). ok is false when there
// are none.
func parseNGFF(attrs []byte) (g ngffGroup, ok bool, err error) {
	var top struct {
		Multiscales []ngffMultiscale `json:"multiscales"`
		Omero       json.RawMessage  `json:"omero"`
		ImageLabel  json.RawMessage  `json:"image-label"`
		OME         *struct {
			Version     string           `json:"version"`
			Multiscales []ngffMultiscale `json:"multiscales"`
			Omero       json.RawMessage  `json:"omero"`
			ImageLabel  json.RawMessage  `json:"image-label"`
		} `json:"ome"`
	}
	if err := json.Unmarshal(attrs, &top); err != nil {
		return g, false, fmt.Errorf("multiscales: %w", err)
	}
	g.multiscales, g.omero, g.imageLabel = top.Multiscales, top.Omero, top.ImageLabel
	if top.OME != nil && len(top.OME.Multiscales) > 0 {
		g.version, g.multiscales, g.omero, g.imageLabel = top.OME.Version, top.OME.Multiscales, top.OME.Omero, top.OME.ImageLabel
	}
	if len(g.multiscales) == 0 {
		return g, false, nil
	}
	if isNull(g.imageLabel) {
		g.imageLabel = nil
	}
	for i := range g.multiscales {
		ms := &g.multiscales[i]
		if len(ms.CoordinateSystems) == 0 {
			continue
		}
		// The datasets map into the "default" coordinate system: the one
		// their transformation names as output, which the current draft
		// also requires to be the last entry.
		cs := &ms.CoordinateSystems[len(ms.CoordinateSystems)-1]
		if len(ms.Datasets) > 0 && len(ms.Datasets[0].CoordinateTransformations) > 0 {
			out := ms.Datasets[0].CoordinateTransformations[0].Output.Name
			for j := range ms.CoordinateSystems {
				if ms.CoordinateSystems[j].Name == out && out != "" {
					cs = &ms.CoordinateSystems[j]
					break
				}
			}
		}
		ms.defaultCS = cs.Name
		if len(ms.Axes) == 0 {
			ms.Axes = cs.Axes
		}
	}
	if g.version == "" {
		g.version = g.multiscales[0].Version
	}
	return g, true, nil
}

func isNull(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return s == "" || s == "null"
}

// parseLabelList reads the "labels" list of a labels group's attributes, top
// level (0.4) or under "ome" (0.5). Entries that are not clean relative keys
// are dropped; the second result says how many.
func parseLabelList(attrs []byte) (names []string, dropped int) {
	var top struct {
		Labels []any `json:"labels"`
		OME    *struct {
			Labels []any `json:"labels"`
		} `json:"ome"`
	}
	if json.Unmarshal(attrs, &top) != nil {
		return nil, 0
	}
	list := top.Labels
	if top.OME != nil && len(top.OME.Labels) > 0 {
		list = top.OME.Labels
	}
	for _, v := range list {
		s, ok := v.(string)
		k := cleanRel(s)
		if !ok || k == "" || slices.Contains(names, k) || len(names) >= maxWalkNodes {
			dropped++
			continue
		}
		names = append(names, k)
	}
	return names, dropped
}

// cleanRel returns s as a clean key below its group, or "" when it is empty,
// absolute or climbs out of the group.
func cleanRel(s string) string {
	s = strings.Trim(s, "/")
	if s == "" || strings.ContainsRune(s, 0) || strings.Contains(s, "\\") {
		return ""
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return ""
		}
	}
	if c := path.Clean(s); c != "." {
		return c
	}
	return ""
}

// ngffLevel is what one dataset of a multiscale says about its array.
type ngffLevel struct {
	group  *ngffGroup
	ms     *ngffMultiscale
	level  int
	scale0 []float64 // level 0 scale when fully known, for the downsampling factors
}

// levelFor finds the dataset whose path (relative to the group) is rel.
func (g *ngffGroup) levelFor(rel string) *ngffLevel {
	for mi := range g.multiscales {
		ms := &g.multiscales[mi]
		for di, ds := range ms.Datasets {
			if path.Clean(strings.Trim(ds.Path, "/")) == rel {
				l := &ngffLevel{group: g, ms: ms, level: di}
				if c := ms.calibration(0, g.version); c.allKnown() {
					l.scale0 = c.scale
				}
				return l
			}
		}
	}
	return nil
}

// Bounds on what one dataset's transformations may expand to.
const (
	maxTransformDepth = 8    // nested sequences
	maxTransforms     = 1024 // transformations visited, sequences flattened
)

// ngffCalib is what a chain of transformations says about an array's axes:
// physical = index*scale + offset, on the axes that are known.
type ngffCalib struct {
	scale, offset []float64
	set           bool   // a scale or identity fixed the voxel size
	bad           []bool // per axis: a transformation we cannot represent touched it
	warnings      []string
	other         []string // RFC-5 transformations into other coordinate systems, not applied
	visited       int
}

func newCalib(n int) *ngffCalib {
	c := &ngffCalib{scale: make([]float64, n), offset: make([]float64, n), bad: make([]bool, n)}
	for i := range c.scale {
		c.scale[i] = 1
	}
	return c
}

// known reports whether axis i carries a trustworthy voxel size and offset.
func (c *ngffCalib) known(i int) bool { return c.set && !c.bad[i] }

func (c *ngffCalib) allKnown() bool {
	for i := range c.bad {
		if !c.known(i) {
			return false
		}
	}
	return c.set && len(c.bad) > 0
}

// fail marks every axis unknown and records why. Transformations we do not
// evaluate (affine, rotation, mapAxis, fields...) may mix or permute axes, so
// no axis is trusted after one.
func (c *ngffCalib) fail(msg string) {
	for i := range c.bad {
		c.bad[i] = true
	}
	c.warn(msg)
}

func (c *ngffCalib) warn(msg string) {
	if !slices.Contains(c.warnings, msg) {
		c.warnings = append(c.warnings, msg)
	}
}

// calibration composes dataset di's transformations with the multiscale's
// top-level ones (applied after). In the RFC-5 layout a top-level
// transformation whose output is another coordinate system is not composed:
// the axes stay in the default coordinate system, and the transformation is
// listed in other.
func (ms *ngffMultiscale) calibration(di int, version string) *ngffCalib {
	c := newCalib(len(ms.Axes))
	if di < 0 || di >= len(ms.Datasets) {
		return c
	}
	c.run(ms.Datasets[di].CoordinateTransformations, 0, ms.rfc5(), version)
	for _, t := range ms.CoordinateTransformations {
		if ms.rfc5() && t.Output.Name != "" && t.Output.Name != ms.defaultCS {
			c.other = append(c.other, fmt.Sprintf("%s %q -> %q", typeName(t.Type), t.Input.Name, t.Output.Name))
			continue
		}
		c.run([]ngffTransform{t}, 0, ms.rfc5(), version)
	}
	for i := range c.scale {
		switch {
		case c.bad[i] || !c.set:
		case math.IsNaN(c.scale[i]) || math.IsInf(c.scale[i], 0) || math.IsNaN(c.offset[i]) || math.IsInf(c.offset[i], 0):
			c.bad[i] = true
			c.warn(fmt.Sprintf("axis %d: scale or translation overflows: voxel size unknown", i))
		case c.scale[i] == 0:
			c.bad[i] = true
			c.warn(fmt.Sprintf("axis %d: scale is 0: voxel size unknown", i))
		}
	}
	return c
}

func typeName(t string) string {
	if t == "" {
		return "(no type)"
	}
	return t
}

// run applies ts in order (a flattened sequence).
func (c *ngffCalib) run(ts []ngffTransform, depth int, rfc5 bool, version string) {
	n := len(c.scale)
	for _, t := range ts {
		c.visited++
		if c.visited > maxTransforms {
			c.fail(fmt.Sprintf("more than %d transformations: voxel size unknown", maxTransforms))
			return
		}
		if t.bad != "" {
			c.fail(fmt.Sprintf("transform %q: malformed %s: voxel size unknown", typeName(t.Type), t.bad))
			continue
		}
		switch t.Type {
		case "identity":
			c.set = true
		case "scale", "translation":
			vals := t.Scale
			if t.Type == "translation" {
				vals = t.Translation
			}
			switch {
			case vals == nil && t.Path != "":
				c.fail(fmt.Sprintf("transform %q with parameters in array %q (RFC-5) is not supported: voxel size unknown", t.Type, t.Path))
			case len(vals) != n:
				c.fail(fmt.Sprintf("transform %q has %d values for %d axes: voxel size unknown", t.Type, len(vals), n))
			case t.Type == "scale":
				c.set = true
				for i, s := range vals {
					c.scale[i] *= s
					c.offset[i] *= s
				}
			default:
				for i, v := range vals {
					c.offset[i] += v
				}
			}
		case "sequence":
			if depth >= maxTransformDepth {
				c.fail(fmt.Sprintf("transform \"sequence\" nested more than %d deep: voxel size unknown", maxTransformDepth))
				continue
			}
			if len(t.Transformations) == 0 {
				c.fail("transform \"sequence\" without transformations: voxel size unknown")
				continue
			}
			if len(t.Transformations) > maxTransforms {
				c.fail(fmt.Sprintf("more than %d transformations: voxel size unknown", maxTransforms))
				continue
			}
			inner := make([]ngffTransform, len(t.Transformations))
			for i, raw := range t.Transformations {
				inner[i].UnmarshalJSON(raw)
			}
			c.run(inner, depth+1, rfc5, version)
		case "":
			c.fail("transform without a \"type\": voxel size unknown")
		default:
			if rfc5 || strings.HasPrefix(version, "0.6") {
				c.fail(fmt.Sprintf("transform %q (RFC-5) is not supported: voxel size unknown", t.Type))
			} else {
				v := version
				if v == "" {
					v = "0.4/0.5"
				}
				c.fail(fmt.Sprintf("transform %q is not valid in NGFF %s (only identity, scale, translation): voxel size unknown", t.Type, v))
			}
		}
	}
}

// apply sets axes, name and metadata of a from the NGFF level, when the axes
// match the array's rank.
func (l *ngffLevel) apply(a *array) {
	in := &a.info
	md := in.Metadata
	md["ngff_version"] = l.group.version
	md["multiscale_name"] = l.ms.Name
	// The group's key says which levels belong together: they may lie in
	// different directories (scale0/image, scale1/image).
	md["multiscale_group"] = l.group.prefix
	md["level"] = l.level
	if t, ok := l.ms.Type.(string); ok && t != "" {
		md["downsampling_method"] = t
	}
	if len(l.group.omero) > 0 && string(l.group.omero) != "null" {
		var om any
		if json.Unmarshal(l.group.omero, &om) == nil {
			md["omero"] = om
		}
	}
	if l.group.imageLabel != nil {
		a.imageLabel = l.group.imageLabel
		l.group.applyLabel(md)
		switch in.DType {
		case volume.Uint8, volume.Int8, volume.Uint16, volume.Int16, volume.Uint32, volume.Int32, volume.Uint64, volume.Int64:
		default:
			addWarning(md, "label_warning", fmt.Sprintf("label image of dtype %s (NGFF requires an integer type)", in.DType))
		}
	}
	if l.ms.rfc5() {
		md["ngff_coordinate_system"] = l.ms.defaultCS
	}
	if len(l.ms.Axes) != len(in.Shape) {
		md["ngff_warning"] = fmt.Sprintf("%d NGFF axes for a rank-%d array; axes ignored", len(l.ms.Axes), len(in.Shape))
		return
	}
	c := l.ms.calibration(l.level, l.group.version)
	if len(c.warnings) > 0 {
		md["ngff_warning"] = strings.Join(c.warnings, "; ")
	}
	if len(c.other) > 0 {
		md["ngff_other_transforms"] = c.other
	}
	for i, ax := range l.ms.Axes {
		in.Axes[i].Name = ax.Name
		in.Axes[i].Unit = ax.Unit
		if c.known(i) {
			in.Axes[i].Scale = c.scale[i]
			in.Axes[i].Offset = c.offset[i]
			in.Axes[i].ScaleKnown = true
		}
	}
	if c.allKnown() && len(l.scale0) == len(c.scale) {
		f := make([]float64, len(c.scale))
		for i := range f {
			if l.scale0[i] != 0 {
				f[i] = math.Round(c.scale[i]/l.scale0[i]*1e6) / 1e6
			}
		}
		md["downsampling"] = f
	}
}

// applyLabel marks an array of a label image: is_label, label_of (the store
// key of the image group it annotates, "" for the store root) and a summary
// of the "image-label" object.
func (g *ngffGroup) applyLabel(md map[string]any) {
	md[volume.MetaIsLabel] = true
	var il struct {
		Colors     json.RawMessage `json:"colors"`
		Properties json.RawMessage `json:"properties"`
		Version    json.RawMessage `json:"version"`
		Source     json.RawMessage `json:"source"`
	}
	if json.Unmarshal(g.imageLabel, &il) != nil {
		md["label_of"] = resolveRel(g.prefix, "")
		addWarning(md, "label_warning", "image-label is not a JSON object")
		return
	}
	sum := map[string]any{}
	var colors []json.RawMessage
	if json.Unmarshal(il.Colors, &colors) == nil && colors != nil {
		sum["colors"] = len(colors)
	}
	var props []map[string]json.RawMessage
	if json.Unmarshal(il.Properties, &props) == nil && props != nil {
		keys := []string{}
		for _, p := range props {
			for k := range p {
				if k != "label-value" && !slices.Contains(keys, k) && len(keys) < 256 {
					keys = append(keys, k)
				}
			}
		}
		slices.Sort(keys)
		sum["properties"] = len(props)
		sum["property_keys"] = keys
	}
	var v string
	if json.Unmarshal(il.Version, &v) == nil && v != "" {
		sum["version"] = v
	}
	md["image-label"] = sum
	var src struct {
		Image any `json:"image"`
	}
	json.Unmarshal(il.Source, &src)
	img, _ := src.Image.(string)
	md["label_of"] = resolveRel(g.prefix, img)
}

// addWarning appends msg to the warning string under key.
func addWarning(md map[string]any, key, msg string) {
	if old, ok := md[key].(string); ok && old != "" {
		msg = old + "; " + msg
	}
	md[key] = msg
}

// resolveRel resolves rel (default "../../", the spec's default source of a
// label image) against the group prefix. A result that climbs above the
// store root is kept as the "../" path it is, so it is never mistaken for a
// key inside the store.
func resolveRel(prefix, rel string) string {
	rel = strings.TrimSpace(rel)
	if rel == "" {
		rel = "../../"
	}
	p := path.Clean(path.Join(prefix, rel))
	if p == "." || p == "/" {
		return ""
	}
	return strings.TrimPrefix(p, "/")
}
