package zarr

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// applyTo parses attrs, finds dataset "0" and applies it to a blank rank-n
// array, returning the array's info.
func applyTo(t *testing.T, attrs string, n int) volume.Info {
	t.Helper()
	g, ok, err := parseNGFF([]byte(attrs))
	if err != nil || !ok {
		t.Fatalf("parseNGFF: ok=%v %v\n%s", ok, err, attrs)
	}
	l := g.levelFor("0")
	if l == nil {
		t.Fatalf("no dataset \"0\" in %s", attrs)
	}
	a := &array{info: volume.Info{Name: "0", Shape: make([]int64, n), DType: volume.Uint8, Metadata: map[string]any{}}}
	for i := range a.info.Shape {
		a.info.Shape[i] = 4
		a.info.Axes = append(a.info.Axes, volume.Axis{Name: fmt.Sprint("dim_", i), Size: 4, Scale: 1})
	}
	l.apply(a)
	if err := a.info.Validate(); err != nil {
		t.Fatal(err)
	}
	return a.info
}

// v04 builds 0.4 attributes for two axes y, x (nanometer).
func v04(ds, top string) string {
	s := `{"multiscales":[{"version":"0.4","axes":[{"name":"y","type":"space","unit":"nanometer"},{"name":"x","type":"space","unit":"nanometer"}],` +
		`"datasets":[{"path":"0","coordinateTransformations":[` + ds + `]}]`
	if top != "" {
		s += `,"coordinateTransformations":[` + top + `]`
	}
	return s + `}]}`
}

// v05 is v04 under "ome".
func v05(ds, top string) string {
	s := v04(ds, top)
	s = strings.Replace(s, `{"multiscales":[{"version":"0.4",`, `{"multiscales":[{`, 1)
	return `{"ome":{"version":"0.5",` + s[1:len(s)-1] + `}}`
}

// v06 builds 0.6.dev1 (RFC-5) attributes: coordinate systems "world" (axes
// a, b) and "physical" (y, x), datasets mapping into "physical".
func v06(ds, top string) string {
	s := `{"ome":{"version":"0.6.dev1","multiscales":[{"coordinateSystems":[` +
		`{"name":"world","axes":[{"name":"a","type":"space","unit":"meter"},{"name":"b","type":"space","unit":"meter"}]},` +
		`{"name":"physical","axes":[{"name":"y","type":"space","unit":"micrometer"},{"name":"x","type":"space","unit":"micrometer"}]}],` +
		`"datasets":[{"path":"0","coordinateTransformations":[` + ds + `]}]`
	if top != "" {
		s += `,"coordinateTransformations":[` + top + `]`
	}
	return s + `}]}}`
}

// out06 wraps a transformation of a 0.6 dataset with input/output.
func out06(typ, params string) string {
	if params != "" {
		params = "," + params
	}
	return fmt.Sprintf(`{"type":%q,"input":"0","output":"physical"%s}`, typ, params)
}

func seq(ts ...string) string {
	return `{"type":"sequence","transformations":[` + strings.Join(ts, ",") + `]}`
}

func TestNGFFTransforms(t *testing.T) {
	nested := `{"type":"scale","scale":[1,1]}`
	for range 10 {
		nested = seq(nested)
	}
	type want struct {
		scale, offset []float64 // nil: unknown
		unknown       int       // 1 + the one axis that is unknown (0: none)
		warn          string    // substring of ngff_warning; "" none
		other         string    // substring of ngff_other_transforms
		names, unit   string    // axis names joined, unit of axis 0
	}
	cases := []struct {
		name  string
		attrs string
		want  want
	}{
		{"0.4 scale+translation", v04(`{"type":"scale","scale":[2,3]},{"type":"translation","translation":[1,-1]}`, ""),
			want{scale: []float64{2, 3}, offset: []float64{1, -1}}},
		{"0.4 top-level composes", v04(`{"type":"scale","scale":[1,2]},{"type":"translation","translation":[1,1]}`, `{"type":"scale","scale":[10,10]}`),
			want{scale: []float64{10, 20}, offset: []float64{10, 10}}},
		{"0.4 identity top-level", v04(`{"type":"scale","scale":[4,4]}`, `{"type":"identity"}`),
			want{scale: []float64{4, 4}, offset: []float64{0, 0}}},
		{"0.4 affine invalid", v04(`{"type":"scale","scale":[4,4]},{"type":"affine","affine":[[1,0,0],[0,1,0]]}`, ""),
			want{warn: `transform "affine" is not valid in NGFF 0.4 (only identity, scale, translation): voxel size unknown`}},
		{"0.5 unknown top-level", v05(`{"type":"scale","scale":[4,4]}`, `{"type":"rotation","rotation":[[0,1],[1,0]]}`),
			want{warn: `transform "rotation" is not valid in NGFF 0.5`}},
		{"0.5 scale", v05(`{"type":"scale","scale":[4,5]}`, ""), want{scale: []float64{4, 5}, offset: []float64{0, 0}}},
		{"0.4 scale length", v04(`{"type":"scale","scale":[4,4,4]}`, ""),
			want{warn: `transform "scale" has 3 values for 2 axes`}},
		{"0.4 scale path", v04(`{"type":"scale","path":"s.bin"}`, ""),
			want{warn: `transform "scale" with parameters in array "s.bin" (RFC-5) is not supported: voxel size unknown`}},
		{"0.4 malformed scale", v04(`{"type":"scale","scale":"big"}`, ""),
			want{warn: `transform "scale": malformed scale`}},
		{"0.4 no type", v04(`{"scale":[1,1]}`, ""), want{warn: `transform without a "type"`}},
		{"0.4 zero scale", v04(`{"type":"scale","scale":[0,2]}`, ""), want{scale: []float64{0, 2}, offset: []float64{0, 0}, unknown: 1, warn: "axis 0: scale is 0"}},
		{"0.4 overflow", v04(`{"type":"scale","scale":[1e300,1]}`, `{"type":"scale","scale":[1e300,1]}`), want{scale: []float64{0, 1}, offset: []float64{0, 0}, unknown: 1, warn: "axis 0: scale or translation overflows"}},
		{"0.3 no transforms", `{"multiscales":[{"version":"0.3","axes":["y","x"],"datasets":[{"path":"0"}]}]}`,
			want{names: "y,x", unit: "-"}},
		{"0.6 identity", v06(out06("identity", ""), ""), want{scale: []float64{1, 1}, offset: []float64{0, 0}}},
		{"0.6 scale", v06(out06("scale", `"scale":[4,3]`), ""), want{scale: []float64{4, 3}, offset: []float64{0, 0}}},
		{"0.6 sequence", v06(`{"type":"sequence","input":"0","output":"physical","transformations":[{"type":"scale","scale":[4,3]},{"type":"translation","translation":[32,21]}]}`, ""),
			want{scale: []float64{4, 3}, offset: []float64{32, 21}}},
		{"0.6 nested sequence", v06(seq(`{"type":"scale","scale":[2,2]}`, seq(`{"type":"translation","translation":[1,1]}`, seq(`{"type":"scale","scale":[3,3]}`)), `{"type":"identity"}`), ""),
			want{scale: []float64{6, 6}, offset: []float64{3, 3}}},
		{"0.6 affine in sequence", v06(seq(`{"type":"scale","scale":[2,2]}`, `{"type":"affine","affine":[[1,0,0],[0,1,0]]}`), ""),
			want{warn: `transform "affine" (RFC-5) is not supported: voxel size unknown`}},
		{"0.6 translation path", v06(seq(`{"type":"scale","scale":[2,2]}`, `{"type":"translation","path":"coordinateTransformations/t"}`), ""),
			want{warn: `transform "translation" with parameters in array "coordinateTransformations/t" (RFC-5) is not supported`}},
		{"0.6 too deep", v06(nested, ""), want{warn: `transform "sequence" nested more than 8 deep`}},
		{"0.6 empty sequence", v06(seq(), ""), want{warn: `transform "sequence" without transformations`}},
		{"0.6 malformed child", v06(seq(`{"type":"scale","scale":[2,2]}`, `17`), ""), want{warn: "malformed transformation (not a JSON object)"}},
		{"0.6 top-level to another system", v06(out06("scale", `"scale":[2,0.5]`), `{"type":"affine","input":"physical","output":"world","affine":[[0,1,0],[1,0,0]]}`),
			want{scale: []float64{2, 0.5}, offset: []float64{0, 0}, other: `affine "physical" -> "world"`}},
		{"0.6 dev4 object refs", `{"ome":{"version":"0.6.dev4","multiscales":[{"coordinateSystems":[` +
			`{"name":"physical","axes":[{"name":"p","type":"space","unit":"meter"},{"name":"q","type":"space","unit":"meter"}]},` +
			`{"name":"intrinsic","axes":[{"name":"y","type":"space","unit":"micrometer"},{"name":"x","type":"space","unit":"micrometer"}]}],` +
			`"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,1],"input":{"path":"0"},"output":{"name":"intrinsic"}}]}],` +
			`"coordinateTransformations":[{"type":"scale","scale":[10,10],"input":{"name":"intrinsic"},"output":{"name":"physical"}}]}]}}`,
			want{scale: []float64{1, 1}, offset: []float64{0, 0}, other: `scale "intrinsic" -> "physical"`}},
	}
	for _, typ := range []string{"mapAxis", "displacements", "coordinates", "bijection", "byDimension", "inverseOf", "rotation"} {
		cases = append(cases, struct {
			name  string
			attrs string
			want  want
		}{"0.6 " + typ, v06(out06(typ, `"path":"p"`), ""), want{warn: fmt.Sprintf("transform %q (RFC-5) is not supported: voxel size unknown", typ)}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := applyTo(t, c.attrs, 2)
			w := c.want
			if w.names == "" {
				w.names = "y,x"
			}
			if w.unit == "" {
				w.unit = "nanometer"
				if strings.Contains(c.attrs, "0.6.dev") {
					w.unit = "micrometer"
				}
			}
			if w.unit == "-" {
				w.unit = ""
			}
			if got := in.Axes[0].Name + "," + in.Axes[1].Name; got != w.names || in.Axes[0].Unit != w.unit {
				t.Errorf("axes %s %q, want %s %q", got, in.Axes[0].Unit, w.names, w.unit)
			}
			warn, _ := in.Metadata["ngff_warning"].(string)
			if (w.warn == "") != (warn == "") || !strings.Contains(warn, w.warn) {
				t.Errorf("ngff_warning %q, want %q", warn, w.warn)
			}
			other := fmt.Sprint(in.Metadata["ngff_other_transforms"])
			if w.other != "" && !strings.Contains(other, w.other) || w.other == "" && in.Metadata["ngff_other_transforms"] != nil {
				t.Errorf("ngff_other_transforms %s, want %q", other, w.other)
			}
			for i, ax := range in.Axes {
				if w.scale == nil || w.unknown == i+1 {
					if ax.ScaleKnown || ax.Scale != 1 || ax.Offset != 0 {
						t.Errorf("axis %d %+v: want unknown (placeholder scale 1, offset 0)", i, ax)
					}
					continue
				}
				if !ax.ScaleKnown || ax.Scale != w.scale[i] || ax.Offset != w.offset[i] {
					t.Errorf("axis %d %+v, want scale %v offset %v", i, ax, w.scale[i], w.offset[i])
				}
			}
			if strings.Contains(c.attrs, "0.6.dev") && in.Metadata["ngff_coordinate_system"] == nil {
				t.Errorf("no ngff_coordinate_system in %v", in.Metadata)
			}
		})
	}
}

// TestNGFFRankMismatch keeps the array readable with its default axes.
func TestNGFFRankMismatch(t *testing.T) {
	in := applyTo(t, v06(out06("scale", `"scale":[4,3]`), ""), 3)
	if in.Axes[0].ScaleKnown || !strings.Contains(fmt.Sprint(in.Metadata["ngff_warning"]), "2 NGFF axes for a rank-3 array") {
		t.Errorf("axes %+v metadata %v", in.Axes, in.Metadata)
	}
}

// TestNGFFDownsampling derives the factors only from fully known levels.
func TestNGFFDownsampling(t *testing.T) {
	attrs := `{"multiscales":[{"version":"0.4","axes":[{"name":"y"},{"name":"x"}],"datasets":[` +
		`{"path":"s0","coordinateTransformations":[{"type":"scale","scale":[2,3]}]},` +
		`{"path":"0","coordinateTransformations":[{"type":"scale","scale":[4,12]}]}]}]}`
	in := applyTo(t, attrs, 2)
	if fmt.Sprint(in.Metadata["downsampling"]) != "[2 4]" || in.Metadata["level"] != 1 {
		t.Errorf("metadata %v", in.Metadata)
	}
	bad := strings.Replace(attrs, `"scale":[2,3]`, `"path":"x"`, 1)
	if in := applyTo(t, bad, 2); in.Metadata["downsampling"] != nil || !in.Axes[0].ScaleKnown {
		t.Errorf("level 0 unknown: metadata %v axes %+v", in.Metadata, in.Axes)
	}
}

// FuzzNGFF runs group attributes through the NGFF parser, the transformation
// resolver (every dataset, at the axes' rank and at another rank), the label
// summary and the labels list. Nothing may panic, and every applied level
// must leave a valid Info whose known scales are finite and non-zero.
func FuzzNGFF(f *testing.F) {
	f.Add([]byte(v04(`{"type":"scale","scale":[2,3]},{"type":"translation","translation":[1,-1]}`, `{"type":"scale","scale":[10,10]}`)))
	f.Add([]byte(v05(`{"type":"scale","scale":[4,5]}`, `{"type":"affine","affine":[[1,0,0],[0,1,0]]}`)))
	f.Add([]byte(v06(seq(`{"type":"scale","scale":[2,2]}`, seq(`{"type":"translation","translation":[1,1]}`, `{"type":"identity"}`)), `{"type":"affine","input":"physical","output":"world","affine":[[0,1,0],[1,0,0]]}`)))
	f.Add([]byte(v06(out06("scale", `"path":"coordinateTransformations/s"`), "")))
	f.Add([]byte(v06(seq(seq(seq(seq(seq(seq(seq(seq(seq(`{"type":"scale","scale":[1e308,1e308]}`))))))))), `{"type":"scale","scale":[1e308,0]}`)))
	f.Add([]byte(v06(`{"type":"byDimension","input":"0","output":"physical","transformations":[{"type":"scale","scale":[2],"input_axes":["dim_0"],"output_axes":["y"]}]}`, "")))
	f.Add([]byte(`{"ome":{"version":"0.6.dev4","multiscales":[{"coordinateSystems":[{"name":"i","axes":[{"name":"y"},{"name":"x"}]}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,1],"input":{"path":"0"},"output":{"name":"i"}}]}]}],"image-label":{"colors":[{"label-value":1}],"properties":[{"label-value":1,"a":2}],"source":{"image":"../../../x"}}}}`))
	f.Add([]byte(`{"multiscales":[{"axes":["y","x"],"datasets":[{"path":"0","coordinateTransformations":[{"type":"sequence","transformations":17}]}]}],"image-label":[1],"labels":["a","../b",3]}`))
	f.Add([]byte(`{"labels":["cells","x/y"],"ome":{"labels":["seg"]}}`))
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "zarr")
	var files []string
	for _, pat := range []string{"neuroglancer/ome_zarr/*/.zattrs", "neuroglancer/ome_zarr/*/zarr.json", "neuroglancer/ome_zarr/all_0.6/*/*/zarr.json", "ngff-spec/*/examples/*/*.json"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var z struct {
			Attributes json.RawMessage `json:"attributes"`
		}
		if json.Unmarshal(b, &z) == nil && z.Attributes != nil {
			b = z.Attributes
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseLabelList(b)
		g, ok, err := parseNGFF(b)
		if err != nil || !ok {
			return
		}
		g.prefix = "img/labels/a"
		if g.imageLabel != nil {
			md := map[string]any{}
			g.applyLabel(md)
			if _, err := json.Marshal(md); err != nil {
				t.Fatalf("label metadata does not encode: %v", err)
			}
		}
		for _, ms := range g.multiscales {
			if len(ms.Datasets) > 64 || len(ms.Axes) > 32 {
				continue
			}
			for _, ds := range ms.Datasets {
				rel := path.Clean(strings.Trim(ds.Path, "/"))
				l := g.levelFor(rel)
				if l == nil {
					t.Fatalf("levelFor(%q) found nothing", rel)
				}
				for _, n := range []int{len(ms.Axes), len(ms.Axes) + 1} {
					a := &array{info: volume.Info{Name: rel, Shape: make([]int64, n), DType: volume.Uint8, Metadata: map[string]any{}}}
					for i := range n {
						a.info.Axes = append(a.info.Axes, volume.Axis{Name: fmt.Sprint(i), Scale: 1})
					}
					l.apply(a)
					if err := a.info.Validate(); err != nil {
						t.Fatal(err)
					}
					for _, ax := range a.info.Axes {
						if ax.ScaleKnown && (ax.Scale == 0 || math.IsInf(ax.Scale, 0) || math.IsNaN(ax.Scale) || math.IsInf(ax.Offset, 0) || math.IsNaN(ax.Offset)) {
							t.Fatalf("known axis %+v is not a measurement", ax)
						}
					}
					if _, err := json.Marshal(a.info.Metadata); err != nil {
						t.Fatalf("metadata does not encode: %v", err)
					}
				}
			}
		}
	})
}
