package zarr

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// rowBudget bounds the raw bytes of the shard rows writeFrom holds at once,
// across all workers. (A downsampled source reads 2^rank times a row's bytes
// while computing it, transiently.)
const rowBudget = 128 << 20

// arrayWriterV3 writes one Zarr v3 array, chunk by chunk or, when sharded,
// shard by shard.
type arrayWriterV3 struct {
	st    *store.Store
	cs    *codec.Codecs
	key   string
	info  volume.Info // Chunks is the storage unit: the shard when sharded
	inner []int64     // the inner chunk (the chunk when not sharded)
	shard bool        // sharding_indexed, even with one inner chunk per shard
	comp  compSpec
	sep   string
	meta  []byte
}

// createArrayV3 is CreateArray for Zarr v3 (opt.Version "0.5").
func createArrayV3(ctx context.Context, st *store.Store, cs *codec.Codecs, key string, info volume.Info, opt WriteOptions) (*arrayWriterV3, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key = strings.Trim(key, "/")
	fail := func(err error) (*arrayWriterV3, error) {
		return nil, fmt.Errorf("zarr write %s %q: %w", st, key, err)
	}
	if len(info.Axes) != len(info.Shape) {
		info.Axes = defaultAxes(info.Shape, nil)
	}
	if err := info.Validate(); err != nil {
		return fail(err)
	}
	if _, _, str := info.DType.FixedString(); info.DType == volume.RGBA8 || info.DType.Size() == 0 || str {
		return fail(fmt.Errorf("dtype %q: %w in zarr", info.DType, format.ErrNotSupported))
	}
	elem := info.DType.Size()
	inner, err := chunkShape(info.Shape, opt.Chunks)
	if err != nil {
		return fail(err)
	}
	if err := checkSizes(info.Shape, inner, elem); err != nil {
		return fail(err)
	}
	comp, err := compressorSpec(cs, opt, elem)
	if err != nil {
		return fail(err)
	}
	if comp.v3Err != nil {
		return fail(comp.v3Err)
	}
	sep := opt.DimensionSeparator
	switch sep {
	case "":
		sep = "/"
	case "/", ".":
	default:
		return fail(fmt.Errorf("dimension separator %q", sep))
	}
	codecs := []any{map[string]any{"name": "bytes", "configuration": map[string]any{"endian": "little"}}}
	if comp.v3 != nil {
		codecs = append(codecs, comp.v3)
	}
	outer := inner
	if opt.ShardShape != nil {
		if len(info.Shape) == 0 {
			return fail(fmt.Errorf("sharding a 0-d array: %w", format.ErrNotSupported))
		}
		if outer, err = shardShape(info.Shape, inner, opt.ShardShape); err != nil {
			return fail(err)
		}
		if err := checkSizes(info.Shape, outer, elem); err != nil {
			return fail(err)
		}
		codecs = []any{map[string]any{"name": "sharding_indexed", "configuration": map[string]any{
			"chunk_shape": inner,
			"codecs":      codecs,
			"index_codecs": []any{
				map[string]any{"name": "bytes", "configuration": map[string]any{"endian": "little"}},
				map[string]any{"name": "crc32c"},
			},
			"index_location": "end",
		}}}
	}
	names := make([]string, len(info.Axes))
	for i, a := range info.Axes {
		names[i] = a.Name
	}
	fill := any(0)
	switch info.DType {
	case volume.Bool:
		fill = false
	case volume.Complex64, volume.Complex128:
		fill = []int{0, 0} // v3 spells complex fill values [re, im]
	}
	meta, err := json.MarshalIndent(map[string]any{
		"zarr_format":        3,
		"node_type":          "array",
		"shape":              info.Shape,
		"data_type":          string(info.DType),
		"chunk_grid":         map[string]any{"name": "regular", "configuration": map[string]any{"chunk_shape": outer}},
		"chunk_key_encoding": map[string]any{"name": "default", "configuration": map[string]any{"separator": sep}},
		"fill_value":         fill,
		"codecs":             codecs,
		"attributes":         map[string]any{},
		"dimension_names":    names,
	}, "", "    ")
	if err != nil {
		return fail(err)
	}
	info.Chunks = outer
	info.Name = key
	info.Compression = codecName(comp.id)
	return &arrayWriterV3{st: st, cs: cs, key: key, info: info, inner: inner, shard: opt.ShardShape != nil, comp: comp, sep: sep, meta: meta}, nil
}

// shardShape resolves WriteOptions.ShardShape against the inner chunks: each
// entry a multiple of the inner chunk, and clipped to the inner chunks that
// cover the array so that no shard indexes chunks wholly outside it.
func shardShape(shape, inner, want []int64) ([]int64, error) {
	if len(want) != len(shape) {
		return nil, fmt.Errorf("shard shape %v for rank %d", want, len(shape))
	}
	out := make([]int64, len(shape))
	for i, s := range want {
		cover := (shape[i] + inner[i] - 1) / inner[i] * inner[i]
		switch {
		case s >= cover:
			out[i] = max(cover, inner[i])
		case s <= 0 || s%inner[i] != 0:
			return nil, fmt.Errorf("shard shape %v is not a multiple of the chunks %v", want, inner)
		default:
			out[i] = s
		}
	}
	return out, nil
}

// Info implements volume.Writer.
func (w *arrayWriterV3) Info() volume.Info { return w.info }

// chunkKey is the default chunk key encoding: "c" then the indices.
func (w *arrayWriterV3) chunkKey(idx []int64) string {
	if len(idx) == 0 {
		return join(w.key, "c")
	}
	return join(w.key, "c"+w.sep+chunkName(idx, w.sep))
}

// WriteRegion implements volume.Writer. box must start on a boundary of
// Info().Chunks (the shard, when sharded) and end on one or at the array edge.
func (w *arrayWriterV3) WriteRegion(ctx context.Context, box volume.Box, src []byte) error {
	elem := w.info.DType.Size()
	ch := w.info.Chunks
	fromSrc := func(_ context.Context, region volume.Box, dst []byte) error {
		volume.CopyBox(dst, region, src, box, region, elem)
		return nil
	}
	return writeAligned(ctx, w.key, w.info, box, src, func(ctx context.Context, idx []int64, region volume.Box) error {
		if w.shard {
			return w.writeShard(ctx, idx, fromSrc)
		}
		buf := make([]byte, cellBytes(ch, elem))
		volume.CopyBox(buf, cellBox(idx, ch), src, box, region, elem)
		return w.writeChunk(ctx, idx, buf)
	})
}

// cellBox is the full (unclipped) box of grid cell idx.
func cellBox(idx, cell []int64) volume.Box {
	b := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
	for i := range idx {
		b.Start[i] = idx[i] * cell[i]
		b.Stop[i] = b.Start[i] + cell[i]
	}
	return b
}

// encodeChunk runs the (inner) codec pipeline on one full-size chunk: bytes
// little-endian is the identity on our buffers, then the compressor.
func (w *arrayWriterV3) encodeChunk(key string, buf []byte) ([]byte, error) {
	if w.comp.id == "raw" {
		return buf, nil
	}
	enc, err := w.comp.encode(w.cs, buf)
	if err != nil {
		return nil, fmt.Errorf("zarr write chunk %q: %w", key, err)
	}
	return enc, nil
}

func (w *arrayWriterV3) writeChunk(ctx context.Context, idx []int64, buf []byte) error {
	key := w.chunkKey(idx)
	enc, err := w.encodeChunk(key, buf)
	if err != nil {
		return err
	}
	if err := w.st.WriteAll(ctx, key, enc); err != nil {
		return fmt.Errorf("zarr write chunk %q: %w", key, err)
	}
	return nil
}

// writeShard writes the shard at grid index sidx, reading its data through
// read one shard row at a time: a row is the inner chunks that share all
// indices but the fastest, so the inner chunks are appended in C order (the
// index order) and only one row of raw data is held. The index, with its
// crc32c, goes at the end, so the shard streams into an atomic writer.
func (w *arrayWriterV3) writeShard(ctx context.Context, sidx []int64, read func(context.Context, volume.Box, []byte) error) error {
	n := len(sidx)
	shard, inner, shape := w.info.Chunks, w.inner, w.info.Shape
	elem := w.info.DType.Size()
	key := w.chunkKey(sidx)
	per := make([]int64, n)
	for i := range per {
		per[i] = shard[i] / inner[i]
	}
	nInner := volume.Prod(per)
	index := make([]byte, 16*nInner+4)
	for k := int64(0); k < nInner; k++ {
		binary.LittleEndian.PutUint64(index[16*k:], math.MaxUint64)
		binary.LittleEndian.PutUint64(index[16*k+8:], math.MaxUint64)
	}
	aw, err := w.st.NewWriter(ctx, key)
	if err != nil {
		return fmt.Errorf("zarr write shard %q: %w", key, err)
	}
	defer aw.Abort()

	last := n - 1
	rowCell := append([]int64(nil), inner...)
	rowCell[last] = shard[last]
	var rowBuf []byte
	var off uint64
	// Walk the rows: every combination of inner indices but the fastest.
	rowsPer := append([]int64(nil), per...)
	rowsPer[last] = 1
	ri := make([]int64, n)
	for r := int64(0); r < volume.Prod(rowsPer); r++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The index position of the row's first inner chunk (C order).
		var rowBase int64
		for i := 0; i < n; i++ {
			rowBase = rowBase*per[i] + ri[i]
		}
		// The row's full box in array coordinates, and its part inside the array.
		full := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
		for i := range full.Start {
			full.Start[i] = sidx[i]*shard[i] + ri[i]*inner[i]
			full.Stop[i] = full.Start[i] + rowCell[i]
		}
		region, inside := full.Intersect(volume.Full(shape))
		if inside {
			nb := region.NumElements() * int64(elem)
			if int64(cap(rowBuf)) < nb {
				rowBuf = make([]byte, nb)
			}
			rb := rowBuf[:nb]
			if err := read(ctx, region, rb); err != nil {
				return fmt.Errorf("zarr write shard %q: read %v: %w", key, region, err)
			}
			// Encode the row's inner chunks in parallel, then append them in order.
			encs := make([][]byte, per[last])
			eg, ectx := errgroup.WithContext(ctx)
			eg.SetLimit(runtime.GOMAXPROCS(0))
			for j := range per[last] {
				cell := volume.Box{Start: append([]int64(nil), full.Start...), Stop: append([]int64(nil), full.Stop...)}
				cell.Start[last] = full.Start[last] + j*inner[last]
				cell.Stop[last] = cell.Start[last] + inner[last]
				cr, ok := cell.Intersect(region)
				if !ok {
					continue // wholly past the array edge: an empty entry
				}
				eg.Go(func() error {
					if err := ectx.Err(); err != nil {
						return err
					}
					// Edge chunks are stored full-size, padded with the fill value 0.
					chunk := make([]byte, cellBytes(inner, elem))
					volume.CopyBox(chunk, cell, rb, region, cr, elem)
					enc, err := w.encodeChunk(fmt.Sprintf("%s[inner %d]", key, rowBase+j), chunk)
					encs[j] = enc
					return err
				})
			}
			if err := eg.Wait(); err != nil {
				return err
			}
			for j, enc := range encs {
				if enc == nil {
					continue
				}
				if _, err := aw.Write(enc); err != nil {
					return fmt.Errorf("zarr write shard %q: %w", key, err)
				}
				lin := rowBase + int64(j)
				binary.LittleEndian.PutUint64(index[16*lin:], off)
				binary.LittleEndian.PutUint64(index[16*lin+8:], uint64(len(enc)))
				off += uint64(len(enc))
			}
		}
		for d := n - 1; d >= 0; d-- {
			ri[d]++
			if ri[d] < rowsPer[d] {
				break
			}
			ri[d] = 0
		}
	}
	body := index[:16*nInner]
	binary.LittleEndian.PutUint32(index[16*nInner:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := aw.Write(index); err != nil {
		return fmt.Errorf("zarr write shard %q: %w", key, err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("zarr write shard %q: %w", key, err)
	}
	return nil
}

// writeFrom copies the part box of src (all of it, for volume.Full) into
// a sharded array, shards in parallel, each worker holding one shard row of
// src data at a time; box must start on the shard grid and end on it or at
// the array edge. Unsharded arrays go through volume.Copy instead.
// progress, when set, hears the bytes of the part done after each shard (as
// volume.CopyOptions.Progress).
func (w *arrayWriterV3) writeFrom(ctx context.Context, src volume.Volume, box volume.Box, progress func(done, total int64)) error {
	in := src.Info()
	if fmt.Sprint(in.Shape) != fmt.Sprint(w.info.Shape) || in.DType != w.info.DType {
		return fmt.Errorf("zarr write %q: source %v %s for array %v %s", w.key, in.Shape, in.DType, w.info.Shape, w.info.DType)
	}
	n := len(w.inner)
	row := append([]int64(nil), w.inner...)
	row[n-1] = w.info.Chunks[n-1]
	rowBytes := max(1, volume.Prod(row)*int64(w.info.DType.Size()))
	workers := int(max(1, min(int64(runtime.GOMAXPROCS(0)), rowBudget/rowBytes)))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	elem := int64(w.info.DType.Size())
	total := box.NumElements() * elem
	var mu sync.Mutex // progress is called one at a time, as volume.Copy does
	var done int64
	err := volume.Grid(w.info.Shape, w.info.Chunks, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			if err := w.writeShard(gctx, idx, src.ReadRegion); err != nil {
				return err
			}
			if progress != nil {
				mu.Lock()
				done += region.NumElements() * elem
				progress(done, total)
				mu.Unlock()
			}
			return nil
		})
		return nil
	})
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return err
}

// Close implements volume.Writer: it writes zarr.json, which makes the array
// visible to readers.
func (w *arrayWriterV3) Close(ctx context.Context) error {
	return commitMeta(ctx, w.st, w.key, "zarr.json", w.meta)
}

// reader opens the written array for reading (after Close).
func (w *arrayWriterV3) reader() (*array, error) {
	z, err := parseZarrJSON(w.meta)
	if err != nil {
		return nil, err
	}
	return openV3(w.st, w.cs, w.key, z)
}
