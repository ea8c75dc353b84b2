package pipeline

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/volume"
)

func writeSampleTIFF(t *testing.T, dir string) (string, string) {
	t.Helper()
	ctx := context.Background()
	shape := [3]int64{12, 20, 24}
	b, err := sample.ImageJTIFF(ctx, shape, 7, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "stack.tif")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := sample.Mem("ref", volume.Uint8, sample.ZYX(shape, [3]float64{0.02, 0.02, 0.02}, "µm"), sample.EM(shape, 7, 1))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := volume.Checksum16(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p, sum
}

func TestInspectLocalContract(t *testing.T) {
	p, want := writeSampleTIFF(t, t.TempDir())
	res, err := Inspect(context.Background(), p, true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "tiff" || len(res.Arrays) != 1 {
		t.Fatalf("format %q with %d arrays", res.Format, len(res.Arrays))
	}
	a := res.Arrays[0]
	if a.DType != "uint8" || len(a.Shape) != 3 || a.Shape[0] != 12 || a.Shape[2] != 24 {
		t.Fatalf("array %+v", a)
	}
	if a.SHA256_16 != want {
		t.Fatalf("sha256_16 %s, want %s (of the generating array)", a.SHA256_16, want)
	}
	if a.Axes[2].Name != "x" || a.Axes[2].Scale != 0.02 || a.Axes[0].Scale != 0.02 {
		t.Fatalf("axes %+v: want 0.02 µm on z and x", a.Axes)
	}
}

// A remote file is inspected by range reads of its headers, not downloaded.
func TestInspectRemoteReadsHeadersOnly(t *testing.T) {
	ctx := context.Background()
	shape := [3]int64{64, 128, 128} // 1 MiB of pixels
	b, err := sample.ImageJTIFF(ctx, shape, 3, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, n: &served}
		http.ServeContent(cw, r, "stack.tif", time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	res, err := Inspect(ctx, srv.URL+"/data/stack.tif", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Arrays[0].Shape[0] != 64 {
		t.Fatalf("shape %v", res.Arrays[0].Shape)
	}
	if n := served.Load(); n > int64(len(b))/8 {
		t.Fatalf("inspect fetched %d bytes of a %d-byte file; it must read headers only", n, len(b))
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

func TestCatalogLocalTree(t *testing.T) {
	dir := t.TempDir()
	writeSampleTIFF(t, dir)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image"), 0o644)
	res, err := Catalog(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := res.Records
	if len(recs) != 1 || recs[0].Format != "tiff" || recs[0].VoxelX == nil || *recs[0].VoxelX != 20 {
		t.Fatalf("records %+v", recs)
	}
}

// A store holding a variable-length string array is inspected with checksums:
// the string array is listed without one, the numeric array still gets its own.
func TestInspectChecksumSkipsStringArrays(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		".zgroup":       `{"zarr_format":2}`,
		"num/.zarray":   `{"zarr_format":2,"shape":[4],"chunks":[4],"dtype":"|u1","compressor":null,"fill_value":0,"order":"C","filters":null}`,
		"num/0":         "\x01\x02\x03\x04",
		"names/.zarray": `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"|O","compressor":null,"fill_value":null,"order":"C","filters":[{"id":"vlen-utf8"}]}`,
		// numcodecs VLenUTF8: item count, then length-prefixed items.
		"names/0": "\x02\x00\x00\x00\x01\x00\x00\x00a\x02\x00\x00\x00bc",
	}
	for k, v := range files {
		p := filepath.Join(dir, "s.zarr", filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Inspect(context.Background(), filepath.Join(dir, "s.zarr"), true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sample.Mem("ref", volume.Uint8, []volume.Axis{{Name: "x", Size: 4, Scale: 1}}, []byte{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	want, err := volume.Checksum16(context.Background(), m, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]InspectArray{}
	for _, a := range res.Arrays {
		got[filepath.Base(a.Name)] = a
	}
	if a, ok := got["names"]; !ok || a.DType != "object" || a.SHA256_16 != "" {
		t.Errorf("string array %+v: want dtype object, no checksum", a)
	}
	if a, ok := got["num"]; !ok || a.SHA256_16 != want {
		t.Errorf("numeric array %+v: want sha256_16 %s", a, want)
	}
}
