package n5

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Version is the N5 specification version written to a new container root.
const Version = "2.0.0"

// WriteOptions configure Write.
type WriteOptions struct {
	// BlockSize is the block shape in C order, like volume shapes (it is
	// reversed in attributes.json); nil means 64 along every axis.
	BlockSize []int64
	// Compression is "gzip" (the default when empty) or "raw".
	Compression string
	// Attributes are extra keys of the dataset's attributes.json
	// (provenance such as the voxel size's source); they may not replace
	// the N5 keys Write sets.
	Attributes map[string]any
}

// Write stores src as an N5 dataset at prefix: attributes.json (with the
// "n5" version when prefix is the root, otherwise a root attributes.json is
// created if missing) and one default-mode block per grid cell, edge blocks
// truncated as n5-java writes them. Calibrated axes are recorded as
// "resolution"/"units"/"axes" and, when every axis shares a unit, as N5 Viewer
// "pixelResolution".
//
// Write is NewWriter, WritePart of the whole array, then Finish: tasks
// that split one output call the parts themselves.
func Write(ctx context.Context, st *store.Store, prefix string, src volume.Volume, opt WriteOptions) error {
	w, err := NewWriter(st, prefix, src, opt)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.WritePart(ctx, volume.Full(src.Info().Shape)); err != nil {
		return err
	}
	return w.Finish(ctx)
}

// Writer is one N5 dataset being written: its blocks in parts (WritePart,
// one per task, on boxes of the block grid), its attributes once all parts
// are there (Finish). The files are the same however the work was split.
type Writer struct {
	st     *store.Store
	cs     *codec.Codecs
	prefix string
	src    volume.Volume
	block  []int64
	gzip   bool
	attrs  map[string]any
}

// NewWriter checks src and opt and plans the dataset Write writes; it
// writes nothing.
func NewWriter(st *store.Store, prefix string, src volume.Volume, opt WriteOptions) (*Writer, error) {
	in := src.Info()
	prefix, _ = splitKey(prefix)
	n := len(in.Shape)
	var typ string
	for k, v := range dataTypes {
		if v == in.DType {
			typ = k
		}
	}
	if typ == "" {
		return nil, fmt.Errorf("n5 write %q: dtype %s has no N5 dataType", prefix, in.DType)
	}
	if n == 0 || n > maxRank {
		return nil, fmt.Errorf("n5 write %q: rank %d", prefix, n)
	}
	block := opt.BlockSize
	if block == nil {
		block = make([]int64, n)
		for i := range block {
			block[i] = 64
		}
	}
	if len(block) != n {
		return nil, fmt.Errorf("n5 write %q: block rank %d for rank %d", prefix, len(block), n)
	}
	bytesPer := int64(in.DType.Size())
	for _, b := range block {
		if b <= 0 || b > maxBlockBytes {
			return nil, fmt.Errorf("n5 write %q: block size %v", prefix, block)
		}
		bytesPer *= b
		if bytesPer > maxBlockBytes {
			return nil, fmt.Errorf("n5 write %q: block %v exceeds %d bytes", prefix, block, maxBlockBytes)
		}
	}
	comp := map[string]any{"type": "gzip", "level": -1, "useZlib": false}
	switch opt.Compression {
	case "", "gzip":
	case "raw":
		comp = map[string]any{"type": "raw"}
	default:
		return nil, fmt.Errorf("n5 write %q: compression %q (want gzip or raw)", prefix, opt.Compression)
	}
	attrs := map[string]any{
		"dimensions":  reversed(in.Shape),
		"blockSize":   reversed(block),
		"dataType":    typ,
		"compression": comp,
	}
	addCalibration(attrs, in.Axes)
	for k, v := range opt.Attributes {
		if _, ok := attrs[k]; ok {
			return nil, fmt.Errorf("n5 write %q: attribute %q is written by N5 itself", prefix, k)
		}
		attrs[k] = v
	}
	if prefix == "" {
		attrs["n5"] = Version
	}
	return &Writer{st: st, cs: codec.New(), prefix: prefix, src: src, block: block, gzip: comp["type"] == "gzip", attrs: attrs}, nil
}

// Close releases the codecs.
func (w *Writer) Close() { w.cs.Close() }

// Cell is the block shape: WritePart's boxes start on its grid and end on
// it or at the array edge.
func (w *Writer) Cell() []int64 { return append([]int64(nil), w.block...) }

// WritePart writes the blocks inside box, each atomically, so a part that
// is interrupted can simply be written again. It writes no attributes.
func (w *Writer) WritePart(ctx context.Context, box volume.Box) error {
	in := w.src.Info()
	prefix, block := w.prefix, w.block
	for i := range box.Start {
		if box.Start[i]%block[i] != 0 || (box.Stop[i]%block[i] != 0 && box.Stop[i] != in.Shape[i]) || box.Stop[i] > in.Shape[i] {
			return fmt.Errorf("n5 write %q: part %v is not on the block grid %v", prefix, box, block)
		}
	}
	if box.Empty() {
		return nil
	}
	n := len(in.Shape)
	elem := in.DType.Size()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	d := &dataset{key: prefix}
	err := volume.Grid(in.Shape, block, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			buf := make([]byte, region.NumElements()*int64(elem))
			if err := w.src.ReadRegion(gctx, region, buf); err != nil {
				return fmt.Errorf("n5 write %q: read %v: %w", prefix, region, err)
			}
			codec.SwapBytes(buf, elem) // the swap is its own inverse: little → big
			payload := buf
			if w.gzip {
				var err error
				if payload, err = w.cs.Encode("gzip", 0, buf); err != nil {
					return fmt.Errorf("n5 write %q: %w", prefix, err)
				}
			}
			shape := region.Shape()
			out := make([]byte, 0, 4+4*n+len(payload))
			out = binary.BigEndian.AppendUint16(out, modeDefault)
			out = binary.BigEndian.AppendUint16(out, uint16(n))
			for i := n - 1; i >= 0; i-- {
				out = binary.BigEndian.AppendUint32(out, uint32(shape[i]))
			}
			out = append(out, payload...)
			key := d.blockKey(idx)
			if err := w.st.WriteAll(gctx, key, out); err != nil {
				return fmt.Errorf("n5 write %q: block %q: %w", prefix, key, err)
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

// Finish writes the dataset's attributes.json (and a root one when the
// dataset is below the root and the root has none), which makes the
// dataset visible to readers.
func (w *Writer) Finish(ctx context.Context) error {
	if w.prefix != "" {
		if _, err := w.st.Stat(ctx, attrsName); errors.Is(err, store.ErrNotExist) {
			if err := writeJSON(ctx, w.st, attrsName, map[string]any{"n5": Version}); err != nil {
				return err
			}
		}
	}
	return writeJSON(ctx, w.st, join(w.prefix, attrsName), w.attrs)
}

// addCalibration records known axis scales in both conventions readers use,
// the spatial ones in one unit (volume.OneUnit): N5 Viewer has one unit for
// all axes.
func addCalibration(attrs map[string]any, axes []volume.Axis) {
	axes = volume.OneUnit(axes)
	n := len(axes)
	if n == 0 {
		return
	}
	names := make([]string, n)
	units := make([]string, n)
	res := make([]float64, n)
	known, sameUnit := true, true
	for c, a := range axes {
		i := n - 1 - c
		names[i], units[i], res[i] = a.Name, a.Unit, a.Scale
		known = known && a.ScaleKnown
		sameUnit = sameUnit && a.Unit == axes[0].Unit
	}
	attrs["axes"] = names
	if !known {
		return
	}
	attrs["resolution"] = res
	attrs["units"] = units
	if sameUnit {
		attrs["pixelResolution"] = map[string]any{"unit": axes[0].Unit, "dimensions": res}
	}
}

func writeJSON(ctx context.Context, st *store.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("n5 write %q: %w", key, err)
	}
	// zarr-python 2's N5Store reads attributes.json as ASCII: raw UTF-8 (the
	// "µm" of units) would make the dataset unreadable there.
	if err := st.WriteAll(ctx, key, format.ASCIIJSON(b)); err != nil {
		return fmt.Errorf("n5 write %q: %w", key, err)
	}
	return nil
}
