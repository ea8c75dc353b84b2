package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/pierrec/lz4/v4"
)

// Blosc1 chunk layout (c-blosc 1.x, format version 2): a 16-byte header,
// then, unless the chunk is stored (MEMCPYED), one int32 start offset per
// block, measured from the start of the chunk, then the blocks. A block is
// split into typesize streams when the decoder-side rule in bloscSplits says
// so; each stream is an int32 size followed by that many bytes, stored raw
// when the size equals the stream's decoded size.
const (
	bloscHeaderSize   = 16
	bloscVersion      = 2
	bloscCodecVersion = 1 // versionlz of every internal codec

	bloscFlagShuffle    = 0x01
	bloscFlagMemcpyed   = 0x02
	bloscFlagBitShuffle = 0x04
	bloscFlagReserved   = 0x08
	bloscFlagDontSplit  = 0x10

	bloscMaxSplits     = 16
	bloscMinBufferSize = 128
	bloscMaxTypeSize   = 255
	bloscMaxBlockSize  = (math.MaxInt32 - bloscMaxTypeSize*4) / 3
	bloscMaxBufferSize = math.MaxInt32 - bloscHeaderSize
	bloscL1            = 32 << 10
)

// Internal codec format ids, stored in flag bits 5-7.
const (
	bloscFormatBloscLZ = 0
	bloscFormatLZ4     = 1
	bloscFormatSnappy  = 2
	bloscFormatZlib    = 3
	bloscFormatZstd    = 4
)

// Shuffle modes of BloscOptions.Shuffle, as numcodecs numbers them.
const (
	BloscAutoShuffle = -1 // bit shuffle for 1-byte types, byte shuffle otherwise
	BloscNoShuffle   = 0
	BloscShuffle     = 1
	BloscBitShuffle  = 2
)

// BloscOptions configures BloscEncode. The zero value gives lz4, level 0
// (stored), no shuffle, typesize 1 and an automatic block size.
type BloscOptions struct {
	// CName is the internal codec: blosclz, lz4, lz4hc, snappy, zlib or
	// zstd; "" means lz4.
	CName string
	// CLevel is the compression level, 0 (store) to 9.
	CLevel int
	// Shuffle is BloscNoShuffle, BloscShuffle, BloscBitShuffle or
	// BloscAutoShuffle.
	Shuffle int
	// TypeSize is the element size the shuffles work on; 0 means 1, and
	// sizes above 255 are treated as 1 as c-blosc does.
	TypeSize int
	// BlockSize forces the block size in bytes; 0 picks it as c-blosc does.
	BlockSize int
}

// BloscDecode decodes one Blosc1 chunk (as written by c-blosc 1.x, numcodecs
// and python-blosc) and fails with ErrTooLarge, before allocating, when the
// chunk declares more than maxOut bytes.
func BloscDecode(src []byte, maxOut int) ([]byte, error) {
	c := New()
	defer c.Close()
	out, err := c.decodeBlosc(src, maxOut)
	if err != nil {
		return nil, fmt.Errorf("blosc: %w", err)
	}
	return out, nil
}

// BloscEncode compresses src into one Blosc1 chunk that c-blosc 1.x can read.
func BloscEncode(src []byte, opt BloscOptions) ([]byte, error) {
	c := New()
	defer c.Close()
	return c.EncodeBlosc(src, opt)
}

// bloscHeader is the parsed, validated chunk header.
type bloscHeader struct {
	flags     byte
	typesize  int
	nbytes    int
	blocksize int
	cbytes    int
	nblocks   int
	leftover  int
}

func parseBloscHeader(src []byte) (bloscHeader, error) {
	var h bloscHeader
	if len(src) < bloscHeaderSize {
		return h, fmt.Errorf("%d bytes, shorter than the 16-byte header", len(src))
	}
	switch v := src[0]; {
	case v >= 3:
		return h, fmt.Errorf("format version %d (Blosc2 or later): %w; only Blosc1 version 2 is read", v, ErrUnsupported)
	case v != bloscVersion:
		return h, fmt.Errorf("format version %d, want %d", v, bloscVersion)
	}
	h.flags = src[2]
	if h.flags&bloscFlagReserved != 0 {
		return h, fmt.Errorf("reserved flag bit 3 is set (flags %#02x)", h.flags)
	}
	h.typesize = int(src[3])
	nbytes := binary.LittleEndian.Uint32(src[4:])
	blocksize := binary.LittleEndian.Uint32(src[8:])
	cbytes := binary.LittleEndian.Uint32(src[12:])
	if nbytes > bloscMaxBufferSize {
		return h, fmt.Errorf("declared size %d exceeds the Blosc1 limit", nbytes)
	}
	h.nbytes = int(nbytes)
	if h.nbytes == 0 {
		return h, nil
	}
	if blocksize == 0 || blocksize > bloscMaxBlockSize {
		return h, fmt.Errorf("block size %d out of range", blocksize)
	}
	if h.typesize == 0 {
		return h, fmt.Errorf("type size 0")
	}
	if cbytes < bloscHeaderSize || uint64(cbytes) > uint64(len(src)) {
		return h, fmt.Errorf("header declares %d compressed bytes, have %d", cbytes, len(src))
	}
	h.blocksize, h.cbytes = int(blocksize), int(cbytes)
	h.nblocks = h.nbytes / h.blocksize
	h.leftover = h.nbytes % h.blocksize
	if h.leftover > 0 {
		h.nblocks++
	}
	if h.flags&bloscFlagMemcpyed != 0 {
		if h.cbytes != h.nbytes+bloscHeaderSize {
			return h, fmt.Errorf("stored chunk of %d bytes declares %d compressed bytes, want %d", h.nbytes, h.cbytes, h.nbytes+bloscHeaderSize)
		}
		return h, nil
	}
	if src[1] != bloscCodecVersion {
		return h, fmt.Errorf("internal codec format version %d, want %d", src[1], bloscCodecVersion)
	}
	if h.nblocks > (h.cbytes-bloscHeaderSize)/4 {
		return h, fmt.Errorf("%d blocks do not fit their offset table in %d bytes", h.nblocks, h.cbytes)
	}
	return h, nil
}

// bloscSplits is the decoder-side rule for how many streams a block holds;
// streams written before the dont-split flag existed rely on it.
func bloscSplits(flags byte, typesize, bsize int, leftover bool) int {
	if flags&bloscFlagDontSplit == 0 && typesize <= bloscMaxSplits &&
		bsize/typesize >= bloscMinBufferSize && !leftover {
		return typesize
	}
	return 1
}

// bloscParallelMin is the decoded chunk size from which blocks are decoded
// by several goroutines; for smaller chunks starting them costs more than
// it saves.
const bloscParallelMin = 256 << 10

// bloscScratch is the reusable state of one goroutine decoding blocks.
type bloscScratch struct {
	zr     io.ReadCloser // zlib reader, reset for every stream
	br     bytes.Reader
	tmp    []byte   // a block before its shuffle is undone
	planes [][]byte // the byte planes of a shuffled block
}

func (c *Codecs) getBloscScratch() *bloscScratch {
	if s, ok := c.bloscScratch.Get().(*bloscScratch); ok {
		return s
	}
	return &bloscScratch{}
}

func (c *Codecs) putBloscScratch(s *bloscScratch) {
	s.br.Reset(nil) // drop the reference to the chunk
	clear(s.planes) // idem, raw streams are read in place
	s.planes = s.planes[:0]
	c.bloscScratch.Put(s)
}

// bloscChunk is a validated chunk being decoded into out. Its blocks are
// independent and land in disjoint parts of out, so several goroutines may
// run block at once, each with its own scratch.
type bloscChunk struct {
	c          *Codecs
	h          bloscHeader
	src        []byte // the chunk, cut to its declared compressed size
	out        []byte
	format     int
	shuffle    bool // byte shuffle
	bitShuffle bool
}

// decode fills dst exactly from the compressed stream src.
func (k *bloscChunk) decode(s *bloscScratch, dst, src []byte) error {
	switch k.format {
	case bloscFormatBloscLZ:
		if n := blosclzDecompress(dst, src); n != len(dst) {
			return fmt.Errorf("blosclz stream is malformed or decodes to %d bytes, want %d", n, len(dst))
		}
	case bloscFormatLZ4:
		n, err := lz4.UncompressBlock(src, dst)
		if err != nil {
			return fmt.Errorf("lz4 block: %w", err)
		}
		if n != len(dst) {
			return fmt.Errorf("lz4 block decodes to %d bytes, want %d", n, len(dst))
		}
	case bloscFormatSnappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return fmt.Errorf("snappy block: %w", err)
		}
		if n != len(dst) {
			return fmt.Errorf("snappy block declares %d bytes, want %d", n, len(dst))
		}
		out, err := snappy.Decode(dst, src)
		if err != nil {
			return fmt.Errorf("snappy block: %w", err)
		}
		if len(out) != len(dst) {
			return fmt.Errorf("snappy block decodes to %d bytes, want %d", len(out), len(dst))
		}
	case bloscFormatZlib:
		s.br.Reset(src)
		var err error
		if s.zr == nil {
			s.zr, err = zlib.NewReader(&s.br)
		} else {
			err = s.zr.(zlib.Resetter).Reset(&s.br, nil)
		}
		if err != nil {
			return fmt.Errorf("zlib stream: %w", err)
		}
		if n, err := io.ReadFull(s.zr, dst); err != nil {
			return fmt.Errorf("zlib stream decodes to %d bytes, want %d: %w", n, len(dst), err)
		}
		// Reading on to the end checks the Adler-32 and catches extra data.
		var one [1]byte
		if n, err := s.zr.Read(one[:]); n != 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				return fmt.Errorf("zlib stream decodes to more than %d bytes", len(dst))
			}
			return fmt.Errorf("zlib stream: %w", err)
		}
	case bloscFormatZstd:
		zd, err := k.c.zstdDecoder()
		if err != nil {
			return err
		}
		out, err := zd.DecodeAll(src, dst[:0:len(dst)])
		if err != nil {
			return fmt.Errorf("zstd frame (want %d bytes): %w", len(dst), err)
		}
		if len(out) != len(dst) {
			return fmt.Errorf("zstd frame decodes to %d bytes, want %d", len(out), len(dst))
		}
		if len(out) > 0 && &out[0] != &dst[0] {
			copy(dst, out)
		}
	default:
		return fmt.Errorf("internal codec format %d: %w", k.format, ErrUnsupported)
	}
	return nil
}

// stream returns the payload of stream i of block j, whose size field is
// at offset, and the offset of the next stream.
func (k *bloscChunk) stream(j, i, offset int) ([]byte, int, error) {
	cbytes := k.h.cbytes
	if offset < 0 || offset > cbytes-4 {
		return nil, 0, fmt.Errorf("block %d stream %d: offset %d outside the %d-byte chunk", j, i, offset, cbytes)
	}
	csize := int(int32(binary.LittleEndian.Uint32(k.src[offset:])))
	offset += 4
	if csize < 0 || csize > cbytes-offset {
		return nil, 0, fmt.Errorf("block %d stream %d: size %d at offset %d overruns the %d-byte chunk", j, i, csize, offset, cbytes)
	}
	return k.src[offset : offset+csize], offset + csize, nil
}

// block decodes block j into its part of k.out. Streams go straight to
// their final place when no filter follows; a byte-shuffled block split
// into one stream per byte plane is interleaved from the planes where they
// lie, raw ones inside the chunk, so that only compressed streams pass
// through s.tmp. Bytes no stream covers (a block size that is not a
// multiple of the split count, which c-blosc never writes) come out zero.
func (k *bloscChunk) block(s *bloscScratch, j int) error {
	h := &k.h
	bsize, last := h.blocksize, false
	if j == h.nblocks-1 && h.leftover > 0 {
		bsize, last = h.leftover, true
	}
	dst := k.out[j*h.blocksize : j*h.blocksize+bsize]
	bitShuf := k.bitShuffle && !k.shuffle && bsize >= h.typesize
	filtered := k.shuffle || bitShuf
	offset := int(int32(binary.LittleEndian.Uint32(k.src[bloscHeaderSize+4*j:])))
	nsplits := bloscSplits(h.flags, h.typesize, bsize, last)
	neblock := bsize / nsplits
	covered := nsplits * neblock

	work := dst
	if filtered {
		s.tmp = grow(s.tmp, bsize)
		work = s.tmp[:bsize]
	}
	// With nsplits > 1 and byte shuffle, nsplits == typesize and stream i
	// is byte plane i.
	planar := k.shuffle && nsplits > 1
	s.planes = s.planes[:0]
	for i := range nsplits {
		data, next, err := k.stream(j, i, offset)
		if err != nil {
			return err
		}
		offset = next
		part := work[i*neblock : (i+1)*neblock]
		switch {
		case len(data) != neblock:
			if err := k.decode(s, part, data); err != nil {
				return fmt.Errorf("block %d stream %d: %w", j, i, err)
			}
		case planar || (filtered && nsplits == 1):
			// A raw stream that a filter reads anyway is read in place.
			part = data
		default:
			copy(part, data)
		}
		if planar {
			s.planes = append(s.planes, part)
		} else if filtered && nsplits == 1 {
			work = part
		}
	}
	switch {
	case planar:
		interleave(dst, s.planes, neblock)
		clear(dst[covered:])
	case k.shuffle:
		s.planes = unshuffleBytes(dst, work, h.typesize, s.planes)
	case bitShuf:
		clear(work[covered:])
		bitUnshuffle(dst, work, h.typesize)
	default:
		clear(dst[covered:])
	}
	return nil
}

// decodeBlosc decodes a Blosc1 chunk; see BloscDecode.
func (c *Codecs) decodeBlosc(src []byte, maxOut int) ([]byte, error) {
	return c.decodeBloscWorkers(src, maxOut, 0)
}

// decodeBloscWorkers decodes a Blosc1 chunk into a new buffer of its declared
// size with up to workers goroutines; see bloscDecode.
func (c *Codecs) decodeBloscWorkers(src []byte, maxOut, workers int) ([]byte, error) {
	return c.bloscDecode(nil, src, maxOut, workers)
}

// bloscInto decodes a Blosc1 chunk into dst's capacity.
func (c *Codecs) bloscInto(dst, src []byte, workers int) ([]byte, error) {
	if dst == nil {
		dst = []byte{}
	}
	return c.bloscDecode(dst, src, cap(dst), workers)
}

// bloscDecode decodes a Blosc1 chunk into dst[:nbytes], or into a new buffer
// of the declared size when dst is nil, with up to workers goroutines; 0
// means one per GOMAXPROCS for chunks of at least bloscParallelMin bytes and
// one otherwise. Blocks cover the whole output, so a reused dst needs no
// clearing.
func (c *Codecs) bloscDecode(dst, src []byte, maxOut, workers int) ([]byte, error) {
	h, err := parseBloscHeader(src)
	if err != nil {
		return nil, err
	}
	if h.nbytes > maxOut {
		return nil, fmt.Errorf("chunk declares %d bytes: %w (%d)", h.nbytes, ErrTooLarge, maxOut)
	}
	if dst == nil {
		dst = make([]byte, h.nbytes)
	}
	dst = dst[:h.nbytes]
	if h.nbytes == 0 {
		return dst, nil
	}
	src = src[:h.cbytes]
	if h.flags&bloscFlagMemcpyed != 0 {
		// Stored chunks are never shuffled, whatever the flags say.
		copy(dst, src[bloscHeaderSize:])
		return dst, nil
	}
	k := &bloscChunk{
		c:          c,
		h:          h,
		src:        src,
		out:        dst,
		format:     int(h.flags >> 5),
		shuffle:    h.flags&bloscFlagShuffle != 0 && h.typesize > 1,
		bitShuffle: h.flags&bloscFlagBitShuffle != 0,
	}
	if k.format > bloscFormatZstd {
		return nil, fmt.Errorf("internal codec format %d: %w", k.format, ErrUnsupported)
	}
	if workers <= 0 {
		workers = 1
		if h.nbytes >= bloscParallelMin {
			workers = runtime.GOMAXPROCS(0)
		}
	}
	workers = min(workers, h.nblocks)
	if err := k.run(workers); err != nil {
		return nil, err
	}
	return k.out, nil
}

// run decodes all blocks with up to workers goroutines (the caller's
// included). Workers claim blocks in increasing order and stop claiming
// after a failure, so every block before a failed one is decoded and the
// error returned is that of the first failed block, as in a serial decode.
func (k *bloscChunk) run(workers int) error {
	if workers <= 1 {
		s := k.c.getBloscScratch()
		defer k.c.putBloscScratch(s)
		for j := range k.h.nblocks {
			if err := k.block(s, j); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next     atomic.Int64 // the next block to claim
		failed   atomic.Bool
		mu       sync.Mutex
		errBlock int
		firstErr error
		wg       sync.WaitGroup
	)
	work := func() {
		s := k.c.getBloscScratch()
		defer k.c.putBloscScratch(s)
		for !failed.Load() {
			j := int(next.Add(1) - 1)
			if j >= k.h.nblocks {
				return
			}
			if err := k.block(s, j); err != nil {
				mu.Lock()
				if firstErr == nil || j < errBlock {
					errBlock, firstErr = j, err
				}
				mu.Unlock()
				failed.Store(true)
				return
			}
		}
	}
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return firstErr
}

// bloscCompressor names an internal codec for the encoder.
type bloscCompressor struct {
	name   string
	format int
	hcr    bool // high-compression-ratio codecs get larger blocks
	zstd   bool
}

func lookupBloscCompressor(name string) (bloscCompressor, bool) {
	switch name {
	case "blosclz":
		return bloscCompressor{name: name, format: bloscFormatBloscLZ}, true
	case "", "lz4":
		return bloscCompressor{name: "lz4", format: bloscFormatLZ4}, true
	case "lz4hc":
		return bloscCompressor{name: name, format: bloscFormatLZ4, hcr: true}, true
	case "snappy":
		return bloscCompressor{name: name, format: bloscFormatSnappy}, true
	case "zlib":
		return bloscCompressor{name: name, format: bloscFormatZlib, hcr: true}, true
	case "zstd":
		return bloscCompressor{name: name, format: bloscFormatZstd, hcr: true, zstd: true}, true
	}
	return bloscCompressor{}, false
}

// bloscSplitOnEncode is c-blosc's default (forward compatible) split rule:
// split unless zstd, for small types and blocks of at least 128 elements.
func bloscSplitOnEncode(comp bloscCompressor, typesize, blocksize int) bool {
	return !comp.zstd && typesize <= bloscMaxSplits && blocksize/typesize >= bloscMinBufferSize
}

// bloscBlockSize mirrors c-blosc's compute_blocksize.
func bloscBlockSize(comp bloscCompressor, clevel, typesize, nbytes, forced int) int {
	if nbytes < typesize {
		return 1
	}
	bs := nbytes
	if forced > 0 {
		bs = min(max(forced, bloscMinBufferSize), bloscMaxBlockSize)
	} else if nbytes >= bloscL1 {
		bs = bloscL1
		if comp.hcr {
			bs *= 2
		}
		switch clevel {
		case 0:
			bs /= 4
		case 1:
			bs /= 2
		case 2:
		case 3:
			bs *= 2
		case 4, 5:
			bs *= 4
		case 6, 7, 8:
			bs *= 8
		case 9:
			bs *= 8
			if comp.hcr {
				bs *= 2
			}
		}
	}
	if clevel > 0 && bloscSplitOnEncode(comp, typesize, bs) {
		bs = max(min(bs, 1<<18)*typesize, 1<<16)
		bs = min(bs, 1<<20)
	}
	bs = min(bs, nbytes)
	if bs > typesize {
		bs = bs / typesize * typesize
	}
	return bs
}

// bloscEncoder compresses the streams of one chunk.
type bloscEncoder struct {
	c       *Codecs
	comp    bloscCompressor
	clevel  int
	scratch []byte
	lz4     lz4.Compressor
	lz4hc   lz4.CompressorHC
	blz     blosclzCompressor
	zbuf    bytes.Buffer
	zw      *zlib.Writer
}

// compress returns the compressed form of src (valid until the next call),
// or nil when the codec could not make it fit in maxout bytes.
func (e *bloscEncoder) compress(src []byte, maxout int) ([]byte, error) {
	var out []byte
	switch e.comp.name {
	case "blosclz":
		e.scratch = grow(e.scratch, maxout)
		n := e.blz.compress(e.scratch[:maxout], src)
		out = e.scratch[:n]
	case "lz4", "lz4hc":
		e.scratch = grow(e.scratch, lz4.CompressBlockBound(len(src)))
		var n int
		var err error
		if e.comp.hcr {
			e.lz4hc.Level = lz4.CompressionLevel(1 << (8 + e.clevel))
			n, err = e.lz4hc.CompressBlock(src, e.scratch)
		} else {
			n, err = e.lz4.CompressBlock(src, e.scratch)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.comp.name, err)
		}
		out = e.scratch[:n]
	case "snappy":
		e.scratch = grow(e.scratch, snappy.MaxEncodedLen(len(src)))
		out = snappy.Encode(e.scratch, src)
	case "zlib":
		e.zbuf.Reset()
		if e.zw == nil {
			w, err := zlib.NewWriterLevel(&e.zbuf, e.clevel)
			if err != nil {
				return nil, fmt.Errorf("zlib: %w", err)
			}
			e.zw = w
		} else {
			e.zw.Reset(&e.zbuf)
		}
		if _, err := e.zw.Write(src); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		if err := e.zw.Close(); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		out = e.zbuf.Bytes()
	case "zstd":
		// c-blosc maps its levels 1-8 to zstd's odd levels and 9 to the maximum.
		level := 2*e.clevel - 1
		if e.clevel >= 9 {
			level = 22
		}
		enc, err := e.c.zstdEncoder(level, false)
		if err != nil {
			return nil, err
		}
		e.scratch = enc.EncodeAll(src, e.scratch[:0])
		out = e.scratch
	}
	if len(out) == 0 || len(out) > maxout {
		return nil, nil
	}
	return out, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// EncodeBlosc compresses src into one Blosc1 chunk with the given options;
// see BloscOptions. The layout decisions (block size, splitting, falling
// back to a stored chunk when compression does not pay) follow c-blosc 1.21.
func (c *Codecs) EncodeBlosc(src []byte, opt BloscOptions) ([]byte, error) {
	comp, ok := lookupBloscCompressor(opt.CName)
	if !ok {
		return nil, fmt.Errorf("blosc: internal codec %q: %w", opt.CName, ErrUnsupported)
	}
	if opt.CLevel < 0 || opt.CLevel > 9 {
		return nil, fmt.Errorf("blosc: level %d outside 0-9", opt.CLevel)
	}
	if opt.BlockSize < 0 {
		return nil, fmt.Errorf("blosc: negative block size %d", opt.BlockSize)
	}
	if len(src) > bloscMaxBufferSize {
		return nil, fmt.Errorf("blosc: %d bytes exceed the Blosc1 limit of %d", len(src), bloscMaxBufferSize)
	}
	typesize := opt.TypeSize
	switch {
	case typesize < 0:
		return nil, fmt.Errorf("blosc: negative type size %d", typesize)
	case typesize == 0, typesize > bloscMaxTypeSize:
		typesize = 1
	}
	shuffle := opt.Shuffle
	switch shuffle {
	case BloscAutoShuffle:
		// numcodecs' AUTOSHUFFLE.
		shuffle = BloscShuffle
		if typesize == 1 {
			shuffle = BloscBitShuffle
		}
	case BloscNoShuffle, BloscShuffle, BloscBitShuffle:
	default:
		return nil, fmt.Errorf("blosc: shuffle mode %d, want -1, 0, 1 or 2", shuffle)
	}

	nbytes := len(src)
	blocksize := bloscBlockSize(comp, opt.CLevel, typesize, nbytes, opt.BlockSize)
	nblocks := 0
	leftover := 0
	if nbytes > 0 {
		nblocks, leftover = nbytes/blocksize, nbytes%blocksize
		if leftover > 0 {
			nblocks++
		}
	}
	flags := byte(comp.format << 5)
	switch shuffle {
	case BloscShuffle:
		flags |= bloscFlagShuffle
	case BloscBitShuffle:
		flags |= bloscFlagBitShuffle
	}
	if !bloscSplitOnEncode(comp, typesize, blocksize) {
		flags |= bloscFlagDontSplit
	}
	header := func(out []byte, flags byte, cbytes int) {
		out[0], out[1], out[2], out[3] = bloscVersion, bloscCodecVersion, flags, byte(typesize)
		binary.LittleEndian.PutUint32(out[4:], uint32(nbytes))
		binary.LittleEndian.PutUint32(out[8:], uint32(blocksize))
		binary.LittleEndian.PutUint32(out[12:], uint32(cbytes))
	}
	// stored writes the chunk uncompressed, into buf when it is large
	// enough: an incompressible chunk (EM texture decoded from JPEG) then
	// costs one output buffer, not two.
	stored := func(buf []byte) []byte {
		if cap(buf) < bloscHeaderSize+nbytes {
			buf = make([]byte, bloscHeaderSize+nbytes)
		}
		buf = buf[:bloscHeaderSize+nbytes]
		header(buf, flags|bloscFlagMemcpyed, len(buf))
		copy(buf[bloscHeaderSize:], src)
		return buf
	}
	maxbytes := nbytes + bloscHeaderSize
	if opt.CLevel == 0 || nbytes < bloscMinBufferSize || bloscHeaderSize+4*nblocks >= maxbytes {
		return stored(nil), nil
	}

	e := &bloscEncoder{c: c, comp: comp, clevel: opt.CLevel}
	out := make([]byte, bloscHeaderSize+4*nblocks, maxbytes)
	tmp := make([]byte, blocksize)
	for j := range nblocks {
		binary.LittleEndian.PutUint32(out[bloscHeaderSize+4*j:], uint32(len(out)))
		bsize, last := blocksize, false
		if j == nblocks-1 && leftover > 0 {
			bsize, last = leftover, true
		}
		block := src[j*blocksize : j*blocksize+bsize]
		switch {
		case shuffle == BloscShuffle && typesize > 1:
			shuffleBytes(tmp[:bsize], block, typesize)
			block = tmp[:bsize]
		case shuffle == BloscBitShuffle && bsize >= typesize:
			bitShuffle(tmp[:bsize], block, typesize)
			block = tmp[:bsize]
		}
		nsplits := 1
		if flags&bloscFlagDontSplit == 0 && !last {
			nsplits = typesize
		}
		neblock := bsize / nsplits
		for s := range nsplits {
			part := block[s*neblock : (s+1)*neblock]
			sizeAt := len(out)
			out = append(out, 0, 0, 0, 0)
			maxout := neblock
			if comp.name == "snappy" {
				maxout = snappy.MaxEncodedLen(neblock)
			}
			if len(out)+maxout > maxbytes {
				maxout = maxbytes - len(out)
				if maxout <= 0 {
					return stored(out), nil
				}
			}
			enc, err := e.compress(part, maxout)
			if err != nil {
				return nil, fmt.Errorf("blosc: block %d: %w", j, err)
			}
			if enc == nil || len(enc) == neblock {
				// A stream whose size equals neblock is read back raw.
				if len(out)+neblock > maxbytes {
					return stored(out), nil
				}
				enc = part
			}
			binary.LittleEndian.PutUint32(out[sizeAt:], uint32(len(enc)))
			out = append(out, enc...)
		}
	}
	header(out, flags, len(out))
	return out, nil
}
