package zarr

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxInFlight bounds the chunks fetched and decoded concurrently by one
// ReadRegion, so memory is the region plus this many chunks.
const maxInFlight = 32

// array is one Zarr array (v2 or v3) read through a store.
type array struct {
	st     *store.Store
	codecs *codec.Codecs
	info   volume.Info
	dt     dtype
	fill   []byte  // one element, little-endian
	grid   []int64 // the unit fetched and decoded: the chunk, or the inner chunk of a shard
	// fetch returns the decoded grid cell idx in C order, little-endian, full
	// cell shape; nil data means the cell is absent and reads as fill.
	fetch func(ctx context.Context, idx []int64) ([]byte, error)
}

// Info implements volume.Volume.
func (a *array) Info() volume.Info { return a.info }

// ReadRegion implements volume.Volume: the cells the box touches are fetched
// and decoded concurrently (at most maxInFlight at a time) and copied into dst.
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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxInFlight)
	err := volume.Grid(a.info.Shape, a.grid, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			data, err := a.fetch(gctx, idx)
			if err != nil {
				return fmt.Errorf("zarr %q: %w", a.info.Name, err)
			}
			if data == nil {
				fillBox(dst, box, region, a.fill)
				return nil
			}
			cell := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
			for i := range idx {
				cell.Start[i] = idx[i] * a.grid[i]
				cell.Stop[i] = cell.Start[i] + a.grid[i]
			}
			volume.CopyBox(dst, box, data, cell, region, elem)
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

// fillBox sets region of dst (laid out as dstBox) to the fill element.
func fillBox(dst []byte, dstBox, region volume.Box, fill []byte) {
	n := region.NumElements()
	src := make([]byte, n*int64(len(fill)))
	allZero := true
	for _, b := range fill {
		allZero = allZero && b == 0
	}
	if !allZero {
		for i := int64(0); i < n; i++ {
			copy(src[i*int64(len(fill)):], fill)
		}
	}
	volume.CopyBox(dst, dstBox, src, region, region, len(fill))
}

// cellBytes is the decoded size of one grid cell.
func cellBytes(cell []int64, elem int) int {
	return int(volume.Prod(cell)) * elem
}

// readChunk reads a whole stored chunk; a missing chunk returns (nil, nil).
func readChunk(ctx context.Context, st *store.Store, key string, limit int64) ([]byte, error) {
	b, err := st.ReadAll(ctx, key, limit)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chunk %q: %w", key, err)
	}
	return b, nil
}

// storedLimit is the largest encoded chunk accepted for a decoded size n:
// compressors may expand incompressible data a little.
func storedLimit(n int) int64 { return int64(n) + int64(n)/4 + 1<<16 }

// decodeBytes runs a bytes→bytes codec and checks the decoded size.
func decodeBytes(cs *codec.Codecs, id, key string, raw []byte, want int) ([]byte, error) {
	out, err := runCodec(cs, id, key, raw, want)
	if err != nil {
		return nil, err
	}
	if len(out) != want {
		return nil, fmt.Errorf("chunk %q: decoded to %d bytes, want %d (chunk shape × element size)", key, len(out), want)
	}
	return out, nil
}

// runCodec decodes raw with codec id into at most max bytes; unsupported
// codecs are reported as format.ErrNotSupported too.
func runCodec(cs *codec.Codecs, id, key string, raw []byte, max int) ([]byte, error) {
	out, err := cs.Decode(id, raw, max)
	if err != nil {
		if errors.Is(err, codec.ErrUnsupported) {
			return nil, fmt.Errorf("chunk %q: %w: %w", key, format.ErrNotSupported, err)
		}
		return nil, fmt.Errorf("chunk %q: %w", key, err)
	}
	return out, nil
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
		return nil, fmt.Errorf("zarr %s %q: %w", st, prefix, err)
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
	var unsupported error
	if f := strings.TrimSpace(string(z.Filters)); f != "" && f != "null" && f != "[]" {
		a.info.Metadata["filters"] = compact(z.Filters)
		unsupported = fmt.Errorf("filters %s: %w", compact(z.Filters), format.ErrNotSupported)
	}
	if unsupported != nil {
		a.info.Metadata["unsupported"] = unsupported.Error()
	}
	want := cellBytes(z.Chunks, d.size())
	fOrder := z.Order == "F" && n > 1
	a.fetch = func(ctx context.Context, idx []int64) ([]byte, error) {
		key := join(prefix, chunkName(idx, z.DimensionSeparator))
		if unsupported != nil {
			return nil, fmt.Errorf("chunk %q: %w", key, unsupported)
		}
		raw, err := readChunk(ctx, st, key, storedLimit(want))
		if raw == nil || err != nil {
			return nil, err
		}
		out, err := decodeBytes(cs, comp.ID, key, raw, want)
		if err != nil {
			return nil, err
		}
		if d.big {
			swap(out, d.swapLen)
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
