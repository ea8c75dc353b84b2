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
func Write(ctx context.Context, st *store.Store, prefix string, src volume.Volume, opt WriteOptions) error {
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
		return fmt.Errorf("n5 write %q: dtype %s has no N5 dataType", prefix, in.DType)
	}
	if n == 0 || n > maxRank {
		return fmt.Errorf("n5 write %q: rank %d", prefix, n)
	}
	block := opt.BlockSize
	if block == nil {
		block = make([]int64, n)
		for i := range block {
			block[i] = 64
		}
	}
	if len(block) != n {
		return fmt.Errorf("n5 write %q: block rank %d for rank %d", prefix, len(block), n)
	}
	bytesPer := int64(in.DType.Size())
	for _, b := range block {
		if b <= 0 || b > maxBlockBytes {
			return fmt.Errorf("n5 write %q: block size %v", prefix, block)
		}
		bytesPer *= b
		if bytesPer > maxBlockBytes {
			return fmt.Errorf("n5 write %q: block %v exceeds %d bytes", prefix, block, maxBlockBytes)
		}
	}
	comp := map[string]any{"type": "gzip", "level": -1, "useZlib": false}
	switch opt.Compression {
	case "", "gzip":
	case "raw":
		comp = map[string]any{"type": "raw"}
	default:
		return fmt.Errorf("n5 write %q: compression %q (want gzip or raw)", prefix, opt.Compression)
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
			return fmt.Errorf("n5 write %q: attribute %q is written by N5 itself", prefix, k)
		}
		attrs[k] = v
	}
	if prefix == "" {
		attrs["n5"] = Version
	} else if _, err := st.Stat(ctx, attrsName); errors.Is(err, store.ErrNotExist) {
		if err := writeJSON(ctx, st, attrsName, map[string]any{"n5": Version}); err != nil {
			return err
		}
	}
	if err := writeJSON(ctx, st, join(prefix, attrsName), attrs); err != nil {
		return err
	}

	cs := codec.New()
	defer cs.Close()
	elem := in.DType.Size()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	d := &dataset{key: prefix}
	err := volume.Grid(in.Shape, block, volume.Full(in.Shape), func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			buf := make([]byte, region.NumElements()*int64(elem))
			if err := src.ReadRegion(gctx, region, buf); err != nil {
				return fmt.Errorf("n5 write %q: read %v: %w", prefix, region, err)
			}
			codec.SwapBytes(buf, elem) // the swap is its own inverse: little → big
			payload := buf
			if comp["type"] == "gzip" {
				var err error
				if payload, err = cs.Encode("gzip", 0, buf); err != nil {
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
			if err := st.WriteAll(gctx, key, out); err != nil {
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
