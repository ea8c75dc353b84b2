package manifest

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultManifest(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Datasets) != 5 {
		t.Fatalf("default lists %d datasets, want the five real ones", len(m.Datasets))
	}
	kinds := map[string]bool{}
	for _, d := range m.Datasets {
		kinds[d.Kind] = true
		if strings.Contains(d.URL, "ftp.ebi.ac.uk") || strings.Contains(d.URL, "documents.epfl.ch") {
			t.Errorf("%s: default manifest should start from user-facing links, got %s", d.Name, d.URL)
		}
	}
	for _, k := range []string{KindOMERO, KindEMPIAR, KindWebPage, KindS3, KindNeuroglancer} {
		if !kinds[k] {
			t.Errorf("default manifest has no %s dataset", k)
		}
	}
	c := m.Datasets[4].Take.Crop
	if c == nil || c.Seed == nil || len(c.Size) != 3 || c.Size[0] != 1000 {
		t.Fatalf("hemibrain entry must be a seeded 1000³ crop, got %+v", c)
	}
}

func TestValidationErrorsNameLineAndField(t *testing.T) {
	src := `version: 1
datasets:
  - name: ok-one
    url: https://example.org/data/
  - name: Bad Name
    url: example.org/no-scheme
    kind: ftp
    take:
      crop:
        size: [10, 10]
  - name: ok-one
    url: s3://bucket/prefix
`
	_, err := Parse([]byte(src), "m.yaml")
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := []struct {
		field string
		line  int
	}{
		{"datasets[1].name", 5},
		{"datasets[1].url", 6},
		{"datasets[1].kind", 7},
		{"datasets[1].take.crop.size", 10},
		{"datasets[1].take.crop", 9},
		{"datasets[2].name", 11},
	}
	got := map[string]int{}
	for _, e := range es {
		got[e.Field] = e.Line
	}
	for _, w := range want {
		l, ok := got[w.field]
		if !ok {
			t.Errorf("no error for %s; got %v", w.field, es)
			continue
		}
		if l != w.line {
			t.Errorf("%s reported at line %d, want %d", w.field, l, w.line)
		}
	}
	if !strings.Contains(err.Error(), "m.yaml:5: datasets[1].name") {
		t.Errorf("message lacks file:line: field: %v", err)
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	_, err := Parse([]byte("version: 1\ndatasets:\n  - name: a\n    url: https://x.org/\n    tkae: {}\n"), "m.yaml")
	if err == nil || !strings.Contains(err.Error(), "tkae") {
		t.Fatalf("typo'd field not reported: %v", err)
	}
}

func TestTakeMatch(t *testing.T) {
	tk := Take{Include: []string{"*.dm3"}, Exclude: []string{"trakem2*/**"}}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"F57-8_test1_3VBSED_slice_0000.dm3", true},
		{"sub/x.dm3", true},
		{"F57-8_test1.xml.gz", false},
		{"trakem2.1528909664283/sub/y.dm3", false},
	} {
		if got := tk.Match(tc.path); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestReservedNamesRefused(t *testing.T) {
	for _, name := range []string{"catalog.json", "report.html", "metadata_table.csv", "metadata_table.parquet", "ome-zarr"} {
		t.Run(name, func(t *testing.T) {
			src := "version: 1\ndatasets:\n  - name: " + name + "\n    url: https://example.org/x/\n"
			_, err := Parse([]byte(src), "m.yaml")
			if err == nil || !strings.Contains(err.Error(), "m.yaml:3: datasets[0].name") || !strings.Contains(err.Error(), "reserved") {
				t.Fatalf("name %q: want a reserved-name error at m.yaml:3, got %v", name, err)
			}
		})
	}
	for _, u := range []string{"https://example.org/out/catalog.json", "https://example.org/report.html", "https://example.org/metadata_table.csv"} {
		t.Run(u, func(t *testing.T) {
			m, err := FromURLs([]string{u})
			if err == nil || !strings.Contains(err.Error(), "reserved") {
				t.Fatalf("URL %s: want a reserved-name error, got manifest %+v, err %v", u, m, err)
			}
		})
	}
	if _, err := FromURLs([]string{"https://example.org/catalog"}); err != nil {
		t.Fatalf("a name that is not reserved was refused: %v", err)
	}
}
