// Package codec decodes and encodes the byte-level compressions that chunked
// array formats use (Zarr, N5, precomputed): zstd, gzip, zlib, bz2, the
// numcodecs LZ4 framing, Blosc1 chunks and raw bytes.
//
// Every decode takes an explicit maximum output size, normally the declared
// size of the chunk, so that a decompression bomb stops at that size instead of
// exhausting memory. Codecs is leaf code: it imports no project package.
package codec

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrUnsupported is wrapped when a codec id (or a Blosc chunk's format
// version or internal codec) is recognised but not implemented, or not known
// at all.
var ErrUnsupported = errors.New("codec not supported")

// ErrTooLarge is wrapped when decoded data would exceed the caller's maximum.
var ErrTooLarge = errors.New("decoded data exceeds the declared size")

// maxZstdWindow bounds the history a zstd frame may ask for; real chunk data
// uses a few MiB at most, and a hostile header must not reserve gigabytes.
const maxZstdWindow = 1 << 27

// Codecs holds reusable (de)compressor state. The zero value is not usable;
// call New. A Codecs is safe for concurrent use.
type Codecs struct {
	zdecOnce sync.Once
	zdec     *zstd.Decoder
	zdecErr  error

	// pureGo keeps zstd decoding in Go even when libzstd is present
	// (IMGDATASET_ZSTD=go at New), for comparisons and as an escape hatch.
	pureGo  bool
	libOnce sync.Once
	lib     *libzstd // nil when the C library is absent or refused

	mu    sync.Mutex
	zencs map[zencKey]*zstd.Encoder

	// gzReaders and zlReaders pool *gzip.Reader and zlib io.ReadCloser
	// values for DecodeInto; each holds tens of KiB of inflate state.
	gzReaders sync.Pool
	zlReaders sync.Pool

	// bloscScratch pools *bloscScratch values, one per goroutine that
	// decodes Blosc blocks, so that repeated chunks reuse block buffers.
	bloscScratch sync.Pool
}

// New returns an empty set of codecs; decoders and encoders are created on
// first use and reused afterwards.
//
// zstd frames are decoded by the C library libzstd when it can be loaded at
// run time (it decodes this kind of data ~1.5× faster per CPU-second than the
// pure-Go decoder; see docs/benchmarks.md), else in Go; both produce the
// same bytes. IMGDATASET_ZSTD=go in the environment forces the Go decoder.
func New() *Codecs {
	return &Codecs{zencs: map[zencKey]*zstd.Encoder{}, pureGo: os.Getenv("IMGDATASET_ZSTD") == "go"}
}

// ZstdDecoder names the zstd decoder c uses: "libzstd 1.5.4" or
// "klauspost/compress".
func (c *Codecs) ZstdDecoder() string {
	if l := c.libzstd(); l != nil {
		return l.name()
	}
	return "klauspost/compress"
}

// libzstd returns the C library's decoder, loaded on first use, or nil.
func (c *Codecs) libzstd() *libzstd {
	if c.pureGo {
		return nil
	}
	c.libOnce.Do(func() {
		// Absence is normal (a machine without the library, a
		// CGO_ENABLED=0 build): the Go decoder takes over.
		c.lib, _ = loadLibzstd()
	})
	return c.lib
}

// zencKey names a pooled zstd encoder: its level, and whether it writes
// single-segment frames.
type zencKey struct {
	level  zstd.EncoderLevel
	single bool
}

// Close releases the pooled zstd state.
func (c *Codecs) Close() {
	if c.zdec != nil {
		c.zdec.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.zencs {
		e.Close()
		delete(c.zencs, k)
	}
}

// Canonical maps the ids various producers use to the ones Decode accepts
// ("gz" → "gzip", "none"/"" → "raw", "bzip2" → "bz2").
func Canonical(id string) string {
	switch id {
	case "", "none", "null", "raw", "bytes":
		return "raw"
	case "gz":
		return "gzip"
	case "bzip2":
		return "bz2"
	}
	return id
}

// Sniff names the compression whose magic number starts src: "zstd", "gzip",
// "zlib", or "" when none matches. zlib detection uses the RFC 1950 header
// checksum, so it rarely fires on raw data.
func Sniff(src []byte) string {
	switch {
	case len(src) >= 4 && src[0] == 0x28 && src[1] == 0xb5 && src[2] == 0x2f && src[3] == 0xfd:
		return "zstd"
	case len(src) >= 2 && src[0] == 0x1f && src[1] == 0x8b:
		return "gzip"
	case len(src) >= 2 && src[0]&0x0f == 8 && src[0]>>4 <= 7 && (uint16(src[0])<<8|uint16(src[1]))%31 == 0:
		return "zlib"
	}
	return ""
}

// Decode decompresses src with the codec id and returns at most maxOut bytes;
// if the data decodes to more, it fails (with ErrTooLarge, except for zstd
// frames without a content size, whose overflow the decoder reports as a block
// error). For a zstd frame that does not state its content size the output
// buffer is allocated at maxOut up front, so maxOut should be the expected
// size (a chunk's), not a loose upper bound. When id names one of
// gzip, zlib or zstd but src carries another one's magic number, the sniffed
// codec is used, because some writers mislabel their chunks.
// DecodeInto does the same into a caller's buffer.
func (c *Codecs) Decode(id string, src []byte, maxOut int) ([]byte, error) {
	if maxOut < 0 {
		return nil, fmt.Errorf("codec %s: negative maximum size %d", id, maxOut)
	}
	id = resolve(id, src)
	var out []byte
	var err error
	switch id {
	case "raw":
		if len(src) > maxOut {
			return nil, fmt.Errorf("codec raw: %d bytes: %w (%d)", len(src), ErrTooLarge, maxOut)
		}
		out = append([]byte(nil), src...)
	case "zstd":
		// A frame that states its size gets exactly that (zstdInto refuses
		// it above maxOut); only frames without one need maxOut up front.
		n := maxOut
		var h zstd.Header
		if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize < uint64(maxOut) {
			n = int(h.FrameContentSize)
		}
		out, err = c.zstdInto(make([]byte, 0, n), src)
		if err != nil && n < maxOut {
			// Frames after the first (valid zstd, rarely written) may
			// need the rest of maxOut.
			out, err = c.zstdInto(make([]byte, 0, maxOut), src)
		}
	case "gzip":
		var r *gzip.Reader
		r, err = gzip.NewReader(bytes.NewReader(src))
		if err == nil {
			out, err = readLimited(r, maxOut, len(src))
		}
	case "zlib":
		var r io.ReadCloser
		r, err = zlib.NewReader(bytes.NewReader(src))
		if err == nil {
			out, err = readLimited(r, maxOut, len(src))
			r.Close()
		}
	case "bz2":
		out, err = readLimited(bzip2.NewReader(bytes.NewReader(src)), maxOut, len(src))
	case "lz4":
		out, err = decodeLZ4(src, maxOut)
	case "blosc":
		out, err = c.decodeBlosc(src, maxOut)
	default:
		return nil, fmt.Errorf("codec %q: %w", id, ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("codec %s: %w", id, err)
	}
	return out, nil
}

// resolve canonicalises id and, among gzip, zlib and zstd, prefers the codec
// whose magic number src carries (see Decode).
func resolve(id string, src []byte) string {
	id = Canonical(id)
	switch id {
	case "gzip", "zlib", "zstd":
		if s := Sniff(src); s != "" && s != id {
			id = s
		}
	}
	return id
}

// zstdDecoder returns the shared zstd decoder, created on first use.
func (c *Codecs) zstdDecoder() (*zstd.Decoder, error) {
	c.zdecOnce.Do(func() {
		// One block decoder per core: DecodeAll is called from many
		// goroutines at once (a ReadRegion has up to 32 chunks in flight).
		// Low-memory mode would shrink and regrow the per-decoder buffers
		// between chunks of the same size.
		c.zdec, c.zdecErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderLowmem(false),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecodeAllCapLimit(true))
	})
	return c.zdec, c.zdecErr
}

// decodeLZ4 reads the numcodecs framing: a 4-byte little-endian decoded size,
// then one raw LZ4 block. The output is allocated at the declared size once
// that is checked against maxOut.
func decodeLZ4(src []byte, maxOut int) ([]byte, error) {
	if len(src) < 4 {
		return nil, fmt.Errorf("%d bytes, too short for the size prefix", len(src))
	}
	n := binary.LittleEndian.Uint32(src)
	if uint64(n) > uint64(maxOut) {
		return nil, fmt.Errorf("prefix declares %d bytes: %w (%d)", n, ErrTooLarge, maxOut)
	}
	return lz4Into(make([]byte, 0, n), src)
}

// readLimited reads r to the end, failing once more than maxOut bytes appear.
// The buffer grows with the data, so a small maxOut-sized chunk is not
// allocated when the stream is short, and a bomb stops at maxOut+1 bytes.
func readLimited(r io.Reader, maxOut, hint int) ([]byte, error) {
	initial := min(maxOut+1, max(4*hint, 512))
	buf := bytes.NewBuffer(make([]byte, 0, initial))
	n, err := buf.ReadFrom(io.LimitReader(r, int64(maxOut)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(maxOut) {
		return nil, fmt.Errorf("%w (%d)", ErrTooLarge, maxOut)
	}
	return buf.Bytes(), nil
}

// Encode compresses src with the codec id at level (0 = the codec's default).
// bz2 cannot be encoded. blosc uses lz4 with byte shuffle and typesize 1
// (level 0 = 5, as numcodecs); EncodeBlosc chooses the other options.
func (c *Codecs) Encode(id string, level int, src []byte) ([]byte, error) {
	id = Canonical(id)
	switch id {
	case "blosc":
		if level == 0 {
			level = 5
		}
		return c.EncodeBlosc(src, BloscOptions{CName: "lz4", CLevel: level, Shuffle: BloscShuffle, TypeSize: 1})
	case "raw":
		return append([]byte(nil), src...), nil
	case "zstd":
		// Frames of inputs below zstd's minimum window are written as single
		// segments, the only way their header states the content size:
		// numcodecs up to 0.11 (Debian's zarr-python) cannot decode a frame
		// without it, as the top levels of a pyramid often are.
		enc, err := c.zstdEncoder(level, len(src) <= zstd.MinWindowSize)
		if err != nil {
			return nil, err
		}
		// Room for incompressible data (zstd's bound): regrowing the
		// destination cost 2.5% of a crop's CPU.
		return enc.EncodeAll(src, make([]byte, 0, len(src)+len(src)>>7+64)), nil
	case "gzip":
		var b bytes.Buffer
		w, err := gzip.NewWriterLevel(&b, gzLevel(level))
		if err != nil {
			return nil, fmt.Errorf("codec gzip: %w", err)
		}
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("codec gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("codec gzip: %w", err)
		}
		return b.Bytes(), nil
	case "zlib":
		var b bytes.Buffer
		w, err := zlib.NewWriterLevel(&b, gzLevel(level))
		if err != nil {
			return nil, fmt.Errorf("codec zlib: %w", err)
		}
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("codec zlib: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("codec zlib: %w", err)
		}
		return b.Bytes(), nil
	case "lz4":
		if uint64(len(src)) > 0x7E000000 {
			return nil, fmt.Errorf("codec lz4: %d bytes exceed the LZ4 block limit", len(src))
		}
		out := make([]byte, 4+lz4.CompressBlockBound(len(src)))
		binary.LittleEndian.PutUint32(out, uint32(len(src)))
		n, err := lz4.CompressBlock(src, out[4:], nil)
		if err != nil {
			return nil, fmt.Errorf("codec lz4: %w", err)
		}
		if n == 0 && len(src) > 0 {
			return nil, fmt.Errorf("codec lz4: block did not compress into its bound")
		}
		return out[:4+n], nil
	}
	return nil, fmt.Errorf("codec %q: encode: %w", id, ErrUnsupported)
}

// gzLevel maps 0 ("default") to the deflate default; other values pass through
// and are validated by the writer.
func gzLevel(level int) int {
	if level == 0 {
		return gzip.DefaultCompression
	}
	return level
}

func (c *Codecs) zstdEncoder(level int, single bool) (*zstd.Encoder, error) {
	if level == 0 {
		level = 3
	}
	l := zstd.EncoderLevelFromZstd(level)
	key := zencKey{l, single}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.zencs[key]; ok {
		return e, nil
	}
	// No frame checksum, as numcodecs and zarr-python write: it cost readers
	// ~30% of zstd decoding time, and chunk integrity is the store's business
	// (atomic writes here, sha256 of downloads, CRC32C codecs in Zarr v3).
	opts := []zstd.EOption{zstd.WithEncoderLevel(l), zstd.WithEncoderCRC(false)}
	if single {
		opts = append(opts, zstd.WithSingleSegment(true))
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("codec zstd: %w", err)
	}
	c.zencs[key] = e
	return e, nil
}
