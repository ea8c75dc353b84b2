// Package volumetest is the conformance suite every volume.Volume implementation
// must pass: a format reader is run against the array it is known to contain.
package volumetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// Run checks v against want, the full array as C-order little-endian bytes.
// tol is the largest per-byte difference allowed (0 = exact; lossy codecs such
// as JPEG pass 1 or 2 and must say why in the calling test).
func Run(t *testing.T, v volume.Volume, want []byte, tol int) {
	t.Helper()
	ctx := context.Background()
	in := v.Info()
	if err := in.Validate(); err != nil {
		t.Fatalf("Info invalid: %v", err)
	}
	if in.NumBytes() != int64(len(want)) {
		t.Fatalf("Info says %d bytes (%v %s), reference has %d", in.NumBytes(), in.Shape, in.DType, len(want))
	}
	elem := in.DType.Size()

	t.Run("full", func(t *testing.T) {
		got := make([]byte, len(want))
		if err := v.ReadRegion(ctx, volume.Full(in.Shape), got); err != nil {
			t.Fatalf("ReadRegion(full): %v", err)
		}
		compare(t, "full", got, want, tol)
	})

	t.Run("random-regions", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 24; i++ {
			box := randomBox(rng, in.Shape)
			got := make([]byte, box.NumElements()*int64(elem))
			if err := v.ReadRegion(ctx, box, got); err != nil {
				t.Fatalf("ReadRegion(%v): %v", box, err)
			}
			ref := make([]byte, len(got))
			volume.CopyBox(ref, box, want, volume.Full(in.Shape), box, elem)
			compare(t, box.String(), got, ref, tol)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, 7))
				box := randomBox(rng, in.Shape)
				got := make([]byte, box.NumElements()*int64(elem))
				if err := v.ReadRegion(ctx, box, got); err != nil {
					errs <- err
					return
				}
				ref := make([]byte, len(got))
				volume.CopyBox(ref, box, want, volume.Full(in.Shape), box, elem)
				if d := maxDiff(got, ref); d > tol {
					errs <- errors.New("concurrent read of " + box.String() + " differs")
				}
			}(uint64(g))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("bounds", func(t *testing.T) {
		if len(in.Shape) == 0 {
			t.Skip("0-d volume has no bounds to violate")
		}
		box := volume.Full(in.Shape)
		box.Stop[0]++
		buf := make([]byte, box.NumElements()*int64(elem))
		if err := v.ReadRegion(ctx, box, buf); !errors.Is(err, volume.ErrOutOfBounds) {
			t.Errorf("ReadRegion past the end: got %v, want ErrOutOfBounds", err)
		}
		if err := v.ReadRegion(ctx, volume.Full(in.Shape), make([]byte, len(want)+1)); !errors.Is(err, volume.ErrBufferSize) {
			t.Errorf("ReadRegion with a wrong buffer: got %v, want ErrBufferSize", err)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		if in.NumElements() == 0 {
			t.Skip("empty volume reads nothing")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := v.ReadRegion(cctx, volume.Full(in.Shape), make([]byte, len(want))); err == nil {
			t.Errorf("ReadRegion with a canceled context succeeded")
		}
	})

	t.Run("checksum", func(t *testing.T) {
		if tol != 0 {
			t.Skip("lossy volume: checksum comparison not meaningful")
		}
		got, err := volume.Checksum16(ctx, v, 4096)
		if err != nil {
			t.Fatal(err)
		}
		m, err := volume.NewMem(in, want)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := volume.Checksum16(ctx, m, 0)
		if got != ref {
			t.Errorf("Checksum16 = %s, want %s", got, ref)
		}
	})
}

func randomBox(rng *rand.Rand, shape []int64) volume.Box {
	b := volume.Box{Start: make([]int64, len(shape)), Stop: make([]int64, len(shape))}
	for i, s := range shape {
		if s == 0 {
			continue
		}
		a, c := rng.Int64N(s), rng.Int64N(s)
		if a > c {
			a, c = c, a
		}
		b.Start[i], b.Stop[i] = a, c+1
	}
	return b
}

func maxDiff(a, b []byte) int {
	if len(a) != len(b) {
		return 1 << 30
	}
	m := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}

func compare(t *testing.T, what string, got, want []byte, tol int) {
	t.Helper()
	if tol == 0 {
		if !bytes.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: first difference at byte %d: got %d, want %d", what, i, got[i], want[i])
				}
			}
		}
		return
	}
	if d := maxDiff(got, want); d > tol {
		t.Fatalf("%s: max difference %d exceeds tolerance %d", what, d, tol)
	}
}
