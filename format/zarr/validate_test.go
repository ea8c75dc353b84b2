package zarr

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/internal/corpus"
)

// stripLineComments removes the // comments the NGFF spec examples carry
// (outside strings), which JSON does not allow.
func stripLineComments(b []byte) []byte {
	var out []byte
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			if i < len(b) {
				out = append(out, '\n')
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

// TestValidateNGFFSuites runs the NGFF spec's schema test suites and examples
// from the corpus: every valid document is accepted, every invalid one is
// rejected with a reason.
func TestValidateNGFFSuites(t *testing.T) {
	dir, rows := corpus.Category(t, "zarr")
	var valid, invalid int
	for _, e := range rows {
		var version string
		switch {
		case e.HasFeature("ome-ngff-0.4"):
			version = "0.4"
		case e.HasFeature("ome-ngff-0.5"):
			version = "0.5"
		default:
			continue
		}
		file := filepath.Join(dir, e.Path)
		switch {
		case e.Kind == "json":
		case e.Kind == "ome-zarr-store" && version == "0.4":
			file = filepath.Join(file, ".zattrs")
		case e.Kind == "ome-zarr-store":
			file = filepath.Join(file, "zarr.json")
		default:
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Kind == "ome-zarr-store":
			// Real stores written by other software.
			if err := ValidateNGFF(b, version); err != nil {
				t.Errorf("%s: rejected: %v", e.Path, err)
			}
			valid++
		case e.HasFeature("schema-test-suite"):
			var suite struct {
				Tests []struct {
					Formerly string          `json:"formerly"`
					Valid    bool            `json:"valid"`
					Data     json.RawMessage `json:"data"`
				} `json:"tests"`
			}
			if err := json.Unmarshal(b, &suite); err != nil {
				t.Fatalf("%s: %v", e.Path, err)
			}
			if len(suite.Tests) == 0 {
				t.Fatalf("%s: no tests", e.Path)
			}
			for _, c := range suite.Tests {
				err := ValidateNGFF(c.Data, version)
				switch {
				case c.Valid && err != nil:
					t.Errorf("%s %s: valid document rejected: %v", e.Path, c.Formerly, err)
				case !c.Valid && err == nil:
					t.Errorf("%s %s: invalid document accepted", e.Path, c.Formerly)
				case !c.Valid && !strings.Contains(err.Error(), "invalid metadata: at "):
					t.Errorf("%s %s: rejection without a located reason: %v", e.Path, c.Formerly, err)
				case !c.Valid:
					invalid++
					t.Logf("%s %s: %v", version, c.Formerly, err)
				default:
					valid++
				}
			}
		case e.HasFeature("spec-example") && strings.Contains(e.Path, "multiscales"):
			if err := ValidateNGFF(stripLineComments(b), version); err != nil {
				t.Errorf("%s: spec example rejected: %v", e.Path, err)
			}
			valid++
		}
	}
	// 0.4: 6 + 5 strict valid, 24 invalid; 0.5: 5 valid, 23 invalid; 2
	// examples; 2 stores.
	if valid < 20 || invalid < 47 {
		t.Errorf("ran %d valid and %d invalid cases; the corpus suites have more", valid, invalid)
	}
}

func TestValidateNGFF(t *testing.T) {
	ms := func(axes, transforms string) string {
		return `{"axes":` + axes + `,"datasets":[{"path":"s0","coordinateTransformations":` + transforms + `}]}`
	}
	zyx := `[{"name":"z","type":"space"},{"name":"y","type":"space"},{"name":"x","type":"space","unit":"nanometer"}]`
	scale := `[{"type":"scale","scale":[1,2,2]}]`
	labelOK := `"image-label":{"version":"0.4","colors":[{"label-value":1,"rgba":[255,255,255,255]},{"label-value":4,"rgba":[0,255,255,128]}],` +
		`"properties":[{"label-value":1,"class":"foo"},{"label-value":4}],"source":{"image":"../../"}}`
	cases := []struct {
		name, doc, version string
		reason             string // "" when valid
	}{
		{"0.4 ok", `{"multiscales":[` + ms(zyx, scale) + `]}`, "0.4", ""},
		{"auto 0.4", `{"multiscales":[` + ms(zyx, scale) + `]}`, "", ""},
		{"0.5 ok", `{"ome":{"version":"0.5","multiscales":[` + ms(zyx, scale) + `]}}`, "0.5", ""},
		{"auto 0.5", `{"ome":{"version":"0.5","multiscales":[` + ms(zyx, scale) + `]}}`, "", ""},
		{"0.5 whole zarr.json", `{"zarr_format":3,"node_type":"group","attributes":{"ome":{"version":"0.5","multiscales":[` + ms(zyx, scale) + `]}}}`, "0.5", ""},
		{"scale then translation", `{"multiscales":[` + ms(zyx, `[{"type":"scale","scale":[1,2,2]},{"type":"translation","translation":[0,0.5,0.5]}]`) + `]}`, "0.4", ""},
		{"translation before scale", `{"multiscales":[` + ms(zyx, `[{"type":"translation","translation":[0,0.5,0.5]},{"type":"scale","scale":[1,2,2]}]`) + `]}`, "0.4", "coordinateTransformations"},
		{"two translations", `{"multiscales":[` + ms(zyx, `[{"type":"scale","scale":[1,2,2]},{"type":"translation","translation":[0,0,0]},{"type":"translation","translation":[0,0,0]}]`) + `]}`, "0.4", "coordinateTransformations"},
		{"same name, other unit", `{"multiscales":[` + ms(`[{"name":"x","type":"space"},{"name":"x","type":"space","unit":"nanometer"}]`, `[{"type":"scale","scale":[1,2]}]`) + `]}`, "0.4", "appears twice"},
		{"two time axes", `{"multiscales":[` + ms(`[{"name":"t","type":"time"},{"name":"u","type":"time"},{"name":"y","type":"space"},{"name":"x","type":"space"}]`, `[{"type":"scale","scale":[1,1,1,1]}]`) + `]}`, "0.4", "axes"},
		{"channel and custom", `{"multiscales":[` + ms(`[{"name":"c","type":"channel"},{"name":"a","type":"angle"},{"name":"y","type":"space"},{"name":"x","type":"space"}]`, `[{"type":"scale","scale":[1,1,1,1]}]`) + `]}`, "0.4", "axes"},
		{"0.5 lacks ome.version", `{"ome":{"multiscales":[` + ms(zyx, scale) + `]}}`, "0.5", "version"},
		{"0.5 wrong version", `{"ome":{"version":"0.4","multiscales":[` + ms(zyx, scale) + `]}}`, "0.5", "ome/version"},
		{"0.4 metadata checked as 0.5", `{"multiscales":[` + ms(zyx, scale) + `]}`, "0.5", "ome"},
		{"empty path", `{"multiscales":[{"axes":` + zyx + `,"datasets":[{"path":"","coordinateTransformations":` + scale + `}]}]}`, "0.4", "path"},
		{"0.4 image-label", `{"multiscales":[` + ms(zyx, scale) + `],` + labelOK + `}`, "0.4", ""},
		{"0.5 image-label", `{"ome":{"version":"0.5","multiscales":[` + ms(zyx, scale) + `],` + labelOK + `}}`, "0.5", ""},
		{"label-value repeated", `{"multiscales":[` + ms(zyx, scale) + `],"image-label":{"colors":[{"label-value":1},{"label-value":2},{"label-value":1.0}]}}`, "0.4", `"/image-label/colors/2": label-value 1 appears twice`},
		{"0.5 property repeated", `{"ome":{"version":"0.5","multiscales":[` + ms(zyx, scale) + `],"image-label":{"properties":[{"label-value":7},{"label-value":7}]}}}`, "0.5", `"/ome/image-label/properties/1": label-value 7 appears twice`},
		{"label-value not integer", `{"multiscales":[` + ms(zyx, scale) + `],"image-label":{"colors":[{"label-value":1.5}]}}`, "0.4", "image-label/colors/0/label-value"},
		{"label-value missing", `{"multiscales":[` + ms(zyx, scale) + `],"image-label":{"colors":[{"rgba":[1,2,3,4]}]}}`, "0.4", "label-value"},
		{"rgba out of range", `{"multiscales":[` + ms(zyx, scale) + `],"image-label":{"colors":[{"label-value":1,"rgba":[0,0,256,255]}]}}`, "0.4", "rgba/2"},
		{"rgba three values", `{"ome":{"version":"0.5","multiscales":[` + ms(zyx, scale) + `],"image-label":{"colors":[{"label-value":1,"rgba":[0,0,255]}]}}}`, "0.5", "rgba"},
		{"source image not string", `{"multiscales":[` + ms(zyx, scale) + `],"image-label":{"source":{"image":3}}}`, "0.4", "source/image"},
		{"0.4 affine transform", `{"multiscales":[` + ms(zyx, `[{"type":"scale","scale":[1,2,2]},{"type":"affine","affine":[[1,0,0,0],[0,1,0,0],[0,0,1,0]]}]`) + `]}`, "0.4", "coordinateTransformations"},
		{"omero bad color", `{"multiscales":[` + ms(zyx, scale) + `],"omero":{"channels":[{"color":"#ff0000","window":{"min":0,"max":1,"start":0,"end":1}}]}}`, "0.4", "color"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateNGFF([]byte(c.doc), c.version)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.reason)
			}
		})
	}
	if err := ValidateNGFF([]byte(`{"multiscales":[`), "0.4"); err == nil {
		t.Error("truncated JSON accepted")
	}
	if err := ValidateNGFF([]byte(`{}`), "0.6"); !errors.Is(err, format.ErrNotSupported) {
		t.Errorf("version 0.6: %v, want ErrNotSupported", err)
	}
}

// TestSchemasSelfContained keeps the embedded schemas free of references to
// anything but themselves, since ValidateNGFF never fetches.
func TestSchemasSelfContained(t *testing.T) {
	files, err := schemaFS.ReadDir("schema")
	if err != nil || len(files) != 3 {
		t.Fatalf("schema dir: %d files, %v", len(files), err)
	}
	ref := regexp.MustCompile(`"\$ref":\s*"([^"]*)"`)
	for _, f := range files {
		b, _ := schemaFS.ReadFile("schema/" + f.Name())
		for _, m := range ref.FindAllSubmatch(b, -1) {
			r := string(m[1])
			if !strings.HasPrefix(r, "#/") && !strings.HasPrefix(r, schemaBase+"defs.json#/") {
				t.Errorf("%s: $ref %s outside the embedded schemas", f.Name(), r)
			}
		}
	}
}

// FuzzValidateNGFF checks that ValidateNGFF never panics and that whatever
// it accepts, the reader's NGFF parser reads as multiscales.
func FuzzValidateNGFF(f *testing.F) {
	f.Add([]byte(`{"multiscales":[{"axes":[{"name":"y","type":"space"},{"name":"x","type":"space"}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,2]}]}]}]}`), "0.4")
	f.Add([]byte(`{"ome":{"version":"0.5","multiscales":[{"axes":[{"name":"y","type":"space"},{"name":"x","type":"space"}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,2]},{"type":"translation","translation":[0,1]}]}]}]}}`), "")
	f.Add([]byte(`{"zarr_format":3,"attributes":null}`), "0.5")
	f.Add([]byte(`{"multiscales":[{"axes":[{"name":"y","type":"space"},{"name":"x","type":"space"}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,2]}]}]}],"image-label":{"colors":[{"label-value":1,"rgba":[0,0,0,255]},{"label-value":1e0}],"properties":[{"label-value":2}]}}`), "0.4")
	f.Add([]byte(`{"ome":{"version":"0.5","multiscales":[{"axes":[{"name":"y","type":"space"},{"name":"x","type":"space"}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,2]}]}]}],"image-label":{"colors":[{"label-value":18446744073709551617}],"source":{"image":"../../"}}}}`), "")
	f.Add([]byte(`[1,2,3]`), "0.4")
	f.Add([]byte(`{"multiscales":[{"axes":[{"name":"c"},{"name":"y","type":"space"},{"name":"x","type":"space"}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","path":"s.bin"}]}]}],"omero":{"channels":[]}}`), "")
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "zarr", "ngff-spec")
	for _, v := range []string{"0.4", "0.5"} {
		b, err := os.ReadFile(filepath.Join(dir, v, "tests", "image_suite.json"))
		if err != nil {
			continue
		}
		var suite struct {
			Tests []struct {
				Data json.RawMessage `json:"data"`
			} `json:"tests"`
		}
		if json.Unmarshal(b, &suite) == nil {
			for _, c := range suite.Tests {
				f.Add([]byte(c.Data), v)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, version string) {
		err := ValidateNGFF(b, version)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		var doc struct {
			ZarrFormat json.RawMessage `json:"zarr_format"`
			Attributes json.RawMessage `json:"attributes"`
		}
		attrs := b
		if json.Unmarshal(b, &doc) == nil && doc.ZarrFormat != nil && doc.Attributes != nil {
			attrs = doc.Attributes
		}
		if _, ok, perr := parseNGFF(attrs); !ok || perr != nil {
			t.Fatalf("accepted as NGFF %q but the reader finds no multiscales (ok=%v, %v):\n%s", version, ok, perr, b)
		}
	})
}
