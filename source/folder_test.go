package source

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// `run DIR` gathers a local folder as it gathers a bucket prefix: every file
// below it at its relative path, hidden files left out, and a folder that is
// itself a chunked store kept whole under its own name.
func TestResolveLocalFolder(t *testing.T) {
	isMeta := func(name string) bool { return name == ".zarray" || name == ".zattrs" || name == ".zgroup" }
	env := &Env{Stores: &store.Opener{}, StoreMeta: isMeta}
	ctx := context.Background()

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.tif": "aa", "sub/b.dm3": "bbb", ".hidden": "x", ".git/config": "y",
		"x.zarr/.zarray": "{}", "x.zarr/0.0": "c",
	})
	for _, url := range []string{dir, "file://" + dir, "file://" + dir + "/"} {
		res, err := Resolve(ctx, env, manifest.Dataset{Name: "imgs", URL: url})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		got := objPaths(res.Objects)
		slices.Sort(got)
		want := []string{"a.tif", "sub/b.dm3", "x.zarr/.zarray", "x.zarr/0.0"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: objects %v, want %v", url, got, want)
		}
		for _, o := range res.Objects {
			if o.Path == "sub/b.dm3" && o.Size != 3 {
				t.Errorf("%s: size %d, want 3", o.Path, o.Size)
			}
		}
	}

	// A folder that is a store keeps its name, so it is one unit.
	res, err := Resolve(ctx, env, manifest.Dataset{Name: "x", URL: filepath.Join(dir, "x.zarr")})
	if err != nil {
		t.Fatal(err)
	}
	got := objPaths(res.Objects)
	slices.Sort(got)
	if want := []string{"x.zarr/.zarray", "x.zarr/0.0"}; !slices.Equal(got, want) {
		t.Errorf("store folder: objects %v, want %v", got, want)
	}

	// An empty folder is an error that says so.
	empty := t.TempDir()
	if _, err := Resolve(ctx, env, manifest.Dataset{Name: "e", URL: empty}); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Errorf("empty folder: %v, want an error saying it has no files", err)
	}
}
