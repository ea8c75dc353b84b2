package volume

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// readLog records the size of every source read.
type readLog struct {
	Volume
	mu    sync.Mutex
	bytes []int64
}

func (r *readLog) ReadRegion(ctx context.Context, b Box, dst []byte) error {
	r.mu.Lock()
	r.bytes = append(r.bytes, int64(len(dst)))
	r.mu.Unlock()
	return r.Volume.ReadRegion(ctx, b, dst)
}

// TestDownsamplePieces checks that a request whose source region exceeds the
// read bound is computed in pieces that each respect it, with the same
// result as one read.
func TestDownsamplePieces(t *testing.T) {
	ctx := context.Background()
	shape := []int64{20, 30, 41}
	in := Info{Name: "p", Shape: shape, DType: Uint16, Axes: make([]Axis, 3)}
	for i := range in.Axes {
		in.Axes[i] = Axis{Name: string("zyx"[i]), Size: shape[i], Scale: 1}
	}
	data := make([]byte, in.NumBytes())
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.IntN(4)) // few values, so Mode has real majorities
	}
	m, err := NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []Method{Mean, Mode} {
		for _, box := range []Box{Full([]int64{10, 10, 11}), {Start: []int64{1, 2, 3}, Stop: []int64{9, 10, 11}}} {
			t.Run(fmt.Sprintf("%s%v", method, box), func(t *testing.T) {
				whole, err := Downsample(m, []int64{2, 3, 4}, method)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]byte, box.NumElements()*2)
				if err := whole.ReadRegion(ctx, box, want); err != nil {
					t.Fatal(err)
				}
				log := &readLog{Volume: m}
				v, _ := Downsample(log, []int64{2, 3, 4}, method)
				d := v.(*downsampled)
				d.maxRead = 1000 // 20 output elements of 24 source elements, 2 bytes each
				got := make([]byte, len(want))
				if err := d.ReadRegion(ctx, box, got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatal("piecewise result differs from one read")
				}
				if len(log.bytes) < 2 {
					t.Fatalf("%d source reads; the bound should have split the request", len(log.bytes))
				}
				for _, n := range log.bytes {
					if n > d.maxRead {
						t.Errorf("a source read of %d bytes exceeds the bound %d", n, d.maxRead)
					}
				}
			})
		}
	}
}

// TestMeanRowMatchesElementwise checks the row kernels of 8- and 16-bit
// means against the per-element reduction they replace, on random values
// (extremes and negative ties included) with full and partial blocks,
// power-of-two and other block sizes, and ranks 1 to 3.
func TestMeanRowMatchesElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []DType{Uint8, Uint16, Int16} {
		for _, c := range []struct{ shape, f []int64 }{
			{[]int64{17}, []int64{2}},
			{[]int64{9, 33}, []int64{2, 2}},
			{[]int64{7, 10, 13}, []int64{2, 2, 2}},
			{[]int64{8, 9, 12}, []int64{1, 3, 4}},
			{[]int64{5, 6, 7}, []int64{3, 2, 5}},
			{[]int64{4, 4, 1}, []int64{2, 2, 2}},
		} {
			t.Run(fmt.Sprintf("%s%v/%v", dt, c.shape, c.f), func(t *testing.T) {
				es := int64(dt.Size())
				src := make([]byte, Prod(c.shape)*es)
				for i := range src {
					switch rng.IntN(4) {
					case 0:
						src[i] = 0
					case 1:
						src[i] = 0xff
					default:
						src[i] = byte(rng.Uint32())
					}
				}
				oshape := make([]int64, len(c.shape))
				for i := range oshape {
					oshape[i] = ceilDiv(c.shape[i], c.f[i])
				}
				fast := newKernel(dt, Mean, c.f)
				if fast.row == nil {
					t.Fatalf("no row kernel for %s", dt)
				}
				slow := newKernel(dt, Mean, c.f)
				slow.row = nil
				want := make([]byte, Prod(oshape)*es)
				got := make([]byte, len(want))
				slow.reduce(want, oshape, src, c.shape)
				fast.reduce(got, oshape, src, c.shape)
				if !bytes.Equal(got, want) {
					t.Fatalf("row kernel\n got % x\nwant % x", got, want)
				}
			})
		}
	}
}
