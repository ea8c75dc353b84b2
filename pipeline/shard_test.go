package pipeline

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/internal/shardtest"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/shard"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// shardSource writes a calibrated uint16 TIFF whose odd shape leaves
// partial chunks, shards and pyramid blocks on every axis.
func shardSource(t *testing.T, dir string) string {
	t.Helper()
	m, err := shardtest.Volume([]int64{37, 150, 133}, [3]float64{30, 8, 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.New(store.NewFile(dir)).NewWriter(context.Background(), "v.tif")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var topt tiff.WriteOptions
	if !topt.Calibrate(m.Info()) {
		t.Fatal("the test volume's calibration does not fit a TIFF")
	}
	if err := tiff.Write(context.Background(), w, m, topt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "v.tif")
}

// sameTree fails the test unless dirs a and b hold the same files with the
// same bytes.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	want, got := hashTree(t, a), hashTree(t, b)
	if len(want) < 3 {
		t.Fatalf("the single-process output %s holds only %d files", a, len(want))
	}
	for _, d := range shardtest.Diff(want, got) {
		t.Errorf("sharded output %s", d)
	}
}

// TestShardedEqualsSingle checks that N tasks writing one output, in any
// order, then Finalize, give the files a single process writes, byte for
// byte, for every output kind tasks can split.
func TestShardedEqualsSingle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := shardSource(t, dir)
	origin := []int64{3, 10, 7}
	for _, d := range []string{"single", "split"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		out    string
		crop   bool
		opt    OutputOptions
		shards int
	}{
		{name: "ome.zarr v3 sharded, 4 levels", out: "a.ome.zarr", opt: OutputOptions{Chunk: 16, Levels: 4}, shards: 4},
		{name: "zarr v2, 3 levels", out: "b.zarr", opt: OutputOptions{Chunk: 16, Levels: 3}, shards: 4},
		{name: "zarr v2, 3 levels, 7 tasks", out: "c.zarr", opt: OutputOptions{Chunk: 16, Levels: 3}, shards: 7},
		{name: "zarr v3 unsharded by name, mode", out: "d.zarr", opt: OutputOptions{Chunk: 32, Levels: 2, ZarrVersion: 3, Downsample: "mode"}, shards: 3},
		{name: "n5", out: "e.n5", opt: OutputOptions{Chunk: 32}, shards: 4},
		{name: "one task", out: "f.ome.zarr", opt: OutputOptions{Chunk: 16, Levels: 3}, shards: 1},
		{name: "more tasks than regions", out: "g.zarr", opt: OutputOptions{Chunk: 64, Levels: 2}, shards: 9},
		{name: "crop to ome.zarr", out: "h.ome.zarr", crop: true, opt: OutputOptions{Chunk: 8}, shards: 4},
		{name: "crop to n5", out: "i.n5", crop: true, opt: OutputOptions{Chunk: 16}, shards: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The same relative name in two directories: a crop records its
			// output's name as given.
			single := filepath.Join(dir, "single", c.out)
			split := filepath.Join(dir, "split", c.out)
			do := func(s shard.Spec) error {
				opt := Options{Output: c.opt, Shard: s}
				if c.crop {
					_, err := Crop(ctx, src, manifest.Crop{Size: []int64{30, 100, 90}, Origin: origin}, c.out, opt)
					return err
				}
				return Convert(ctx, src, "", c.out, opt)
			}
			t.Chdir(filepath.Join(dir, "single"))
			if err := do(shard.Spec{}); err != nil {
				t.Fatal(err)
			}
			t.Chdir(filepath.Join(dir, "split"))
			// The last task first: the tasks' order must not matter.
			for i := c.shards - 1; i >= 0; i-- {
				if err := do(shard.Spec{Index: i, Count: c.shards}); err != nil {
					t.Fatalf("task %d/%d: %v", i, c.shards, err)
				}
			}
			st, err := Status(ctx, split)
			if err != nil || len(st.Kinds) != 1 || st.Kinds[0].Done != st.Kinds[0].Total || st.Kinds[0].TasksDone != c.shards {
				t.Fatalf("Status before finalize = %+v, %v; want all %d tasks done", st, err, c.shards)
			}
			if _, err := Finalize(ctx, c.out, Options{}); err != nil {
				t.Fatal(err)
			}
			sameTree(t, single, split)
			// Finalized: nothing left to finalize, and a late task may
			// not write into the finished output.
			if _, err := Finalize(ctx, split, Options{}); !errors.Is(err, shard.ErrNoTasks) {
				t.Errorf("second Finalize = %v, want ErrNoTasks", err)
			}
			if err := do(shard.Spec{Index: 0, Count: c.shards}); err == nil || !strings.Contains(err.Error(), "holds no sharded tasks") {
				t.Errorf("a task after finalize = %v, want a refusal", err)
			}
		})
	}
}

// TestFinalizeRefusesMissingTasks checks that finalize names the tasks
// that are not done and writes nothing, and that a task of another split
// or request cannot join an output.
func TestFinalizeRefusesMissingTasks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := shardSource(t, dir)
	out := filepath.Join(dir, "o.zarr")
	opt := Options{Output: OutputOptions{Chunk: 16, Levels: 2}, Shard: shard.Spec{Index: 0, Count: 3}}
	if err := Convert(ctx, src, "", out, opt); err != nil {
		t.Fatal(err)
	}
	_, err := Finalize(ctx, out, Options{})
	var nd *shard.NotDoneError
	if !errors.As(err, &nd) || !strings.Contains(err.Error(), "shard 1/3 not done") || !strings.Contains(err.Error(), "shard 2/3 not done") || strings.Contains(err.Error(), "shard 0/3") {
		t.Fatalf("Finalize with tasks 1 and 2 missing = %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, ".zattrs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused finalize wrote the group metadata (%v)", err)
	}
	for _, c := range []struct {
		name string
		opt  Options
	}{
		{"another count", Options{Output: opt.Output, Shard: shard.Spec{Index: 1, Count: 4}}},
		{"another chunk", Options{Output: OutputOptions{Chunk: 32, Levels: 2}, Shard: shard.Spec{Index: 1, Count: 3}}},
	} {
		if err := Convert(ctx, src, "", out, c.opt); err == nil || !strings.Contains(err.Error(), "another split") {
			t.Errorf("%s: Convert = %v, want a refusal naming another split", c.name, err)
		}
	}
	// A done task run again does nothing and succeeds.
	if err := Convert(ctx, src, "", out, opt); err != nil {
		t.Errorf("rerun of a done task: %v", err)
	}
}

// TestShardRefusesSingleFileOutputs checks the usage error, before
// anything is read or written, for outputs tasks cannot split.
func TestShardRefusesSingleFileOutputs(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"o.tif", "o.tiff", "o.dm3", "o.precomputed"} {
		out := filepath.Join(dir, name)
		err := Convert(context.Background(), filepath.Join(dir, "absent.tif"), "", out, Options{Shard: shard.Spec{Index: 0, Count: 2}})
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "drop --shard") {
			t.Errorf("%s: %v, want a usage error saying why", name, err)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: refused, but something was written (%v)", name, err)
		}
	}
}

// TestRegions checks the split into regions: they tile the array without
// overlap, on the grid of the coarseness chosen, there are at least as
// many as tasks when the array allows it, and an axis that no level
// halves (here a time axis longer than a chunk) does not stop the search.
func TestRegions(t *testing.T) {
	for _, c := range []struct {
		name        string
		shape, unit []int64
		grows       []bool // per axis: does the grid grow with j
		maxLevels   int
		count       int
		wantRegions int
		wantLevels  int
	}{
		{name: "one task takes all", shape: []int64{100, 300, 300}, unit: []int64{64, 64, 64}, grows: []bool{true, true, true}, maxLevels: 4, count: 1, wantRegions: 1, wantLevels: 4},
		{name: "4 tasks", shape: []int64{100, 300, 300}, unit: []int64{64, 64, 64}, grows: []bool{true, true, true}, maxLevels: 4, count: 4, wantRegions: 4, wantLevels: 3},
		{name: "many tasks", shape: []int64{100, 300, 300}, unit: []int64{64, 64, 64}, grows: []bool{true, true, true}, maxLevels: 4, count: 50, wantRegions: 50, wantLevels: 1},
		{name: "more tasks than units", shape: []int64{10, 10, 10}, unit: []int64{64, 64, 64}, grows: []bool{true, true, true}, maxLevels: 2, count: 3, wantRegions: 1, wantLevels: 1},
		{name: "time axis never grows", shape: []int64{200, 64, 64}, unit: []int64{128, 16, 16}, grows: []bool{false, true, true}, maxLevels: 3, count: 2, wantRegions: 2, wantLevels: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			sw := &splitWriter{
				shape: c.shape,
				grid: func(j int) []int64 {
					g := append([]int64(nil), c.unit...)
					for i := range g {
						if c.grows[i] {
							g[i] <<= j
						}
					}
					return g
				},
				levels: func(j int) int { return min(j+1, c.maxLevels) },
			}
			boxes, _, levels := sw.regions(c.count)
			if len(boxes) != c.wantRegions || levels != c.wantLevels {
				t.Fatalf("%d regions of %d levels, want %d of %d", len(boxes), levels, c.wantRegions, c.wantLevels)
			}
			var total int64
			for i, b := range boxes {
				total += b.NumElements()
				for _, o := range boxes[:i] {
					if _, overlap := b.Intersect(o); overlap {
						t.Errorf("regions %v and %v overlap", o, b)
					}
				}
			}
			if want := volume.Full(c.shape).NumElements(); total != want {
				t.Errorf("the regions cover %d voxels of %d", total, want)
			}
		})
	}
}

// TestCover checks that a task's run of regions is written as the fewest
// grid-aligned boxes C order allows, and that the boxes are exactly those
// regions: every region of the run lies in one box, no other voxel is in
// any box.
func TestCover(t *testing.T) {
	b3 := func(z0, z1, y0, y1, x0, x1 int64) volume.Box {
		return volume.Box{Start: []int64{z0, y0, x0}, Stop: []int64{z1, y1, x1}}
	}
	b2 := func(y0, y1, x0, x1 int64) volume.Box {
		return volume.Box{Start: []int64{y0, x0}, Stop: []int64{y1, x1}}
	}
	for _, c := range []struct {
		name        string
		shape, cell []int64
		lo, hi      int
		want        []volume.Box
	}{
		{name: "bench stack, task 0 of 4: a whole z-slab", shape: []int64{2048, 1024, 1024}, cell: []int64{512, 512, 512}, lo: 0, hi: 4,
			want: []volume.Box{b3(0, 512, 0, 1024, 0, 1024)}},
		{name: "bench stack, task 3 of 4", shape: []int64{2048, 1024, 1024}, cell: []int64{512, 512, 512}, lo: 12, hi: 16,
			want: []volume.Box{b3(1536, 2048, 0, 1024, 0, 1024)}},
		{name: "two tasks: two slabs each", shape: []int64{2048, 1024, 1024}, cell: []int64{512, 512, 512}, lo: 8, hi: 16,
			want: []volume.Box{b3(1024, 2048, 0, 1024, 0, 1024)}},
		{name: "task 1 of 3: end of a slab, a row, start of a row", shape: []int64{2048, 1024, 1024}, cell: []int64{512, 512, 512}, lo: 6, hi: 11,
			want: []volume.Box{b3(512, 1024, 512, 1024, 0, 1024), b3(1024, 1536, 0, 512, 0, 1024), b3(1024, 1536, 512, 1024, 0, 512)}},
		{name: "partial cells at the edges are clipped", shape: []int64{100, 300, 300}, cell: []int64{64, 64, 64}, lo: 3, hi: 27,
			want: []volume.Box{b3(0, 64, 0, 64, 192, 300), b3(0, 64, 64, 300, 0, 300), b3(64, 100, 0, 64, 0, 128)}},
		{name: "one region", shape: []int64{100, 300, 300}, cell: []int64{64, 64, 64}, lo: 7, hi: 8,
			want: []volume.Box{b3(0, 64, 64, 128, 128, 192)}},
		{name: "everything", shape: []int64{100, 300, 300}, cell: []int64{64, 64, 64}, lo: 0, hi: 50,
			want: []volume.Box{b3(0, 100, 0, 300, 0, 300)}},
		{name: "no regions", shape: []int64{100, 300, 300}, cell: []int64{64, 64, 64}, lo: 5, hi: 5},
		{name: "2-d", shape: []int64{10, 10}, cell: []int64{4, 4}, lo: 2, hi: 7,
			want: []volume.Box{b2(0, 4, 8, 10), b2(4, 8, 0, 10), b2(8, 10, 0, 4)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cover(c.shape, c.cell, c.lo, c.hi)
			if len(got) != len(c.want) {
				t.Fatalf("cover = %v, want %v", got, c.want)
			}
			for i := range got {
				if !slices.Equal(got[i].Start, c.want[i].Start) || !slices.Equal(got[i].Stop, c.want[i].Stop) {
					t.Errorf("box %d = %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestCoverIsTheRegions checks cover against the regions themselves for
// every task of several splits, including grids with clipped edge cells.
func TestCoverIsTheRegions(t *testing.T) {
	for _, c := range []struct{ shape, cell []int64 }{
		{[]int64{2048, 1024, 1024}, []int64{512, 512, 512}},
		{[]int64{100, 300, 300}, []int64{64, 64, 64}},
		{[]int64{37, 150, 133}, []int64{16, 32, 32}},
		{[]int64{5, 7}, []int64{2, 3}},
	} {
		var regions []volume.Box
		_ = volume.Grid(c.shape, c.cell, volume.Full(c.shape), func(_ []int64, r volume.Box) error {
			regions = append(regions, r)
			return nil
		})
		for _, count := range []int{1, 2, 3, 4, 7, len(regions)} {
			for i := range count {
				lo, hi := shard.Spec{Index: i, Count: count}.Range(len(regions))
				boxes := cover(c.shape, c.cell, lo, hi)
				var inside, want int64
				for _, r := range regions[lo:hi] {
					want += r.NumElements()
					n := 0
					for _, b := range boxes {
						if in, ok := r.Intersect(b); ok && in.NumElements() == r.NumElements() {
							n++
						}
					}
					if n != 1 {
						t.Errorf("%v / %d of %d: region %v is in %d boxes of %v", c.shape, i, count, r, n, boxes)
					}
				}
				for _, b := range boxes {
					inside += b.NumElements()
					for a := range b.Start {
						if b.Start[a]%c.cell[a] != 0 || (b.Stop[a]%c.cell[a] != 0 && b.Stop[a] != c.shape[a]) {
							t.Errorf("%v / %d of %d: box %v is off the grid %v", c.shape, i, count, b, c.cell)
						}
					}
				}
				if inside != want {
					t.Errorf("%v / %d of %d: boxes %v hold %d voxels, the regions %d", c.shape, i, count, boxes, inside, want)
				}
			}
		}
	}
}
