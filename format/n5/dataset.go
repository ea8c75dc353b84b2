package n5

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxInFlight bounds the blocks fetched and decoded concurrently by one
// ReadRegion, so memory is the region plus this many blocks.
const maxInFlight = 32

// dataset is one N5 dataset read through a store. The volume it presents is
// in C order: N5 lists dimensions fastest-first, so its shape, block size and
// axes are reversed, and a block's bytes are then already in C order.
type dataset struct {
	st   *store.Store
	cs   *codec.Codecs
	key  string // dataset prefix in the store
	info volume.Info
	meta *datasetAttrs
	grid []int64 // block size, C order
	elem int

	// cells pools decoded-block buffers (*[]byte with capacity for a full
	// block plus decodeSlack) and raws the stored blocks as read (*[]byte,
	// grown to the largest seen), so that reading many blocks neither
	// leaves garbage nor zeroes a fresh buffer per block.
	cells, raws sync.Pool
}

// decodeSlack is spare capacity past a decoded block: the zstd decoder uses
// its faster, over-writing copy loops only when the output has 32 bytes of
// room past the data it writes.
const decodeSlack = 32

// Info implements volume.Volume.
func (d *dataset) Info() volume.Info { return d.info }

// ReadRegion implements volume.Volume: the blocks the box touches are read
// and decoded concurrently (at most maxInFlight at a time) and copied into
// dst; missing blocks read as zeros.
func (d *dataset) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(d.info, box, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if box.Empty() {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxInFlight)
	err := volume.Grid(d.info.Shape, d.grid, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			data, cell, release, err := d.readBlock(gctx, idx)
			if err != nil {
				return fmt.Errorf("n5 %q: %w", d.info.Name, err)
			}
			if data == nil {
				volume.FillBox(dst, box, region, make([]byte, d.elem))
				return nil
			}
			volume.CopyBox(dst, box, data, cell, region, d.elem)
			release()
			return nil
		})
		return nil
	})
	// The group's first error explains a cancellation seen by Grid.
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return err
}

// blockKey names the block at grid index idx (C order): N5 keys list the
// fastest dimension first.
func (d *dataset) blockKey(idx []int64) string {
	var b strings.Builder
	b.WriteString(d.key)
	for i := len(idx) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(strconv.FormatInt(idx[i], 10))
	}
	return b.String()
}

// readBlock reads and decodes the block at grid index idx (C order). It
// returns the block's elements little-endian in C order, the box they cover
// (which may reach past the volume for padded edge blocks) and a function
// that hands the buffers back to the pools once the caller is done with the
// data, or nil data when the block does not exist.
func (d *dataset) readBlock(ctx context.Context, idx []int64) ([]byte, volume.Box, func(), error) {
	n := len(idx)
	key := d.blockKey(idx)
	need := make([]int64, n) // N5 order
	for i := range n {
		c := n - 1 - i
		start := idx[c] * d.grid[c]
		need[i] = min(d.grid[c], d.info.Shape[c]-start)
	}
	full := volume.Prod(d.meta.block) * int64(d.elem)
	limit := storedLimit(full) + 4 + 4*int64(n) + 4
	rp := d.pooled(&d.raws, 0)
	cp := d.pooled(&d.cells, int(full)+decodeSlack)
	release := func() {
		d.raws.Put(rp)
		d.cells.Put(cp)
	}
	raw, err := d.st.ReadAllInto(ctx, key, limit, *rp)
	if errors.Is(err, store.ErrNotExist) {
		release()
		return nil, volume.Box{}, nil, nil
	}
	if errors.Is(err, store.ErrTooLarge) {
		// Larger than any encoding of the block can be.
		err = fmt.Errorf("%w: %w", err, format.ErrCorrupt)
	}
	if err != nil {
		release()
		return nil, volume.Box{}, nil, fmt.Errorf("block %q: %w", key, err)
	}
	if cap(raw) > cap(*rp) {
		*rp = raw[:0] // keep the grown buffer for the pool
	}
	data, hdims, err := decodeBlockInto(d.cs, d.meta, need, raw, *cp)
	if err != nil {
		release()
		return nil, volume.Box{}, nil, fmt.Errorf("block %q: %w", key, err)
	}
	cell := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
	for c := range n {
		cell.Start[c] = idx[c] * d.grid[c]
		cell.Stop[c] = cell.Start[c] + hdims[n-1-c]
	}
	return data, cell, release, nil
}

// pooled returns a buffer from pool with capacity at least n.
func (d *dataset) pooled(pool *sync.Pool, n int) *[]byte {
	if bp, ok := pool.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, 0, n)
	return &b
}

// decodeBlock parses and decodes a stored block whose in-bounds extent is
// need (N5 order), returning its elements little-endian in C order and its
// dimensions as the header states them (N5 order).
func decodeBlock(cs *codec.Codecs, meta *datasetAttrs, need []int64, raw []byte) ([]byte, []int64, error) {
	return decodeBlockInto(cs, meta, need, raw, nil)
}

// decodeBlockInto is decodeBlock decoding into out's memory where the codec
// allows (see decompress).
func decodeBlockInto(cs *codec.Codecs, meta *datasetAttrs, need []int64, raw, out []byte) ([]byte, []int64, error) {
	h, err := parseBlockHeader(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := h.checkAgainst(need, meta.block); err != nil {
		return nil, nil, err
	}
	elem := meta.dtype.Size()
	data, err := decompress(cs, meta.comp, raw[h.size:], int(h.count)*elem, out)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", meta.comp.Type, err)
	}
	codec.SwapBytes(data, elem)
	return data, h.dims, nil
}

// storedLimit is the largest stored payload accepted for a decoded size n:
// compressors may expand incompressible data a little.
func storedLimit(n int64) int64 { return n + n/4 + 1<<16 }

// reversed returns a reversed copy of s.
func reversed[T any](s []T) []T {
	r := make([]T, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	return r
}
