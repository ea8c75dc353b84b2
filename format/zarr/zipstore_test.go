package zarr

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// packDir zips every file under dir, naming entries prefix + their path
// relative to dir, with method.
func packDir(t *testing.T, dir, prefix string, method uint16) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + filepath.ToSlash(rel), Method: method})
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// describe summarises volumes: name suffix, shape, axes and data checksum.
func describe(t *testing.T, vs []volume.Volume, trim string) []string {
	t.Helper()
	var out []string
	for _, v := range vs {
		in := v.Info()
		sum, err := volume.Checksum16(context.Background(), v, 0)
		if err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		var ax []string
		for _, a := range in.Axes {
			ax = append(ax, fmt.Sprintf("%s:%g+%g%s", a.Name, a.Scale, a.Offset, a.Unit))
		}
		out = append(out, fmt.Sprintf("%s %v %s %v %s", strings.TrimPrefix(in.Name, trim), in.Shape, in.DType, ax, sum))
	}
	return out
}

// TestZipNGFF05 packs NGFF 0.5 images written by WriteNGFF into archives (an
// RFC-9 style .ozx with the root at the archive's root, and a .zip of the
// "img.zarr" folder) and reads them back identically, locally, through the
// registry, and from an HTTP server.
func TestZipNGFF05(t *testing.T) {
	ctx := context.Background()
	src := memVolume(t, "em", []int64{20, 33, 18}, volume.Uint16, emAxes)
	cases := []struct {
		name, file, prefix string
		method             uint16
		shard              []int64
	}{
		{"ozx-stored", "img.ozx", "", zip.Store, nil},
		{"ozx-sharded", "img.ozx", "", zip.Store, []int64{16, 16, 16}},
		{"zip-folder-deflate", "img.zip", "img.zarr/", zip.Deflate, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st := store.New(store.NewFile(dir))
			opt := WriteOptions{Chunks: []int64{8, 8, 8}, Levels: 3, Version: "0.5", ShardShape: c.shard}
			if err := WriteNGFF(ctx, st, "img.zarr", src, opt); err != nil {
				t.Fatal(err)
			}
			ref, err := Format{}.Open(ctx, st, "img.zarr")
			if err != nil {
				t.Fatal(err)
			}
			want := describe(t, ref, "img.zarr/")
			if len(want) != 3 {
				t.Fatalf("reference has %d levels", len(want))
			}

			if err := os.WriteFile(filepath.Join(dir, c.file), packDir(t, filepath.Join(dir, "img.zarr"), c.prefix, c.method), 0o644); err != nil {
				t.Fatal(err)
			}
			reg := format.NewRegistry(Format{})
			f, vs, err := reg.Open(ctx, st, c.file)
			if err != nil {
				t.Fatalf("registry open: %v", err)
			}
			if f.Name() != "zarr" {
				t.Errorf("detected as %s", f.Name())
			}
			trim := c.file + "/" + c.prefix
			if got := describe(t, vs, trim); !slices.Equal(got, want) {
				t.Errorf("from the archive:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n := vs[0].Info().Name; n != trim+"s0" {
				t.Errorf("level 0 named %q, want %q", n, trim+"s0")
			}
			if vs[0].Info().Metadata["ngff_version"] != "0.5" {
				t.Errorf("metadata %v", vs[0].Info().Metadata)
			}

			srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
			defer srv.Close()
			hd, err := store.NewHTTP(srv.Client(), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			rv, err := Format{}.Open(ctx, store.New(hd), c.file)
			if err != nil {
				t.Fatalf("remote: %v", err)
			}
			if got := describe(t, rv, trim); !slices.Equal(got, want) {
				t.Errorf("remote:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestZipDetect: a .zip that holds no zarr hierarchy is not zarr, and a file
// that only has the extension is not either.
func TestZipDetect(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("images/a.tif")
	w.Write([]byte("II*\x00"))
	zw.Close()
	files := map[string][]byte{
		"other.zip": buf.Bytes(),
		"fake.zip":  []byte("not a zip at all, just a name"),
		"fake.ozx":  []byte("not a zip at all, just a name"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := store.New(store.NewFile(dir))
	reg := format.NewRegistry(Format{})
	for name := range files {
		if f, err := reg.Detect(ctx, st, name); err == nil {
			t.Errorf("%s detected as %s", name, f.Name())
		}
	}
	if _, err := (Format{}).Open(ctx, st, "other.zip"); err == nil || !strings.Contains(err.Error(), "no zarr.json") {
		t.Errorf("Open(other.zip): %v, want a clear error", err)
	}
}

// TestZipPython reads zarr-python 2.13 ZipStore archives (a group with an
// NGFF 0.4 multiscale, stored and deflated, and a bare array) and compares
// the values with what zarr-python wrote.
func TestZipPython(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := `
import sys, zipfile, numpy as np, zarr
d = sys.argv[1]
a = (np.arange(20*33*18, dtype='<u4') * 2654435761 % 65521).astype('<u2').reshape(20, 33, 18)
a.tofile(d + '/expected.raw')
for name, comp in [('stored.zip', zipfile.ZIP_STORED), ('deflated.zip', zipfile.ZIP_DEFLATED)]:
    s = zarr.ZipStore(d + '/' + name, mode='w', compression=comp)
    g = zarr.group(store=s)
    g.create_dataset('0', data=a, chunks=(8, 8, 8))
    g.create_dataset('1', data=a[::2, ::2, ::2], chunks=(8, 8, 8), compressor=None)
    g.attrs['multiscales'] = [{'version': '0.4', 'name': 'py',
        'axes': [{'name': n, 'type': 'space', 'unit': 'nanometer'} for n in 'zyx'],
        'datasets': [{'path': str(i), 'coordinateTransformations': [{'type': 'scale', 'scale': [s * 2**i for s in (30.0, 4.0, 4.0)]}]} for i in range(2)]}]
    s.close()
s = zarr.ZipStore(d + '/array.zip', mode='w')
zarr.array(a, chunks=(7, 11, 5), store=s)
s.close()
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("zarr-python: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(dir, "expected.raw"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(store.NewFile(dir))
	for _, name := range []string{"stored.zip", "deflated.zip", "array.zip"} {
		t.Run(name, func(t *testing.T) {
			if !(Format{}).Detect(ctx, st, name, nil) {
				t.Errorf("not detected")
			}
			vs, err := Format{}.Open(ctx, st, name)
			if err != nil {
				t.Fatal(err)
			}
			in := vs[0].Info()
			if fmt.Sprint(in.Shape) != "[20 33 18]" || in.DType != volume.Uint16 {
				t.Fatalf("level 0: shape %v dtype %s", in.Shape, in.DType)
			}
			got := make([]byte, len(want))
			if err := vs[0].ReadRegion(ctx, volume.Box{Start: []int64{0, 0, 0}, Stop: in.Shape}, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("level 0 values differ from zarr-python's")
			}
			if name == "array.zip" {
				if len(vs) != 1 || in.Name != "array.zip" {
					t.Errorf("bare array: %d volumes, name %q", len(vs), in.Name)
				}
				return
			}
			if len(vs) != 2 || in.Name != name+"/0" || in.Axes[0].Scale != 30 || in.Axes[2].Unit != "nanometer" {
				t.Errorf("group: %d volumes, level 0 %q axes %+v", len(vs), in.Name, in.Axes)
			}
			if s := vs[1].Info(); fmt.Sprint(s.Shape) != "[10 17 9]" || s.Axes[1].Scale != 8 {
				t.Errorf("level 1: shape %v axes %+v", s.Shape, s.Axes)
			}
		})
	}
}
