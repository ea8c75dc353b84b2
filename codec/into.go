package codec

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DecodeInto decompresses src with the codec id into the memory of dst and
// returns dst[:n], n being the decoded size. cap(dst) is the maximum: data that
// decodes to more fails (with ErrTooLarge, except for zstd frames without a
// content size, whose overflow the decoder reports as a block error), so the
// caller passes a buffer whose capacity is the expected size, normally a
// chunk's. len(dst) is ignored.
//
// The result always shares dst's backing array, which lets a caller reuse one
// buffer for many chunks, or decode straight into its destination. What dst
// holds past n, and all of it after an error, is unspecified. Codec ids and
// mislabelled data are handled as in Decode.
func (c *Codecs) DecodeInto(id string, dst, src []byte) ([]byte, error) {
	id = resolve(id, src)
	dst = dst[:0]
	var out []byte
	var err error
	switch id {
	case "raw":
		if len(src) > cap(dst) {
			return nil, fmt.Errorf("codec raw: %d bytes: %w (%d)", len(src), ErrTooLarge, cap(dst))
		}
		out = append(dst, src...)
	case "zstd":
		out, err = c.zstdInto(dst, src)
	case "gzip":
		out, err = c.gzipInto(dst, src)
	case "zlib":
		out, err = c.zlibInto(dst, src)
	case "bz2":
		out, err = readInto(bzip2.NewReader(bytes.NewReader(src)), dst)
	case "lz4":
		out, err = lz4Into(dst, src)
	case "blosc":
		out, err = c.bloscInto(dst, src, 0)
	default:
		return nil, fmt.Errorf("codec %q: %w", id, ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("codec %s: %w", id, err)
	}
	if len(out) > 0 && &out[0] != &dst[:1][0] {
		// No decoder above moves the output (each stops at cap(dst)); this
		// keeps the promise should a dependency ever do so.
		if len(out) > cap(dst) {
			return nil, fmt.Errorf("codec %s: %w (%d)", id, ErrTooLarge, cap(dst))
		}
		out = append(dst, out...)
	}
	return out, nil
}

// zstdInto decodes src into dst's capacity.
func (c *Codecs) zstdInto(dst, src []byte) ([]byte, error) {
	// Frames that state their content size are checked before any work.
	var h zstd.Header
	if err := h.Decode(src); err == nil && h.HasFCS && h.FrameContentSize > uint64(cap(dst)) {
		return nil, fmt.Errorf("frame declares %d bytes: %w (%d)", h.FrameContentSize, ErrTooLarge, cap(dst))
	}
	if l := c.libzstd(); l != nil {
		return l.decodeInto(dst, src)
	}
	zdec, err := c.zstdDecoder()
	if err != nil {
		return nil, err
	}
	// With the cap limit, DecodeAll never grows dst beyond its capacity, which
	// also bounds frames without a content size.
	out, err := zdec.DecodeAll(src, dst[:0])
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return nil, fmt.Errorf("%w (%d): %w", ErrTooLarge, cap(dst), err)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// gzipInto decodes a gzip stream (members concatenated, as gzip allows) with
// a pooled reader.
func (c *Codecs) gzipInto(dst, src []byte) ([]byte, error) {
	br := bytes.NewReader(src)
	r, _ := c.gzReaders.Get().(*gzip.Reader)
	var err error
	if r == nil {
		r, err = gzip.NewReader(br)
	} else {
		err = r.Reset(br)
	}
	if err != nil {
		if r != nil {
			c.gzReaders.Put(r)
		}
		return nil, err
	}
	// The pooled reader keeps a reference to src until its next Reset; the
	// pool is emptied by the garbage collector, so that is bounded.
	out, err := readInto(r, dst)
	c.gzReaders.Put(r)
	return out, err
}

// zlibInto decodes a zlib stream with a pooled reader.
func (c *Codecs) zlibInto(dst, src []byte) ([]byte, error) {
	br := bytes.NewReader(src)
	r, _ := c.zlReaders.Get().(io.ReadCloser)
	var err error
	if r == nil {
		r, err = zlib.NewReader(br)
	} else {
		err = r.(zlib.Resetter).Reset(br, nil)
	}
	if err != nil {
		// A reader whose Reset failed on a bad header is still reusable.
		if r != nil {
			c.zlReaders.Put(r)
		}
		return nil, err
	}
	out, err := readInto(r, dst)
	c.zlReaders.Put(r)
	return out, err
}

// readInto reads r to the end into dst's capacity, failing once more data
// appears. Reading to io.EOF also makes gzip and zlib check their trailers.
func readInto(r io.Reader, dst []byte) ([]byte, error) {
	buf := dst[:cap(dst)]
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			// Unlike io.ReadFull, a decoder's own io.ErrUnexpectedEOF (a
			// truncated stream) is an error here.
			return nil, err
		}
	}
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return nil, fmt.Errorf("%w (%d)", ErrTooLarge, cap(dst))
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// lz4Into reads the numcodecs LZ4 framing (a 4-byte little-endian decoded
// size, then one raw block) into dst's capacity.
func lz4Into(dst, src []byte) ([]byte, error) {
	if len(src) < 4 {
		return nil, fmt.Errorf("%d bytes, too short for the size prefix", len(src))
	}
	n := binary.LittleEndian.Uint32(src)
	if uint64(n) > uint64(cap(dst)) {
		return nil, fmt.Errorf("prefix declares %d bytes: %w (%d)", n, ErrTooLarge, cap(dst))
	}
	out := dst[:n]
	if n == 0 {
		return out, nil
	}
	got, err := lz4.UncompressBlock(src[4:], out)
	if err != nil {
		return nil, err
	}
	if got != int(n) {
		return nil, fmt.Errorf("block decoded to %d bytes, prefix says %d", got, n)
	}
	return out, nil
}
