package volume

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// referenceCopyBox is the plain row-by-row strided copy CopyBox replaced; it
// is kept as the reference the fast copy is checked against. It copies the elements of region from src (laid out as srcBox) into dst
// (laid out as dstBox), both C order with elemSize-byte elements. region must lie
// inside both boxes. This is the one strided copy every reader and writer shares.
func referenceCopyBox(dst []byte, dstBox Box, src []byte, srcBox Box, region Box, elemSize int) {
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

// randomSub returns a random non-empty box inside b (or b itself when a
// coin says so, to exercise the full-extent merging).
func randomSub(rng *rand.Rand, b Box) Box {
	r := Box{Start: make([]int64, len(b.Start)), Stop: make([]int64, len(b.Start))}
	for i := range b.Start {
		if rng.IntN(3) == 0 {
			r.Start[i], r.Stop[i] = b.Start[i], b.Stop[i]
			continue
		}
		n := b.Stop[i] - b.Start[i]
		lo := rng.Int64N(n)
		r.Start[i] = b.Start[i] + lo
		r.Stop[i] = r.Start[i] + 1 + rng.Int64N(n-lo)
	}
	return r
}

// CopyBox must agree with referenceCopyBox, the plain strided copy, for
// every rank, element size and box geometry, and leave the rest of dst alone.
func TestCopyBoxMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 3000 {
		n := rng.IntN(5)
		elem := []int{1, 2, 4, 8}[rng.IntN(4)]
		shape := make([]int64, n)
		for i := range shape {
			shape[i] = 1 + rng.Int64N(7)
		}
		// src and dst are boxes of a common space; region lies in both.
		full := Full(shape)
		srcBox := randomSub(rng, full)
		dstBox := Box{Start: append([]int64(nil), srcBox.Start...), Stop: append([]int64(nil), srcBox.Stop...)}
		if rng.IntN(2) == 0 {
			for i := range dstBox.Start {
				dstBox.Start[i] = rng.Int64N(srcBox.Start[i] + 1)
				dstBox.Stop[i] = srcBox.Stop[i] + rng.Int64N(shape[i]-srcBox.Stop[i]+1)
			}
		}
		region := randomSub(rng, srcBox)
		src := make([]byte, srcBox.NumElements()*int64(elem))
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		got := bytes.Repeat([]byte{0xee}, int(dstBox.NumElements())*elem)
		want := append([]byte(nil), got...)
		CopyBox(got, dstBox, src, srcBox, region, elem)
		referenceCopyBox(want, dstBox, src, srcBox, region, elem)
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d: shape %v elem %d src %v dst %v region %v: copies differ", trial, shape, elem, srcBox, dstBox, region)
		}
	}
}

func TestFillBox(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 1000 {
		n := 1 + rng.IntN(4)
		shape := make([]int64, n)
		for i := range shape {
			shape[i] = 1 + rng.Int64N(6)
		}
		full := Full(shape)
		region := randomSub(rng, full)
		fill := [][]byte{{0}, {0, 0}, {7}, {1, 2}, {1, 2, 3, 4, 5, 6, 7, 8}}[rng.IntN(5)]
		elem := len(fill)
		got := bytes.Repeat([]byte{0xee}, int(full.NumElements())*elem)
		want := append([]byte(nil), got...)
		FillBox(got, full, region, fill)
		// The reference: a source of fill elements copied in.
		src := bytes.Repeat(fill, int(region.NumElements()))
		referenceCopyBox(want, full, src, region, region, elem)
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d: shape %v region %v fill %v: differs", trial, shape, region, fill)
		}
	}
}
