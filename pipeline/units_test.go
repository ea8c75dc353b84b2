package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

// Downloaded objects are folded into one unit per store, whether the store is
// known by its name or only by its metadata; a folder whose "info" is prose
// keeps its files as units of their own, and so does a dataset whose own name
// looks like a store's.
func TestGroupUnits(t *testing.T) {
	out := t.TempDir()
	files := map[string]string{
		"a.zarr/.zgroup":      `{"zarr_format":2}`,
		"a.zarr/s0/0.0.0":     "chunk",
		"plain/.zgroup":       `{"zarr_format":2}`,
		"plain/s0/.zarray":    `{"zarr_format":2}`,
		"plain/s0/0.0.0":      "chunk",
		"vol/info":            `{"type":"image","scales":[]}`,
		"vol/8_8_8/0-64_0-64": "chunk",
		"docs/info":           "ask the lab",
		"docs/stack.tif":      "II*\x00",
		"top.dm3":             "dm",
	}
	var objs []source.Object
	for k, v := range files {
		p := filepath.Join(out, "ds.zarr", filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, source.Object{Path: k, SourceURL: "https://example.org/d/" + k, StoreURL: "https://example.org/d/"})
	}
	st := store.New(store.NewFile(filepath.Join(out, "ds.zarr")))
	got := map[string][2]any{}
	for _, u := range groupUnits(context.Background(), all.Registry(), st, "ds.zarr", objs) {
		got[u.key] = [2]any{u.root, len(u.objects)}
		if len(u.objects) > 1 {
			if want := "https://example.org/d/" + u.root; sourceURL(u) != want {
				t.Errorf("%s: source URL %q, want %q", u.key, sourceURL(u), want)
			}
		}
	}
	want := map[string][2]any{
		"ds.zarr/a.zarr":         {"a.zarr", 2},
		"ds.zarr/plain":          {"plain", 3},
		"ds.zarr/vol":            {"vol", 2},
		"ds.zarr/docs/info":      {"", 1},
		"ds.zarr/docs/stack.tif": {"", 1},
		"ds.zarr/top.dm3":        {"", 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("units %v, want %v", got, want)
	}
}
