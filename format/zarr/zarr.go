// Package zarr reads and writes Zarr arrays through a store.Store: Zarr v2
// (.zarray/.zgroup/.zattrs, consolidated .zmetadata), Zarr v3 (zarr.json with
// the bytes, transpose, gzip, zstd, crc32c and sharding_indexed codecs), and
// OME-NGFF multiscales (0.4 in .zattrs, 0.5 and the 0.6 RFC-5 drafts under
// attributes.ome) for axis names, units, voxel sizes and offsets.
//
// NGFF transformations: identity, scale, translation and sequences of them
// (nested, flattened) are composed; any other type (affine, rotation,
// mapAxis, fields...) or parameters stored in an array ("path") leave the
// axes uncalibrated (ScaleKnown false) with the reason in
// Metadata["ngff_warning"]. In the RFC-5 layout the axes are those of the
// default coordinate system; top-level transformations into other systems are
// listed in Metadata["ngff_other_transforms"], not applied.
//
// NGFF labels: an image group's label images (its "labels" group) are opened
// with it. Image volumes get Metadata["labels"] (the label names); label
// volumes get "is_label", "label_of" (the store key of the image group) and
// an "image-label" summary (colors and properties counts, property keys).
//
// Variable-length string arrays (v2 "|O" with vlen-utf8/vlen-bytes, v3
// "string"/"bytes") are listed with DType ObjectDType and read through
// StringReader, not ReadRegion. Fixed-size string arrays (v2 "|S5", "<U13")
// have numpy's shape and dtype (volume.FixedString): ReadRegion gives
// numpy's bytes of the strings, and StringReader the strings.
//
// Groups are opened without listing whenever the metadata allows it (NGFF
// multiscales or .zmetadata name every array), because HTTP stores cannot list;
// listing is the last resort for plain groups.
package zarr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxWalkNodes bounds the groups and arrays a listing walk visits.
const maxWalkNodes = 10000

// Format is the Zarr implementation of format.Format. Its zero value is ready
// to use; each Open gets its own codec state, shared by the volumes it returns.
type Format struct{}

var _ format.Format = Format{}

// Name implements format.Format.
func (Format) Name() string { return "zarr" }

var metaNames = []string{".zarray", ".zgroup", ".zattrs", ".zmetadata", "zarr.json"}

var _ format.StoreLayout = Format{}

// StoreSuffixes implements format.StoreLayout.
func (Format) StoreSuffixes() []string { return []string{".zarr"} }

// StoreMarkers implements format.StoreLayout: every Zarr metadata object.
func (Format) StoreMarkers() []string { return slices.Clone(metaNames) }

// Detect implements format.Format: key is a Zarr node when it is (or holds) a
// Zarr metadata object, or when its name ends in ".zarr"; a ".zip" or ".ozx"
// archive is one when it holds a Zarr hierarchy (see openZip).
func (Format) Detect(ctx context.Context, st *store.Store, key string, head []byte) bool {
	k := strings.Trim(key, "/")
	if isZipKey(k) {
		return detectZip(ctx, st, k, head)
	}
	if slices.Contains(metaNames, path.Base(k)) {
		return true
	}
	if strings.HasSuffix(k, ".zarr") {
		return true
	}
	if head != nil {
		return false
	}
	for _, m := range []string{".zarray", ".zmetadata", "zarr.json", ".zgroup"} {
		if _, err := st.Stat(ctx, join(k, m)); err == nil {
			return true
		}
	}
	b, err := st.ReadAll(ctx, join(k, ".zattrs"), maxMetaBytes)
	if err != nil {
		return false
	}
	_, ok, _ := parseNGFF(b)
	return ok
}

// Open implements format.Format. It returns one volume per array: the array at
// key, the datasets of an NGFF multiscale group (then those of its label
// images), every array named by
// .zmetadata, or (when the store can list) every array under key. Volumes are
// named by their path within the store. A ".zip" or ".ozx" key is opened as
// the hierarchy inside that archive.
func (Format) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	root := strings.Trim(key, "/")
	if isZipKey(root) {
		return openZip(ctx, st, root)
	}
	for _, m := range metaNames {
		if root == m {
			root = ""
		} else if strings.HasSuffix(root, "/"+m) {
			root = strings.TrimSuffix(root, "/"+m)
		}
	}
	o := newOpener(st)
	arrs, err := o.open(ctx, root)
	if err != nil {
		return nil, err
	}
	vs := make([]volume.Volume, len(arrs))
	for i, a := range arrs {
		vs[i] = asVolume(a)
	}
	return vs, nil
}

// opener carries the state of one Open: consolidated metadata and the parsed
// NGFF attributes of the groups seen so far.
type opener struct {
	st     *store.Store
	cs     *codec.Codecs
	cons   map[string]json.RawMessage // store key → JSON, from .zmetadata
	attrs  map[string]*ngffGroup      // group prefix → NGFF (nil: none)
	labels map[string]*ngffLabels     // image group prefix → its labels (nil: none)
}

func newOpener(st *store.Store) *opener {
	return &opener{st: st, cs: codec.New(), attrs: map[string]*ngffGroup{}, labels: map[string]*ngffLabels{}}
}

// get reads a metadata object, from consolidated metadata when present.
func (o *opener) get(ctx context.Context, key string) ([]byte, bool, error) {
	if o.cons != nil {
		b, ok := o.cons[key]
		return b, ok, nil
	}
	b, err := o.st.ReadAll(ctx, key, maxMetaBytes)
	if errors.Is(err, store.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("zarr %s: %w", o.st, err)
	}
	return b, true, nil
}

func (o *opener) open(ctx context.Context, root string) ([]*array, error) {
	if a, ok, err := o.openArray(ctx, root); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return []*array{a}, nil
	}
	// A v3 group.
	if b, ok, err := o.get(ctx, join(root, "zarr.json")); err != nil {
		return nil, err
	} else if ok {
		z, err := parseZarrJSON(b)
		if err != nil {
			return nil, fmt.Errorf("zarr %s %q: %w", o.st, root, malformed(err))
		}
		if g, ok, _ := parseNGFF(z.Attributes); ok {
			g.prefix, g.v3 = root, true
			o.attrs[root] = &g
			return o.openDatasets(ctx, root, &g)
		}
		return o.walk(ctx, root)
	}
	// A v2 group: consolidated metadata names everything.
	if b, ok, err := o.get(ctx, join(root, ".zmetadata")); err != nil {
		return nil, err
	} else if ok {
		var zm struct {
			Metadata map[string]json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(b, &zm); err != nil {
			return nil, fmt.Errorf("zarr %s %q: .zmetadata: %w", o.st, root, malformed(err))
		}
		o.cons = map[string]json.RawMessage{}
		var arrays []string
		for k, v := range zm.Metadata {
			k, err := store.CleanKey(k)
			if err != nil {
				continue
			}
			o.cons[join(root, k)] = v
			if k == ".zarray" || strings.HasSuffix(k, "/.zarray") {
				arrays = append(arrays, join(root, strings.TrimSuffix(strings.TrimSuffix(k, ".zarray"), "/")))
			}
		}
		if len(arrays) > maxWalkNodes {
			return nil, fmt.Errorf("zarr %s %q: .zmetadata names %d arrays, more than %d", o.st, root, len(arrays), maxWalkNodes)
		}
		slices.Sort(arrays)
		return o.openAll(ctx, arrays)
	}
	if b, ok, err := o.get(ctx, join(root, ".zattrs")); err != nil {
		return nil, err
	} else if ok {
		g, isNGFF, err := parseNGFF(b)
		if err != nil {
			return nil, fmt.Errorf("zarr %s %q: .zattrs: %w", o.st, root, malformed(err))
		}
		if isNGFF {
			g.prefix = root
			o.attrs[root] = &g
			return o.openDatasets(ctx, root, &g)
		}
	}
	return o.walk(ctx, root)
}

// openArray opens root when it is an array (v2 or v3); ok is false otherwise.
func (o *opener) openArray(ctx context.Context, root string) (*array, bool, error) {
	var a *array
	if b, ok, err := o.get(ctx, join(root, ".zarray")); err != nil {
		return nil, false, err
	} else if ok {
		if a, err = openV2(o.st, o.cs, root, b); err != nil {
			return nil, false, err
		}
	} else if b, ok, err := o.get(ctx, join(root, "zarr.json")); err != nil {
		return nil, false, err
	} else if ok {
		z, err := parseZarrJSON(b)
		if err != nil {
			return nil, false, fmt.Errorf("zarr %s %q: %w", o.st, root, malformed(err))
		}
		if z.NodeType != "array" {
			return nil, false, nil
		}
		if a, err = openV3(o.st, o.cs, root, z); err != nil {
			return nil, false, err
		}
	} else {
		return nil, false, nil
	}
	o.attachNGFF(ctx, a, root)
	return a, true, nil
}

func (o *opener) openAll(ctx context.Context, keys []string) ([]*array, error) {
	var out []*array
	for _, k := range keys {
		a, ok, err := o.openArray(ctx, k)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("zarr %s: %q: %w", o.st, k, store.ErrNotExist)
		}
		out = append(out, a)
	}
	return out, nil
}

// openDatasets opens the arrays of every multiscale of an NGFF group, then
// those of the label images its "labels" group lists (an image's labels are
// part of the image, and an HTTP store could not find them by listing). A
// label image that cannot be opened does not fail the image: the reason goes
// to the image volumes' Metadata["labels_warning"].
func (o *opener) openDatasets(ctx context.Context, root string, g *ngffGroup) ([]*array, error) {
	keys, err := o.datasetKeys(root, g, nil)
	if err != nil {
		return nil, err
	}
	arrs, err := o.openAll(ctx, keys)
	if err != nil || g.imageLabel != nil {
		return arrs, err
	}
	ls := o.labelsOf(ctx, root)
	if ls == nil {
		return arrs, nil
	}
	image := len(arrs)
	var notes []string
	for _, name := range ls.names {
		lp := join(root, "labels/"+name)
		lkeys, err := o.datasetKeys(lp, o.groupNGFF(ctx, lp), nil)
		if err == nil && len(arrs)+len(lkeys) > maxWalkNodes {
			err = fmt.Errorf("more than %d arrays", maxWalkNodes)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("label %q skipped: %v", name, err))
			continue
		}
		for _, k := range lkeys {
			a, ok, err := o.openArray(ctx, k)
			if err == nil && !ok {
				err = store.ErrNotExist
			}
			if err != nil {
				notes = append(notes, fmt.Sprintf("label array %q skipped: %v", k, err))
				continue
			}
			arrs = append(arrs, a)
		}
	}
	for _, a := range arrs[:image] {
		for _, n := range notes {
			addWarning(a.info.Metadata, "labels_warning", n)
		}
	}
	return arrs, nil
}

// datasetKeys appends the store keys of the datasets of g (at root) to keys.
func (o *opener) datasetKeys(root string, g *ngffGroup, keys []string) ([]string, error) {
	if g == nil {
		return keys, nil
	}
	for _, ms := range g.multiscales {
		for _, ds := range ms.Datasets {
			p, err := store.CleanKey(strings.Trim(ds.Path, "/"))
			if err != nil || p == "" {
				return nil, fmt.Errorf("zarr %s %q: NGFF dataset path %q: %w", o.st, root, ds.Path, err)
			}
			if k := join(root, p); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
			if len(keys) > maxWalkNodes {
				return nil, fmt.Errorf("zarr %s %q: more than %d NGFF datasets", o.st, root, maxWalkNodes)
			}
		}
	}
	return keys, nil
}

// labelMetadata adds to the metadata of an array of NGFF group g what pairs
// images with labels: for a label image is_label and label_of (apply adds them
// from "image-label"; here they also come from a parent listing the group),
// for an image the names of its labels.
func (o *opener) labelMetadata(ctx context.Context, a *array, g *ngffGroup) {
	md := a.info.Metadata
	if g.imageLabel != nil {
		return
	}
	segs := strings.Split(g.prefix, "/")
	for i := len(segs) - 2; i >= 0; i-- {
		if segs[i] != "labels" {
			continue
		}
		parent, name := strings.Join(segs[:i], "/"), strings.Join(segs[i+1:], "/")
		if ls := o.labelsOf(ctx, parent); ls != nil && slices.Contains(ls.names, name) {
			md[volume.MetaIsLabel] = true
			md["label_of"] = parent
			md["label_warning"] = "label image without \"image-label\" metadata"
			return
		}
	}
	if ls := o.labelsOf(ctx, g.prefix); ls != nil {
		md["labels"] = ls.names
		if len(ls.warnings) > 0 {
			md["labels_warning"] = strings.Join(ls.warnings, "; ")
		}
	}
}

// ngffLabels is what an image group's "labels" group says.
type ngffLabels struct {
	names    []string // label images listed that have multiscales
	warnings []string
}

// labelsOf reads the "labels" group of the image group at prefix (cached):
// nil when there is none. Only the metadata flavour of the image group is
// tried, to spare remote stores a request that must fail.
func (o *opener) labelsOf(ctx context.Context, prefix string) *ngffLabels {
	if ls, ok := o.labels[prefix]; ok {
		return ls
	}
	o.labels[prefix] = nil
	g := o.groupNGFF(ctx, prefix)
	if g == nil || g.imageLabel != nil {
		return nil // labels belong to images, not to other label images
	}
	lg := join(prefix, "labels")
	var attrs []byte
	if g.v3 {
		b, ok, _ := o.get(ctx, join(lg, "zarr.json"))
		if !ok {
			return nil
		}
		z, err := parseZarrJSON(b)
		if err != nil || z.NodeType != "group" {
			return nil
		}
		attrs = z.Attributes
	} else {
		b, ok, _ := o.get(ctx, join(lg, ".zattrs"))
		if !ok {
			return nil
		}
		attrs = b
	}
	names, dropped := parseLabelList(attrs)
	if names == nil && dropped == 0 {
		return nil
	}
	ls := &ngffLabels{}
	if dropped > 0 {
		ls.warnings = append(ls.warnings, fmt.Sprintf("%d entries of %s/labels are not label paths (or repeat one)", dropped, lg))
	}
	for _, n := range names {
		if o.groupNGFF(ctx, join(lg, n)) == nil {
			ls.warnings = append(ls.warnings, fmt.Sprintf("label %q listed in %s has no NGFF multiscales", n, lg))
			continue
		}
		ls.names = append(ls.names, n)
	}
	o.labels[prefix] = ls
	return ls
}

// attachNGFF looks for NGFF multiscales in the nearest three ancestor groups of
// the array at key and applies the matching dataset's axes and transforms.
func (o *opener) attachNGFF(ctx context.Context, a *array, key string) {
	dir := key
	for range 3 {
		if dir == "" {
			return
		}
		dir = path.Dir(dir)
		if dir == "." {
			dir = ""
		}
		g := o.groupNGFF(ctx, dir)
		if g == nil {
			continue
		}
		rel := strings.TrimPrefix(key, dir)
		rel = strings.TrimPrefix(rel, "/")
		if l := g.levelFor(rel); l != nil {
			l.apply(a)
			o.labelMetadata(ctx, a, g)
			return
		}
	}
}

// groupNGFF returns the NGFF content of the group at prefix (cached), or nil.
func (o *opener) groupNGFF(ctx context.Context, prefix string) *ngffGroup {
	if g, ok := o.attrs[prefix]; ok {
		return g
	}
	var g *ngffGroup
	if b, ok, _ := o.get(ctx, join(prefix, ".zattrs")); ok {
		if p, isNGFF, _ := parseNGFF(b); isNGFF {
			g = &p
		}
	} else if b, ok, _ := o.get(ctx, join(prefix, "zarr.json")); ok {
		if z, err := parseZarrJSON(b); err == nil && z.NodeType == "group" {
			if p, isNGFF, _ := parseNGFF(z.Attributes); isNGFF {
				p.v3 = true
				g = &p
			}
		}
	}
	if g != nil {
		g.prefix = prefix
	}
	o.attrs[prefix] = g
	return g
}

// walk lists the hierarchy under root level by level, stopping at arrays so
// that chunk keys are not listed below them.
func (o *opener) walk(ctx context.Context, root string) ([]*array, error) {
	queue := []string{root}
	var arrays []string
	visited := 0
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		visited++
		if visited > maxWalkNodes {
			return nil, fmt.Errorf("zarr %s %q: more than %d groups and arrays", o.st, root, maxWalkNodes)
		}
		files := map[string]bool{}
		var dirs []string
		lp := ""
		if p != "" {
			lp = p + "/"
		}
		err := o.st.List(ctx, lp, "/", func(oi store.ObjectInfo) error {
			if oi.IsDir {
				dirs = append(dirs, strings.TrimSuffix(oi.Key, "/"))
			} else {
				files[path.Base(oi.Key)] = true
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, store.ErrNotSupported) {
				return nil, fmt.Errorf("zarr %s %q: a group without NGFF multiscales or .zmetadata, in a store that cannot list: %w", o.st, root, err)
			}
			return nil, fmt.Errorf("zarr %s %q: %w", o.st, root, err)
		}
		if files[".zarray"] {
			arrays = append(arrays, p)
			continue
		}
		if files["zarr.json"] {
			b, ok, err := o.get(ctx, join(p, "zarr.json"))
			if err != nil {
				return nil, err
			}
			if ok {
				if z, err := parseZarrJSON(b); err == nil && z.NodeType == "array" {
					arrays = append(arrays, p)
					continue
				}
			}
		}
		queue = append(queue, dirs...)
	}
	if len(arrays) == 0 {
		return nil, fmt.Errorf("zarr %s %q: no arrays found: %w", o.st, root, format.ErrUnknown)
	}
	slices.Sort(arrays)
	return o.openAll(ctx, arrays)
}
