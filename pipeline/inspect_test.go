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
