package scan

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// write puts files into dir, creating folders.
func write(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for k, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func tiffOf(t *testing.T, shape [3]int64, voxelUM float64) []byte {
	t.Helper()
	var b []byte
	var err error
	if voxelUM > 0 {
		b, err = sample.ImageJTIFF(context.Background(), shape, 7, voxelUM)
	} else {
		b, err = sample.PlainTIFF(context.Background(), shape, 7, false)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rowKeys(rs []catalog.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Dataset+" "+r.LocalPath+" "+r.Array)
	}
	return out
}

// A tree without catalog.json: datasets are the first folder level below it,
// files directly in it take its name, and the tool's OME-Zarr copy of an
// original is no row, while a store elsewhere is.
func TestDirPlainTree(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "collection")
	write(t, root, map[string][]byte{
		"alpha/stack.tif":       tiffOf(t, [3]int64{4, 16, 24}, 0.01),
		"alpha/sub/more.tif":    tiffOf(t, [3]int64{3, 8, 8}, 0),
		"beta/volume.tif":       tiffOf(t, [3]int64{5, 12, 10}, 0.02),
		"beta/notes.txt":        []byte("not an image"),
		"top.tif":               tiffOf(t, [3]int64{2, 8, 8}, 0),
		"metadata_table.csv":    []byte("dataset\n"),
		".imgdataset/journal":   []byte("{}"),
		".hidden/ignored.tif":   tiffOf(t, [3]int64{2, 8, 8}, 0),
		"alpha/.part.tif":       []byte("II*\x00"),
		"alpha/notes/info":      []byte("not a precomputed info"),
		"alpha/notes/guide.tif": tiffOf(t, [3]int64{2, 8, 8}, 0),
	})
	st := store.New(store.NewFile(root))
	defer st.Close()
	src, err := sample.Mem("volume", volume.Uint8, sample.ZYX([3]int64{5, 12, 10}, [3]float64{20, 20, 20}, "nanometer"), make([]byte, 5*12*10))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"beta/ome-zarr/volume.zarr", "beta/labels/seg.zarr"} {
		if err := zarr.WriteNGFF(ctx, st, key, src, zarr.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Dir(ctx, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.FromRun {
		t.Error("a tree without catalog.json is not a run's output")
	}
	got := rowKeys(res.Records)
	want := []string{
		"alpha alpha/notes/guide.tif guide.tif",
		"alpha alpha/stack.tif stack.tif",
		"alpha alpha/sub/more.tif more.tif",
		"beta beta/labels/seg.zarr s0",
		"beta beta/volume.tif volume.tif",
		"collection top.tif top.tif",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range res.Records {
		if r.Status != "ok" || res.Volumes[catalog.VolumeKey(r)] == nil {
			t.Errorf("%s: status %q, array opened %v", catalog.VolumeKey(r), r.Status, res.Volumes[catalog.VolumeKey(r)] != nil)
		}
		if strings.Contains(r.LocalPath, CopiesDir) {
			t.Errorf("the tool's copy %s is a row", r.LocalPath)
		}
	}
	// The copy is still there to be cataloged when asked for directly.
	copies, err := Dir(ctx, filepath.Join(root, "beta", CopiesDir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer copies.Close()
	if got := rowKeys(copies.Records); !slices.Equal(got, []string{"ome-zarr volume.zarr s0"}) {
		t.Errorf("rows of the copies directory: %v", got)
	}
}

// runDir writes a small run output: two uncalibrated stacks whose voxel size a
// web page gave, one calibrated stack, a catalog.json with those facts, and
// file times before the catalog's.
func runDir(t *testing.T) (string, []catalog.Record) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, map[string][]byte{
		"lab/a.tif":  tiffOf(t, [3]int64{4, 16, 24}, 0),
		"lab/b.tif":  tiffOf(t, [3]int64{4, 16, 24}, 0),
		"idr/c.tif":  tiffOf(t, [3]int64{3, 8, 8}, 0.02),
		"idr/d.tif":  tiffOf(t, [3]int64{3, 8, 8}, 0.02),
		"lab/e.tif":  tiffOf(t, [3]int64{2, 8, 8}, 0),
		"lab/gone.x": []byte("placeholder"),
	})
	res, err := Dir(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	var rows []catalog.Record
	for _, r := range res.Records {
		fi, err := os.Stat(filepath.Join(dir, r.LocalPath))
		if err != nil {
			t.Fatal(err)
		}
		r.FileBytes = ptr(fi.Size())
		r.SHA256 = "run-sha256-" + r.Array
		r.Title = "title of " + r.Dataset
		r.SourceURL = "https://example.org/" + r.LocalPath
		if r.Dataset == "lab" {
			r.VoxelZ, r.VoxelY, r.VoxelX = ptr(5.0), ptr(5.0), ptr(5.0)
			r.VoxelSource = catalog.FromWebPage
			r.Microscope = "from the lab page"
		}
		rows = append(rows, r)
	}
	// A row for a file the run had and the disk no longer has.
	gone := rows[0]
	gone.Dataset, gone.LocalPath, gone.Array = "lab", "lab/gone.tif", "gone.tif"
	rows = append(rows, gone)
	if _, err := catalog.WriteAll(ctx, store.New(store.NewFile(dir)), rows); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	setTime(t, filepath.Join(dir, CatalogFile), now.Add(-time.Hour))
	for _, r := range rows {
		if r.LocalPath != "lab/gone.tif" {
			setTime(t, filepath.Join(dir, r.LocalPath), now.Add(-2*time.Hour))
		}
	}
	os.Remove(filepath.Join(dir, "lab/gone.x"))
	for _, name := range []string{"metadata_table.csv", "metadata_table.jsonl", "metadata_table.parquet"} {
		os.Remove(filepath.Join(dir, name)) // only catalog.json matters here
	}
	return dir, rows
}

func setTime(t *testing.T, p string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// The output of a run gives back the run's rows; a file that changed since is
// read again and keeps the run's page facts; a file only touched keeps its
// row; a file gone keeps its row as an error; a file added gets a row.
func TestDirRunOutput(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, dir string)
		check  func(t *testing.T, got, run map[string]catalog.Record, res *Result)
	}{
		{"unchanged", func(*testing.T, string) {}, func(t *testing.T, got, run map[string]catalog.Record, res *Result) {
			for k, r := range run {
				g := got[k]
				if g.VoxelSource != r.VoxelSource || g.SHA256 != r.SHA256 || g.Title != r.Title || g.SourceURL != r.SourceURL || !slices.Equal(g.Notes, r.Notes) {
					t.Errorf("%s: row %+v, the run wrote %+v", k, g, r)
				}
			}
		}},
		{"rewritten with another shape", func(t *testing.T, dir string) {
			write(t, dir, map[string][]byte{"lab/a.tif": tiffOf(t, [3]int64{6, 16, 24}, 0)})
		}, func(t *testing.T, got, run map[string]catalog.Record, res *Result) {
			g := got["lab/lab/a.tif#a.tif"]
			if g.ShapeZ != 6 || g.Status != "ok" || res.Volumes["lab/lab/a.tif#a.tif"] == nil {
				t.Errorf("a.tif was not read again: shape_z %d, status %q", g.ShapeZ, g.Status)
			}
			if g.VoxelX == nil || *g.VoxelX != 5 || g.VoxelSource != catalog.FromWebPage || g.Title != "title of lab" || g.SourceURL != "https://example.org/lab/a.tif" || g.Microscope != "from the lab page" {
				t.Errorf("a.tif lost the run's facts: voxel %v from %q, title %q, source %q, microscope %q", g.VoxelX, g.VoxelSource, g.Title, g.SourceURL, g.Microscope)
			}
			if g.SHA256 != "" || g.FileBytes == nil || *g.FileBytes == *run["lab/lab/a.tif#a.tif"].FileBytes {
				t.Errorf("a.tif: sha256 %q and file_bytes %v describe the old bytes", g.SHA256, g.FileBytes)
			}
			if !hasNote(g, "changed on disk since the run") {
				t.Errorf("a.tif: notes %q do not say it changed", g.Notes)
			}
			if b := got["lab/lab/b.tif#b.tif"]; b.SHA256 != run["lab/lab/b.tif#b.tif"].SHA256 || len(b.Notes) != 0 {
				t.Errorf("b.tif did not change, but its row did: %+v", b)
			}
		}},
		{"calibrated since", func(t *testing.T, dir string) {
			// 4 nm in the file now disagrees with the page's 5 nm: the file
			// wins, and the row says what the page said.
			write(t, dir, map[string][]byte{"lab/b.tif": tiffOf(t, [3]int64{4, 16, 24}, 0.004)})
		}, func(t *testing.T, got, run map[string]catalog.Record, res *Result) {
			g := got["lab/lab/b.tif#b.tif"]
			if g.VoxelX == nil || *g.VoxelX != 4 || g.VoxelSource != catalog.FromFile {
				t.Errorf("b.tif: voxel %v from %q, want 4 from the file", g.VoxelX, g.VoxelSource)
			}
			if !slices.ContainsFunc(g.Conflicts, func(c string) bool { return strings.Contains(c, "web page 5 nm") }) {
				t.Errorf("b.tif: conflicts %q lack the page's 5 nm", g.Conflicts)
			}
		}},
		{"touched only", func(t *testing.T, dir string) {
			setTime(t, filepath.Join(dir, "idr/c.tif"), time.Now())
		}, func(t *testing.T, got, run map[string]catalog.Record, res *Result) {
			g := got["idr/idr/c.tif#c.tif"]
			if g.SHA256 != run["idr/idr/c.tif#c.tif"].SHA256 || res.Volumes["idr/idr/c.tif#c.tif"] == nil {
				t.Errorf("c.tif: the run's row was not kept: %+v", g)
			}
			if !hasNote(g, "the run's row is kept") {
				t.Errorf("c.tif: notes %q do not say it was modified", g.Notes)
			}
		}},
		{"deleted", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "idr/d.tif"))
		}, func(t *testing.T, got, run map[string]catalog.Record, res *Result) {
			g := got["idr/idr/d.tif#d.tif"]
			if !strings.HasPrefix(g.Status, "error: open idr/d.tif") || res.Volumes["idr/idr/d.tif#d.tif"] != nil {
				t.Errorf("d.tif: status %q", g.Status)
			}
		}},
		{"added", func(t *testing.T, dir string) {
			write(t, dir, map[string][]byte{"new/f.tif": tiffOf(t, [3]int64{2, 8, 8}, 0.01)})
		}, func(t *testing.T, got, run map[string]catalog.Record, res *Result) {
			g, ok := got["new/new/f.tif#f.tif"]
			if !ok || g.Status != "ok" || g.VoxelX == nil || *g.VoxelX != 10 || !hasNote(g, "not in the run's catalog.json") {
				t.Errorf("f.tif: %+v", g)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, rows := runDir(t)
			tc.mutate(t, dir)
			res, err := Dir(ctx, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if !res.FromRun {
				t.Error("a directory with catalog.json is a run's output")
			}
			got, run := map[string]catalog.Record{}, map[string]catalog.Record{}
			for _, r := range res.Records {
				got[catalog.VolumeKey(r)] = r
			}
			for _, r := range rows {
				run[catalog.VolumeKey(r)] = r
				if _, ok := got[catalog.VolumeKey(r)]; !ok {
					t.Errorf("the run's row %s is missing", catalog.VolumeKey(r))
				}
			}
			if g := got["lab/lab/gone.tif#gone.tif"]; !strings.Contains(g.Status, "open lab/gone.tif") {
				t.Errorf("the row of a file gone before the scan: status %q", g.Status)
			}
			tc.check(t, got, run, res)
		})
	}
}

func hasNote(r catalog.Record, s string) bool {
	return slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, s) })
}
