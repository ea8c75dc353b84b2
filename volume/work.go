package volume

import (
	"errors"
	"fmt"
	"math"
)

// ErrTooMuchWork is wrapped when an operation on a volume would read more
// than its WorkLimit allows.
var ErrTooMuchWork = errors.New("more work than the limit allows")

// Default work limits: far above the whole-volume operations on real EM data
// (a 1 TiB volume in 64³ chunks is 4 M chunks), far below what a 100-byte
// hostile header can declare ([1e15] in chunks of [1]).
const (
	DefaultWorkBytes  = 16 << 40
	DefaultWorkChunks = 100_000_000
)

// WorkLimit bounds what one operation over a region (a checksum, a
// conversion, a crop) may set out to read, judged from the declared shape,
// chunks and dtype before the first byte is read: a file's header costs
// nothing to write and can declare an array that takes forever to read.
// Zero fields select the defaults; a negative field lifts that bound.
type WorkLimit struct {
	Bytes  int64 // decoded bytes
	Chunks int64 // storage chunks touched
}

// Check fails, wrapping ErrTooMuchWork, when reading box of the volume in
// describes exceeds l. The message names the volume, the counts and the
// limit, and how to lift it.
func (l WorkLimit) Check(in Info, box Box) error {
	maxBytes, maxChunks := l.Bytes, l.Chunks
	if maxBytes == 0 {
		maxBytes = DefaultWorkBytes
	}
	if maxChunks == 0 {
		maxChunks = DefaultWorkChunks
	}
	if len(box.Start) != len(in.Shape) || len(box.Stop) != len(in.Shape) {
		return fmt.Errorf("volume %q: box %v has rank %d, the volume %d: %w", in.Name, box, len(box.Start), len(in.Shape), ErrOutOfBounds)
	}
	elems, chunks := int64(1), int64(1)
	for i := range in.Shape {
		n := box.Stop[i] - box.Start[i]
		if n <= 0 {
			return nil // an empty region reads nothing
		}
		elems = mulSat(elems, n)
		if in.Chunks != nil {
			c := in.Chunks[i]
			chunks = mulSat(chunks, (box.Stop[i]+c-1)/c-box.Start[i]/c)
		}
	}
	bytes := mulSat(elems, int64(max(in.DType.Size(), 1)))
	if maxChunks > 0 && chunks > maxChunks {
		return fmt.Errorf("volume %q: region %v of shape %v touches %s chunks of %v, more than the limit of %d (raise it to read it anyway): %w",
			in.Name, box, in.Shape, countString(chunks), in.Chunks, maxChunks, ErrTooMuchWork)
	}
	if maxBytes > 0 && bytes > maxBytes {
		return fmt.Errorf("volume %q: region %v of shape %v is %s decoded bytes, more than the limit of %d (raise it to read it anyway): %w",
			in.Name, box, in.Shape, countString(bytes), maxBytes, ErrTooMuchWork)
	}
	return nil
}

// mulSat multiplies non-negative a and b, saturating at math.MaxInt64: a
// hostile shape's product must not wrap around to a small number.
func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// countString prints a saturated count as what it is: a lower bound.
func countString(n int64) string {
	if n == math.MaxInt64 {
		return "more than 9.2e18"
	}
	return fmt.Sprint(n)
}
