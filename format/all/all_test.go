package all

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

// storeTree writes directories that are, or only look like, stores of each
// chunked format, next to plain files.
func storeTree(t *testing.T) *store.Store {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"named.zarr/s0/0.0.0":           "chunk", // a store by its name alone
		"v2/.zgroup":                    `{"zarr_format":2}`,
		"v2/a/.zarray":                  `{"zarr_format":2}`,
		"v3/zarr.json":                  `{"zarr_format":3,"node_type":"group"}`,
		"ngff/.zattrs":                  `{"multiscales":[{"version":"0.4","datasets":[{"path":"s0"}]}]}`,
		"attrs-only/.zattrs":            `{"title":"not NGFF"}`,
		"c/group/attributes.json":       `{"n5":"2.0.0"}`,
		"c/group/s0/attributes.json":    `{"dimensions":[4,4],"blockSize":[2,2],"dataType":"uint8","compression":{"type":"raw"}}`,
		"pre/info":                      `{"type":"image","data_type":"uint8","num_channels":1,"scales":[]}`,
		"notes/info":                    "contact the lab for details",
		"notes/stack.tif":               "II*\x00",
		"plain/sub/x.dm3":               "dm",
		"deep/named.n5/s0/0/0":          "block",
		"deep/named.precomputed/8_8_8/": "",
	}
	for k, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if k[len(k)-1] == '/' {
			continue
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return store.New(store.NewFile(dir))
}

func TestIsStore(t *testing.T) {
	ctx := context.Background()
	st := storeTree(t)
	reg := Registry()
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"named.zarr", true},
		{"v2", true},
		{"v2/a", true},
		{"v3", true},
		{"ngff", true},
		{"attrs-only", false}, // .zattrs nominates, Detect finds no NGFF
		{"c/group", true},
		{"c", false},
		{"pre", true},
		{"notes", false}, // an "info" that is not a precomputed info
		{"plain", false},
		{"plain/sub", false},
		{"deep/named.n5", true},
		{"deep/named.precomputed", true},
		{"missing", false},
	} {
		if got := reg.IsStore(ctx, st, tc.key); got != tc.want {
			t.Errorf("IsStore(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestStoreRoot(t *testing.T) {
	ctx := context.Background()
	st := storeTree(t)
	reg := Registry()
	known := map[string]bool{}
	for _, tc := range []struct{ key, want string }{
		{"named.zarr/s0/0.0.0", "named.zarr"},
		{"v2/a/.zarray", "v2"}, // the outermost store, not the array inside it
		{"c/group/s0/attributes.json", "c/group"},
		{"pre/info", "pre"},
		{"notes/stack.tif", ""},
		{"plain/sub/x.dm3", ""},
		{"deep/named.n5/s0/0/0", "deep/named.n5"},
		{"top.tif", ""},
	} {
		if got := reg.StoreRoot(ctx, st, tc.key, known); got != tc.want {
			t.Errorf("StoreRoot(%q) = %q, want %q", tc.key, got, tc.want)
		}
		if got := reg.StoreRoot(ctx, st, tc.key, nil); got != tc.want {
			t.Errorf("StoreRoot(%q) without a cache = %q, want %q", tc.key, got, tc.want)
		}
	}
	if is, ok := known["notes"]; !ok || is {
		t.Errorf("cache: notes = %v, %v; want a cached false", is, ok)
	}
}

func TestStoreNames(t *testing.T) {
	reg := Registry()
	for _, tc := range []struct {
		name           string
		marker, suffix bool
	}{
		{".zarray", true, false},
		{".zattrs", true, false},
		{".zmetadata", true, false},
		{"zarr.json", true, false},
		{"attributes.json", true, false},
		{"info", true, false},
		{"stack.tif", false, false},
		{"a.zarr", false, true},
		{"A.ZARR", false, true},
		{"bucket/a.n5/", false, true},
		{"v.precomputed", false, true},
		{"a.zarr.zip", false, false},
	} {
		if got := reg.IsStoreMarker(tc.name); got != tc.marker {
			t.Errorf("IsStoreMarker(%q) = %v, want %v", tc.name, got, tc.marker)
		}
		if got := reg.HasStoreName(tc.name); got != tc.suffix {
			t.Errorf("HasStoreName(%q) = %v, want %v", tc.name, got, tc.suffix)
		}
	}
}
