package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// uncalibratedTIFF writes a (4, 6, 8) uint8 stack without any calibration,
// like the EPFL files, to dir/rel.
func uncalibratedTIFF(t *testing.T, dir, rel string) {
	t.Helper()
	in := volume.Info{Name: "a", Shape: []int64{4, 6, 8}, DType: volume.Uint8}
	for i, n := range []string{"z", "y", "x"} {
		in.Axes = append(in.Axes, volume.Axis{Name: n, Size: in.Shape[i], Scale: 1})
	}
	data := make([]byte, in.NumBytes())
	for i := range data {
		data[i] = byte(i * 7)
	}
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.New(store.NewFile(dir)).NewWriter(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := tiff.Write(context.Background(), w, m, tiff.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConvertTakesTheRunsFrame checks that convert and crop of a file in a
// run's output place it as the run's table does (a voxel size from the web
// page), and that elsewhere, or with a table that does not list the file or
// cannot be read, the file's own frame is used.
func TestConvertTakesTheRunsFrame(t *testing.T) {
	ctx := context.Background()
	five := 5.0
	row := catalog.Record{Dataset: "ds", LocalPath: "ds/a.tif", Array: "a.tif", Format: "tiff", Status: "ok",
		VoxelZ: &five, VoxelY: &five, VoxelX: &five, VoxelSource: catalog.FromWebPage}
	for _, c := range []struct {
		name   string
		table  func(t *testing.T, dir string) // writes dir/catalog.json, or nothing
		src    string                         // below dir
		voxel  float64                        // nm; 0 = uncalibrated
		source string
	}{
		{"row of the run", writeTable(row), "ds/a.tif", 5, catalog.FromWebPage},
		{"no run", func(*testing.T, string) {}, "ds/a.tif", 0, ""},
		{"file the table does not list", writeTable(row), "ds/b.tif", 0, ""},
		{"table that cannot be read", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(`{"records": [`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "ds/a.tif", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.table(t, dir)
			uncalibratedTIFF(t, dir, c.src)
			src := filepath.Join(dir, c.src)
			conv, crop := filepath.Join(t.TempDir(), "c.zarr"), filepath.Join(t.TempDir(), "k.zarr")
			if err := Convert(ctx, src, "", conv, Options{}); err != nil {
				t.Fatal(err)
			}
			origin := []int64{1, 2, 3}
			if _, err := Crop(ctx, src, manifest.Crop{Origin: origin, Size: []int64{2, 2, 2}}, crop, Options{}); err != nil {
				t.Fatal(err)
			}
			for _, out := range []struct {
				path   string
				origin []int64
			}{{conv, []int64{0, 0, 0}}, {crop, origin}} {
				opt := Options{}
				opt.Defaults()
				_, vs, err := opt.Formats.Open(ctx, store.New(store.NewFile(filepath.Dir(out.path))), filepath.Base(out.path))
				if err != nil {
					t.Fatal(err)
				}
				for i, a := range vs[0].Info().Axes {
					if c.voxel == 0 {
						// NGFF has no "unknown": scale 1 without a unit.
						if a.Unit != "" || a.Scale != 1 {
							t.Errorf("%s axis %s: %+v, want no calibration", out.path, a.Name, a)
						}
						continue
					}
					want := float64(out.origin[i]) * c.voxel
					if a.Unit != "nanometer" || a.Scale != c.voxel || math.Abs(a.Offset-want) > 1e-9 {
						t.Errorf("%s axis %s: %+v, want %g nm at %g nm", out.path, a.Name, a, c.voxel, want)
					}
				}
				b, err := os.ReadFile(filepath.Join(out.path, ".zattrs"))
				if err != nil {
					t.Fatal(err)
				}
				var attrs struct {
					Imgdataset struct {
						Source any `json:"voxel_size_source"`
					} `json:"imgdataset"`
				}
				if err := json.Unmarshal(b, &attrs); err != nil {
					t.Fatal(err)
				}
				if want := any(c.source); c.source == "" && attrs.Imgdataset.Source != nil || c.source != "" && attrs.Imgdataset.Source != want {
					t.Errorf("%s: voxel_size_source %v, want %q", out.path, attrs.Imgdataset.Source, c.source)
				}
			}
		})
	}
}

// writeTable returns a function writing the tables of a run with rows.
func writeTable(rows ...catalog.Record) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if _, err := catalog.WriteAll(context.Background(), store.New(store.NewFile(dir)), append([]catalog.Record(nil), rows...)); err != nil {
			t.Fatal(err)
		}
	}
}
