// Package volume is the array abstraction every format reader implements: an
// n-dimensional array with a dtype, named physical axes and a chunk grid, read by
// region. Crop, convert, catalog, thumbnails and the block server are written once
// against this package; it names no format.
//
// Conventions, fixed for every implementation:
//   - shapes, boxes and axes are in C order (slowest first), as numpy shows them;
//   - ReadRegion fills dst with the box's elements in C order, little-endian;
//   - axis names are z, y, x, c, t (or a format's own name when it has no spatial meaning);
//   - Scale and Offset are in the axis Unit (see ToNanometres for space units).
package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// DType is a numpy dtype as str(dtype) spells it: uint8, int16, float32,
// complex64, bool, ...; fixed-width strings as "<U13" and "|S5" (see
// FixedString); records in the structured form (RGBA8).
type DType string

// The element types a volume can hold.
const (
	Bool       DType = "bool"
	Int8       DType = "int8"
	Uint8      DType = "uint8"
	Int16      DType = "int16"
	Uint16     DType = "uint16"
	Int32      DType = "int32"
	Uint32     DType = "uint32"
	Int64      DType = "int64"
	Uint64     DType = "uint64"
	Float16    DType = "float16"
	Float32    DType = "float32"
	Float64    DType = "float64"
	Complex64  DType = "complex64"
	Complex128 DType = "complex128"
	// RGBA8 is four uint8 samples per element, R, G, B, A, stored as one
	// 4-byte record. Its name is numpy's for the structured dtype that
	// hyperspy/rosettasciio give DM RGB and RGBA images (str(dtype); the
	// dtype's .name, "void32", would not say what the bytes are).
	RGBA8 DType = "[('R', 'u1'), ('G', 'u1'), ('B', 'u1'), ('A', 'u1')]"
)

// MaxStringChars bounds the length of a fixed-width string dtype, so that
// one element of a hostile file's dtype cannot be gigabytes.
const MaxStringChars = 1 << 20

// FixedString returns numpy's fixed-width string dtype of n characters:
// kind 'S' is bytes ("|S5", n bytes an element), kind 'U' is text ("<U13",
// n UCS-4 code points an element, little-endian as every volume's elements
// are). Elements shorter than n are padded with NULs, which numpy strips
// when it reads them. It returns "" for another kind or for n outside
// 1..MaxStringChars.
func FixedString(kind byte, n int) DType {
	if n < 1 || n > MaxStringChars {
		return ""
	}
	switch kind {
	case 'S':
		return DType("|S" + strconv.Itoa(n))
	case 'U':
		return DType("<U" + strconv.Itoa(n))
	}
	return ""
}

// FixedString reports whether d is a fixed-width string dtype (see the
// function FixedString), with its kind, 'S' or 'U', and its length in
// characters. Such arrays have no numeric value: Value is false for them.
func (d DType) FixedString() (kind byte, n int, ok bool) {
	s := string(d)
	if len(s) < 3 || !(s[:2] == "|S" || s[:2] == "<U") {
		return 0, 0, false
	}
	n, err := strconv.Atoi(s[2:])
	if err != nil || FixedString(s[1], n) != d {
		return 0, 0, false
	}
	return s[1], n, true
}

// Size returns the element size in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case Bool, Int8, Uint8:
		return 1
	case Int16, Uint16, Float16:
		return 2
	case Int32, Uint32, Float32, RGBA8:
		return 4
	case Int64, Uint64, Float64, Complex64:
		return 8
	case Complex128:
		return 16
	}
	if kind, n, ok := d.FixedString(); ok {
		if kind == 'U' {
			return 4 * n
		}
		return n
	}
	return 0
}

// Valid reports whether d is a known dtype.
func (d DType) Valid() bool { return d.Size() > 0 }

// Axis describes one dimension.
type Axis struct {
	Name   string  `json:"name"`
	Size   int64   `json:"size"`
	Scale  float64 `json:"scale"`  // physical step per index, in Unit; 1 when unknown
	Offset float64 `json:"offset"` // physical position of index 0, in Unit
	Unit   string  `json:"unit"`   // as the file states it ("nm", "µm", "nanometer", ...); "" when none
	// ScaleKnown is false when the file carries no calibration for this axis, so
	// Scale is a placeholder 1 that must never be reported as a measurement.
	ScaleKnown bool `json:"-"`
}

// Info is what a volume says about itself.
type Info struct {
	Name        string
	Shape       []int64 // C order
	DType       DType
	Axes        []Axis  // same length as Shape
	Chunks      []int64 // storage chunk (or strip/tile-derived block) shape; nil when unchunked
	Compression string  // e.g. "none", "zstd", "deflate", "jpeg"
	// Acquisition is what the file states about how the image was
	// recorded, typed; its zero value states nothing.
	Acquisition Acquisition
	// Metadata holds format-specific facts worth surfacing as JSON (vendor
	// tag trees, provenance notes); values must be JSON-encodable. The
	// acquisition facts it shows are copies: code reads Acquisition.
	Metadata map[string]any
}

// MetaJPEGDecoder is the Info.Metadata key naming the JPEG decoder that
// produces a JPEG-compressed volume's values ("libjpeg-turbo 2.1.5",
// "image/jpeg (fallback)"): decoders differ by ±1 on a few percent of the
// samples, so the catalog and every output made from it say which one.
const MetaJPEGDecoder = "jpeg_decoder"

// NumElements is the product of Shape.
func (in Info) NumElements() int64 { return Prod(in.Shape) }

// NumBytes is the decoded size in bytes.
func (in Info) NumBytes() int64 { return in.NumElements() * int64(in.DType.Size()) }

// Validate checks the internal consistency every reader must guarantee.
func (in Info) Validate() error {
	if !in.DType.Valid() {
		return fmt.Errorf("volume %q: unknown dtype %q", in.Name, in.DType)
	}
	if len(in.Axes) != len(in.Shape) {
		return fmt.Errorf("volume %q: %d axes for %d dimensions", in.Name, len(in.Axes), len(in.Shape))
	}
	for i, s := range in.Shape {
		if s < 0 {
			return fmt.Errorf("volume %q: negative size %d on axis %d", in.Name, s, i)
		}
		if in.Axes[i].Size != s {
			return fmt.Errorf("volume %q: axis %q size %d != shape %d", in.Name, in.Axes[i].Name, in.Axes[i].Size, s)
		}
	}
	if in.Chunks != nil && len(in.Chunks) != len(in.Shape) {
		return fmt.Errorf("volume %q: chunk rank %d != rank %d", in.Name, len(in.Chunks), len(in.Shape))
	}
	for _, c := range in.Chunks {
		if c <= 0 {
			return fmt.Errorf("volume %q: chunk size %d", in.Name, c)
		}
	}
	return nil
}

// Volume is implemented by every format reader.
type Volume interface {
	// Info describes the array. It is cheap and does no I/O.
	Info() Info
	// ReadRegion fills dst (exactly box.NumElements()*dtype size bytes) with the
	// box's elements in C order, little-endian. Implementations read only the
	// storage units the box touches and are safe for concurrent use.
	ReadRegion(ctx context.Context, box Box, dst []byte) error
}

// Writer receives regions of a volume being written (OME-Zarr, TIFF, ...).
type Writer interface {
	Info() Info
	// WriteRegion stores src (C order, little-endian) at box. Boxes passed by
	// Copy are aligned to Info().Chunks when the writer has chunks.
	WriteRegion(ctx context.Context, box Box, src []byte) error
	// Close flushes metadata; the output is complete only after it returns nil.
	Close(ctx context.Context) error
}

// ErrOutOfBounds is wrapped when a box does not fit in the volume.
var ErrOutOfBounds = errors.New("region out of bounds")

// ErrBufferSize is wrapped when dst has the wrong length.
var ErrBufferSize = errors.New("buffer size does not match region")

// CheckRead validates the arguments of a ReadRegion call; readers call it first.
func CheckRead(in Info, box Box, dst []byte) error {
	if err := box.Within(in.Shape); err != nil {
		return fmt.Errorf("volume %q: %w", in.Name, err)
	}
	want := box.NumElements() * int64(in.DType.Size())
	if int64(len(dst)) != want {
		return fmt.Errorf("volume %q: dst has %d bytes, box %v needs %d: %w", in.Name, len(dst), box, want, ErrBufferSize)
	}
	return nil
}

// Prod multiplies a shape.
func Prod(s []int64) int64 {
	p := int64(1)
	for _, v := range s {
		p *= v
	}
	return p
}

// Value reads one little-endian element of type d from b as a float64, for
// statistics and display. ok is false for types without a single real value
// (complex, RGBA8, strings).
func (d DType) Value(b []byte) (v float64, ok bool) {
	le := binary.LittleEndian
	switch d {
	case Bool, Uint8:
		return float64(b[0]), true
	case Int8:
		return float64(int8(b[0])), true
	case Uint16:
		return float64(le.Uint16(b)), true
	case Int16:
		return float64(int16(le.Uint16(b))), true
	case Uint32:
		return float64(le.Uint32(b)), true
	case Int32:
		return float64(int32(le.Uint32(b))), true
	case Uint64:
		return float64(le.Uint64(b)), true
	case Int64:
		return float64(int64(le.Uint64(b))), true
	case Float16:
		return Float16ToFloat64(le.Uint16(b)), true
	case Float32:
		return float64(math.Float32frombits(le.Uint32(b))), true
	case Float64:
		return math.Float64frombits(le.Uint64(b)), true
	}
	return 0, false
}

// Unwrapper is implemented by views that show another volume's voxel values
// unchanged (a new physical frame, a window): facts a format keeps about the
// volume underneath, such as an NGFF label image's colours, still hold for
// the view, and As finds that volume through any number of such views.
type Unwrapper interface {
	Unwrap() Volume
}

// As returns the first volume in v's chain of views (v itself, then what
// each Unwrapper shows) that is a T.
func As[T any](v Volume) (T, bool) {
	for v != nil {
		if t, ok := v.(T); ok {
			return t, true
		}
		u, ok := v.(Unwrapper)
		if !ok {
			break
		}
		v = u.Unwrap()
	}
	var zero T
	return zero, false
}
