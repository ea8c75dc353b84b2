package zarr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxInFlight bounds the chunks fetched and decoded concurrently by one
// ReadRegion, so memory is the region plus this many chunks.
const maxInFlight = 32

// decodeSlack is spare capacity past a decoded cell in pooled buffers: the
// zstd decoder uses its faster, over-writing copy loops only when the output
// has 32 bytes of room past the data it writes. Decoding straight into a
// caller's buffer has no slack and falls back to the exact loops.
const decodeSlack = 32

// array is one Zarr array (v2 or v3) read through a store.
type array struct {
	st     *store.Store
	codecs *codec.Codecs
	info   volume.Info
	dt     dtype
	fill   []byte  // one element, little-endian
	grid   []int64 // the unit fetched and decoded: the chunk, or the inner chunk of a shard
	// fetch decodes grid cell idx (C order, little-endian, full cell shape)
	// and returns its bytes; nil data means the cell is absent and reads as
	// fill. out, of capacity at least a cell's bytes, is where the decoder
	// writes, so the result is normally out[:cell bytes], but a pipeline
	// that transposes returns a new slice. out may be a range of the
	// caller's destination.
	fetch func(ctx context.Context, idx []int64, out []byte) ([]byte, error)

	// cells pools decoded-cell buffers (*[]byte of cell bytes +
	// decodeSlack) and raws the encoded chunks as read (*[]byte, grown to
	// the largest seen), so that reading many chunks leaves no garbage.
	cells, raws sync.Pool

	// obj is set for variable-length string (object) arrays, which are
	// returned wrapped as objectArray.
	obj *objectSpec

	// imageLabel is the raw "image-label" object of an NGFF label image
	// (Metadata has only a summary), for writers that copy the label image.
	imageLabel json.RawMessage
}

// Info implements volume.Volume.
func (a *array) Info() volume.Info { return a.info }

// ReadRegion implements volume.Volume: the cells the box touches are fetched
// and decoded concurrently (at most maxInFlight at a time) and copied into dst.
// A cell that lies whole inside the box and whose elements are one contiguous
// range of dst (a slab spanning the faster axes of the box) is decoded there
// directly.
func (a *array) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(a.info, box, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if box.Empty() && len(box.Start) > 0 {
		return nil
	}
	elem := a.dt.size()
	want := cellBytes(a.grid, elem)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxInFlight)
	err := volume.Grid(a.info.Shape, a.grid, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			cell := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
			for i := range idx {
				cell.Start[i] = idx[i] * a.grid[i]
				cell.Stop[i] = cell.Start[i] + a.grid[i]
			}
			out, direct := contiguousRange(dst, box, cell, region, elem)
			var bp *[]byte
			if !direct {
				bp = a.cellBuf(want)
				defer a.cells.Put(bp)
				out = *bp
			}
			data, err := a.fetch(gctx, idx, out)
			if err != nil {
				return fmt.Errorf("zarr %q: %w", a.info.Name, err)
			}
			switch {
			case data == nil:
				volume.FillBox(dst, box, region, a.fill)
			case direct && len(data) > 0 && &data[0] == &out[0]:
				// Already in place.
			default:
				volume.CopyBox(dst, box, data, cell, region, elem)
			}
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

// cellBuf returns a pooled buffer for one decoded cell of n bytes.
func (a *array) cellBuf(n int) *[]byte {
	if bp, ok := a.cells.Get().(*[]byte); ok && cap(*bp) >= n+decodeSlack {
		return bp
	}
	b := make([]byte, 0, n+decodeSlack)
	return &b
}

// rawBuf returns a pooled buffer for an encoded chunk; callers grow it.
func (a *array) rawBuf() *[]byte {
	if bp, ok := a.raws.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

// contiguousRange returns the bytes of dst (laid out as dstBox) that hold
// cell, with capacity cut to them, when region is the whole cell and the
// cell's elements are one contiguous run of dst: every axis after the first
// one longer than 1 spans the full extent of dstBox.
func contiguousRange(dst []byte, dstBox, cell, region volume.Box, elem int) ([]byte, bool) {
	n := len(cell.Start)
	for i := 0; i < n; i++ {
		if region.Start[i] != cell.Start[i] || region.Stop[i] != cell.Stop[i] {
			return nil, false
		}
	}
	first := n
	for i := 0; i < n; i++ {
		if cell.Stop[i]-cell.Start[i] > 1 {
			first = i
			break
		}
	}
	for i := first + 1; i < n; i++ {
		if cell.Start[i] != dstBox.Start[i] || cell.Stop[i] != dstBox.Stop[i] {
			return nil, false
		}
	}
	var off int64
	stride := int64(elem)
	for i := n - 1; i >= 0; i-- {
		off += (cell.Start[i] - dstBox.Start[i]) * stride
		stride *= dstBox.Stop[i] - dstBox.Start[i]
	}
	size := cell.NumElements() * int64(elem)
	return dst[off : off+size : off+size], true
}

// cellBytes is the decoded size of one grid cell.
func cellBytes(cell []int64, elem int) int {
	return int(volume.Prod(cell)) * elem
}

// readChunk reads a whole stored chunk into *buf, growing it as needed, and
// returns the bytes; a missing chunk returns (nil, nil). Objects larger than
// limit are refused before they are read when their size is known, and
// after limit+1 bytes otherwise.
func readChunk(ctx context.Context, st *store.Store, key string, limit int64, buf *[]byte) ([]byte, error) {
	b, err := st.ReadAllInto(ctx, key, limit, *buf)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, store.ErrTooLarge) {
		// Larger than any encoding of the chunk can be.
		return nil, fmt.Errorf("chunk %q: %w: %w", key, err, format.ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("chunk %q: %w", key, err)
	}
	if cap(b) > cap(*buf) {
		*buf = b[:0] // keep the grown buffer for the pool
	}
	if b == nil {
		// An empty object exists: it is a chunk that decodes to nothing, not
		// a missing one that reads as the fill value.
		b = []byte{}
	}
	return b, nil
}

// storedLimit is the largest encoded chunk accepted for a decoded size n:
// compressors may expand incompressible data a little.
func storedLimit(n int) int64 { return int64(n) + int64(n)/4 + 1<<16 }

// decodeBytes runs a bytes→bytes codec into out's capacity and checks the
// decoded size.
func decodeBytes(cs *codec.Codecs, id, key string, raw []byte, want int, out []byte) ([]byte, error) {
	b, err := cs.DecodeInto(id, out, raw)
	if err != nil {
		return nil, codecError(key, err)
	}
	if len(b) != want {
		return nil, wrongSize(key, len(b), want)
	}
	return b, nil
}

// wrongSize reports a chunk that decoded to another size than its shape
// needs: truncated, or not the chunk the metadata describes.
func wrongSize(key string, got, want int) error {
	return fmt.Errorf("chunk %q: decoded to %d bytes, want %d (chunk shape × element size): %w", key, got, want, format.ErrCorrupt)
}

// runCodec decodes raw with codec id into at most max bytes of new memory.
func runCodec(cs *codec.Codecs, id, key string, raw []byte, max int) ([]byte, error) {
	out, err := cs.Decode(id, raw, max)
	if err != nil {
		return nil, codecError(key, err)
	}
	return out, nil
}

// codecError names the chunk; unsupported codecs are reported as
// format.ErrNotSupported, any other failure to decode (a truncated or
// damaged stream) as format.ErrCorrupt.
func codecError(key string, err error) error {
	if errors.Is(err, codec.ErrUnsupported) {
		return fmt.Errorf("chunk %q: %w: %w", key, format.ErrNotSupported, err)
	}
	return fmt.Errorf("chunk %q: %w: %w", key, err, format.ErrCorrupt)
}

// malformed marks an error about metadata that contradicts the format as
// format.ErrCorrupt; a feature the reader lacks stays format.ErrNotSupported.
func malformed(err error) error {
	if errors.Is(err, format.ErrNotSupported) || errors.Is(err, format.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %w", err, format.ErrCorrupt)
}

// transpose reorders src (C order, shape srcShape) into C order of the shape
// whose axis i is src axis perm[i].
func transpose(src []byte, srcShape []int64, perm []int, elem int) []byte {
	n := len(perm)
	dst := make([]byte, len(src))
	if n == 0 || len(src) == 0 {
		copy(dst, src)
		return dst
	}
	sstr := make([]int64, n)
	acc := int64(elem)
	for i := n - 1; i >= 0; i-- {
		sstr[i] = acc
		acc *= srcShape[i]
	}
	dshape := make([]int64, n)
	step := make([]int64, n)
	for i, p := range perm {
		dshape[i] = srcShape[p]
		step[i] = sstr[p]
	}
	idx := make([]int64, n)
	var so int64
	e := int64(elem)
	last := dshape[n-1]
	for do := int64(0); do < int64(len(dst)); {
		off := so
		for j := int64(0); j < last; j++ {
			copy(dst[do:do+e], src[off:off+e])
			do += e
			off += step[n-1]
		}
		d := n - 2
		for ; d >= 0; d-- {
			idx[d]++
			so += step[d]
			if idx[d] < dshape[d] {
				break
			}
			so -= idx[d] * step[d]
			idx[d] = 0
		}
		if d < 0 {
			break
		}
	}
	return dst
}

// reversed returns the permutation n-1, …, 0 (Fortran order ⇄ C order).
func reversed(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = n - 1 - i
	}
	return p
}

func reverseShape(s []int64) []int64 {
	r := make([]int64, len(s))
	for i := range s {
		r[len(s)-1-i] = s[i]
	}
	return r
}

// chunkName joins chunk indices with sep ("0" for a 0-d array, as in v2).
func chunkName(idx []int64, sep string) string {
	if len(idx) == 0 {
		return "0"
	}
	parts := make([]string, len(idx))
	for i, v := range idx {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(parts, sep)
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

// openV2 builds the volume of the v2 array at prefix from its .zarray bytes.
func openV2(st *store.Store, cs *codec.Codecs, prefix string, meta []byte) (*array, error) {
	z, d, fill, comp, err := parseZarray(meta)
	if err != nil {
		return nil, fmt.Errorf("zarr %s %q: %w", st, prefix, malformed(err))
	}
	n := len(z.Shape)
	a := &array{st: st, codecs: cs, dt: d, fill: fill, grid: z.Chunks}
	a.info = volume.Info{
		Name:        arrayName(st, prefix),
		Shape:       z.Shape,
		DType:       d.vt,
		Axes:        defaultAxes(z.Shape, nil),
		Chunks:      z.Chunks,
		Compression: codecName(comp.ID),
		Metadata: map[string]any{
			"zarr_format":         2,
			"zarr_dtype":          d.zarr,
			"order":               z.Order,
			"dimension_separator": z.DimensionSeparator,
			"fill_value":          fillJSON(z.FillValue),
		},
	}
	if comp.Config != nil {
		a.info.Metadata["compressor"] = comp.Config
	}
	if comp.Level >= 0 {
		a.info.Metadata["compression_level"] = comp.Level
	}
	if d.object {
		if err := setupV2Object(a, z, comp, prefix); err != nil {
			return nil, fmt.Errorf("zarr %s %q: .zarray: %w", st, prefix, err)
		}
		return a, nil
	}
	var unsupported error
	var filters []filter
	if f := strings.TrimSpace(string(z.Filters)); f != "" && f != "null" && f != "[]" {
		a.info.Metadata["filters"] = compact(z.Filters)
		filters, err = parseFilters(z.Filters, d.size())
		if err == nil && d.chars > 0 {
			err = fmt.Errorf("filters on string dtype %s: %w", d.zarr, format.ErrNotSupported)
		}
		if err != nil {
			if !errors.Is(err, format.ErrNotSupported) {
				return nil, fmt.Errorf("zarr %s %q: .zarray: %w", st, prefix, malformed(err))
			}
			unsupported = err
		}
	}
	if unsupported != nil {
		a.info.Metadata["unsupported"] = unsupported.Error()
	}
	elems := volume.Prod(z.Chunks)
	want := cellBytes(z.Chunks, d.size())
	stored := want // the compressor's output: the last filter's elements
	for _, f := range filters {
		// Every intermediate buffer is held at once with the cell.
		if int64(f.enc.size)*elems > maxChunkBytes {
			return nil, fmt.Errorf("zarr %s %q: .zarray: filter %q stores %d-byte elements: chunk exceeds %d bytes", st, prefix, f.id, f.enc.size, maxChunkBytes)
		}
		stored = int(elems) * f.enc.size
	}
	fOrder := z.Order == "F" && n > 1
	a.fetch = func(ctx context.Context, idx []int64, dst []byte) ([]byte, error) {
		key := join(prefix, chunkName(idx, z.DimensionSeparator))
		if unsupported != nil {
			return nil, fmt.Errorf("chunk %q: %w", key, unsupported)
		}
		bp := a.rawBuf()
		defer a.raws.Put(bp)
		raw, err := readChunk(ctx, st, key, storedLimit(stored), bp)
		if raw == nil || err != nil {
			return nil, err
		}
		var out []byte
		if len(filters) == 0 {
			out, err = decodeBytes(cs, comp.ID, key, raw, want, dst)
		} else {
			out, err = decodeBytes(cs, comp.ID, key, raw, stored, make([]byte, 0, stored+decodeSlack))
			if err == nil {
				out = applyFilters(filters, out, dst, int(elems))
			}
		}
		if err != nil {
			return nil, err
		}
		if d.big {
			codec.SwapBytes(out, d.swapLen)
		}
		if fOrder {
			out = transpose(out, reverseShape(z.Chunks), reversed(n), d.size())
		}
		return out, nil
	}
	return a, nil
}

func codecName(id string) string {
	switch codec.Canonical(id) {
	case "raw":
		return "none"
	}
	return id
}

func fillJSON(raw []byte) any {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return nil
	}
	return s
}

// arrayName is the array's path within the store, or the store's base name
// for an array at the root.
func arrayName(st *store.Store, prefix string) string {
	if prefix != "" {
		return prefix
	}
	return path.Base(strings.TrimRight(strings.ReplaceAll(st.String(), "\\", "/"), "/"))
}

// defaultAxes names the last three axes z, y, x (the others dim0, dim1, …) or
// uses names when given; no calibration is known.
func defaultAxes(shape []int64, names []string) []volume.Axis {
	n := len(shape)
	ax := make([]volume.Axis, n)
	std := []string{"z", "y", "x"}
	for i := range ax {
		name := "dim" + strconv.Itoa(i)
		if k := i - (n - 3); k >= 0 {
			name = std[k]
		}
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		ax[i] = volume.Axis{Name: name, Size: shape[i], Scale: 1}
	}
	return ax
}
