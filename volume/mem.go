package volume

import (
	"context"
	"fmt"
)

// Mem is a volume held in memory: the reference implementation the conformance
// suite compares readers with, and a convenient sink for small crops.
type Mem struct {
	info Info
	data []byte
}

// NewMem wraps data (C order, little-endian) as a volume. It fails when data
// does not hold exactly the elements info describes.
func NewMem(info Info, data []byte) (*Mem, error) {
	if err := info.Validate(); err != nil {
		return nil, err
	}
	if int64(len(data)) != info.NumBytes() {
		return nil, fmt.Errorf("volume %q: %d bytes for %v %s (%d bytes): %w", info.Name, len(data), info.Shape, info.DType, info.NumBytes(), ErrBufferSize)
	}
	return &Mem{info: info, data: data}, nil
}

// Info implements Volume.
func (m *Mem) Info() Info { return m.info }

// Bytes returns the backing array.
func (m *Mem) Bytes() []byte { return m.data }

// ReadRegion implements Volume.
func (m *Mem) ReadRegion(ctx context.Context, box Box, dst []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckRead(m.info, box, dst); err != nil {
		return err
	}
	if box.Empty() {
		return nil
	}
	CopyBox(dst, box, m.data, Full(m.info.Shape), box, m.info.DType.Size())
	return nil
}

// WriteRegion implements Writer.
func (m *Mem) WriteRegion(ctx context.Context, box Box, src []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckRead(m.info, box, src); err != nil {
		return err
	}
	if box.Empty() {
		return nil
	}
	CopyBox(m.data, Full(m.info.Shape), src, box, box, m.info.DType.Size())
	return nil
}

// Close implements Writer.
func (m *Mem) Close(context.Context) error { return nil }
