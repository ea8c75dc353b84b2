package volume_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// numpyPython is Debian's python3 when it can import numpy; the test skips,
// saying why, when it cannot.
func numpyPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("numpy oracle unavailable (%s -c 'import numpy': %v: %s); install python3-numpy", py, err, strings.TrimSpace(string(out)))
	}
	return py
}

// statsScript prints, for each raw file argument (path:numpy dtype), the
// float.hex of nanmin, nanmax, nanmean (float64), the exact mean of the
// values when all are finite (rational arithmetic, rounded once; else nan),
// the min, max and mean of the finite values, and the NaN count.
const statsScript = `
import sys, numpy as np
from fractions import Fraction
for arg in sys.argv[1:]:
    path, dt = arg.rsplit(":", 1)
    a = np.fromfile(path, dtype=dt)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    f = a.astype(np.float64)
    exact = float("nan")
    if a.dtype.kind in "iu":
        exact = float(Fraction(sum(int(x) for x in a.tolist()), a.size))
    elif a.size and np.isfinite(f).all():
        exact = float(sum(Fraction(x) for x in f.tolist()) / a.size)
    fin = f[np.isfinite(f)]
    fmin = fmax = fmean = float("nan")
    if fin.size:
        fmin, fmax, fmean = float(fin.min()), float(fin.max()), float(sum(Fraction(x) for x in fin.tolist()) / fin.size)
    vals = [float(np.nanmin(f)), float(np.nanmax(f)), float(np.nanmean(f)), exact, fmin, fmax, fmean]
    print(" ".join(float.hex(v) for v in vals), int(np.isnan(f).sum()))
`

// statsCase is an array written for the numpy oracle.
type statsCase struct {
	name  string
	dt    volume.DType
	np    string // numpy dtype of the raw file
	shape []int64
	gen   func(r *rand.Rand, i int64, b []byte)
}

func putU(b []byte, v uint64) {
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], v)
	copy(b, w[:])
}

// TestStatsMatchesNumpy computes the statistics of arrays of several dtypes
// (extremes, NaN, infinities, huge floats) read whole in many small blocks,
// and compares them with numpy's on the same bytes: min and max exactly; the
// mean within float64 rounding of np.nanmean, and against the exact rational
// mean exactly for integers and within float64 rounding for floats. (For
// float64 values near the top of the range np.nanmean overflows to inf; the
// exact mean is finite, and so is Stats'.)
func TestStatsMatchesNumpy(t *testing.T) {
	py := numpyPython(t)
	cases := []statsCase{
		{"bool", volume.Bool, "bool", []int64{17, 23}, func(r *rand.Rand, _ int64, b []byte) { b[0] = byte(r.IntN(2)) }},
		{"uint8", volume.Uint8, "u1", []int64{9, 31, 33}, func(r *rand.Rand, _ int64, b []byte) { b[0] = byte(r.Uint32()) }},
		{"int8", volume.Int8, "i1", []int64{40, 41}, func(r *rand.Rand, _ int64, b []byte) { b[0] = byte(r.Uint32()) }},
		{"uint16", volume.Uint16, "<u2", []int64{5, 64, 65}, func(r *rand.Rand, _ int64, b []byte) { putU(b, r.Uint64()) }},
		{"int16", volume.Int16, "<i2", []int64{7, 30, 19}, func(r *rand.Rand, _ int64, b []byte) { putU(b, r.Uint64()) }},
		{"uint32", volume.Uint32, "<u4", []int64{3, 100, 77}, func(r *rand.Rand, _ int64, b []byte) { putU(b, r.Uint64()) }},
		{"int32", volume.Int32, "<i4", []int64{11, 13, 17}, func(r *rand.Rand, _ int64, b []byte) { putU(b, r.Uint64()) }},
		{"uint64 near the top", volume.Uint64, "<u8", []int64{8, 50, 51}, func(r *rand.Rand, _ int64, b []byte) { putU(b, math.MaxUint64-r.Uint64N(1<<20)) }},
		{"int64 full range", volume.Int64, "<i8", []int64{6, 40, 33}, func(r *rand.Rand, _ int64, b []byte) { putU(b, r.Uint64()) }},
		{"float16", volume.Float16, "<f2", []int64{12, 34, 10}, func(r *rand.Rand, _ int64, b []byte) {
			binary.LittleEndian.PutUint16(b, volume.Float16FromFloat64(r.NormFloat64()*100))
		}},
		{"float32 with NaN", volume.Float32, "<f4", []int64{10, 20, 30}, func(r *rand.Rand, i int64, b []byte) {
			v := float32(r.NormFloat64()*1e3 + 5)
			if i%97 == 0 {
				v = float32(math.NaN())
			}
			binary.LittleEndian.PutUint32(b, math.Float32bits(v))
		}},
		{"float64 huge", volume.Float64, "<f8", []int64{9, 9, 100}, func(r *rand.Rand, i int64, b []byte) {
			v := r.NormFloat64() * 1e307
			if i%5 == 0 {
				v = math.MaxFloat64 * (0.5 + r.Float64()/2)
			}
			binary.LittleEndian.PutUint64(b, math.Float64bits(v))
		}},
		{"float64 with +Inf", volume.Float64, "<f8", []int64{4, 25, 26}, func(r *rand.Rand, i int64, b []byte) {
			v := r.Float64()
			switch i % 211 {
			case 0:
				v = math.Inf(1)
			case 1:
				v = math.NaN()
			}
			binary.LittleEndian.PutUint64(b, math.Float64bits(v))
		}},
		{"float32 with ±Inf", volume.Float32, "<f4", []int64{3, 30, 30}, func(r *rand.Rand, i int64, b []byte) {
			v := float32(r.Float64() - 0.5)
			switch i % 301 {
			case 0:
				v = float32(math.Inf(1))
			case 7:
				v = float32(math.Inf(-1))
			}
			binary.LittleEndian.PutUint32(b, math.Float32bits(v))
		}},
		{"float32 all NaN", volume.Float32, "<f4", []int64{2, 3}, func(_ *rand.Rand, _ int64, b []byte) {
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(math.NaN())))
		}},
	}
	dir := t.TempDir()
	var args []string
	mems := make([]*volume.Mem, len(cases))
	for k, c := range cases {
		in := memInfoN(c.shape, c.dt)
		in.Chunks = []int64{2, 7, 5}[3-len(c.shape):]
		es := int64(c.dt.Size())
		data := make([]byte, in.NumBytes())
		r := rand.New(rand.NewPCG(uint64(k), 99))
		for i := int64(0); i < in.NumElements(); i++ {
			c.gen(r, i, data[i*es:(i+1)*es])
		}
		m, err := volume.NewMem(in, data)
		if err != nil {
			t.Fatal(err)
		}
		mems[k] = m
		p := filepath.Join(dir, fmt.Sprintf("a%d.raw", k))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p+":"+c.np)
	}
	out, err := exec.Command(py, append([]string{"-W", "ignore", "-c", statsScript}, args...)...).Output()
	if err != nil {
		t.Fatalf("numpy: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("numpy printed %d lines for %d arrays:\n%s", len(lines), len(cases), out)
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := strings.Fields(lines[k])
			want := make([]float64, 7)
			for i := range want {
				if want[i], err = strconv.ParseFloat(f[i], 64); err != nil {
					t.Fatalf("numpy output %q: %v", lines[k], err)
				}
			}
			nans, _ := strconv.ParseInt(f[7], 10, 64)
			// Small blocks: many of them, each split chunk-aligned.
			s, err := volume.Stats(context.Background(), mems[k], volume.StatsOptions{MemoryBytes: 2 * 64 * int64(c.dt.Size())})
			if err != nil {
				t.Fatal(err)
			}
			n := volume.Prod(c.shape)
			if !s.Exact() || s.Read != n || s.Total != n || s.Blocks != s.Grid || (n > 1000 && s.Grid < 10) || s.NaNs != nans || s.Count != n-nans {
				t.Errorf("counts: %+v (numpy: %d NaN of %d)", s, nans, n)
			}
			same := func(what string, got, want float64) {
				if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
					t.Errorf("%s = %v, numpy %v", what, got, want)
				}
			}
			same("min", s.Min, want[0])
			same("max", s.Max, want[1])
			same("finite min", s.FiniteMin, want[4])
			same("finite max", s.FiniteMax, want[5])
			// Float sums (np.nanmean's pairwise one, Stats' compensated one)
			// are within a few ulps of the largest magnitude involved.
			scale := math.Max(math.Abs(want[0]), math.Abs(want[1]))
			close := func(what string, got, want float64) {
				if d := math.Abs(got - want); !(d <= 1e-12*scale) && got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
					t.Errorf("%s = %v, want %v (difference %g)", what, got, want, d)
				}
			}
			close("finite mean", s.FiniteMean, want[6])
			switch {
			case math.IsNaN(want[3]): // non-finite values: np.nanmean's rules
				close("mean", s.Mean, want[2])
			case !strings.HasPrefix(string(c.dt), "float"):
				same("mean (exact)", s.Mean, want[3])
				close("mean vs np.nanmean", s.Mean, want[2])
			default:
				close("mean vs exact", s.Mean, want[3])
				if !math.IsInf(want[2], 0) {
					close("mean vs np.nanmean", s.Mean, want[2])
				}
			}
			if !strings.HasPrefix(s.Note(), fmt.Sprintf("all %d voxels", n)) || (nans > 0) != strings.Contains(s.Note(), fmt.Sprintf("%d NaN left out", nans)) {
				t.Errorf("note %q", s.Note())
			}
		})
	}
}

// synthetic is a lazy volume whose value at (z, y, x) is a fixed function of
// the position, recording every region read.
type synthetic struct {
	info  volume.Info
	mu    sync.Mutex
	reads []volume.Box
}

func (s *synthetic) Info() volume.Info { return s.info }

func value(z, y, x int64) byte { return byte((z*7 + y*3 + x + (z*y)%13) % 251) }

func (s *synthetic) ReadRegion(ctx context.Context, b volume.Box, dst []byte) error {
	if err := volume.CheckRead(s.info, b, dst); err != nil {
		return err
	}
	s.mu.Lock()
	s.reads = append(s.reads, volume.Box{Start: slices.Clone(b.Start), Stop: slices.Clone(b.Stop)})
	s.mu.Unlock()
	i := 0
	for z := b.Start[0]; z < b.Stop[0]; z++ {
		for y := b.Start[1]; y < b.Stop[1]; y++ {
			for x := b.Start[2]; x < b.Stop[2]; x++ {
				dst[i] = value(z, y, x)
				i++
			}
		}
	}
	return nil
}

// TestStatsSampleIsTruthful samples a 1.1 GB lazy array (above the exact
// limit): the note states exactly the voxels and blocks read, the blocks are
// whole chunks, none is read twice, they span the array, the choice is the
// same on every run, and the statistics are those of exactly the voxels read.
func TestStatsSampleIsTruthful(t *testing.T) {
	in := volume.Info{Name: "synthetic", Shape: []int64{1000, 1000, 1100}, DType: volume.Uint8, Chunks: []int64{64, 64, 64},
		Axes: []volume.Axis{{Name: "z", Size: 1000, Scale: 1}, {Name: "y", Size: 1000, Scale: 1}, {Name: "x", Size: 1100, Scale: 1}}}
	if in.NumBytes() <= volume.DefaultExactStatsBytes {
		t.Fatal("the synthetic array must exceed the exact limit")
	}
	opt := volume.StatsOptions{SampleBytes: 4 << 20}
	var runs [][]volume.Box
	for range 2 {
		v := &synthetic{info: in}
		s, err := volume.Stats(context.Background(), v, opt)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, v.reads)
		var read int64
		var lo, hi byte = 255, 0
		var sum int64
		seen := map[string]bool{}
		for _, b := range v.reads {
			read += b.NumElements()
			if seen[b.String()] {
				t.Errorf("block %v read twice", b)
			}
			seen[b.String()] = true
			for i := range b.Start {
				if b.Start[i]%64 != 0 || (b.Stop[i]-b.Start[i] != 64 && b.Stop[i] != in.Shape[i]) {
					t.Errorf("block %v is not a whole chunk", b)
				}
			}
			volume.Each(b, func(p []int64) error {
				x := value(p[0], p[1], p[2])
				lo, hi, sum = min(lo, x), max(hi, x), sum+int64(x)
				return nil
			})
		}
		if s.Exact() || s.Read != read || s.Blocks != int64(len(v.reads)) || s.Total != in.NumElements() || s.Grid != 16*16*18 {
			t.Fatalf("stats say %d voxels in %d of %d blocks of %d; %d voxels were read in %d blocks", s.Read, s.Blocks, s.Grid, s.Total, read, len(v.reads))
		}
		// About SampleBytes, in whole 256 KiB chunks.
		if s.Blocks != 16 {
			t.Errorf("%d blocks for a 4 MiB sample of 256 KiB chunks", s.Blocks)
		}
		want := fmt.Sprintf("sample: %d of %d voxels (%d of 4608 blocks of [64 64 64], spread evenly over the array)", read, in.NumElements(), len(v.reads))
		if s.Note() != want {
			t.Errorf("note %q\nwant %q", s.Note(), want)
		}
		if s.Min != float64(lo) || s.Max != float64(hi) || s.Mean != float64(sum)/float64(read) {
			t.Errorf("min/max/mean %v/%v/%v, the voxels read give %v/%v/%v", s.Min, s.Max, s.Mean, lo, hi, float64(sum)/float64(read))
		}
		// The sample spans the array: blocks in the first and last sixteenths.
		first, last := v.reads[0], v.reads[len(v.reads)-1]
		if first.Start[0] >= 64 || last.Stop[0] < 1000-64 {
			t.Errorf("sample from %v to %v does not span z", first, last)
		}
	}
	if fmt.Sprint(runs[0]) != fmt.Sprint(runs[1]) {
		t.Error("two runs sampled different blocks")
	}
	// ExactBytes < 0 reads everything however large (here a smaller array
	// above a lowered limit, to keep the test fast).
	small := in
	small.Shape, small.Axes = []int64{100, 100, 110}, slices.Clone(in.Axes)
	for i := range small.Axes {
		small.Axes[i].Size = small.Shape[i]
	}
	v := &synthetic{info: small}
	s, err := volume.Stats(context.Background(), v, volume.StatsOptions{ExactBytes: 1 << 10, SampleBytes: 1 << 18})
	if err != nil || s.Exact() || s.Blocks != 1 {
		t.Fatalf("above a 1 KiB limit: %+v %v", s, err)
	}
	s, err = volume.Stats(context.Background(), v, volume.StatsOptions{ExactBytes: -1, MemoryBytes: 1 << 20})
	if err != nil || !s.Exact() || s.Read != small.NumElements() {
		t.Fatalf("no limit: %+v %v", s, err)
	}
}

func TestStatsEdgeCases(t *testing.T) {
	ctx := context.Background()
	c, _ := volume.NewMem(memInfo([]int64{2, 2}, volume.Complex64), make([]byte, 32))
	if _, err := volume.Stats(ctx, c, volume.StatsOptions{}); !errors.Is(err, volume.ErrNoScalar) {
		t.Errorf("complex64: %v, want ErrNoScalar", err)
	}
	empty, _ := volume.NewMem(memInfo([]int64{0, 5}, volume.Uint16), nil)
	s, err := volume.Stats(ctx, empty, volume.StatsOptions{})
	if err != nil || s.Count != 0 || !math.IsNaN(s.Mean) || !math.IsNaN(s.Min) || s.Note() != "all 0 voxels" {
		t.Errorf("empty: %+v %v", s, err)
	}
	scalar, _ := volume.NewMem(volume.Info{Name: "s", DType: volume.Int16}, []byte{0xfe, 0xff})
	s, err = volume.Stats(ctx, scalar, volume.StatsOptions{})
	if err != nil || s.Count != 1 || s.Min != -2 || s.Max != -2 || s.Mean != -2 {
		t.Errorf("0-d: %+v %v", s, err)
	}
	// A read failure names the array and keeps its cause.
	in := memInfo([]int64{4, 4}, volume.Uint8)
	fails := &failing{info: in}
	if _, err := volume.Stats(ctx, fails, volume.StatsOptions{}); !errors.Is(err, errBroken) || !strings.Contains(err.Error(), `"mem"`) {
		t.Errorf("read failure: %v", err)
	}
}

var errBroken = errors.New("broken chunk")

type failing struct{ info volume.Info }

func (f *failing) Info() volume.Info { return f.info }
func (f *failing) ReadRegion(context.Context, volume.Box, []byte) error {
	return errBroken
}

// An array small in bytes but declared with one-element chunks is sampled by
// whole chunks, at most MaxChunks of them, rather than read whole one chunk
// fetch at a time.
func TestStatsBoundsChunkFetches(t *testing.T) {
	const n = 1 << 12
	in := volume.Info{Name: "tiny-chunks", Shape: []int64{n}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "x", Size: n, Scale: 1}}, Chunks: []int64{1}}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i)
	}
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := volume.Stats(context.Background(), m, volume.StatsOptions{MaxChunks: 64})
	if err != nil {
		t.Fatal(err)
	}
	if s.Exact() || s.Blocks > 64 || s.Read > 64 {
		t.Fatalf("read %d voxels in %d blocks (exact %v); want a sample of at most 64 one-voxel chunks", s.Read, s.Blocks, s.Exact())
	}
	if !strings.Contains(s.Note(), "sample:") {
		t.Errorf("note %q does not say it is a sample", s.Note())
	}
	// The same array with chunks few enough is read whole.
	s, err = volume.Stats(context.Background(), m, volume.StatsOptions{MaxChunks: n})
	if err != nil || !s.Exact() {
		t.Fatalf("MaxChunks %d: exact %v, err %v; want a whole read", n, s.Exact(), err)
	}
}
