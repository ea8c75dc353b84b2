package volume

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Method is how Downsample reduces each block of source elements to one.
type Method string

// The reductions Downsample knows.
const (
	// Auto is Mode for a label volume (IsLabel) and Mean otherwise.
	Auto Method = ""
	// Mean averages intensities.
	Mean Method = "mean"
	// Mode keeps the most frequent value, so that labels are never averaged
	// into ids that do not exist.
	Mode Method = "mode"
)

// MetaIsLabel is the Info.Metadata key a reader sets to true when its array
// holds labels (segment ids) rather than intensities: an NGFF label image
// ("image-label", or listed by an image's "labels" group) or a Neuroglancer
// precomputed "segmentation".
const MetaIsLabel = "is_label"

// IsLabel reports whether in describes a label volume (Metadata[MetaIsLabel]).
func IsLabel(in Info) bool {
	b, _ := in.Metadata[MetaIsLabel].(bool)
	return b
}

// Resolve returns m, or for Auto the method the label-ness of in selects.
func (m Method) Resolve(in Info) Method {
	if m == Auto {
		if IsLabel(in) {
			return Mode
		}
		return Mean
	}
	return m
}

// MaxDownsampleBlock bounds the number of source elements reduced into one
// (the product of the factors), which keeps the per-element scratch space
// small and every narrow-integer sum far from overflowing an int64.
const MaxDownsampleBlock = 1 << 20

// maxSourceRead bounds the source bytes one ReadRegion of a downsampled
// volume holds at once; larger requests are computed in pieces.
const maxSourceRead = 32 << 20

// downsampled is the lazy volume Downsample returns.
type downsampled struct {
	src    Volume
	f      []int64
	method Method
	info   Info
	// maxRead is maxSourceRead (smaller in tests of the piecewise path).
	maxRead int64
}

// Downsample returns a lazy view of src reduced by an integer factor per axis
// (1 leaves an axis alone). Output element i covers source elements
// [i·f, min((i+1)·f, n)) on each axis, so the output has ceil(n/f) elements
// and a partial block at the far edge is reduced over the elements that
// exist. m is Mean, Mode, or Auto (Mode for label volumes, see IsLabel).
//
// Mean, per dtype:
//   - integers, bool (as 0/1) and rgba8 (per channel): the exact mean of the
//     block (64-bit values are summed in 128 bits, so nothing overflows),
//     rounded half to even. That equals np.round(block.mean()).astype(dtype)
//     unless numpy's float64 mean is itself rounded onto or across a half,
//     which cannot happen for 2×2×2 blocks of integers of up to 32 bits
//     (64-bit values beyond 2^53 are where numpy's answer is the rounded
//     one). A bool block is true when most of it is true.
//   - float16, float32, float64 and complex (per component): averaged in
//     float64 with compensated summation and rounded once to the dtype.
//     A NaN in a block makes its mean NaN, and infinities give what np.mean
//     gives (±Inf, or NaN when both signs occur).
//
// Mode keeps the most frequent value of a block; ties go to the smallest
// value in the dtype's numeric order (rgba8 as a little-endian uint32,
// complex by real then imaginary part, floats by value with -0 < +0).
// 0 is an ordinary label: background wins a block it fills most of.
//
// The result's axes have scale×f and an offset moved to the centre of the
// first block (offset + (f−1)/2·scale); its chunks are the source chunks
// divided by f, rounded up, so that reading a result chunk reads whole source
// chunks when f divides them. Its Metadata holds "downsampling" (the
// factors), "downsampling_method" and, for a Mode reduction of a label
// volume, MetaIsLabel: nothing else of the source's metadata describes the
// result. ReadRegion reads the source region the box covers, in pieces of at
// most 32 MiB of source bytes.
func Downsample(src Volume, factors []int64, m Method) (Volume, error) {
	si := src.Info()
	fail := func(format string, args ...any) (Volume, error) {
		return nil, fmt.Errorf("downsample %q: %s", si.Name, fmt.Sprintf(format, args...))
	}
	if err := si.Validate(); err != nil {
		return nil, fmt.Errorf("downsample: %w", err)
	}
	n := len(si.Shape)
	if len(factors) != n {
		return fail("%d factors for rank %d", len(factors), n)
	}
	if n > 64 {
		return fail("rank %d (at most 64)", n)
	}
	block := int64(1)
	for i, f := range factors {
		if f < 1 {
			return fail("factor %d on axis %d", f, i)
		}
		if f > MaxDownsampleBlock || block*f > MaxDownsampleBlock {
			return fail("factors %v reduce more than %d elements into one", factors, MaxDownsampleBlock)
		}
		block *= f
	}
	method := m.Resolve(si)
	if method != Mean && method != Mode {
		return fail("unknown method %q (want %q or %q)", m, Mean, Mode)
	}
	out := si
	out.Shape = make([]int64, n)
	out.Axes = slices.Clone(si.Axes)
	for i, f := range factors {
		out.Shape[i] = ceilDiv(si.Shape[i], f)
		out.Axes[i].Size = out.Shape[i]
		out.Axes[i].Offset += float64(f-1) / 2 * si.Axes[i].Scale
		out.Axes[i].Scale *= float64(f)
	}
	if si.Chunks != nil {
		out.Chunks = make([]int64, n)
		for i, c := range si.Chunks {
			out.Chunks[i] = max(1, ceilDiv(c, factors[i]))
		}
	}
	out.Compression = ""
	out.Metadata = map[string]any{"downsampling": slices.Clone(factors), "downsampling_method": string(method)}
	if method == Mode && IsLabel(si) {
		out.Metadata[MetaIsLabel] = true
	}
	return &downsampled{src: src, f: slices.Clone(factors), method: method, info: out, maxRead: maxSourceRead}, nil
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// Info implements Volume.
func (d *downsampled) Info() Info { return d.info }

// ReadRegion implements Volume.
func (d *downsampled) ReadRegion(ctx context.Context, box Box, dst []byte) error {
	if err := CheckRead(d.info, box, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(box.Start)
	if n == 0 {
		return d.src.ReadRegion(ctx, box, dst) // one element, nothing to reduce
	}
	if box.Empty() {
		return nil
	}
	es := int64(d.info.DType.Size())
	k := newKernel(d.info.DType, d.method, d.f)
	bshape := box.Shape()
	piece := d.pieceShape(bshape, es)
	if slices.Equal(piece, bshape) {
		return d.readPiece(ctx, box, dst, k)
	}
	tmp := make([]byte, Prod(piece)*es)
	return Grid(bshape, piece, Full(bshape), func(_ []int64, r Box) error {
		pb := Box{Start: make([]int64, n), Stop: make([]int64, n)}
		for i := range pb.Start {
			pb.Start[i], pb.Stop[i] = r.Start[i]+box.Start[i], r.Stop[i]+box.Start[i]
		}
		b := tmp[:pb.NumElements()*es]
		if err := d.readPiece(ctx, pb, b, k); err != nil {
			return err
		}
		CopyBox(dst, box, b, pb, pb, int(es))
		return nil
	})
}

// pieceShape is the largest part of an output box of shape bshape whose
// source region fits d.maxRead: the whole box, or whole trailing axes and
// part of a slower one.
func (d *downsampled) pieceShape(bshape []int64, es int64) []int64 {
	per := es // source bytes per output element, at most
	for _, f := range d.f {
		per *= f
	}
	piece := slices.Clone(bshape)
	for i := 0; i < len(piece) && Prod(piece)*per > d.maxRead; i++ {
		rest := Prod(piece[i+1:]) * per
		piece[i] = max(1, min(piece[i], d.maxRead/rest))
	}
	return piece
}

// readPiece reads the source region under box and reduces it into dst.
func (d *downsampled) readPiece(ctx context.Context, box Box, dst []byte, k *kernel) error {
	ss := d.src.Info().Shape
	sb := Box{Start: make([]int64, len(box.Start)), Stop: make([]int64, len(box.Start))}
	for i := range sb.Start {
		sb.Start[i] = box.Start[i] * d.f[i]
		sb.Stop[i] = min(box.Stop[i]*d.f[i], ss[i])
	}
	buf := make([]byte, sb.NumElements()*int64(d.info.DType.Size()))
	if err := d.src.ReadRegion(ctx, sb, buf); err != nil {
		return fmt.Errorf("downsample %q: read %v: %w", d.info.Name, sb, err)
	}
	k.reduce(dst, box.Shape(), buf, sb.Shape())
	return nil
}

// kernel reduces blocks of one dtype by one method. It holds scratch space,
// so each ReadRegion makes its own.
type kernel struct {
	f  []int64
	es int64
	// one reduces the block whose elements sit at byte offsets base+win[j]
	// of src into out.
	one func(out, src []byte, base int64, win []int64)
	// row, when set, reduces count full blocks along the last axis, the
	// x-th at base+x*step, into out: the same values as one, without a
	// call per element, which costs more than the sums of small blocks.
	row func(out, src []byte, base int64, win []int64, count, step int64)
}

// reduce computes every element of dst (C order, shape oshape) from src
// (C order, shape sshape), the source region starting at the first block.
func (k *kernel) reduce(dst []byte, oshape []int64, src []byte, sshape []int64) {
	n := len(oshape)
	sstr := make([]int64, n) // byte strides of src
	step := make([]int64, n) // src bytes between neighbouring blocks
	last := make([]int64, n) // extent of the last block on each axis
	partial := uint64(0)     // axes whose last block is partial
	acc := k.es
	for i := n - 1; i >= 0; i-- {
		sstr[i] = acc
		step[i] = k.f[i] * acc
		acc *= sshape[i]
		last[i] = sshape[i] - (oshape[i]-1)*k.f[i]
		if last[i] != k.f[i] {
			partial |= 1 << i
		}
	}
	// Block offsets by which axes are at a partial last block: a full block
	// everywhere but at the far edges.
	windows := map[uint64][]int64{}
	window := func(mask uint64) []int64 {
		if w, ok := windows[mask]; ok {
			return w
		}
		w := []int64{0}
		for i := 0; i < n; i++ {
			e := k.f[i]
			if mask&(1<<i) != 0 {
				e = last[i]
			}
			next := make([]int64, 0, int64(len(w))*e)
			for _, o := range w {
				for j := int64(0); j < e; j++ {
					next = append(next, o+j*sstr[i])
				}
			}
			w = next
		}
		windows[mask] = w
		return w
	}
	// One output row (all axes but the last fixed) at a time: along it only
	// the last block can be partial.
	rowLen, xstep, xbit := oshape[n-1], step[n-1], uint64(1)<<(n-1)
	full := rowLen // full blocks at the start of every row
	if partial&xbit != 0 {
		full--
	}
	// lead has the bits of the leading axes whose index is at the last block.
	lead := uint64(0)
	for i := 0; i < n-1; i++ {
		if oshape[i] == 1 {
			lead |= 1 << i
		}
	}
	idx := make([]int64, n-1)
	var base int64 // src offset of the row's first block
	rows := Prod(oshape[:n-1])
	for r := int64(0); r < rows; r++ {
		out := dst[r*rowLen*k.es : (r+1)*rowLen*k.es]
		win := window(lead & partial)
		x := int64(0)
		if k.row != nil {
			k.row(out, src, base, win, full, xstep)
			x = full
		}
		for ; x < rowLen; x++ {
			w := win
			if x == rowLen-1 {
				w = window((lead | xbit) & partial)
			}
			k.one(out[x*k.es:(x+1)*k.es], src, base+x*xstep, w)
		}
		for i := n - 2; i >= 0; i-- {
			idx[i]++
			base += step[i]
			if idx[i] < oshape[i] {
				if idx[i] == oshape[i]-1 {
					lead |= 1 << i
				}
				break
			}
			base -= idx[i] * step[i]
			idx[i] = 0
			if oshape[i] > 1 {
				lead &^= 1 << i
			}
		}
	}
}

// newKernel picks the reduction of dt by method.
func newKernel(dt DType, method Method, f []int64) *kernel {
	k := &kernel{f: f, es: int64(dt.Size())}
	if method == Mode {
		k.one = modeOf(dt)
		return k
	}
	switch dt {
	case Float16, Float32, Float64:
		k.one = meanFloat(dt, 1)
	case Complex64:
		k.one = meanFloat(Float32, 2)
	case Complex128:
		k.one = meanFloat(Float64, 2)
	case Int64, Uint64:
		k.one = mean64(dt == Int64)
	case RGBA8:
		k.one = meanInt(Uint8, 4)
	default:
		k.one = meanInt(dt, 1)
		k.row = meanRow(dt)
	}
	return k
}

// intCodec reads and writes one integer (or bool) element of at most 32 bits.
func intCodec(dt DType) (get func([]byte) int64, put func([]byte, int64)) {
	le := binary.LittleEndian
	switch dt {
	case Int8:
		return func(b []byte) int64 { return int64(int8(b[0])) }, func(b []byte, v int64) { b[0] = byte(v) }
	case Uint16:
		return func(b []byte) int64 { return int64(le.Uint16(b)) }, func(b []byte, v int64) { le.PutUint16(b, uint16(v)) }
	case Int16:
		return func(b []byte) int64 { return int64(int16(le.Uint16(b))) }, func(b []byte, v int64) { le.PutUint16(b, uint16(v)) }
	case Uint32:
		return func(b []byte) int64 { return int64(le.Uint32(b)) }, func(b []byte, v int64) { le.PutUint32(b, uint32(v)) }
	case Int32:
		return func(b []byte) int64 { return int64(int32(le.Uint32(b))) }, func(b []byte, v int64) { le.PutUint32(b, uint32(v)) }
	}
	// Bool and Uint8.
	return func(b []byte) int64 { return int64(b[0]) }, func(b []byte, v int64) { b[0] = byte(v) }
}

// meanInt averages comps interleaved integer components of at most 32 bits:
// a block's sum fits an int64 (MaxDownsampleBlock·2^32 < 2^63).
func meanInt(dt DType, comps int) func(out, src []byte, base int64, win []int64) {
	get, put := intCodec(dt)
	cs := int64(dt.Size())
	return func(out, src []byte, base int64, win []int64) {
		n := int64(len(win))
		for c := int64(0); c < int64(comps); c++ {
			var sum int64
			for _, o := range win {
				sum += get(src[base+o+c*cs:])
			}
			put(out[c*cs:], roundHalfEven(sum, n))
		}
	}
}

// meanRow is the row form of meanInt for 8- and 16-bit integers, the
// intensities of EM, or nil. Blocks of 2^k elements divide by a shift.
func meanRow(dt DType) func(out, src []byte, base int64, win []int64, count, step int64) {
	round := func(sum, n int64) int64 {
		if n&(n-1) != 0 {
			return roundHalfEven(sum, n)
		}
		// The shift floors, as roundHalfEven's division does.
		q, r := sum>>bits.TrailingZeros64(uint64(n)), sum&(n-1)
		if 2*r > n || (2*r == n && q&1 != 0) {
			q++
		}
		return q
	}
	le := binary.LittleEndian
	switch dt {
	case Uint8:
		return func(out, src []byte, base int64, win []int64, count, step int64) {
			n := int64(len(win))
			for x := int64(0); x < count; x++ {
				b := base + x*step
				var sum int64
				for _, o := range win {
					sum += int64(src[b+o])
				}
				out[x] = byte(round(sum, n))
			}
		}
	case Uint16, Int16:
		// An int16 read as uint16 with its sign bit flipped is the value
		// plus 2^15: one loop sums both, and the offset comes off after.
		var flip uint16
		var offset int64
		if dt == Int16 {
			flip, offset = 0x8000, 0x8000
		}
		return func(out, src []byte, base int64, win []int64, count, step int64) {
			n := int64(len(win))
			for x := int64(0); x < count; x++ {
				b := base + x*step
				var sum int64
				for _, o := range win {
					sum += int64(le.Uint16(src[b+o:]) ^ flip)
				}
				le.PutUint16(out[2*x:], uint16(round(sum-n*offset, n)))
			}
		}
	}
	return nil
}

// roundHalfEven is sum/n rounded to the nearest integer, ties to even (n > 0).
func roundHalfEven(sum, n int64) int64 {
	q, r := sum/n, sum%n
	if r < 0 { // floor division
		q--
		r += n
	}
	if 2*r > n || (2*r == n && q&1 != 0) {
		q++
	}
	return q
}

// mean64 averages 64-bit integers exactly: each value is offset to unsigned
// (signed ones by 2^63, which is even and so keeps ties' parity), summed in 128
// bits and divided once. The high word stays below the block size, as each
// value is below 2^64, so the division cannot overflow.
func mean64(signed bool) func(out, src []byte, base int64, win []int64) {
	le := binary.LittleEndian
	var bias uint64
	if signed {
		bias = 1 << 63
	}
	return func(out, src []byte, base int64, win []int64) {
		var hi, lo, c uint64
		for _, o := range win {
			lo, c = bits.Add64(lo, le.Uint64(src[base+o:])^bias, 0)
			hi += c
		}
		n := uint64(len(win))
		q, r := bits.Div64(hi, lo, n)
		if 2*r > n || (2*r == n && q&1 != 0) {
			q++
		}
		le.PutUint64(out, q^bias)
	}
}

// floatCodec reads and writes one float16, float32 or float64 element.
func floatCodec(dt DType) (get func([]byte) float64, put func([]byte, float64)) {
	le := binary.LittleEndian
	switch dt {
	case Float16:
		return func(b []byte) float64 { return Float16ToFloat64(le.Uint16(b)) },
			func(b []byte, v float64) { le.PutUint16(b, Float16FromFloat64(v)) }
	case Float32:
		return func(b []byte) float64 { return float64(math.Float32frombits(le.Uint32(b))) },
			func(b []byte, v float64) { le.PutUint32(b, math.Float32bits(float32(v))) }
	}
	return func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) },
		func(b []byte, v float64) { le.PutUint64(b, math.Float64bits(v)) }
}

// meanFloat averages comps interleaved float components in float64 with
// Neumaier's compensated sum. A mean that comes out infinite or NaN is
// redone on the values divided by the block size: a plain sum of those is
// ±Inf or NaN exactly when np.mean's would be (an infinity or a NaN in the
// block), and otherwise it was float64 overflow of large finite values,
// whose mean is then the compensated sum of the divided values.
func meanFloat(dt DType, comps int) func(out, src []byte, base int64, win []int64) {
	get, put := floatCodec(dt)
	cs := int64(dt.Size())
	sum := func(src []byte, base int64, win []int64, scale float64) float64 {
		var s, comp float64
		for _, o := range win {
			s, comp = neumaier(s, comp, get(src[base+o:])*scale)
		}
		return s + comp
	}
	return func(out, src []byte, base int64, win []int64) {
		n := float64(len(win))
		for c := int64(0); c < int64(comps); c++ {
			m := sum(src, base+c*cs, win, 1) / n
			if math.IsInf(m, 0) || math.IsNaN(m) {
				var plain float64
				for _, o := range win {
					plain += get(src[base+c*cs+o:]) / n
				}
				m = plain
				if !math.IsInf(plain, 0) && !math.IsNaN(plain) {
					m = sum(src, base+c*cs, win, 1/n)
				}
			}
			put(out[c*cs:], m)
		}
	}
}

// orderKey maps the bits of a w-bit IEEE float to an unsigned key whose
// order is the floats' numeric order (negative values reversed below the
// positive ones); orderUnkey inverts it.
func orderKey(b uint64, w uint) uint64 {
	sign := uint64(1) << (w - 1)
	if b&sign != 0 {
		return ^b & (sign<<1 - 1)
	}
	return b | sign
}

func orderUnkey(k uint64, w uint) uint64 {
	sign := uint64(1) << (w - 1)
	if k&sign != 0 {
		return k &^ sign
	}
	return ^k & (sign<<1 - 1)
}

// modeCodec maps an element of dt (of at most 8 bytes) to a key whose
// unsigned order is the dtype's numeric order, and back.
func modeCodec(dt DType) (key func([]byte) uint64, unkey func([]byte, uint64)) {
	le := binary.LittleEndian
	const top = 1 << 63 // offsets signed values into unsigned order
	switch dt {
	case Int8:
		return func(b []byte) uint64 { return uint64(int64(int8(b[0]))) ^ top }, func(b []byte, k uint64) { b[0] = byte(k ^ top) }
	case Uint16:
		return func(b []byte) uint64 { return uint64(le.Uint16(b)) }, func(b []byte, k uint64) { le.PutUint16(b, uint16(k)) }
	case Int16:
		return func(b []byte) uint64 { return uint64(int64(int16(le.Uint16(b)))) ^ top }, func(b []byte, k uint64) { le.PutUint16(b, uint16(k^top)) }
	case Uint32, RGBA8:
		return func(b []byte) uint64 { return uint64(le.Uint32(b)) }, func(b []byte, k uint64) { le.PutUint32(b, uint32(k)) }
	case Int32:
		return func(b []byte) uint64 { return uint64(int64(int32(le.Uint32(b)))) ^ top }, func(b []byte, k uint64) { le.PutUint32(b, uint32(k^top)) }
	case Uint64:
		return le.Uint64, le.PutUint64
	case Int64:
		return func(b []byte) uint64 { return le.Uint64(b) ^ top }, func(b []byte, k uint64) { le.PutUint64(b, k^top) }
	case Float16:
		return func(b []byte) uint64 { return orderKey(uint64(le.Uint16(b)), 16) }, func(b []byte, k uint64) { le.PutUint16(b, uint16(orderUnkey(k, 16))) }
	case Float32:
		return func(b []byte) uint64 { return orderKey(uint64(le.Uint32(b)), 32) }, func(b []byte, k uint64) { le.PutUint32(b, uint32(orderUnkey(k, 32))) }
	case Float64:
		return func(b []byte) uint64 { return orderKey(le.Uint64(b), 64) }, func(b []byte, k uint64) { le.PutUint64(b, orderUnkey(k, 64)) }
	case Complex64: // real part, then imaginary part
		return func(b []byte) uint64 {
				return orderKey(uint64(le.Uint32(b)), 32)<<32 | orderKey(uint64(le.Uint32(b[4:])), 32)
			}, func(b []byte, k uint64) {
				le.PutUint32(b, uint32(orderUnkey(k>>32, 32)))
				le.PutUint32(b[4:], uint32(orderUnkey(k&math.MaxUint32, 32)))
			}
	}
	// Bool and Uint8.
	return func(b []byte) uint64 { return uint64(b[0]) }, func(b []byte, k uint64) { b[0] = byte(k) }
}

// modeOf returns the Mode reduction for dt: the block's keys are sorted and
// the longest run wins, the first (smallest) on ties.
func modeOf(dt DType) func(out, src []byte, base int64, win []int64) {
	if dt == Complex128 {
		return modeComplex128()
	}
	key, unkey := modeCodec(dt)
	var keys []uint64
	return func(out, src []byte, base int64, win []int64) {
		keys = keys[:0]
		for _, o := range win {
			keys = append(keys, key(src[base+o:]))
		}
		slices.Sort(keys)
		unkey(out, modal(keys))
	}
}

// modeComplex128 is modeOf for complex128, whose 16 bytes need a two-word key.
func modeComplex128() func(out, src []byte, base int64, win []int64) {
	le := binary.LittleEndian
	var keys [][2]uint64
	return func(out, src []byte, base int64, win []int64) {
		keys = keys[:0]
		for _, o := range win {
			b := src[base+o:]
			keys = append(keys, [2]uint64{orderKey(le.Uint64(b), 64), orderKey(le.Uint64(b[8:]), 64)})
		}
		slices.SortFunc(keys, func(a, b [2]uint64) int {
			return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
		})
		best := modal(keys)
		le.PutUint64(out, orderUnkey(best[0], 64))
		le.PutUint64(out[8:], orderUnkey(best[1], 64))
	}
}

// modal returns the value of the longest run of equal keys in sorted, the
// first (smallest) of equally long runs. sorted is not empty.
func modal[K comparable](sorted []K) K {
	best, bestN := sorted[0], 0
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		if j-i > bestN {
			best, bestN = sorted[i], j-i
		}
		i = j
	}
	return best
}
