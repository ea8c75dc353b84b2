package store_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

// TestFileDriverSymlinks checks the promise of FileDriver's doc: a link that
// leads out of the root is refused for every read, one that stays inside is
// followed, and a root that is itself a link is fine.
func TestFileDriverSymlinks(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "leak.zarr"), filepath.Join(root, "real"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "secret"), "secret bytes")
	write(filepath.Join(root, "real", "data.bin"), "inside bytes")
	link(filepath.Join(outside, "secret"), filepath.Join(root, "leak.zarr", "0")) // absolute, out
	link("../../outside/secret", filepath.Join(root, "leak.zarr", "1"))           // relative, out
	link(outside, filepath.Join(root, "outdir"))                                  // directory, out
	link("../real/data.bin", filepath.Join(root, "leak.zarr", "2"))               // relative, in
	link(filepath.Join(root, "real"), filepath.Join(root, "indir"))               // directory, in
	rootLink := filepath.Join(base, "rootlink")
	link(root, rootLink)

	tests := []struct {
		name, root, key string
		want            string // body; "" = refused
	}{
		{"absolute link out", root, "leak.zarr/0", ""},
		{"relative link out", root, "leak.zarr/1", ""},
		{"through a directory link out", root, "outdir/secret", ""},
		{"relative link in", root, "leak.zarr/2", "inside bytes"},
		{"through a directory link in", root, "indir/data.bin", "inside bytes"},
		{"root is a link", rootLink, "real/data.bin", "inside bytes"},
		{"root is a link, link out", rootLink, "leak.zarr/0", ""},
	}
	// A relative root, as `run --out data` gives: its files are inside it
	// although the kernel names them by absolute paths.
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, root); err == nil {
			tests = append(tests,
				struct{ name, root, key, want string }{"relative root", rel, "real/data.bin", "inside bytes"},
				struct{ name, root, key, want string }{"relative root, link out", rel, "leak.zarr/0", ""})
		}
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := store.NewFile(tc.root)
			defer d.Close()
			oi, serr := d.Stat(ctx, tc.key)
			rc, rerr := d.ReadRange(ctx, tc.key, 0, -1)
			if tc.want == "" {
				for _, err := range []error{serr, rerr} {
					if !errors.Is(err, store.ErrOutsideRoot) || !errors.Is(err, fs.ErrPermission) {
						t.Errorf("got %v, want ErrOutsideRoot", err)
					}
				}
				if rc != nil {
					rc.Close()
				}
				return
			}
			if serr != nil || rerr != nil {
				t.Fatalf("Stat: %v, ReadRange: %v", serr, rerr)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != tc.want || oi.Size != int64(len(tc.want)) {
				t.Errorf("read %q (size %d), %v; want %q", b, oi.Size, err, tc.want)
			}
		})
	}

	// A link read while it pointed inside (its handle cached) and then
	// re-pointed out of the root must be refused from then on.
	t.Run("retargeted link", func(t *testing.T) {
		p := filepath.Join(root, "moving")
		link("real/data.bin", p)
		d := store.NewFile(root)
		defer d.Close()
		rc, err := d.ReadRange(ctx, "moving", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		link(filepath.Join(outside, "secret"), p)
		rc, err = d.ReadRange(ctx, "moving", 0, -1)
		if rc != nil {
			rc.Close()
		}
		if !errors.Is(err, store.ErrOutsideRoot) {
			t.Errorf("after retargeting: %v, want ErrOutsideRoot", err)
		}
	})
}
