package tiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"
	"golang.org/x/image/tiff/lzw"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/codec/jpeg"
)

func codecSupported(c int) bool {
	switch c {
	case 1, 5, 7, 8, 32946, 32773, 50000, 34926:
		return true
	}
	return false
}

// decompress expands one chunk to at most want bytes. The output never grows
// past want (limit, for zstd), whatever the compressed stream claims, so a
// decompression bomb costs no more memory than an honest chunk.
//
// limit (≥ want) is the size of a full chunk: some writers pad the last
// strip to its full rows, which a zstd frame then states, and the rows past
// want are dropped as libtiff drops them. zstd frames go through cs, whose
// pooled decoders take the window the encoder chose (libtiff streams with
// libzstd's default of several MiB): a window is history the decoder may
// keep, not a size the strip reaches, so it does not bound the output.
func decompress(cs *codec.Codecs, comp int, src []byte, want, limit int64) ([]byte, error) {
	switch comp {
	case 1:
		return src, nil
	case 32773:
		return unpackBits(src, want)
	case 5:
		// Old-style (pre-TIFF 6) LSB LZW is not handled; it fails as corrupt data.
		rc := lzw.NewReader(bytes.NewReader(src), lzw.MSB, 8)
		defer rc.Close()
		return readUpTo(rc, want)
	case 8, 32946:
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("deflate: %w", err)
		}
		defer zr.Close()
		return readUpTo(zr, want)
	case 50000, 34926:
		out, err := cs.DecodeInto("zstd", make([]byte, 0, max(limit, want)), src)
		if err != nil {
			return nil, err
		}
		return out[:min(int64(len(out)), want)], nil
	}
	return nil, fmt.Errorf("compression %s: not implemented", compressionName(comp))
}

// readUpTo reads at most want bytes. A stream that ends early or fails after
// delivering want bytes is accepted, as libtiff does, because many writers
// omit the LZW end code or pad chunks.
func readUpTo(r io.Reader, want int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, want))
	if err != nil && n < want {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unpackBits decodes PackBits, stopping at want bytes.
func unpackBits(src []byte, want int64) ([]byte, error) {
	out := make([]byte, 0, min(want, int64(len(src))*2+16))
	for i := 0; i < len(src) && int64(len(out)) < want; {
		n := int(int8(src[i]))
		i++
		switch {
		case n >= 0:
			end := i + n + 1
			if end > len(src) {
				end = len(src)
			}
			out = append(out, src[i:end]...)
			i = end
		case n == -128:
		default:
			if i >= len(src) {
				return out, nil
			}
			for k := 0; k < 1-n; k++ {
				out = append(out, src[i])
			}
			i++
		}
	}
	if int64(len(out)) > want {
		out = out[:want]
	}
	return out, nil
}

var errShortChunk = errors.New("decoded chunk is shorter than its rows")

// rowDecoder turns stored chunk rows into little-endian elements.
type rowDecoder struct {
	bo        binary.ByteOrder
	bps       int
	elem      int
	predictor int
	stride    int // samples between neighbours for the horizontal predictor
	float     bool
}

// decodeRows converts nrows stored rows (each inRow bytes) into out (each
// outRow bytes). in and out may not alias.
func (d *rowDecoder) decodeRows(in []byte, inRow int64, out []byte, outRow int64, nrows int64) error {
	if int64(len(in)) < nrows*inRow || int64(len(out)) < nrows*outRow {
		return errShortChunk
	}
	for r := int64(0); r < nrows; r++ {
		src := in[r*inRow : (r+1)*inRow]
		dst := out[r*outRow : (r+1)*outRow]
		switch {
		case d.bps%8 != 0:
			unpackRow(dst, src, d.bps, d.elem)
		case d.predictor == 3:
			floatPredictRow(dst, src, d.elem, d.stride)
			continue // the predictor already produced native (little-endian) order
		default:
			copy(dst, src)
			swapToLE(dst, d.bo, d.elem)
		}
		if d.predictor == 2 {
			accumulate(dst, d.elem, d.stride)
		}
	}
	return nil
}

// swapToLE reverses each element when the file is big-endian.
func swapToLE(b []byte, bo binary.ByteOrder, elem int) {
	if bo == binary.LittleEndian || elem == 1 {
		return
	}
	codec.SwapBytes(b, elem)
}

// accumulate undoes horizontal differencing on one little-endian row.
func accumulate(b []byte, elem, stride int) {
	le := binary.LittleEndian
	n := len(b) / elem
	switch elem {
	case 1:
		for i := stride; i < n; i++ {
			b[i] += b[i-stride]
		}
	case 2:
		for i := stride; i < n; i++ {
			le.PutUint16(b[2*i:], le.Uint16(b[2*i:])+le.Uint16(b[2*(i-stride):]))
		}
	case 4:
		for i := stride; i < n; i++ {
			le.PutUint32(b[4*i:], le.Uint32(b[4*i:])+le.Uint32(b[4*(i-stride):]))
		}
	case 8:
		for i := stride; i < n; i++ {
			le.PutUint64(b[8*i:], le.Uint64(b[8*i:])+le.Uint64(b[8*(i-stride):]))
		}
	}
}

// floatPredictRow undoes the floating-point predictor (TIFF Technical Note 3):
// bytes are differenced across the row with a stride of samples-per-pixel,
// then the row holds byte planes, most significant first.
func floatPredictRow(dst, src []byte, elem, stride int) {
	n := len(src)
	acc := make([]byte, n)
	copy(acc, src)
	for i := stride; i < n; i++ {
		acc[i] += acc[i-stride]
	}
	wc := n / elem
	for c := 0; c < wc; c++ {
		for b := 0; b < elem; b++ {
			dst[c*elem+b] = acc[(elem-b-1)*wc+c]
		}
	}
}

// unpackRow expands big-endian bit-packed samples to bytes or little-endian
// uint16, one element per sample.
func unpackRow(dst, src []byte, bps, elem int) {
	n := len(dst) / elem
	var bit int
	for i := 0; i < n; i++ {
		var v uint32
		for k := 0; k < bps; k++ {
			byteI := bit >> 3
			var b uint32
			if byteI < len(src) {
				b = uint32(src[byteI]>>(7-uint(bit&7))) & 1
			}
			v = v<<1 | b
			bit++
		}
		if elem == 1 {
			dst[i] = byte(v)
		} else {
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(v))
		}
	}
}

// maxJPEGTables bounds the JPEGTables tag (a few hundred bytes in practice).
const maxJPEGTables = 1 << 20

// decodeJPEG decodes one JPEG-compressed (compression 7) strip or tile into
// rows of w×spp 8-bit samples, h rows, with dec. The file's JPEGTables, when
// present, are spliced in front of the chunk's stream, as libtiff does for
// abbreviated streams. As in libtiff, three components are converted from
// YCbCr to RGB only when the photometric interpretation says YCbCr (ycbcr);
// otherwise they are the stored components as they are.
func decodeJPEG(dec *jpeg.Decoder, tables, src []byte, w, h, spp int64, ycbcr bool) ([]byte, error) {
	if spp != 1 && spp != 3 {
		return nil, fmt.Errorf("jpeg: %d samples per pixel", spp)
	}
	c := jpeg.Stored
	if ycbcr {
		c = jpeg.RGB
	}
	out := make([]byte, w*h*spp)
	_, err := dec.Decode(jpeg.Dst{Pix: out, Stride: int(w * spp), Width: int(w), Height: int(h), Color: c, Components: int(spp)}, tables, src)
	var se *jpeg.SizeError
	if errors.As(err, &se) && int64(se.Frame.Width) <= w+16 && int64(se.Frame.Height) <= h+16 {
		// A frame rounded up past the chunk by less than an MCU: decode it
		// whole and keep the chunk's corner. The bound keeps a hostile
		// header from costing more than the chunk and its margin.
		fw, fh := int64(se.Frame.Width), int64(se.Frame.Height)
		frame := make([]byte, fw*fh*spp)
		if _, err = dec.Decode(jpeg.Dst{Pix: frame, Stride: int(fw * spp), Width: int(fw), Height: int(fh), Color: c, Components: int(spp)}, tables, src); err == nil {
			for y := int64(0); y < min(h, fh); y++ {
				copy(out[y*w*spp:(y*w+min(w, fw))*spp], frame[y*fw*spp:])
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
