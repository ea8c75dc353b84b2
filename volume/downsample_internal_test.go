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
