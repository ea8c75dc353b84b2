package volume

import (
	"fmt"
	"strings"
)

// Box is a half-open region [Start, Stop) in C order.
type Box struct {
	Start []int64
	Stop  []int64
}

// Full returns the box covering a whole shape.
func Full(shape []int64) Box {
	return Box{Start: make([]int64, len(shape)), Stop: append([]int64(nil), shape...)}
}

// NewBox builds a box from an origin and a size.
func NewBox(origin, size []int64) Box {
	b := Box{Start: append([]int64(nil), origin...), Stop: make([]int64, len(origin))}
	for i := range origin {
		b.Stop[i] = origin[i] + size[i]
	}
	return b
}

// Shape returns Stop-Start.
func (b Box) Shape() []int64 {
	s := make([]int64, len(b.Start))
	for i := range s {
		s[i] = b.Stop[i] - b.Start[i]
	}
	return s
}

// NumElements is the number of elements in the box.
func (b Box) NumElements() int64 { return Prod(b.Shape()) }

// Empty reports whether the box holds no element.
func (b Box) Empty() bool {
	for i := range b.Start {
		if b.Stop[i] <= b.Start[i] {
			return true
		}
	}
	return false
}

// Within checks the box against a shape.
func (b Box) Within(shape []int64) error {
	if len(b.Start) != len(shape) || len(b.Stop) != len(shape) {
		return fmt.Errorf("%w: box rank %d/%d, volume rank %d", ErrOutOfBounds, len(b.Start), len(b.Stop), len(shape))
	}
	for i := range shape {
		if b.Start[i] < 0 || b.Stop[i] > shape[i] || b.Start[i] > b.Stop[i] {
			return fmt.Errorf("%w: box %v in shape %v", ErrOutOfBounds, b, shape)
		}
	}
	return nil
}

// Intersect returns the overlap of two boxes of equal rank and whether it is non-empty.
func (b Box) Intersect(o Box) (Box, bool) {
	r := Box{Start: make([]int64, len(b.Start)), Stop: make([]int64, len(b.Start))}
	for i := range b.Start {
		r.Start[i] = max(b.Start[i], o.Start[i])
		r.Stop[i] = min(b.Stop[i], o.Stop[i])
		if r.Stop[i] <= r.Start[i] {
			return r, false
		}
	}
	return r, true
}

// String formats the box as numpy-style slices.
func (b Box) String() string {
	parts := make([]string, len(b.Start))
	for i := range b.Start {
		parts[i] = fmt.Sprintf("%d:%d", b.Start[i], b.Stop[i])
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Grid enumerates the cells of a regular grid with the given cell shape that
// intersect box, calling fn with each cell's index and its clipped region.
// Iteration is in C order of cell index.
func Grid(shape, cell []int64, box Box, fn func(idx []int64, region Box) error) error {
	n := len(shape)
	if n == 0 {
		return fn(nil, Box{})
	}
	cells := Box{Start: make([]int64, n), Stop: make([]int64, n)}
	for i := 0; i < n; i++ {
		if cell[i] <= 0 {
			return fmt.Errorf("grid: cell size %d on axis %d", cell[i], i)
		}
		if box.Stop[i] <= box.Start[i] {
			return nil
		}
		cells.Start[i] = box.Start[i] / cell[i]
		cells.Stop[i] = (box.Stop[i]-1)/cell[i] + 1
	}
	return Each(cells, func(idx []int64) error {
		r := Box{Start: make([]int64, n), Stop: make([]int64, n)}
		for i := 0; i < n; i++ {
			r.Start[i] = max(idx[i]*cell[i], box.Start[i])
			r.Stop[i] = min((idx[i]+1)*cell[i], box.Stop[i], shape[i])
		}
		return fn(append([]int64(nil), idx...), r)
	})
}

// Each calls fn with every index of box in C order (a Grid of unit cells).
// A zero-rank box has one index, the empty one. fn must not keep idx.
func Each(box Box, fn func(idx []int64) error) error {
	n := len(box.Start)
	if n == 0 {
		return fn(nil)
	}
	for i := range n {
		if box.Stop[i] <= box.Start[i] {
			return nil
		}
	}
	idx := append([]int64(nil), box.Start...)
	for {
		if err := fn(idx); err != nil {
			return err
		}
		d := n - 1
		for ; d >= 0; d-- {
			idx[d]++
			if idx[d] < box.Stop[d] {
				break
			}
			idx[d] = box.Start[d]
		}
		if d < 0 {
			return nil
		}
	}
}

// runs describes region of a C-order layout as contiguous runs: the trailing
// axes that region, srcBox and dstBox all span in full are merged with the
// last partial one into runs of run bytes, and the outer axes are walked.
type runs struct {
	run    int64
	outer  int     // number of walked (outer) axes
	ext    []int64 // region extent of each outer axis
	ds, ss []int64 // byte strides of each outer axis in dst and src
	do, so int64   // byte offsets of region's first run in dst and src
}

// plan lays out region within dstBox and srcBox; ok is false when region is
// empty.
func plan(dstBox, srcBox, region Box, elem int) (r runs, ok bool) {
	n := len(region.Start)
	for i := 0; i < n; i++ {
		if region.Stop[i] <= region.Start[i] {
			return r, false
		}
	}
	r.ds = make([]int64, n)
	r.ss = make([]int64, n)
	r.ext = make([]int64, n)
	dacc, sacc := int64(elem), int64(elem)
	for i := n - 1; i >= 0; i-- {
		r.ds[i], r.ss[i] = dacc, sacc
		r.ext[i] = region.Stop[i] - region.Start[i]
		r.do += (region.Start[i] - dstBox.Start[i]) * dacc
		r.so += (region.Start[i] - srcBox.Start[i]) * sacc
		dacc *= dstBox.Stop[i] - dstBox.Start[i]
		sacc *= srcBox.Stop[i] - srcBox.Start[i]
	}
	r.run = int64(elem)
	r.outer = n
	for r.outer > 0 {
		k := r.outer - 1
		r.run *= r.ext[k]
		r.outer = k
		full := region.Start[k] == dstBox.Start[k] && region.Stop[k] == dstBox.Stop[k] &&
			region.Start[k] == srcBox.Start[k] && region.Stop[k] == srcBox.Stop[k]
		if !full {
			break
		}
	}
	return r, true
}

// CopyBox copies the elements of region from src (laid out as srcBox) into dst
// (laid out as dstBox), both C order with elemSize-byte elements. region must
// lie inside both boxes. This is the one strided copy every reader and writer
// shares: trailing axes that all three boxes span in full are merged into long
// runs, and offsets are stepped rather than recomputed for each run.
func CopyBox(dst []byte, dstBox Box, src []byte, srcBox Box, region Box, elemSize int) {
	if len(region.Start) == 0 {
		copy(dst[:elemSize], src[:elemSize])
		return
	}
	r, ok := plan(dstBox, srcBox, region, elemSize)
	if !ok {
		return
	}
	do, so, run := r.do, r.so, r.run
	if r.outer == 0 {
		copy(dst[do:do+run], src[so:so+run])
		return
	}
	last := r.outer - 1
	n, dstep, sstep := r.ext[last], r.ds[last], r.ss[last]
	idx := make([]int64, r.outer)
	for {
		// The innermost walked axis as a plain loop: for 64³ int16 chunks
		// this runs 64 copies of 128 bytes per turn of the outer loop.
		d, s := do, so
		for j := int64(0); j < n; j++ {
			copy(dst[d:d+run], src[s:s+run])
			d += dstep
			s += sstep
		}
		k := last - 1
		for ; k >= 0; k-- {
			idx[k]++
			do += r.ds[k]
			so += r.ss[k]
			if idx[k] < r.ext[k] {
				break
			}
			do -= r.ext[k] * r.ds[k]
			so -= r.ext[k] * r.ss[k]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// FillBox sets region of dst (laid out as dstBox) to the fill element (one
// element's bytes), e.g. a missing chunk's fill value.
func FillBox(dst []byte, dstBox, region Box, fill []byte) {
	if len(region.Start) == 0 {
		copy(dst[:len(fill)], fill)
		return
	}
	r, ok := plan(dstBox, region, region, len(fill))
	if !ok {
		return
	}
	allZero := true
	for _, b := range fill {
		allZero = allZero && b == 0
	}
	idx := make([]int64, r.outer)
	do := r.do
	for {
		b := dst[do : do+r.run]
		if allZero {
			clear(b)
		} else {
			// Double the filled prefix until the run is full.
			n := copy(b, fill)
			for n < len(b) {
				n += copy(b[n:], b[:n])
			}
		}
		k := r.outer - 1
		for ; k >= 0; k-- {
			idx[k]++
			do += r.ds[k]
			if idx[k] < r.ext[k] {
				break
			}
			do -= r.ext[k] * r.ds[k]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}
