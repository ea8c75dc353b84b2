package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strings"
)

// DefaultExactStatsBytes is the decoded size up to which Stats reads an array
// whole.
const DefaultExactStatsBytes = 512 << 20

// ErrNoScalar is wrapped by Stats for dtypes whose elements have no single
// real value (complex, rgba8, and dtypes a volume cannot hold, such as
// variable-length strings).
var ErrNoScalar = errors.New("elements have no single real value")

// StatsOptions bound Stats. Zero fields take the defaults.
type StatsOptions struct {
	// ExactBytes is the decoded size up to which the array is read whole;
	// default DefaultExactStatsBytes, negative for no limit.
	ExactBytes int64
	// SampleBytes is about how many decoded bytes the sample of a larger
	// array reads (at least one block, which is a whole chunk when the chunk
	// fits MemoryBytes/2); default 64 MiB.
	SampleBytes int64
	// MemoryBytes caps the decoded bytes held at once (two blocks, one being
	// read while the other is counted); default 64 MiB.
	MemoryBytes int64
	// MaxChunks caps the storage chunks read: an array small in bytes but
	// declared with tiny chunks (a hostile header, or a badly chunked store)
	// is sampled rather than read one chunk fetch at a time; default
	// DefaultStatsMaxChunks.
	MaxChunks int64
}

// DefaultStatsMaxChunks is how many storage chunks Stats reads at most.
const DefaultStatsMaxChunks = 1 << 16

// ValueStats describes the values of an array, or of a stated sample of it.
//
// NaN is left out of everything and counted; ±Inf is a value like any other,
// so Min, Max and Mean are what numpy's nanmin, nanmax and nanmean give for
// the values read. When no value was counted they are NaN.
type ValueStats struct {
	Total  int64   // elements of the array
	Read   int64   // elements read
	Blocks int64   // blocks read
	Grid   int64   // blocks in the array's grid of Block
	Block  []int64 // the unit read: whole chunks where the array has them (edge blocks are clipped)

	Count int64 // values counted: Read minus NaNs
	NaNs  int64 // NaN values read
	Infs  int64 // infinite values read (counted)

	Min, Max float64
	// Mean is exact for integer dtypes (the exact sum divided once and
	// rounded to float64), and a compensated float64 sum for floats.
	Mean float64
	// FiniteMin, FiniteMax and FiniteMean leave infinities out as well (a
	// display range as ImageJ computes it, and values every table format can
	// hold); NaN when no finite value was read.
	FiniteMin, FiniteMax, FiniteMean float64
}

// Exact reports whether every element was read.
func (s ValueStats) Exact() bool { return s.Read == s.Total }

// Note says how the statistics were obtained, with the exact counts: "all
// 101376 voxels", or for a sample "sample: 2097152 of 1073741824 voxels (8 of
// 512 blocks of [128 128 128], spread evenly over the array)", followed by
// the NaNs left out when there were any.
func (s ValueStats) Note() string {
	var b strings.Builder
	if s.Exact() {
		fmt.Fprintf(&b, "all %d voxels", s.Total)
	} else {
		fmt.Fprintf(&b, "sample: %d of %d voxels (%d of %d blocks of %v, spread evenly over the array)", s.Read, s.Total, s.Blocks, s.Grid, s.Block)
	}
	if s.NaNs > 0 {
		fmt.Fprintf(&b, "; %d NaN left out", s.NaNs)
	}
	return b.String()
}

// Stats computes min, max and mean of v's values. An array of at most
// opt.ExactBytes decoded bytes is read whole; a larger one through a
// deterministic sample of whole blocks (see sampleCells), none read twice.
// Blocks are chunk-aligned and streamed, so memory stays within
// opt.MemoryBytes whatever the array's size. Complex and rgba8 arrays give
// an error wrapping ErrNoScalar.
func Stats(ctx context.Context, v Volume, opt StatsOptions) (ValueStats, error) {
	in := v.Info()
	fail := func(err error) (ValueStats, error) {
		return ValueStats{}, fmt.Errorf("statistics of %q: %w", in.Name, err)
	}
	switch in.DType {
	case Complex64, Complex128, RGBA8:
		return fail(fmt.Errorf("%s: %w", in.DType, ErrNoScalar))
	}
	if !in.DType.Valid() {
		return fail(fmt.Errorf("dtype %q: %w", in.DType, ErrNoScalar))
	}
	if err := in.Validate(); err != nil {
		return fail(err)
	}
	if opt.ExactBytes == 0 {
		opt.ExactBytes = DefaultExactStatsBytes
	}
	if opt.SampleBytes <= 0 {
		opt.SampleBytes = 64 << 20
	}
	if opt.MemoryBytes <= 0 {
		opt.MemoryBytes = 64 << 20
	}
	if opt.MaxChunks <= 0 {
		opt.MaxChunks = DefaultStatsMaxChunks
	}
	elem := int64(in.DType.Size())
	s := ValueStats{Total: in.NumElements()}
	exact := opt.ExactBytes < 0 || in.NumBytes() <= opt.ExactBytes
	if exact && in.Chunks != nil && chunkCount(in.Shape, in.Chunks) > opt.MaxChunks {
		exact = false // too many fetches for a whole read: sample whole chunks
	}
	maxBlock := max(elem, opt.MemoryBytes/2)
	if !exact && in.Chunks == nil {
		// No chunks to sample whole: blocks small enough for a sample of
		// several.
		maxBlock = min(maxBlock, max(elem, opt.SampleBytes/8))
	}
	s.Block = statsBlock(in, maxBlock, exact)
	s.Grid = 1
	for i, n := range in.Shape {
		s.Grid *= ceilDiv(n, s.Block[i])
	}
	acc := newStatsAcc(in.DType)
	consume := func(_ Box, b []byte) error {
		acc.add(b)
		s.Blocks++
		s.Read += int64(len(b)) / elem
		return nil
	}
	var walk func(yield func(Box) error) error
	if exact {
		walk = func(yield func(Box) error) error {
			return Grid(in.Shape, s.Block, Full(in.Shape), func(_ []int64, r Box) error { return yield(r) })
		}
	} else {
		want := max(1, opt.SampleBytes/(Prod(s.Block)*elem))
		if in.Chunks != nil {
			// A sample block is one chunk (or part of one), so blocks bound
			// the chunk fetches.
			want = min(want, opt.MaxChunks)
		}
		cells := sampleCells(s.Grid, want)
		walk = func(yield func(Box) error) error {
			for _, c := range cells {
				if err := yield(cellRegion(in.Shape, s.Block, c)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if s.Total > 0 {
		if err := readAhead(ctx, v, walk, consume); err != nil {
			return fail(err)
		}
	}
	acc.finish(&s)
	return s, nil
}

// chunkCount is the number of chunks of the grid chunks over shape, capped
// rather than overflowing.
func chunkCount(shape, chunks []int64) int64 {
	n := int64(1)
	for i, s := range shape {
		c := ceilDiv(s, max(chunks[i], 1))
		if c > 0 && n > math.MaxInt64/c {
			return math.MaxInt64
		}
		n *= c
	}
	return n
}

// statsBlock picks the unit Stats reads, of at most maxBytes where possible:
// for a whole read, the chunk grown along the fastest axes (fewer, larger
// reads); for a sample, one chunk, so that the sample is made of whole
// chunks. A chunk larger than maxBytes is halved along its slowest axes
// (decoding it more than once rather than holding it).
func statsBlock(in Info, maxBytes int64, grow bool) []int64 {
	elem := int64(in.DType.Size())
	var b []int64
	if grow || in.Chunks == nil {
		b = BlockShape(in.Shape, nil, in.Chunks, elem, maxBytes)
	} else {
		b = make([]int64, len(in.Shape))
		for i, c := range in.Chunks {
			b[i] = min(c, max(in.Shape[i], 1))
		}
	}
	for i := 0; i < len(b) && Prod(b)*elem > maxBytes; {
		if b[i] == 1 {
			i++
			continue
		}
		b[i] = ceilDiv(b[i], 2)
	}
	return b
}

// sampleCells chooses want of the n cells of a grid (all when want ≥ n), by
// C-order index: the index range is cut into want equal strata and one cell
// is taken from each, at a position fixed by a hash of the stratum number.
// The choice is deterministic, never repeats a cell, covers the array from
// end to end, and does not line up with a regular structure as a fixed
// stride would. The result is sorted.
func sampleCells(n, want int64) []int64 {
	if want >= n {
		want = n
	}
	cells := make([]int64, want)
	bound := func(k int64) int64 { // floor(k·n/want), without overflow
		hi, lo := bits.Mul64(uint64(k), uint64(n))
		q, _ := bits.Div64(hi, lo, uint64(want))
		return int64(q)
	}
	for k := int64(0); k < want; k++ {
		lo, hi := bound(k), bound(k+1)
		cells[k] = lo + int64(splitmix64(uint64(k))%uint64(hi-lo))
	}
	return cells
}

// splitmix64 is a fixed bijective mixing of x (Steele, Lea and Flood).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// cellRegion is the region of the grid cell with C-order index c.
func cellRegion(shape, cell []int64, c int64) Box {
	n := len(shape)
	r := Box{Start: make([]int64, n), Stop: make([]int64, n)}
	for i := n - 1; i >= 0; i-- {
		cells := ceilDiv(shape[i], cell[i])
		j := c % cells
		c /= cells
		r.Start[i] = j * cell[i]
		r.Stop[i] = min((j+1)*cell[i], shape[i])
	}
	return r
}

// statsAcc accumulates values block by block, in order, so that float sums
// (whose rounding depends on order) are reproducible.
type statsAcc struct {
	dt                   DType
	n, nan, posInf, nInf int64
	fmin, fmax           float64 // finite extremes
	// Integers: the exact sum.
	isum *big.Int
	// Floats: Neumaier sums of the finite values, those beyond 2^960 kept
	// apart scaled by 2^-64 so that no sum of fewer than 2^63 values can
	// overflow.
	s, c, hs, hc float64
	getInt       func([]byte) int64
	getFloat     func([]byte) float64
}

func newStatsAcc(dt DType) *statsAcc {
	a := &statsAcc{dt: dt, fmin: math.Inf(1), fmax: math.Inf(-1), isum: new(big.Int)}
	switch dt {
	case Float16, Float32, Float64:
		a.getFloat, _ = floatCodec(dt)
	case Int64, Uint64:
	default:
		a.getInt, _ = intCodec(dt)
	}
	return a
}

// add counts the elements of one block.
func (a *statsAcc) add(b []byte) {
	switch {
	case a.getFloat != nil:
		a.addFloats(b)
	case a.dt == Int64 || a.dt == Uint64:
		a.add64(b)
	case a.dt.Size() == 1:
		a.addBytes(b)
	default:
		a.addInts(b)
	}
}

// addBytes counts one-byte elements by value.
func (a *statsAcc) addBytes(b []byte) {
	var hist [256]int64
	for _, x := range b {
		hist[x]++
	}
	var sum int64
	for x, n := range hist {
		if n == 0 {
			continue
		}
		v := a.getInt([]byte{byte(x)})
		sum += v * n
		a.fmin, a.fmax = min(a.fmin, float64(v)), max(a.fmax, float64(v))
	}
	a.n += int64(len(b))
	a.isum.Add(a.isum, big.NewInt(sum))
}

// addInts counts integers of 16 or 32 bits, summed in an int64 that is
// moved to the exact sum every 2^24 elements, long before 2^32-sized values
// could overflow it.
func (a *statsAcc) addInts(b []byte) {
	es := a.dt.Size()
	if len(b) == 0 {
		return
	}
	lo := a.getInt(b)
	hi, sum := lo, int64(0)
	for i := 0; i < len(b); i += es {
		v := a.getInt(b[i:])
		sum += v
		lo, hi = min(lo, v), max(hi, v)
		if (i/es)&(1<<24-1) == 1<<24-1 {
			a.isum.Add(a.isum, big.NewInt(sum))
			sum = 0
		}
	}
	a.n += int64(len(b) / es)
	a.isum.Add(a.isum, big.NewInt(sum))
	a.fmin, a.fmax = min(a.fmin, float64(lo)), max(a.fmax, float64(hi))
}

// add64 counts 64-bit integers, offset to unsigned (signed ones by 2^63) and
// summed in 128 bits.
func (a *statsAcc) add64(b []byte) {
	if len(b) == 0 {
		return
	}
	le := binary.LittleEndian
	var bias uint64
	if a.dt == Int64 {
		bias = 1 << 63
	}
	lo := le.Uint64(b) ^ bias
	hi := lo
	var sh, sl, c uint64
	for i := 0; i < len(b); i += 8 {
		v := le.Uint64(b[i:]) ^ bias
		sl, c = bits.Add64(sl, v, 0)
		sh += c
		lo, hi = min(lo, v), max(hi, v)
	}
	n := int64(len(b) / 8)
	sum := new(big.Int).SetUint64(sh)
	sum.Lsh(sum, 64).Add(sum, new(big.Int).SetUint64(sl))
	fl, fh := float64(lo), float64(hi)
	if bias != 0 {
		sum.Sub(sum, new(big.Int).Lsh(big.NewInt(n), 63))
		fl, fh = float64(int64(lo^bias)), float64(int64(hi^bias))
	}
	a.n += n
	a.isum.Add(a.isum, sum)
	a.fmin, a.fmax = min(a.fmin, fl), max(a.fmax, fh)
}

// addFloats counts float16/32/64 values.
func (a *statsAcc) addFloats(b []byte) {
	es := a.dt.Size()
	const huge = 0x1p960
	for i := 0; i < len(b); i += es {
		v := a.getFloat(b[i:])
		switch {
		case v != v:
			a.nan++
			continue
		case math.IsInf(v, 1):
			a.posInf++
			continue
		case math.IsInf(v, -1):
			a.nInf++
			continue
		}
		a.fmin, a.fmax = min(a.fmin, v), max(a.fmax, v)
		if math.Abs(v) > huge {
			a.hs, a.hc = neumaier(a.hs, a.hc, v*0x1p-64)
		} else {
			a.s, a.c = neumaier(a.s, a.c, v)
		}
	}
	a.n += int64(len(b) / es)
}

// neumaier adds v to the compensated sum (s, c).
func neumaier(s, c, v float64) (float64, float64) {
	t := s + v
	if math.Abs(s) >= math.Abs(v) {
		c += (s - t) + v
	} else {
		c += (v - t) + s
	}
	return t, c
}

// finish fills the counts and values of st.
func (a *statsAcc) finish(st *ValueStats) {
	st.NaNs = a.nan
	st.Infs = a.posInf + a.nInf
	st.Count = a.n - a.nan
	nan := math.NaN()
	st.Min, st.Max, st.Mean, st.FiniteMin, st.FiniteMax, st.FiniteMean = nan, nan, nan, nan, nan, nan
	finite := st.Count - st.Infs
	if finite > 0 {
		st.FiniteMin, st.FiniteMax = a.fmin, a.fmax
		switch {
		case a.getFloat == nil:
			// The operands are exact; the quotient is rounded once, to 53 bits.
			q := new(big.Float).SetPrec(53).Quo(new(big.Float).SetInt(a.isum), new(big.Float).SetInt64(finite))
			st.FiniteMean, _ = q.Float64()
		case a.hs == 0 && a.hc == 0:
			st.FiniteMean = (a.s + a.c) / float64(finite)
		default:
			st.FiniteMean = ((a.s+a.c)*0x1p-64 + (a.hs + a.hc)) / float64(finite) * 0x1p64
		}
	}
	if st.Count == 0 {
		return
	}
	// Infinities extend the finite range; with no finite value they are all
	// there is (min and max start from the identities of min and max).
	st.Min, st.Max = math.Inf(1), math.Inf(-1)
	if finite > 0 {
		st.Min, st.Max = a.fmin, a.fmax
	}
	if a.nInf > 0 {
		st.Min, st.Max = math.Inf(-1), max(st.Max, math.Inf(-1))
	}
	if a.posInf > 0 {
		st.Min, st.Max = min(st.Min, math.Inf(1)), math.Inf(1)
	}
	switch {
	case a.posInf > 0 && a.nInf > 0:
		st.Mean = nan
	case a.posInf > 0:
		st.Mean = math.Inf(1)
	case a.nInf > 0:
		st.Mean = math.Inf(-1)
	default:
		st.Mean = st.FiniteMean
	}
}
