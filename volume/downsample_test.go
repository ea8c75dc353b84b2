package volume_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// allDTypes is every dtype a volume can hold.
var allDTypes = []volume.DType{volume.Bool, volume.Int8, volume.Uint8, volume.Int16, volume.Uint16,
	volume.Int32, volume.Uint32, volume.Int64, volume.Uint64, volume.Float16, volume.Float32,
	volume.Float64, volume.Complex64, volume.Complex128, volume.RGBA8}

// le encodes little-endian elements for hand-written cases.
func le[T any](vs ...T) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

func f16(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, volume.Float16FromFloat64(v))
	}
	return b
}

func downsampleAll(t *testing.T, src volume.Volume, f []int64, m volume.Method) (volume.Volume, []byte) {
	t.Helper()
	d, err := volume.Downsample(src, f, m)
	if err != nil {
		t.Fatal(err)
	}
	in := d.Info()
	got := make([]byte, in.NumBytes())
	if err := d.ReadRegion(context.Background(), volume.Full(in.Shape), got); err != nil {
		t.Fatal(err)
	}
	return d, got
}

// TestDownsampleDTypeTable pins the rounding, tie and overflow rules on
// blocks small enough to check by hand: each row is a 1-D source reduced by
// 2 (the last block partial when the length is odd).
func TestDownsampleDTypeTable(t *testing.T) {
	nan := math.NaN()
	inf := math.Inf(1)
	for _, c := range []struct {
		name   string
		dt     volume.DType
		method volume.Method
		src    []byte
		want   []byte
	}{
		// Mean of integers: the exact mean, rounded half to even.
		{"uint8 halves to even", volume.Uint8, volume.Mean, le[uint8](1, 2, 2, 3, 3, 4, 254, 255), le[uint8](2, 2, 4, 254)},
		{"uint8 partial edge", volume.Uint8, volume.Mean, le[uint8](10, 20, 31), le[uint8](15, 31)},
		{"int8 negative halves", volume.Int8, volume.Mean, le[int8](-1, -2, -3, -4, -1, 0, -128, -128), le[int8](-2, -4, 0, -128)},
		{"uint16", volume.Uint16, volume.Mean, le[uint16](65535, 65534, 1, 2), le[uint16](65534, 2)},
		{"int32 extremes", volume.Int32, volume.Mean, le[int32](math.MaxInt32, math.MaxInt32, math.MinInt32, math.MaxInt32), le[int32](math.MaxInt32, 0)},
		{"uint32 no overflow", volume.Uint32, volume.Mean, le[uint32](math.MaxUint32, math.MaxUint32-2), le[uint32](math.MaxUint32 - 1)},
		{"uint64 no overflow", volume.Uint64, volume.Mean, le[uint64](math.MaxUint64, math.MaxUint64-1, math.MaxUint64, math.MaxUint64), le[uint64](math.MaxUint64-1, math.MaxUint64)},
		{"int64 no overflow", volume.Int64, volume.Mean, le[int64](math.MaxInt64, math.MaxInt64, math.MinInt64, math.MinInt64+1, math.MinInt64, math.MaxInt64, -3, -4),
			le[int64](math.MaxInt64, math.MinInt64, 0, -4)},
		{"bool majority, tie false", volume.Bool, volume.Mean, []byte{1, 1, 1, 0, 0, 0, 1}, []byte{1, 0, 0, 1}},
		{"rgba8 per channel", volume.RGBA8, volume.Mean, []byte{0, 10, 255, 1, 1, 11, 254, 2}, []byte{0, 10, 254, 2}},
		// Mean of floats: float64 arithmetic, NaN and infinities as np.mean.
		{"float32", volume.Float32, volume.Mean, le[float32](1, 2, -1, 0.5, 3), le[float32](1.5, -0.25, 3)},
		{"float64 large", volume.Float64, volume.Mean, le(math.MaxFloat64, math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64), le(math.MaxFloat64, 0.0)},
		{"float64 nan and inf", volume.Float64, volume.Mean, le(nan, 1, inf, 1, inf, -inf, -inf, 5), le(nan, inf, nan, -inf)},
		{"float16", volume.Float16, volume.Mean, f16(1, 2, 65504, 65504), f16(1.5, 65504)},
		{"complex64 per part", volume.Complex64, volume.Mean, le[complex64](1+2i, 3+5i), le[complex64](2 + 3.5i)},
		{"complex128 per part", volume.Complex128, volume.Mean, le(1-2i, 2+2i), le(1.5 + 0i)},
		// Mode: the most frequent value; ties to the smallest; 0 is a label.
		{"uint64 labels", volume.Uint64, volume.Mode, le[uint64](7, 5, 1000, 3, 0, 9, math.MaxUint64, math.MaxUint64-1), le[uint64](5, 3, 0, math.MaxUint64-1)},
		{"int16 tie is numeric", volume.Int16, volume.Mode, le[int16](-5, 7, 300, -300), le[int16](-5, -300)},
		{"int64 tie is numeric", volume.Int64, volume.Mode, le[int64](math.MinInt64, math.MaxInt64), le[int64](math.MinInt64)},
		{"float32 tie", volume.Float32, volume.Mode, le[float32](2, -1, float32(math.Copysign(0, -1)), 0), le[float32](-1, float32(math.Copysign(0, -1)))},
		{"complex128 tie", volume.Complex128, volume.Mode, le(2+1i, 1+9i), le(1 + 9i)},
		{"rgba8 tie", volume.RGBA8, volume.Mode, []byte{1, 0, 0, 9, 2, 0, 0, 1}, []byte{2, 0, 0, 1}},
		{"bool", volume.Bool, volume.Mode, []byte{1, 0, 1, 1}, []byte{0, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := int64(len(c.src) / c.dt.Size())
			src, err := volume.NewMem(volume.Info{Name: "row", Shape: []int64{n}, DType: c.dt, Axes: []volume.Axis{{Name: "x", Size: n, Scale: 1}}}, c.src)
			if err != nil {
				t.Fatal(err)
			}
			_, got := downsampleAll(t, src, []int64{2}, c.method)
			if isFloat(c.dt) {
				if err := sameFloats(c.dt, got, c.want, true); err != nil {
					t.Error(err)
				}
			} else if !bytes.Equal(got, c.want) {
				t.Errorf("got % x, want % x", got, c.want)
			}
		})
	}
}

// elemBig decodes one element into its real components as exact numbers:
// integers (bool, rgba8 channels) as big.Int, floats as float64.
func elemParts(dt volume.DType, b []byte) (ints []*big.Int, floats []float64) {
	u := binary.LittleEndian
	switch dt {
	case volume.Bool, volume.Uint8:
		return []*big.Int{big.NewInt(int64(b[0]))}, nil
	case volume.Int8:
		return []*big.Int{big.NewInt(int64(int8(b[0])))}, nil
	case volume.Uint16:
		return []*big.Int{big.NewInt(int64(u.Uint16(b)))}, nil
	case volume.Int16:
		return []*big.Int{big.NewInt(int64(int16(u.Uint16(b))))}, nil
	case volume.Uint32:
		return []*big.Int{big.NewInt(int64(u.Uint32(b)))}, nil
	case volume.Int32:
		return []*big.Int{big.NewInt(int64(int32(u.Uint32(b))))}, nil
	case volume.Uint64:
		return []*big.Int{new(big.Int).SetUint64(u.Uint64(b))}, nil
	case volume.Int64:
		return []*big.Int{big.NewInt(int64(u.Uint64(b)))}, nil
	case volume.RGBA8:
		return []*big.Int{big.NewInt(int64(b[0])), big.NewInt(int64(b[1])), big.NewInt(int64(b[2])), big.NewInt(int64(b[3]))}, nil
	case volume.Complex64:
		return nil, []float64{float64(math.Float32frombits(u.Uint32(b))), float64(math.Float32frombits(u.Uint32(b[4:])))}
	case volume.Complex128:
		return nil, []float64{math.Float64frombits(u.Uint64(b)), math.Float64frombits(u.Uint64(b[8:]))}
	}
	v, _ := dt.Value(b)
	return nil, []float64{v}
}

// putInt encodes an integer component of dt (two's complement, truncated).
func putInt(dt volume.DType, b []byte, v *big.Int) {
	var x uint64
	if v.Sign() < 0 {
		x = uint64(v.Int64())
	} else {
		x = v.Uint64()
	}
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], x)
	copy(b, w[:])
}

// refMean is a block's mean the slow way: exact integer sums rounded half to
// even, or the exact float sum rounded once to float64.
func refMean(dt volume.DType, elems [][]byte) []byte {
	es := dt.Size()
	out := make([]byte, es)
	n := int64(len(elems))
	if ints, _ := elemParts(dt, elems[0]); ints != nil {
		cs := es / len(ints)
		for c := range ints {
			sum := new(big.Int)
			for _, e := range elems {
				v, _ := elemParts(dt, e)
				sum.Add(sum, v[c])
			}
			q, r := new(big.Int).DivMod(sum, big.NewInt(n), new(big.Int))
			r2 := new(big.Int).Lsh(r, 1).Cmp(big.NewInt(n))
			if r2 > 0 || (r2 == 0 && q.Bit(0) == 1) {
				q.Add(q, big.NewInt(1))
			}
			putInt(dt, out[c*cs:(c+1)*cs], q)
		}
		return out
	}
	_, parts := elemParts(dt, elems[0])
	cs := es / len(parts)
	for c := range parts {
		var m float64
		var nan, pos, neg bool
		sum := new(big.Float).SetPrec(4096)
		for _, e := range elems {
			_, v := elemParts(dt, e)
			switch x := v[c]; {
			case math.IsNaN(x):
				nan = true
			case math.IsInf(x, 1):
				pos = true
			case math.IsInf(x, -1):
				neg = true
			default:
				sum.Add(sum, big.NewFloat(x))
			}
		}
		switch {
		case nan || (pos && neg):
			m = math.NaN()
		case pos:
			m = math.Inf(1)
		case neg:
			m = math.Inf(-1)
		default:
			m, _ = new(big.Float).SetPrec(53).Quo(sum, new(big.Float).SetInt64(n)).Float64()
		}
		switch dt {
		case volume.Float16:
			binary.LittleEndian.PutUint16(out, volume.Float16FromFloat64(m))
		case volume.Float32, volume.Complex64:
			binary.LittleEndian.PutUint32(out[c*cs:], math.Float32bits(float32(m)))
		default:
			binary.LittleEndian.PutUint64(out[c*cs:], math.Float64bits(m))
		}
	}
	return out
}

// cmpElem orders elements numerically: integers by value, floats by value
// with -0 before +0, complex by real then imaginary part, rgba8 as a
// little-endian uint32.
func cmpElem(dt volume.DType, a, b []byte) int {
	if dt == volume.RGBA8 {
		return int(int64(binary.LittleEndian.Uint32(a)) - int64(binary.LittleEndian.Uint32(b)))
	}
	ai, af := elemParts(dt, a)
	bi, bf := elemParts(dt, b)
	if ai != nil {
		return ai[0].Cmp(bi[0])
	}
	for c := range af {
		x, y := af[c], bf[c]
		if x == 0 && y == 0 {
			x, y = math.Copysign(1, x), math.Copysign(1, y)
		}
		if x < y {
			return -1
		}
		if x > y {
			return 1
		}
	}
	return 0
}

// refMode counts equal elements; of the most frequent, the smallest wins.
func refMode(dt volume.DType, elems [][]byte) []byte {
	counts := map[string]int{}
	for _, e := range elems {
		counts[string(e)]++
	}
	var best []byte
	for _, e := range elems {
		c, bc := counts[string(e)], counts[string(best)]
		if best == nil || c > bc || (c == bc && cmpElem(dt, e, best) < 0) {
			best = e
		}
	}
	return best
}

// refDownsample reduces every block of data independently, walking each one
// element by element.
func refDownsample(dt volume.DType, data []byte, shape, f []int64, m volume.Method) ([]byte, []int64) {
	es := int64(dt.Size())
	oshape := make([]int64, len(shape))
	for i := range shape {
		oshape[i] = (shape[i] + f[i] - 1) / f[i]
	}
	out := make([]byte, volume.Prod(oshape)*es)
	var o int64
	volume.Each(volume.Full(oshape), func(idx []int64) error {
		blk := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
		for i := range idx {
			blk.Start[i] = idx[i] * f[i]
			blk.Stop[i] = min((idx[i]+1)*f[i], shape[i])
		}
		var elems [][]byte
		volume.Each(blk, func(p []int64) error {
			var off int64
			for i := range p {
				off = off*shape[i] + p[i]
			}
			elems = append(elems, data[off*es:(off+1)*es])
			return nil
		})
		var r []byte
		if m == volume.Mode {
			r = refMode(dt, elems)
		} else {
			r = refMean(dt, elems)
		}
		copy(out[o*es:], r)
		o++
		return nil
	})
	return out, oshape
}

// palette returns data drawn from a few values of dt (0, 1, 2 and the
// extremes of integers; 0, -0, 1, -2.5 and 65504 of floats), so that blocks
// hold repeated labels and ties.
func palette(dt volume.DType, n int64, seed uint64) []byte {
	es := dt.Size()
	var choices [][]byte
	switch dt {
	case volume.Float16:
		choices = [][]byte{f16(0), f16(math.Copysign(0, -1)), f16(1), f16(-2.5), f16(65504)}
	case volume.Float32:
		choices = [][]byte{le[float32](0), le(float32(math.Copysign(0, -1))), le[float32](1), le[float32](-2.5), le[float32](65504)}
	case volume.Float64:
		choices = [][]byte{le(0.0), le(math.Copysign(0, -1)), le(1.0), le(-2.5), le(65504.0)}
	case volume.Complex64:
		choices = [][]byte{le[complex64](0), le[complex64](1i), le[complex64](1), le[complex64](-2.5 + 1i), le[complex64](-2.5)}
	case volume.Complex128:
		choices = [][]byte{le(0 + 0i), le(1i), le(1 + 0i), le(-2.5 + 1i), le(-2.5 + 0i)}
	case volume.Bool:
		choices = [][]byte{{0}, {1}}
	default:
		choices = [][]byte{make([]byte, es), make([]byte, es), make([]byte, es), bytes.Repeat([]byte{0xff}, es), make([]byte, es)}
		choices[1][0], choices[2][0] = 1, 2
		choices[4][es-1] = 0x80 // the most negative signed value, or a large unsigned one
	}
	r := randBytes(n, seed)
	out := make([]byte, 0, n*int64(es))
	for _, x := range r {
		out = append(out, choices[int(x)%len(choices)]...)
	}
	return out
}

// sameFloats compares float data, any NaN equal to any other, and unless
// exact with a relative tolerance suited to the dtype (the implementation's
// float64 sum is compensated, not exact, and a float32 or float16 result may
// be rounded twice).
func sameFloats(dt volume.DType, got, want []byte, exact bool) error {
	tol, w := 1e-12, 8
	switch dt {
	case volume.Float16:
		tol, w = 1e-3, 2
	case volume.Float32, volume.Complex64:
		tol, w = 1e-6, 4
	}
	if exact {
		tol = 0
	}
	for i := 0; i+w <= len(got); i += w {
		var a, b float64
		switch w {
		case 2:
			a, b = volume.Float16ToFloat64(binary.LittleEndian.Uint16(got[i:])), volume.Float16ToFloat64(binary.LittleEndian.Uint16(want[i:]))
		case 4:
			a, b = float64(math.Float32frombits(binary.LittleEndian.Uint32(got[i:]))), float64(math.Float32frombits(binary.LittleEndian.Uint32(want[i:])))
		default:
			a, b = math.Float64frombits(binary.LittleEndian.Uint64(got[i:])), math.Float64frombits(binary.LittleEndian.Uint64(want[i:]))
		}
		bothNaN := math.IsNaN(a) && math.IsNaN(b)
		if exact && !bothNaN && !bytes.Equal(got[i:i+w], want[i:i+w]) {
			return fmt.Errorf("component %d: %v (% x), want %v (% x)", i/w, a, got[i:i+w], b, want[i:i+w])
		}
		if math.IsNaN(a) != math.IsNaN(b) || (!bothNaN && a != b && math.Abs(a-b) > tol*math.Max(math.Abs(a), math.Abs(b))) {
			return fmt.Errorf("component %d: %v, want %v", i/w, a, b)
		}
	}
	return nil
}

// TestDownsampleMatchesReference reduces random and label-like data of every
// dtype by both methods over shapes with partial edge blocks, compares with
// the element-by-element reference, and runs the volume conformance suite
// (random sub-regions, concurrency) on the result.
func TestDownsampleMatchesReference(t *testing.T) {
	shapes := []struct{ shape, f []int64 }{
		{[]int64{7}, []int64{2}},
		{[]int64{9, 5}, []int64{3, 2}},
		{[]int64{5, 6, 7}, []int64{2, 2, 2}},
		{[]int64{4, 9, 10}, []int64{1, 4, 3}},
		{[]int64{3, 1, 5}, []int64{2, 2, 2}}, // axes shorter than their factor
		{[]int64{6, 4}, []int64{6, 4}},       // one block
		{[]int64{2, 3, 4, 5}, []int64{2, 1, 3, 2}},
	}
	for _, dt := range allDTypes {
		for _, m := range []volume.Method{volume.Mean, volume.Mode} {
			for si, s := range shapes {
				t.Run(fmt.Sprintf("%s/%s/%v÷%v", dt, m, s.shape, s.f), func(t *testing.T) {
					n := volume.Prod(s.shape)
					data := randBytes(n*int64(dt.Size()), uint64(si)+7)
					if m == volume.Mode || dt == volume.Bool {
						data = palette(dt, n, uint64(si))
					}
					src, err := volume.NewMem(memInfoN(s.shape, dt), data)
					if err != nil {
						t.Fatal(err)
					}
					d, got := downsampleAll(t, src, s.f, m)
					want, oshape := refDownsample(dt, data, s.shape, s.f, m)
					if !slices.Equal(d.Info().Shape, oshape) {
						t.Fatalf("shape %v, want %v", d.Info().Shape, oshape)
					}
					if m == volume.Mean && isFloat(dt) {
						if err := sameFloats(dt, got, want, false); err != nil {
							t.Fatal(err)
						}
					} else if !bytes.Equal(got, want) {
						t.Fatalf("got  % x\nwant % x", got, want)
					}
					volumetest.Run(t, d, got, 0)
				})
			}
		}
	}
}

func isFloat(dt volume.DType) bool {
	return strings.HasPrefix(string(dt), "float") || strings.HasPrefix(string(dt), "complex")
}

// memInfoN is memInfo for any rank (axes a0, a1, …).
func memInfoN(shape []int64, dt volume.DType) volume.Info {
	axes := make([]volume.Axis, len(shape))
	for i, s := range shape {
		axes[i] = volume.Axis{Name: fmt.Sprintf("a%d", i), Size: s, Scale: 1}
	}
	return volume.Info{Name: "mem", Shape: shape, DType: dt, Axes: axes}
}

// TestDownsampleLabelPyramid builds three levels from a label volume with
// Auto: every level holds only labels of the source, and says it is labels.
func TestDownsampleLabelPyramid(t *testing.T) {
	shape := []int64{13, 17, 19}
	in := memInfo(shape, volume.Uint64)
	in.Metadata = map[string]any{volume.MetaIsLabel: true}
	n := volume.Prod(shape)
	data := make([]byte, 8*n)
	labels := []uint64{0, 3, 1000, 1 << 40}
	rb := randBytes(n, 11)
	src := map[uint64]bool{}
	for i := range n {
		// Blobs: the label changes along x every few voxels, so blocks mix labels.
		l := labels[(int(rb[i])%7+int(i/5))%len(labels)]
		binary.LittleEndian.PutUint64(data[8*i:], l)
		src[l] = true
	}
	var v volume.Volume
	v, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	for level := 1; level <= 3; level++ {
		v, err = volume.Downsample(v, []int64{2, 2, 2}, volume.Auto)
		if err != nil {
			t.Fatal(err)
		}
		got := v.Info()
		if got.Metadata["downsampling_method"] != "mode" || !volume.IsLabel(got) {
			t.Fatalf("level %d metadata %v", level, got.Metadata)
		}
		b := make([]byte, got.NumBytes())
		if err := v.ReadRegion(context.Background(), volume.Full(got.Shape), b); err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		for i := 0; i < len(b); i += 8 {
			l := binary.LittleEndian.Uint64(b[i:])
			if !src[l] {
				t.Fatalf("level %d: label %d is not in the source", level, l)
			}
			seen[l] = true
		}
		if level == 1 && len(seen) < 2 {
			t.Errorf("level 1 holds %d labels; the test data should mix them", len(seen))
		}
	}
	// Forcing Mean on the same source is allowed and says so.
	m, _ := volume.NewMem(in, data)
	d, err := volume.Downsample(m, []int64{2, 2, 2}, volume.Mean)
	if err != nil {
		t.Fatal(err)
	}
	if d.Info().Metadata["downsampling_method"] != "mean" || volume.IsLabel(d.Info()) {
		t.Errorf("forced mean: metadata %v", d.Info().Metadata)
	}
}

func TestDownsampleInfo(t *testing.T) {
	in := volume.Info{Name: "em", Shape: []int64{5, 64, 63}, DType: volume.Uint16, Chunks: []int64{5, 32, 32},
		Axes: []volume.Axis{
			{Name: "z", Size: 5, Scale: 30, Offset: 10, Unit: "nm", ScaleKnown: true},
			{Name: "y", Size: 64, Scale: 4, Unit: "nm", ScaleKnown: true},
			{Name: "x", Size: 63, Scale: 4, Offset: -8, Unit: "nm", ScaleKnown: true},
		},
		Metadata: map[string]any{"level": 0, "vendor": "x"}}
	src, err := volume.NewMem(in, make([]byte, in.NumBytes()))
	if err != nil {
		t.Fatal(err)
	}
	d, err := volume.Downsample(src, []int64{1, 2, 4}, volume.Auto)
	if err != nil {
		t.Fatal(err)
	}
	out := d.Info()
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Shape, []int64{5, 32, 16}) || !slices.Equal(out.Chunks, []int64{5, 16, 8}) {
		t.Errorf("shape %v chunks %v", out.Shape, out.Chunks)
	}
	for i, want := range []struct{ scale, offset float64 }{{30, 10}, {8, 2}, {16, -2}} {
		if a := out.Axes[i]; a.Scale != want.scale || a.Offset != want.offset || !a.ScaleKnown || a.Unit != "nm" {
			t.Errorf("axis %d: %+v, want scale %v offset %v", i, a, want.scale, want.offset)
		}
	}
	if out.Metadata["downsampling_method"] != "mean" || out.Metadata["level"] != nil || volume.IsLabel(out) {
		t.Errorf("metadata %v", out.Metadata)
	}
	if in.Axes[1].Scale != 4 || in.Metadata["downsampling"] != nil {
		t.Error("Downsample changed the source's Info")
	}
	for _, c := range []struct {
		f    []int64
		m    volume.Method
		want string
	}{
		{[]int64{2, 2}, volume.Mean, "2 factors for rank 3"},
		{[]int64{1, 0, 2}, volume.Mean, "factor 0"},
		{[]int64{1024, 1024, 2}, volume.Mean, "more than"},
		{[]int64{2, 2, 2}, "median", "unknown method"},
	} {
		if _, err := volume.Downsample(src, c.f, c.m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Downsample(%v, %q): %v, want an error with %q", c.f, c.m, err, c.want)
		}
	}
}
