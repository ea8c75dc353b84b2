package volume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// CopyOptions bound a Copy.
type CopyOptions struct {
	// Origin is where dst's index 0 sits in src (a crop); nil means zeros.
	Origin []int64
	// BudgetBytes caps the bytes held in flight; default 256 MiB.
	BudgetBytes int64
	// Workers is the number of blocks read and written concurrently; default
	// 4 × GOMAXPROCS, because remote sources wait on round trips, not on CPU
	// (the byte budget still bounds memory).
	Workers int
	// Progress, when set, is called after each block with the bytes done so far.
	Progress func(done, total int64)
}

// Copy streams the region of src that dst describes (dst.Info().Shape at Origin)
// into dst, block by block, so memory is bounded by the budget and not by the
// size of the data. Blocks follow dst's chunk grid when it has one.
func Copy(ctx context.Context, dst Writer, src Volume, opt CopyOptions) error {
	di, si := dst.Info(), src.Info()
	if len(di.Shape) != len(si.Shape) {
		return fmt.Errorf("copy %q → %q: rank %d vs %d", si.Name, di.Name, len(si.Shape), len(di.Shape))
	}
	if di.DType != si.DType {
		return fmt.Errorf("copy %q → %q: dtype %s vs %s", si.Name, di.Name, si.DType, di.DType)
	}
	origin := opt.Origin
	if origin == nil {
		origin = make([]int64, len(si.Shape))
	}
	if err := NewBox(origin, di.Shape).Within(si.Shape); err != nil {
		return fmt.Errorf("copy %q → %q: %w", si.Name, di.Name, err)
	}
	budget := opt.BudgetBytes
	if budget <= 0 {
		budget = 256 << 20
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	block := BlockShape(di.Shape, di.Chunks, si.Chunks, int64(si.DType.Size()), budget/int64(workers*2))
	blockBytes := Prod(block) * int64(si.DType.Size())
	if blockBytes*int64(workers) > budget && workers > 1 {
		workers = int(max(1, budget/blockBytes))
	}
	total := di.NumBytes()
	var done int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	progress := make(chan int64, workers)
	finished := make(chan struct{})
	go func() {
		for n := range progress {
			done += n
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		close(finished)
	}()
	err := Grid(di.Shape, block, Full(di.Shape), func(_ []int64, region Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			buf := make([]byte, region.NumElements()*int64(si.DType.Size()))
			srcBox := Box{Start: make([]int64, len(origin)), Stop: make([]int64, len(origin))}
			for i := range origin {
				srcBox.Start[i] = region.Start[i] + origin[i]
				srcBox.Stop[i] = region.Stop[i] + origin[i]
			}
			if err := src.ReadRegion(gctx, srcBox, buf); err != nil {
				return fmt.Errorf("copy %q: read %v: %w", si.Name, srcBox, err)
			}
			if err := dst.WriteRegion(gctx, region, buf); err != nil {
				return fmt.Errorf("copy → %q: write %v: %w", di.Name, region, err)
			}
			progress <- int64(len(buf))
			return nil
		})
		return nil
	})
	werr := g.Wait()
	close(progress)
	<-finished
	if err != nil {
		return err
	}
	return werr
}

// BlockShape picks the unit of streaming work: the destination chunk when there is
// one (so every write is a whole chunk), otherwise the source chunk, grown along
// the fastest axes while it fits maxBytes, and never larger than shape.
func BlockShape(shape, dstChunks, srcChunks []int64, elem, maxBytes int64) []int64 {
	n := len(shape)
	b := make([]int64, n)
	base := dstChunks
	if base == nil {
		base = srcChunks
	}
	for i := range b {
		if base != nil {
			b[i] = min(base[i], max(shape[i], 1))
		} else {
			b[i] = 1
		}
	}
	if dstChunks != nil {
		return b
	}
	// Grow from the fastest axis outwards, doubling, while within budget.
	for i := n - 1; i >= 0; i-- {
		for b[i] < shape[i] {
			next := min(b[i]*2, shape[i])
			old := b[i]
			b[i] = next
			if Prod(b)*elem > maxBytes {
				b[i] = old
				return b
			}
		}
	}
	return b
}

// Checksum16 returns the first 16 hex digits of sha256 over the whole array as
// C-order little-endian bytes, streaming it in slabs of the slowest axis so that
// memory stays bounded (the definition the testdata corpus uses). Slabs are
// rounded to whole chunks so no chunk is decoded twice, and the next slab is
// read while the previous one is hashed.
func Checksum16(ctx context.Context, v Volume, budget int64) (string, error) {
	in := v.Info()
	h := sha256.New()
	if len(in.Shape) == 0 {
		buf := make([]byte, in.DType.Size())
		if err := v.ReadRegion(ctx, Box{}, buf); err != nil {
			return "", err
		}
		h.Write(buf)
		return hex.EncodeToString(h.Sum(nil))[:16], nil
	}
	if budget <= 0 {
		budget = 64 << 20
	}
	slab := slabShape(in, budget/2) // two slabs live at once: one hashed, one read
	walk := func(yield func(Box) error) error {
		return Grid(in.Shape, slab, Full(in.Shape), func(_ []int64, region Box) error { return yield(region) })
	}
	err := readAhead(ctx, v, walk, func(_ Box, b []byte) error {
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// readAhead reads the regions walk yields, in order, and hands each to fn
// while the next one is being read, so that reading and consuming overlap and
// at most two regions' bytes are held. fn must not keep b.
func readAhead(ctx context.Context, v Volume, walk func(yield func(Box) error) error, fn func(region Box, b []byte) error) error {
	elem := int64(v.Info().DType.Size())
	type filled struct {
		region Box
		b      []byte
		err    error
	}
	regions := make(chan Box)
	out := make(chan filled, 1)
	free := make(chan []byte, 2)
	free <- nil
	free <- nil
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(out)
		for region := range regions {
			var buf []byte
			select {
			case buf = <-free:
			case <-cctx.Done():
				return
			}
			nb := region.NumElements() * elem
			if int64(cap(buf)) < nb {
				buf = make([]byte, nb)
			}
			b := buf[:nb]
			err := v.ReadRegion(cctx, region, b)
			select {
			case out <- filled{region, b, err}:
			case <-cctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// werr is written before regions is closed, which happens before out is
	// closed, so reading it after out is drained is ordered.
	var werr error
	go func() {
		defer close(regions)
		werr = walk(func(region Box) error {
			select {
			case regions <- region:
				return nil
			case <-cctx.Done():
				return cctx.Err()
			}
		})
	}()
	for f := range out {
		if f.err != nil {
			return f.err
		}
		if err := fn(f.region, f.b); err != nil {
			return err
		}
		free <- f.b
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return werr
}

// slabShape is the whole of the fastest axes and as many indexes of the slowest
// partial axis as fit in budget, rounded down to whole chunks when a chunk fits.
// Grid order over slabs of this shape is C order over the array, as hashing needs.
func slabShape(in Info, budget int64) []int64 {
	elem := int64(in.DType.Size())
	slab := append([]int64(nil), in.Shape...)
	for i := range slab {
		rest := Prod(in.Shape[i+1:]) * elem
		if rest <= budget {
			n := max(1, min(in.Shape[i], budget/max(rest, 1)))
			if in.Chunks != nil && in.Chunks[i] > 1 && n > in.Chunks[i] && n < in.Shape[i] {
				n -= n % in.Chunks[i]
			} else if in.Chunks != nil && in.Chunks[i] > 1 && n < in.Chunks[i] && in.Chunks[i]*rest <= 4*budget {
				// One chunk row a little over budget beats decoding every chunk
				// several times.
				n = min(in.Chunks[i], in.Shape[i])
			}
			slab[i] = n
			break
		}
		slab[i] = 1
	}
	return slab
}
