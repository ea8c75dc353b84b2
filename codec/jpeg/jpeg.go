// Package jpeg decodes baseline and progressive 8-bit JPEG streams straight
// into a caller's buffer, for every reader that meets JPEG (precomputed
// "jpeg" chunks, TIFF compression 7 with JPEGTables). One Decoder serves a
// whole process; it is safe for concurrent use.
//
// # Two implementations
//
// A Decoder is backed by libjpeg-turbo's TurboJPEG API (libturbojpeg.so.0)
// when the process can load it, else by the standard library's image/jpeg.
// The two differ by ±1 on about 2% of the samples of real EM texture
// (different inverse DCTs and chroma upsampling), so Name says which one
// produced a volume's values and the readers record it. libjpeg-turbo is the
// decoder of the tools the field uses (PIL, CloudVolume's simplejpeg,
// tensorstore): with it, the samples equal theirs exactly, at about 3.5×
// image/jpeg's rate per core.
//
// # Why the library is loaded at run time (purego), not linked with cgo
//
// The library is opened with dlopen through github.com/ebitengine/purego,
// and its functions are called with purego.SyscallN. This was chosen
// over a cgo wrapper of jpeglib.h because a cgo wrapper is compiled and
// linked at build time: `go run ./cmd/imgdataset` would then need a C
// compiler, the libjpeg headers and the library on every machine that
// builds the tool, and would fail to build where one is missing. Loaded at
// run time, nothing is needed to build; a machine without the library
// decodes with image/jpeg and says so. TurboJPEG (rather than jpeglib.h
// through purego) because it reports errors by return value: jpeglib's
// default error handler calls exit(), and catching it needs setjmp/longjmp
// in C, which cannot be written without cgo.
//
// The binding is compiled only when cgo is enabled (the default where a C
// compiler is installed; the Go runtime's own cgo support is then linked
// anyway, by package net). A CGO_ENABLED=0 build always uses image/jpeg:
// purego would otherwise replace the runtime's thread start with its
// fakecgo shim and make the binary dynamically linked against libc, and a
// CGO_ENABLED=0 build is asked for precisely to get a static binary.
//
// The per-call overhead of purego (a cgo call, tens of nanoseconds) is
// immaterial next to a chunk decode (about 1 ms for 64³ voxels);
// BenchmarkCallOverhead measures it.
//
// # Choosing the implementation
//
// The environment variable IMGDATASET_JPEG (see EnvVar) forces one:
// "go" for image/jpeg, "libjpeg-turbo" to prefer the library (the default,
// which also falls back when it is missing). Tests and benchmarks compare
// the two this way.
//
// # Bad input
//
// The frame size a stream declares is checked against the caller's buffer
// before anything is decoded, so a hostile header cannot make the decoder
// allocate more than the caller's chunk. libjpeg-turbo's warnings (a
// truncated stream, corrupt entropy-coded data) stop the decode and are
// errors, as image/jpeg's are: a damaged chunk must not be read as grey
// fill. Progressive streams are limited to 500 scans.
package jpeg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"os"
)

// EnvVar names the environment variable that chooses the implementation:
// "go" forces image/jpeg, "libjpeg-turbo" (or empty) uses libjpeg-turbo
// when it can be loaded.
const EnvVar = "IMGDATASET_JPEG"

// Implementations, as EnvVar and New take them.
const (
	ImplAuto  = ""
	ImplGo    = "go"
	ImplTurbo = "libjpeg-turbo"
)

// GoName is Name of a Decoder backed by image/jpeg.
const GoName = "image/jpeg (fallback)"

// ErrTooLarge is wrapped (inside a *SizeError) when a stream declares a
// frame larger than the caller's rectangle.
var ErrTooLarge = errors.New("JPEG frame larger than the buffer")

// ErrUnsupported is wrapped when a stream is valid JPEG of a kind this
// package does not decode (CMYK, 12-bit, unusual sampling for raw output).
var ErrUnsupported = errors.New("JPEG variant not supported")

// ErrCorrupt is wrapped when a stream is not valid JPEG: bad markers, a
// truncated stream, corrupt entropy-coded data.
var ErrCorrupt = errors.New("corrupt JPEG stream")

// Color says what a decode writes per pixel.
type Color int

const (
	// Gray writes one byte per pixel: the sample of a grayscale stream, or
	// the luma (Y) of a YCbCr one.
	Gray Color = iota
	// RGB writes three bytes per pixel; YCbCr streams are converted.
	RGB
	// Stored writes the components as stored, as many bytes per pixel as
	// the stream has components (1 or 3), without colour conversion: what
	// libtiff returns for a JPEG TIFF whose photometric is not YCbCr.
	Stored
)

// Frame is what a stream's header declares.
type Frame struct {
	Width, Height int
	Components    int // 1 (grayscale) or 3
}

// SizeError reports a frame that does not fit the caller's rectangle; it
// wraps ErrTooLarge.
type SizeError struct {
	Frame         Frame
	Width, Height int // the caller's rectangle
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("JPEG frame of %dx%d pixels does not fit a %dx%d buffer", e.Frame.Width, e.Frame.Height, e.Width, e.Height)
}

func (e *SizeError) Unwrap() error { return ErrTooLarge }

// Dst is the caller's buffer: Width × Height pixels, row y starting at
// Pix[y*Stride].
type Dst struct {
	Pix           []byte
	Stride        int
	Width, Height int
	Color         Color
	// Components, when not 0, is the number of components the stream must
	// have (a TIFF's SamplesPerPixel); another number is an error found
	// before decoding.
	Components int
}

// Decoder decodes JPEG streams. The zero value is not usable; use New or
// Default. A Decoder is safe for concurrent use.
type Decoder struct {
	turbo *turbo // nil: image/jpeg
	name  string
	why   string // why image/jpeg is used, when it is
}

// New returns a Decoder of the given implementation (ImplAuto, ImplGo or
// ImplTurbo). ImplTurbo fails when libjpeg-turbo cannot be loaded; ImplAuto
// then falls back to image/jpeg, and Fallback says why.
func New(impl string) (*Decoder, error) {
	switch impl {
	case ImplGo:
		return &Decoder{name: GoName, why: EnvVar + "=" + ImplGo}, nil
	case ImplAuto, ImplTurbo:
		t, err := loadTurbo()
		if err == nil {
			return &Decoder{turbo: t, name: t.name}, nil
		}
		if impl == ImplTurbo {
			return nil, err
		}
		return &Decoder{name: GoName, why: err.Error()}, nil
	}
	return nil, fmt.Errorf("JPEG decoder %q: want %q or %q", impl, ImplGo, ImplTurbo)
}

// Default returns the Decoder $IMGDATASET_JPEG asks for; a value it does
// not understand, or a library that cannot be loaded, gives image/jpeg
// with the reason in Fallback.
func Default() *Decoder {
	impl := os.Getenv(EnvVar)
	d, err := New(impl)
	if err != nil {
		return &Decoder{name: GoName, why: fmt.Sprintf("%s=%s: %v", EnvVar, impl, err)}
	}
	return d
}

// Name says which implementation decodes: "libjpeg-turbo 2.1.5" (the
// version as the library states it) or GoName.
func (d *Decoder) Name() string { return d.name }

// Fallback is why image/jpeg is used instead of libjpeg-turbo, or "" when
// it is not.
func (d *Decoder) Fallback() string { return d.why }

// Close releases the pooled libjpeg-turbo handles. The Decoder stays usable.
func (d *Decoder) Close() {
	if d.turbo != nil {
		d.turbo.drain()
	}
}

// Decode decodes the JPEG stream src into dst. tables, when not empty, is
// an abbreviated table specification (TIFF's JPEGTables: SOI, DQT/DHT…,
// EOI) that src, an abbreviated image stream, relies on. The frame is
// written to the top-left corner of dst's rectangle and must fit in it;
// rows and columns of the rectangle past the frame are left as they were.
// Errors wrap ErrCorrupt, ErrUnsupported or ErrTooLarge (as *SizeError).
func (d *Decoder) Decode(dst Dst, tables, src []byte) (Frame, error) {
	if dst.Width < 0 || dst.Height < 0 || dst.Color < Gray || dst.Color > Stored {
		return Frame{}, fmt.Errorf("jpeg: bad destination %dx%d colour %d", dst.Width, dst.Height, dst.Color)
	}
	stream := splice(tables, src)
	if d.turbo != nil {
		return d.turbo.decode(dst, stream)
	}
	return decodeGo(dst, stream)
}

// splice joins TIFF's JPEGTables and an abbreviated stream into one
// interchange stream: SOI, the tables' segments, then the stream after its
// SOI. Both decoders then read it as an ordinary JPEG.
func splice(tables, src []byte) []byte {
	if len(tables) < 4 || len(src) < 2 || src[0] != 0xFF || src[1] != 0xD8 || tables[0] != 0xFF || tables[1] != 0xD8 {
		return src
	}
	end := len(tables)
	if tables[end-2] == 0xFF && tables[end-1] == 0xD9 {
		end -= 2
	}
	s := make([]byte, 0, end+len(src)-2)
	return append(append(s, tables[:end]...), src[2:]...)
}

// bytesPer is the number of bytes a pixel takes in dst for a frame of n
// components.
func (c Color) bytesPer(n int) int {
	switch c {
	case Gray:
		return 1
	case RGB:
		return 3
	}
	return n
}

// check validates a frame against the caller's buffer before any decoding.
func check(dst Dst, f Frame) error {
	if f.Components != 1 && f.Components != 3 {
		return fmt.Errorf("jpeg: %d components: %w", f.Components, ErrUnsupported)
	}
	if dst.Components != 0 && f.Components != dst.Components {
		return fmt.Errorf("jpeg: %d component(s) in a stream for %d samples per pixel: %w", f.Components, dst.Components, ErrCorrupt)
	}
	if f.Width <= 0 || f.Height <= 0 {
		return fmt.Errorf("jpeg: empty %dx%d frame: %w", f.Width, f.Height, ErrCorrupt)
	}
	if f.Width > dst.Width || f.Height > dst.Height {
		return &SizeError{Frame: f, Width: dst.Width, Height: dst.Height}
	}
	bpp := dst.Color.bytesPer(f.Components)
	if dst.Stride < f.Width*bpp || len(dst.Pix) < (f.Height-1)*dst.Stride+f.Width*bpp {
		return fmt.Errorf("jpeg: a %dx%d frame of %d-byte pixels needs %d bytes at stride %d, buffer has %d",
			f.Width, f.Height, bpp, (f.Height-1)*dst.Stride+f.Width*bpp, dst.Stride, len(dst.Pix))
	}
	return nil
}

// decodeGo is the image/jpeg implementation of Decode.
func decodeGo(dst Dst, stream []byte) (Frame, error) {
	cfg, err := stdjpeg.DecodeConfig(bytes.NewReader(stream))
	if err != nil {
		return Frame{}, goErr(err)
	}
	f := Frame{Width: cfg.Width, Height: cfg.Height, Components: 3}
	switch cfg.ColorModel {
	case color.GrayModel:
		f.Components = 1
	case color.CMYKModel:
		f.Components = 4
	}
	if err := check(dst, f); err != nil {
		return f, err
	}
	img, err := stdjpeg.Decode(bytes.NewReader(stream))
	if err != nil {
		return f, goErr(err)
	}
	b := img.Bounds()
	if b.Dx() != f.Width || b.Dy() != f.Height {
		return f, fmt.Errorf("jpeg: decoded %dx%d, header said %dx%d: %w", b.Dx(), b.Dy(), f.Width, f.Height, ErrCorrupt)
	}
	bpp := dst.Color.bytesPer(f.Components)
	for y := 0; y < f.Height; y++ {
		row := dst.Pix[y*dst.Stride : y*dst.Stride+f.Width*bpp]
		switch m := img.(type) {
		case *image.Gray:
			src := m.Pix[y*m.Stride : y*m.Stride+f.Width]
			if bpp == 1 {
				copy(row, src)
				continue
			}
			for x, v := range src {
				row[3*x], row[3*x+1], row[3*x+2] = v, v, v
			}
		case *image.YCbCr:
			if dst.Color == Gray {
				copy(row, m.Y[y*m.YStride:y*m.YStride+f.Width])
				continue
			}
			for x := 0; x < f.Width; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := m.Y[yi], m.Cb[ci], m.Cr[ci]
				if dst.Color == RGB {
					r, g, bl = color.YCbCrToRGB(r, g, bl)
				}
				row[3*x], row[3*x+1], row[3*x+2] = r, g, bl
			}
		case *image.RGBA:
			p := m.Pix[y*m.Stride:]
			for x := 0; x < f.Width; x++ {
				if dst.Color == Gray {
					row[x] = color.GrayModel.Convert(color.RGBA{p[4*x], p[4*x+1], p[4*x+2], 255}).(color.Gray).Y
					continue
				}
				row[3*x], row[3*x+1], row[3*x+2] = p[4*x], p[4*x+1], p[4*x+2]
			}
		default:
			return f, fmt.Errorf("jpeg: colour model %T: %w", img, ErrUnsupported)
		}
	}
	return f, nil
}

// goErr classifies an image/jpeg error.
func goErr(err error) error {
	var ue stdjpeg.UnsupportedError
	if errors.As(err, &ue) {
		return fmt.Errorf("jpeg: %w: %w", err, ErrUnsupported)
	}
	return fmt.Errorf("jpeg: %w: %w", err, ErrCorrupt)
}
