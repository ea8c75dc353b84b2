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
	lo := make([]int64, n)
	hi := make([]int64, n)
	for i := 0; i < n; i++ {
		if cell[i] <= 0 {
			return fmt.Errorf("grid: cell size %d on axis %d", cell[i], i)
		}
		if box.Stop[i] <= box.Start[i] {
			return nil
		}
		lo[i] = box.Start[i] / cell[i]
		hi[i] = (box.Stop[i] - 1) / cell[i]
	}
	idx := append([]int64(nil), lo...)
	for {
		r := Box{Start: make([]int64, n), Stop: make([]int64, n)}
		for i := 0; i < n; i++ {
			r.Start[i] = max(idx[i]*cell[i], box.Start[i])
			r.Stop[i] = min((idx[i]+1)*cell[i], box.Stop[i], shape[i])
		}
		if err := fn(append([]int64(nil), idx...), r); err != nil {
			return err
		}
		d := n - 1
		for d >= 0 {
			idx[d]++
			if idx[d] <= hi[d] {
				break
			}
			idx[d] = lo[d]
			d--
		}
		if d < 0 {
			return nil
		}
	}
}

// CopyBox copies the elements of region from src (laid out as srcBox) into dst
// (laid out as dstBox), both C order with elemSize-byte elements. region must lie
// inside both boxes. This is the one strided copy every reader and writer shares.
func CopyBox(dst []byte, dstBox Box, src []byte, srcBox Box, region Box, elemSize int) {
	n := len(region.Start)
	if n == 0 {
		copy(dst[:elemSize], src[:elemSize])
		return
	}
	ds := strides(dstBox.Shape(), elemSize)
	ss := strides(srcBox.Shape(), elemSize)
	rowBytes := (region.Stop[n-1] - region.Start[n-1]) * int64(elemSize)
	if rowBytes <= 0 {
		return
	}
	idx := append([]int64(nil), region.Start...)
	for {
		var do, so int64
		for i := 0; i < n; i++ {
			do += (idx[i] - dstBox.Start[i]) * ds[i]
			so += (idx[i] - srcBox.Start[i]) * ss[i]
		}
		copy(dst[do:do+rowBytes], src[so:so+rowBytes])
		d := n - 2
		for d >= 0 {
			idx[d]++
			if idx[d] < region.Stop[d] {
				break
			}
			idx[d] = region.Start[d]
			d--
		}
		if d < 0 {
			return
		}
	}
}

func strides(shape []int64, elem int) []int64 {
	s := make([]int64, len(shape))
	acc := int64(elem)
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}
