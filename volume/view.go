package volume

import (
	"context"
	"fmt"
)

// window is a sub-box of another volume, presented as a volume of its own whose
// axis offsets place it where it came from (so a crop written to OME-Zarr keeps
// its physical position).
type window struct {
	src    Volume
	origin []int64
	info   Info
}

// Window returns a view of src over [origin, origin+size). It reads lazily.
func Window(src Volume, origin, size []int64) (Volume, error) {
	si := src.Info()
	b := NewBox(origin, size)
	if err := b.Within(si.Shape); err != nil {
		return nil, fmt.Errorf("window of %q: %w", si.Name, err)
	}
	in := si
	in.Shape = append([]int64(nil), size...)
	in.Axes = append([]Axis(nil), si.Axes...)
	for i := range in.Axes {
		in.Axes[i].Size = size[i]
		in.Axes[i].Offset = si.Axes[i].Offset + float64(origin[i])*si.Axes[i].Scale
	}
	if si.Chunks != nil {
		in.Chunks = make([]int64, len(si.Chunks))
		for i := range si.Chunks {
			in.Chunks[i] = min(si.Chunks[i], max(size[i], 1))
		}
	}
	return &window{src: src, origin: append([]int64(nil), origin...), info: in}, nil
}

func (w *window) Info() Info { return w.info }

// Unwrap returns the volume the window shows part of.
func (w *window) Unwrap() Volume { return w.src }

func (w *window) ReadRegion(ctx context.Context, box Box, dst []byte) error {
	if err := CheckRead(w.info, box, dst); err != nil {
		return err
	}
	sb := Box{Start: make([]int64, len(box.Start)), Stop: make([]int64, len(box.Stop))}
	for i := range box.Start {
		sb.Start[i] = box.Start[i] + w.origin[i]
		sb.Stop[i] = box.Stop[i] + w.origin[i]
	}
	return w.src.ReadRegion(ctx, sb, dst)
}

// stack presents equally shaped volumes as one volume with a new slowest axis
// (serial sections: one 2-D file per z).
type stack struct {
	parts []Volume
	info  Info
}

// Stack joins parts along a new leading axis named axis.Name with the given
// scale/unit. All parts must share shape and dtype.
func Stack(name string, parts []Volume, axis Axis) (Volume, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("stack %q: no parts", name)
	}
	first := parts[0].Info()
	for _, p := range parts[1:] {
		pi := p.Info()
		if pi.DType != first.DType || len(pi.Shape) != len(first.Shape) {
			return nil, fmt.Errorf("stack %q: %q is %s%v, %q is %s%v", name, first.Name, first.DType, first.Shape, pi.Name, pi.DType, pi.Shape)
		}
		for i := range pi.Shape {
			if pi.Shape[i] != first.Shape[i] {
				return nil, fmt.Errorf("stack %q: %q has shape %v, %q has %v", name, first.Name, first.Shape, pi.Name, pi.Shape)
			}
		}
	}
	axis.Size = int64(len(parts))
	in := Info{
		Name:        name,
		Shape:       append([]int64{int64(len(parts))}, first.Shape...),
		DType:       first.DType,
		Axes:        append([]Axis{axis}, first.Axes...),
		Compression: first.Compression,
		Metadata:    map[string]any{"stacked_from": len(parts)},
	}
	if first.Chunks != nil {
		in.Chunks = append([]int64{1}, first.Chunks...)
	}
	return &stack{parts: parts, info: in}, nil
}

func (s *stack) Info() Info { return s.info }

func (s *stack) ReadRegion(ctx context.Context, box Box, dst []byte) error {
	if err := CheckRead(s.info, box, dst); err != nil {
		return err
	}
	plane := Box{Start: box.Start[1:], Stop: box.Stop[1:]}
	n := plane.NumElements() * int64(s.info.DType.Size())
	for z := box.Start[0]; z < box.Stop[0]; z++ {
		off := (z - box.Start[0]) * n
		if err := s.parts[z].ReadRegion(ctx, plane, dst[off:off+n]); err != nil {
			return fmt.Errorf("stack %q: section %d: %w", s.info.Name, z, err)
		}
	}
	return nil
}
