package precomputed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/klauspost/compress/gzip"

	jpegdec "github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// layout is what a chunk decoder needs to know about its scale.
type layout struct {
	enc     string
	nc      int      // channels
	es      int      // element size in bytes
	full    [3]int64 // nominal chunk size x, y, z
	csBlock [3]int64 // compressed_segmentation block size x, y, z
	jpeg    *jpegdec.Decoder
}

// withJPEG sets the decoder of the scale's jpeg chunks and, for a jpeg
// scale, names it in the metadata: decoders differ by ±1 on some voxels.
func (v *scaleVolume) withJPEG(dec *jpegdec.Decoder) *scaleVolume {
	v.lay.jpeg = dec
	if v.lay.enc == EncJPEG {
		v.info.Metadata[volume.MetaJPEGDecoder] = dec.Name()
	}
	return v
}

// fullBytes is the decoded size of a whole (non-edge) chunk.
func (l *layout) fullBytes() int64 {
	return l.full[0] * l.full[1] * l.full[2] * int64(l.nc) * int64(l.es)
}

// encodedCap bounds the stored size of one chunk: no sane encoding of a chunk is
// four times larger than its raw form.
func (l *layout) encodedCap() int64 { return 4*l.fullBytes() + 1<<20 }

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// gunzip decompresses b, refusing output larger than limit bytes.
func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("gunzip: output exceeds %d bytes", limit)
	}
	return out, nil
}

// undecodable marks a chunk that does not decode (a truncated or damaged
// one) as format.ErrCorrupt, unless its encoding is one the reader lacks.
func undecodable(err error) error {
	if errors.Is(err, format.ErrNotSupported) || errors.Is(err, format.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %w", err, format.ErrCorrupt)
}

// gzipBytes compresses b.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b) // writes to a bytes.Buffer cannot fail
	zw.Close()
	return buf.Bytes()
}

// decode turns the stored bytes of one chunk of x, y, z shape into its samples,
// C order (c, z, y, x), little-endian. The result may alias data.
func (l *layout) decode(data []byte, shape [3]int64) ([]byte, error) {
	npix := shape[0] * shape[1] * shape[2]
	want := npix * int64(l.nc) * int64(l.es)
	// A server may hand back an object stored with Content-Encoding: gzip as is
	// (ranged or explicit requests skip Go's transparent gunzip). Only raw data
	// can legitimately start with the gzip magic, and then its length tells.
	if isGzip(data) && (l.enc != EncRaw || (int64(len(data)) != want && int64(len(data)) != l.fullBytes())) {
		var err error
		if data, err = gunzip(data, l.encodedCap()); err != nil {
			return nil, err
		}
	}
	switch l.enc {
	case EncRaw:
		switch int64(len(data)) {
		case want:
			return data, nil
		case l.fullBytes():
			// Some writers store edge chunks padded to the full chunk size.
			return l.crop(data, shape), nil
		}
		return nil, fmt.Errorf("raw chunk has %d bytes, want %d for %v×%d channel(s) of %d-byte samples", len(data), want, shape, l.nc, l.es)
	case EncCSeg:
		out := make([]byte, want)
		if err := decodeCSeg(data, shape, l.csBlock, l.nc, l.es, out); err != nil {
			return nil, err
		}
		return out, nil
	case EncJPEG:
		return l.decodeJPEG(data, shape)
	case EncPNG:
		return l.decodeImage(data, shape)
	case EncCompresso, EncJXL:
		return nil, fmt.Errorf("precomputed encoding %q has no Go decoder: %w", l.enc, format.ErrNotSupported)
	}
	return nil, fmt.Errorf("precomputed encoding %q: %w", l.enc, format.ErrNotSupported)
}

// crop extracts the x, y, z shape corner of a full-size chunk.
func (l *layout) crop(full []byte, shape [3]int64) []byte {
	es := int64(l.es)
	out := make([]byte, shape[0]*shape[1]*shape[2]*int64(l.nc)*es)
	row := shape[0] * es
	o := int64(0)
	for c := int64(0); c < int64(l.nc); c++ {
		for z := int64(0); z < shape[2]; z++ {
			for y := int64(0); y < shape[1]; y++ {
				s := (((c*l.full[2]+z)*l.full[1] + y) * l.full[0]) * es
				copy(out[o:o+row], full[s:s+row])
				o += row
			}
		}
	}
	return out
}

// decodeJPEG decodes a jpeg chunk: one 2-D image whose pixels, row by row,
// are the chunk's voxels in x, y, z order, channels interleaved, written by
// Neuroglancer, CloudVolume and tensorstore X wide and Y·Z high. The samples
// go straight into the chunk's buffer; only RGB is then made planar. Other
// geometries with as many pixels, and edge chunks stored at the full chunk
// size, are read as the PNG path reads them.
func (l *layout) decodeJPEG(data []byte, shape [3]int64) ([]byte, error) {
	if l.es != 1 || (l.nc != 1 && l.nc != 3) {
		return nil, fmt.Errorf("jpeg chunks of %d channel(s) of %d-byte samples: %w", l.nc, l.es, format.ErrNotSupported)
	}
	nc := int64(l.nc)
	c := jpegdec.Gray
	if nc == 3 {
		c = jpegdec.RGB
	}
	npix, nfull := shape[0]*shape[1]*shape[2], l.full[0]*l.full[1]*l.full[2]
	want := npix
	w, h := shape[0], shape[1]*shape[2]
	out := make([]byte, npix*nc)
	f, err := l.jpeg.Decode(jpegdec.Dst{Pix: out, Stride: int(w * nc), Width: int(w), Height: int(h), Color: c}, nil, data)
	if se := (*jpegdec.SizeError)(nil); errors.As(err, &se) {
		// The frame's pixel count decides, as it did before: the check
		// comes before any decoding, so a hostile header costs nothing.
		w, h = int64(se.Frame.Width), int64(se.Frame.Height)
		switch w * h {
		case npix:
		case nfull:
			want, out = nfull, make([]byte, nfull*nc)
		default:
			return nil, fmt.Errorf("jpeg chunk is %d×%d pixels, want %d voxels for %v", w, h, npix, shape)
		}
		f, err = l.jpeg.Decode(jpegdec.Dst{Pix: out, Stride: int(w * nc), Width: int(w), Height: int(h), Color: c}, nil, data)
	}
	if err != nil {
		return nil, fmt.Errorf("jpeg chunk: %w", err)
	}
	if int64(f.Width)*int64(f.Height) != want {
		return nil, fmt.Errorf("jpeg chunk is %d×%d pixels, want %d voxels for %v", f.Width, f.Height, npix, shape)
	}
	if nc == 3 {
		out = planarRGB(out)
	}
	if want != npix {
		return l.crop(out, shape), nil
	}
	return out, nil
}

// planarRGB turns interleaved RGB samples into three planes.
func planarRGB(in []byte) []byte {
	n := len(in) / 3
	out := make([]byte, len(in))
	for i := 0; i < n; i++ {
		out[i], out[n+i], out[2*n+i] = in[3*i], in[3*i+1], in[3*i+2]
	}
	return out
}

// decodeImage decodes a png chunk: one 2-D image whose pixels, row by row,
// are the chunk's voxels in x, y, z order, channels interleaved.
func (l *layout) decodeImage(data []byte, shape [3]int64) ([]byte, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s chunk: %w", l.enc, err)
	}
	npix := int64(cfg.Width) * int64(cfg.Height)
	full := false
	switch npix {
	case shape[0] * shape[1] * shape[2]:
	case l.full[0] * l.full[1] * l.full[2]:
		full = true
	default:
		return nil, fmt.Errorf("%s chunk is %d×%d pixels, want %d voxels for %v", l.enc, cfg.Width, cfg.Height, shape[0]*shape[1]*shape[2], shape)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s chunk: %w", l.enc, err)
	}
	out, err := planar(img, l.nc, l.es)
	if err != nil {
		return nil, fmt.Errorf("%s chunk: %w", l.enc, err)
	}
	if full && npix != shape[0]*shape[1]*shape[2] {
		return l.crop(out, shape), nil
	}
	return out, nil
}

// planar converts an image with interleaved components into nc planes of
// es-byte little-endian samples, pixels in row-major order.
func planar(img image.Image, nc, es int) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	if im, ok := img.(*image.Gray); ok && nc == 1 && es == 1 && im.Stride == w && len(im.Pix) >= n {
		return im.Pix[:n], nil // already planar: spare a copy (and an allocation) per chunk
	}
	out := make([]byte, n*nc*es)
	switch im := img.(type) {
	case *image.Gray:
		if nc == 1 && es == 1 {
			for y := 0; y < h; y++ {
				copy(out[y*w:(y+1)*w], im.Pix[y*im.Stride:])
			}
			return out, nil
		}
	case *image.Gray16:
		if nc == 1 && es == 2 {
			for y := 0; y < h; y++ {
				row := im.Pix[y*im.Stride:]
				for x := 0; x < w; x++ {
					out[2*(y*w+x)] = row[2*x+1]
					out[2*(y*w+x)+1] = row[2*x]
				}
			}
			return out, nil
		}
	case *image.YCbCr:
		if es == 1 && nc == 1 {
			// A colour JPEG read as one channel: use luma, as a
			// grayscale conversion by the decoder would.
			for y := 0; y < h; y++ {
				copy(out[y*w:(y+1)*w], im.Y[y*im.YStride:])
			}
			return out, nil
		}
		if es == 1 && nc == 3 {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					yi := im.YOffset(b.Min.X+x, b.Min.Y+y)
					ci := im.COffset(b.Min.X+x, b.Min.Y+y)
					r, g, bb := color.YCbCrToRGB(im.Y[yi], im.Cb[ci], im.Cr[ci])
					i := y*w + x
					out[i], out[n+i], out[2*n+i] = r, g, bb
				}
			}
			return out, nil
		}
	}
	if nc < 1 || nc > 4 {
		return nil, fmt.Errorf("%d channels in an image chunk (1 to 4 supported)", nc)
	}
	// Generic path: through non-premultiplied colour. Channel sets follow the
	// component counts of the image: gray, gray+alpha, RGB, RGBA.
	pick := [][]int{nil, {0}, {0, 3}, {0, 1, 2}, {0, 1, 2, 3}}[nc]
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			c := img.At(b.Min.X+x, b.Min.Y+y)
			switch es {
			case 1:
				v := color.NRGBAModel.Convert(c).(color.NRGBA)
				s := [4]uint8{v.R, v.G, v.B, v.A}
				for k, ch := range pick {
					out[k*n+i] = s[ch]
				}
			case 2:
				v := color.NRGBA64Model.Convert(c).(color.NRGBA64)
				s := [4]uint16{v.R, v.G, v.B, v.A}
				for k, ch := range pick {
					binary.LittleEndian.PutUint16(out[2*(k*n+i):], s[ch])
				}
			default:
				return nil, fmt.Errorf("image chunk with %d-byte samples", es)
			}
		}
	}
	return out, nil
}

// encode stores the samples of one chunk (C order c, z, y, x) of x, y, z shape.
func (l *layout) encode(raw []byte, shape [3]int64, quality int) ([]byte, error) {
	switch l.enc {
	case EncRaw:
		return raw, nil
	case EncCSeg:
		return encodeCSeg(raw, shape, l.csBlock, l.nc, l.es)
	case EncJPEG, EncPNG:
		return l.encodeImage(raw, shape, quality)
	}
	return nil, fmt.Errorf("writing precomputed encoding %q: %w", l.enc, format.ErrNotSupported)
}

// encodeImage writes width X, height Y*Z, the geometry tensorstore writes.
func (l *layout) encodeImage(raw []byte, shape [3]int64, quality int) ([]byte, error) {
	w, h := shape[0], shape[1]*shape[2]
	if w > 65535 || h > 65535 {
		return nil, fmt.Errorf("%s chunk of %d×%d pixels exceeds the format's 65535 limit", l.enc, w, h)
	}
	n := int(w * h)
	rect := image.Rect(0, 0, int(w), int(h))
	var img image.Image
	switch {
	case l.nc == 1 && l.es == 1:
		img = &image.Gray{Pix: raw, Stride: int(w), Rect: rect}
	case l.nc == 1 && l.es == 2 && l.enc == EncPNG:
		g := image.NewGray16(rect)
		for i := 0; i < n; i++ {
			g.Pix[2*i], g.Pix[2*i+1] = raw[2*i+1], raw[2*i]
		}
		img = g
	case (l.nc == 3 || (l.nc == 4 && l.enc == EncPNG)) && l.es == 1:
		m := image.NewNRGBA(rect)
		for i := 0; i < n; i++ {
			m.Pix[4*i+3] = 255
			for c := 0; c < l.nc; c++ {
				m.Pix[4*i+c] = raw[c*n+i]
			}
		}
		img = m
	default:
		return nil, fmt.Errorf("%s chunks of %d channel(s) of %d-byte samples: %w", l.enc, l.nc, l.es, format.ErrNotSupported)
	}
	var buf bytes.Buffer
	var err error
	if l.enc == EncJPEG {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s chunk: %w", l.enc, err)
	}
	return buf.Bytes(), nil
}
