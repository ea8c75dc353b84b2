package catalog

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

func TestPercentileWindow(t *testing.T) {
	ramp := make([]float64, 1001) // 0..1000
	for i := range ramp {
		ramp[i] = float64(i)
	}
	outlier := make([]float64, 1000)
	for i := range outlier {
		outlier[i] = 10 + float64(i%3)
	}
	outlier[500] = 1e6
	outlier[501] = -1e6
	withJunk := append([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}, ramp...)
	for _, tc := range []struct {
		name   string
		vals   []float64
		lo, hi float64
		ok     bool
	}{
		{"ramp", ramp, 5, 995, true},
		{"NaN and Inf ignored", withJunk, 5, 995, true},
		{"single outliers clipped", outlier, 10, 12, true},
		{"constant", []float64{7, 7, 7}, 7, 7, true},
		{"one value", []float64{3}, 3, 3, true},
		{"interpolated", []float64{0, 10}, 0.05, 9.95, true},
		{"nothing finite", []float64{math.NaN(), math.Inf(1)}, 0, 0, false},
		{"empty", nil, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi, ok := percentileWindow(tc.vals, 0.5, 99.5)
			if ok != tc.ok || math.Abs(lo-tc.lo) > 1e-9 || math.Abs(hi-tc.hi) > 1e-9 {
				t.Fatalf("window = %g..%g ok=%v, want %g..%g ok=%v", lo, hi, ok, tc.lo, tc.hi, tc.ok)
			}
		})
	}
}

func TestGrayImageMapsWindow(t *testing.T) {
	vals := []float64{-5, 0, 50, 100, 1e9, math.NaN()}
	img := grayImage(vals, 3, 2, 0, 100)
	want := []uint8{0, 0, 128, 255, 255, 0}
	for i, w := range want {
		if img.Pix[i] != w {
			t.Fatalf("pixel %d (%g) = %d, want %d", i, vals[i], img.Pix[i], w)
		}
	}
	flat := grayImage([]float64{4, 4}, 2, 1, 4, 4)
	if flat.Pix[0] != 128 || flat.Pix[1] != 128 {
		t.Fatalf("flat window gives %v, want mid-grey", flat.Pix)
	}
}

func TestScaleBar(t *testing.T) {
	for _, tc := range []struct {
		nmPerPx float64
		width   int
		length  float64
		label   string
	}{
		{4, 256, 200, "200 nm"},       // limit 256 nm
		{20, 256, 1000, "1 µm"},       // limit 1280 nm
		{40, 256, 2000, "2 µm"},       // limit 2560 nm
		{8, 80, 100, "100 nm"},        // limit 160 nm
		{5, 400, 500, "500 nm"},       // limit exactly 500 nm
		{0.01, 256, 0.5, "500 pm"},    // atomic resolution
		{1e6, 256, 5e7, "50 mm"},      // light-sheet sized
		{3.7, 100, 50, "50 nm"},       // limit 92.5 nm
		{1000, 4, 1000, "1 µm"},       // tiny image: bar of one pixel
		{0.3, 256, 10, "10 nm"},       // limit 19.2 nm
		{2.5 * 3, 174, 200, "200 nm"}, // strided 2.5 nm image
	} {
		l, px, label, ok := scaleBar(tc.nmPerPx, tc.width)
		if !ok || math.Abs(l-tc.length) > 1e-9*tc.length || label != tc.label {
			t.Errorf("scaleBar(%g, %d) = %g %q ok=%v, want %g %q", tc.nmPerPx, tc.width, l, label, ok, tc.length, tc.label)
			continue
		}
		if px < 1 || px > float64(tc.width)/4+1e-9 || math.Abs(px*tc.nmPerPx-l) > 1e-6*l {
			t.Errorf("scaleBar(%g, %d): bar %g px for %g nm", tc.nmPerPx, tc.width, px, l)
		}
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, _, _, ok := scaleBar(bad, 256); ok {
			t.Errorf("scaleBar(%g) must not draw a bar", bad)
		}
	}
	if _, _, _, ok := scaleBar(1, 2); ok {
		t.Error("a 2-pixel image has no room for a bar")
	}
}

func TestFormatLength(t *testing.T) {
	for nm, want := range map[float64]string{1: "1 nm", 500: "500 nm", 1000: "1 µm", 2e4: "20 µm", 1e6: "1 mm", 2e9: "2 m", 0.2: "200 pm", 0.1 + 0.2: "300 pm"} {
		if got := formatLength(nm); got != want {
			t.Errorf("formatLength(%g) = %q, want %q", nm, got, want)
		}
	}
}

func TestHistogram(t *testing.T) {
	t.Run("integers get one bin each", func(t *testing.T) {
		var vals []float64
		for i := 0; i < 100; i++ {
			vals = append(vals, float64(3+i%10))
		}
		h := makeHistogram(append(vals, math.NaN()), 64)
		if len(h.Counts) != 10 || h.N != 100 || h.Min != 3 || h.Max != 12 {
			t.Fatalf("%d bins, N=%d, range %g..%g", len(h.Counts), h.N, h.Min, h.Max)
		}
		for i, c := range h.Counts {
			if c != 10 {
				t.Fatalf("bin %d (value %g) = %d, want 10", i, h.Start+float64(i)+0.5, c)
			}
		}
	})
	t.Run("floats in equal bins", func(t *testing.T) {
		vals := []float64{0, 0.1, 0.5, 0.99, 1, math.Inf(1)}
		h := makeHistogram(vals, 4)
		want := []int64{2, 0, 1, 2} // [0,.25) [.25,.5) [.5,.75) [.75,1]
		if h.N != 5 || len(h.Counts) != 4 {
			t.Fatalf("N=%d bins=%d", h.N, len(h.Counts))
		}
		for i := range want {
			if h.Counts[i] != want[i] {
				t.Fatalf("counts %v, want %v", h.Counts, want)
			}
		}
	})
	t.Run("wide integer range is binned", func(t *testing.T) {
		vals := make([]float64, 1000)
		for i := range vals {
			vals[i] = float64(i * 7)
		}
		h := makeHistogram(vals, 64)
		var sum int64
		for _, c := range h.Counts {
			sum += c
		}
		if len(h.Counts) != 64 || sum != 1000 || h.Counts[63] == 0 {
			t.Fatalf("%d bins, %d counted, last bin %d", len(h.Counts), sum, h.Counts[63])
		}
	})
	t.Run("constant", func(t *testing.T) {
		h := makeHistogram([]float64{2.5, 2.5}, 64)
		if len(h.Counts) != 1 || h.Counts[0] != 2 || h.Span() <= 0 {
			t.Fatalf("%+v", h)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if h := makeHistogram([]float64{math.NaN()}, 64); h.N != 0 || len(h.Counts) != 0 {
			t.Fatalf("%+v", h)
		}
	})
}

func TestThumbLayout(t *testing.T) {
	mk := func(names []string, shape []int64) volume.Info {
		in := volume.Info{Name: "v", Shape: shape, DType: volume.Uint8}
		for i, n := range names {
			in.Axes = append(in.Axes, volume.Axis{Name: n, Size: shape[i]})
		}
		return in
	}
	for _, tc := range []struct {
		names []string
		shape []int64
		zyx   [3]int
		base  []int64
	}{
		{[]string{"z", "y", "x"}, []int64{4, 5, 6}, [3]int{0, 1, 2}, []int64{0, 0, 0}},
		{[]string{"y", "x"}, []int64{5, 6}, [3]int{-1, 0, 1}, []int64{0, 0}},
		{[]string{"c", "z", "y", "x"}, []int64{3, 4, 5, 6}, [3]int{1, 2, 3}, []int64{0, 0, 0, 0}},
		{[]string{"t", "z", "y", "x", "c"}, []int64{9, 4, 5, 6, 3}, [3]int{1, 2, 3}, []int64{4, 0, 0, 0, 0}},
		{[]string{"", "", "", ""}, []int64{7, 4, 5, 6}, [3]int{1, 2, 3}, []int64{3, 0, 0, 0}},
		{[]string{"x", "y"}, []int64{6, 5}, [3]int{-1, 1, 0}, []int64{0, 0}},
	} {
		zyx, base, err := thumbLayout(mk(tc.names, tc.shape))
		if err != nil || zyx != tc.zyx || !equalInts(base, tc.base) {
			t.Errorf("%v %v: zyx %v base %v err %v, want %v %v", tc.names, tc.shape, zyx, base, err, tc.zyx, tc.base)
		}
	}
	if _, _, err := thumbLayout(mk([]string{"x"}, []int64{5})); err == nil {
		t.Error("a 1-D array has no slice to draw")
	}
	if _, _, err := thumbLayout(mk([]string{"y", "x"}, []int64{0, 5})); err == nil {
		t.Error("an empty array has no slice to draw")
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// procedural is a 2-D or 3-D uint8 volume of any declared size whose voxel
// values are a function of their coordinates, and which records every read.
type procedural struct {
	info  volume.Info
	mu    sync.Mutex
	reads []int64 // bytes per ReadRegion call
}

func newProcedural(shape, chunks []int64) *procedural {
	names := []string{"z", "y", "x"}[3-len(shape):]
	in := volume.Info{Name: "proc", Shape: shape, DType: volume.Uint8, Chunks: chunks}
	for i, n := range names {
		in.Axes = append(in.Axes, volume.Axis{Name: n, Size: shape[i], Scale: 1})
	}
	return &procedural{info: in}
}

func procValue(idx []int64) uint8 {
	var h int64
	for i, v := range idx {
		h += v * int64(31+i*17)
	}
	return uint8(h % 251)
}

func (p *procedural) Info() volume.Info { return p.info }

func (p *procedural) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(p.info, box, dst); err != nil {
		return err
	}
	p.mu.Lock()
	p.reads = append(p.reads, int64(len(dst)))
	p.mu.Unlock()
	idx := append([]int64(nil), box.Start...)
	for i := range dst {
		dst[i] = procValue(idx)
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < box.Stop[d] {
				break
			}
			idx[d] = box.Start[d]
		}
	}
	return nil
}

func TestReadPlaneBoundedAndExact(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shape    []int64
		chunks   []int64
		at       []int64
		ra, ca   int
		capBytes int64
		reads    int // the read plan is deterministic
	}{
		{"small plane, one read", []int64{5, 40, 30}, nil, []int64{2, 0, 0}, 1, 2, 16 << 20, 1},
		{"xz of a stack", []int64{50, 40, 300}, nil, []int64{0, 20, 0}, 0, 2, 16 << 20, 1},
		// 250 sampled rows (stride 12), each read alone.
		{"large plane in row tiles", []int64{3000, 2000}, nil, []int64{0, 0}, 0, 1, 64 << 10, 250},
		// 47 bands of 64-row chunks × 2 tiles of 1024 columns.
		{"large plane in chunk tiles", []int64{3000, 2000}, []int64{64, 64}, []int64{0, 0}, 0, 1, 64 << 10, 94},
		// 128 sampled rows × 4 column tiles of 64 KiB.
		{"huge row split in column tiles", []int64{100000, 200000}, nil, []int64{0, 0}, 0, 1, 64 << 10, 512},
		{"absurd shape, pixel reads", []int64{1 << 40, 1 << 40}, nil, []int64{0, 0}, 0, 1, 1 << 10, 256 * 256},
		{"columns before rows (x, y axes)", []int64{7, 300, 200}, nil, []int64{3, 0, 0}, 2, 1, 4 << 10, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newProcedural(tc.shape, tc.chunks)
			p, err := readPlane(context.Background(), v, tc.at, tc.ra, tc.ca, 256, tc.capBytes)
			if err != nil {
				t.Fatal(err)
			}
			if p.W > 256 || p.H > 256 || p.W < 1 || p.H < 1 {
				t.Fatalf("thumbnail %dx%d", p.W, p.H)
			}
			if len(v.reads) != tc.reads || len(v.reads) != p.Requests {
				t.Fatalf("%d reads (plane says %d), want %d", len(v.reads), p.Requests, tc.reads)
			}
			for _, n := range v.reads {
				if n > tc.capBytes {
					t.Fatalf("a read of %d bytes exceeds the %d cap", n, tc.capBytes)
				}
			}
			rows, cols := sampleAxis(tc.shape[tc.ra], p.Stride), sampleAxis(tc.shape[tc.ca], p.Stride)
			idx := append([]int64(nil), tc.at...)
			for i := 0; i < p.H; i++ {
				for j := 0; j < p.W; j++ {
					idx[tc.ra], idx[tc.ca] = rows.at(int64(i)), cols.at(int64(j))
					if got, want := p.Values[i*p.W+j], float64(procValue(idx)); got != want {
						t.Fatalf("pixel (%d,%d) = voxel %v: got %g, want %g", i, j, idx, got, want)
					}
				}
			}
			// The lattice is centred and covers the axis: the last sample is
			// within a stride of the far edge.
			if last := rows.at(rows.count - 1); last >= tc.shape[tc.ra] || tc.shape[tc.ra]-1-last >= p.Stride {
				t.Fatalf("last sampled row %d of %d with stride %d", last, tc.shape[tc.ra], p.Stride)
			}
		})
	}
}

func TestMiddlePlanes(t *testing.T) {
	v := newProcedural([]int64{9, 40, 30}, nil)
	ps, err := middlePlanes(context.Background(), v, 256, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		index int64
		w, h  int
	}{{"xy", 4, 30, 40}, {"xz", 20, 30, 9}, {"yz", 15, 40, 9}}
	if len(ps) != len(want) {
		t.Fatalf("%d planes", len(ps))
	}
	for i, w := range want {
		if p := ps[i]; p.Name != w.name || p.Index != w.index || p.W != w.w || p.H != w.h {
			t.Errorf("plane %d = %s@%d %dx%d, want %s@%d %dx%d", i, p.Name, p.Index, p.W, p.H, w.name, w.index, w.w, w.h)
		}
	}
	// yz at x=15: pixel (row z=2, col y=7).
	if got, want := ps[2].Values[2*40+7], float64(procValue([]int64{2, 7, 15})); got != want {
		t.Fatalf("yz pixel = %g, want %g", got, want)
	}
	// A single z slice gives only the xy plane.
	one := newProcedural([]int64{1, 40, 30}, nil)
	if ps, err := middlePlanes(context.Background(), one, 256, 16<<20); err != nil || len(ps) != 1 {
		t.Fatalf("single slice: %d planes, %v", len(ps), err)
	}
}

func TestElemValue(t *testing.T) {
	for _, tc := range []struct {
		dt   volume.DType
		b    []byte
		want float64
	}{
		{volume.Float16, []byte{0x00, 0x3c}, 1},
		{volume.Float16, []byte{0x00, 0xc0}, -2},
		{volume.Float16, []byte{0x01, 0x00}, math.Pow(2, -24)},
		{volume.Float16, []byte{0x00, 0x7c}, math.Inf(1)},
		{volume.RGBA8, []byte{255, 255, 255, 0}, 255},
		{volume.Complex64, []byte{0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40}, 5}, // 3+4i
		{volume.Int16, []byte{0xff, 0xff}, -1},
	} {
		if got := elemValue(tc.dt, tc.b); math.Abs(got-tc.want) > 1e-6*math.Max(1, math.Abs(tc.want)) && !(math.IsInf(got, 1) && math.IsInf(tc.want, 1)) {
			t.Errorf("elemValue(%s, %v) = %g, want %g", tc.dt, tc.b, got, tc.want)
		}
	}
	if !math.IsNaN(elemValue(volume.Float16, []byte{0x00, 0x7e})) {
		t.Error("float16 NaN")
	}
}
