package zarr

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"
)

// ngffTransform is one coordinateTransformations entry.
type ngffTransform struct {
	Type        string    `json:"type"`
	Scale       []float64 `json:"scale"`
	Translation []float64 `json:"translation"`
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
}

// ngffGroup is the OME-NGFF content of a group's attributes.
type ngffGroup struct {
	version     string
	multiscales []ngffMultiscale
	omero       json.RawMessage
}

// parseNGFF reads multiscales from group attributes: top level (0.4 and
// earlier) or under "ome" (0.5). ok is false when there are none.
func parseNGFF(attrs []byte) (g ngffGroup, ok bool, err error) {
	var top struct {
		Multiscales []ngffMultiscale `json:"multiscales"`
		Omero       json.RawMessage  `json:"omero"`
		OME         *struct {
			Version     string           `json:"version"`
			Multiscales []ngffMultiscale `json:"multiscales"`
			Omero       json.RawMessage  `json:"omero"`
		} `json:"ome"`
	}
	if err := json.Unmarshal(attrs, &top); err != nil {
		return g, false, fmt.Errorf("multiscales: %w", err)
	}
	g.multiscales, g.omero = top.Multiscales, top.Omero
	if top.OME != nil && len(top.OME.Multiscales) > 0 {
		g.version, g.multiscales, g.omero = top.OME.Version, top.OME.Multiscales, top.OME.Omero
	}
	if len(g.multiscales) == 0 {
		return g, false, nil
	}
	for i := range g.multiscales {
		ms := &g.multiscales[i]
		if len(ms.Axes) == 0 && len(ms.CoordinateSystems) > 0 {
			ms.Axes = ms.CoordinateSystems[0].Axes
		}
	}
	if g.version == "" {
		g.version = g.multiscales[0].Version
	}
	return g, true, nil
}

// ngffLevel is what one dataset of a multiscale says about its array.
type ngffLevel struct {
	group  *ngffGroup
	ms     *ngffMultiscale
	level  int
	scale0 []float64 // level 0 scale, for the downsampling factors
}

// levelFor finds the dataset whose path (relative to the group) is rel.
func (g *ngffGroup) levelFor(rel string) *ngffLevel {
	for mi := range g.multiscales {
		ms := &g.multiscales[mi]
		for di, ds := range ms.Datasets {
			if path.Clean(strings.Trim(ds.Path, "/")) == rel {
				l := &ngffLevel{group: g, ms: ms, level: di}
				if len(ms.Datasets) > 0 {
					l.scale0, _, _ = ms.transform(0)
				}
				return l
			}
		}
	}
	return nil
}

// transform composes dataset di's transformations with the multiscale's
// top-level ones (applied after): physical = index*scale + offset.
func (ms *ngffMultiscale) transform(di int) (scale, offset []float64, known bool) {
	n := len(ms.Axes)
	scale = make([]float64, n)
	offset = make([]float64, n)
	for i := range scale {
		scale[i] = 1
	}
	apply := func(ts []ngffTransform) {
		for _, t := range ts {
			switch t.Type {
			case "scale":
				if len(t.Scale) == n {
					known = true
					for i := range scale {
						scale[i] *= t.Scale[i]
						offset[i] *= t.Scale[i]
					}
				}
			case "translation":
				if len(t.Translation) == n {
					for i := range offset {
						offset[i] += t.Translation[i]
					}
				}
			}
		}
	}
	apply(ms.Datasets[di].CoordinateTransformations)
	apply(ms.CoordinateTransformations)
	return scale, offset, known
}

// apply sets axes, name and metadata of a from the NGFF level, when the axes
// match the array's rank.
func (l *ngffLevel) apply(a *array) {
	in := &a.info
	md := in.Metadata
	md["ngff_version"] = l.group.version
	md["multiscale_name"] = l.ms.Name
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
	if len(l.ms.Axes) != len(in.Shape) {
		md["ngff_warning"] = fmt.Sprintf("%d NGFF axes for a rank-%d array; axes ignored", len(l.ms.Axes), len(in.Shape))
		return
	}
	scale, offset, known := l.ms.transform(l.level)
	for i, ax := range l.ms.Axes {
		in.Axes[i].Name = ax.Name
		in.Axes[i].Unit = ax.Unit
		if known {
			in.Axes[i].Scale = scale[i]
			in.Axes[i].Offset = offset[i]
			in.Axes[i].ScaleKnown = true
		}
	}
	if known && l.scale0 != nil {
		f := make([]float64, len(scale))
		for i := range f {
			if l.scale0[i] != 0 {
				f[i] = math.Round(scale[i]/l.scale0[i]*1e6) / 1e6
			}
		}
		md["downsampling"] = f
	}
}
