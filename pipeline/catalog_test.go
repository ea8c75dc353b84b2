package pipeline

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/volume"
)

// Cataloging a remote stack reads headers only: well under 1 MB of a large file.
func TestCatalogRemoteReadsUnderOneMB(t *testing.T) {
	const z, y, x = 300, 512, 512 // 78 MB of pixels, uncompressed, one IFD per page
	in := volume.Info{Name: "v", Shape: []int64{z, y, x}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "z", Size: z, Scale: 1}, {Name: "y", Size: y, Scale: 1}, {Name: "x", Size: x, Scale: 1}}}
	data := make([]byte, in.NumBytes())
	for i := range data {
		data[i] = byte(i * 7)
	}
	src, _ := volume.NewMem(in, data)
	var b bytes.Buffer
	if err := tiff.Write(context.Background(), &b, src, tiff.WriteOptions{RowsPerStrip: 4}); err != nil {
		t.Fatal(err)
	}
	file := b.Bytes()
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(&countingWriter{ResponseWriter: w, n: &served}, r, "v.tif", time.Time{}, bytes.NewReader(file))
	}))
	defer srv.Close()
	res, err := Catalog(context.Background(), []string{srv.URL + "/data/volumedata.tif"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].ShapeZ != z || res.Records[0].Status != "ok" {
		t.Fatalf("records %+v", res.Records)
	}
	if n := served.Load(); n >= 1<<20 {
		t.Fatalf("catalog read %d bytes of a %d-byte remote file; headers only must stay under 1 MB", n, len(file))
	}
	t.Logf("catalog of a %d-byte remote TIFF read %d bytes", len(file), served.Load())
}

// On the corpus: one row per array for every supported file, and voxel sizes
// equal to the expected values of MANIFEST.tsv where it gives them.
func TestCatalogCorpusVoxelSizes(t *testing.T) {
	dir := corpus.Dir(t)
	all, err := corpus.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range all {
		if (e.Category != "tiff" && e.Category != "dm") || e.Expected == nil || strings.Contains(e.Path, "fuzz") {
			continue
		}
		axes, ok := e.Expected["axes"].([]any)
		if !ok {
			continue
		}
		res, err := Catalog(context.Background(), []string{filepath.Join(dir, e.Path)}, Options{SampleBudget: 1 << 16})
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		if len(res.Records) == 0 {
			t.Errorf("%s: no row", e.Path)
			continue
		}
		r := res.Records[0]
		if r.Status != "ok" {
			continue // unsupported features are reported in the row and covered by the format tests
		}
		for _, a := range axes {
			ax, _ := a.([]any)
			if len(ax) != 5 {
				continue
			}
			name, _ := ax[0].(string)
			scale, _ := ax[2].(float64)
			unit, _ := ax[4].(string)
			want, ok := volume.ToNanometres(scale, unit)
			if !ok {
				continue
			}
			var got *float64
			switch name {
			case "x":
				got = r.VoxelX
			case "y":
				got = r.VoxelY
			case "z":
				got = r.VoxelZ
			default:
				continue
			}
			if got == nil {
				if scale == 1 && (unit == "" || unit == "<undefined>") {
					continue
				}
				t.Errorf("%s: voxel_size_%s missing, expected %g nm", e.Path, name, want)
				continue
			}
			if math.Abs(*got-want) > 1e-4*math.Max(1, math.Abs(want)) {
				t.Errorf("%s: voxel_size_%s = %g nm, expected %g nm", e.Path, name, *got, want)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no corpus voxel size was compared")
	}
	t.Logf("%d voxel sizes compared with MANIFEST.tsv", checked)
}
