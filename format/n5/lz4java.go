package n5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// The lz4-java LZ4BlockOutputStream framing, which N5's Lz4Compression uses:
// a sequence of blocks, each with a 21-byte header
//
//	magic "LZ4Block" | token u8 | compressed u32 LE | original u32 LE | checksum u32 LE
//
// where the token's high nibble is the method (0x10 stored, 0x20 LZ4 block)
// and its low nibble the level (the block holds at most 1<<(10+level) bytes);
// the checksum is xxHash32 (seed 0x9747b28c) of the decoded block, masked to
// 28 bits. A block with both lengths zero ends the stream.
const (
	lz4jMagic      = "LZ4Block"
	lz4jHeaderLen  = len(lz4jMagic) + 1 + 4 + 4 + 4
	lz4jMethodRaw  = 0x10
	lz4jMethodLZ4  = 0x20
	lz4jLevelBase  = 10
	lz4jSeed       = 0x9747b28c
	lz4jChecksumMk = 0x0FFFFFFF
)

// errLZ4Java is wrapped by every framing error.
var errLZ4Java = errors.New("lz4-java block stream")

// decodeLZ4Java decodes an lz4-java block stream into at most maxOut bytes,
// verifying each block's checksum. A stream that ends cleanly at a block
// boundary without the end marker is accepted, as lz4-java does at EOF.
func decodeLZ4Java(src []byte, maxOut int) ([]byte, error) {
	var out []byte
	for len(src) > 0 {
		if len(src) < lz4jHeaderLen {
			return nil, fmt.Errorf("%w: %d trailing bytes, short of a block header", errLZ4Java, len(src))
		}
		if string(src[:len(lz4jMagic)]) != lz4jMagic {
			return nil, fmt.Errorf("%w: bad magic %q", errLZ4Java, src[:len(lz4jMagic)])
		}
		token := src[8]
		method := token & 0xF0
		level := lz4jLevelBase + int(token&0x0F)
		clen := binary.LittleEndian.Uint32(src[9:])
		olen := binary.LittleEndian.Uint32(src[13:])
		check := binary.LittleEndian.Uint32(src[17:])
		src = src[lz4jHeaderLen:]
		if method != lz4jMethodRaw && method != lz4jMethodLZ4 {
			return nil, fmt.Errorf("%w: unknown method 0x%02x", errLZ4Java, method)
		}
		if olen == 0 {
			if clen != 0 || check != 0 {
				return nil, fmt.Errorf("%w: malformed end marker", errLZ4Java)
			}
			break
		}
		if uint64(olen) > 1<<level || clen == 0 || (method == lz4jMethodRaw && clen != olen) {
			return nil, fmt.Errorf("%w: inconsistent block lengths %d/%d at level %d", errLZ4Java, clen, olen, level)
		}
		if uint64(clen) > uint64(len(src)) {
			return nil, fmt.Errorf("%w: block of %d bytes, %d left", errLZ4Java, clen, len(src))
		}
		if uint64(len(out))+uint64(olen) > uint64(maxOut) {
			return nil, fmt.Errorf("%w: decodes to more than %d bytes", errLZ4Java, maxOut)
		}
		if out == nil && maxOut <= 16<<20 {
			// maxOut is normally the exact block size: allocate once.
			out = make([]byte, 0, maxOut)
		}
		out = slices.Grow(out, int(olen))
		start := len(out)
		out = out[:start+int(olen)]
		dst := out[start:]
		if method == lz4jMethodRaw {
			copy(dst, src[:clen])
		} else {
			n, err := lz4.UncompressBlock(src[:clen], dst)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errLZ4Java, err)
			}
			if n != int(olen) {
				return nil, fmt.Errorf("%w: block decoded to %d bytes, header says %d", errLZ4Java, n, olen)
			}
		}
		if got := xxh32(dst, lz4jSeed) & lz4jChecksumMk; got != check {
			return nil, fmt.Errorf("%w: checksum 0x%07x, header says 0x%07x", errLZ4Java, got, check)
		}
		src = src[clen:]
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// encodeLZ4Java writes src as an lz4-java block stream with blocks of at most
// 1<<(10+level) bytes; it exists so tests can build streams.
func encodeLZ4Java(src []byte, level int) ([]byte, error) {
	bsize := 1 << (lz4jLevelBase + level)
	var out []byte
	hdr := func(method byte, clen, olen int, check uint32) {
		out = append(out, lz4jMagic...)
		out = append(out, method|byte(level))
		out = binary.LittleEndian.AppendUint32(out, uint32(clen))
		out = binary.LittleEndian.AppendUint32(out, uint32(olen))
		out = binary.LittleEndian.AppendUint32(out, check)
	}
	buf := make([]byte, lz4.CompressBlockBound(bsize))
	for off := 0; off < len(src); off += bsize {
		blk := src[off:min(off+bsize, len(src))]
		check := xxh32(blk, lz4jSeed) & lz4jChecksumMk
		n, err := lz4.CompressBlock(blk, buf, nil)
		if err != nil {
			return nil, err
		}
		if n == 0 || n >= len(blk) {
			hdr(lz4jMethodRaw, len(blk), len(blk), check)
			out = append(out, blk...)
			continue
		}
		hdr(lz4jMethodLZ4, n, len(blk), check)
		out = append(out, buf[:n]...)
	}
	hdr(lz4jMethodRaw, 0, 0, 0)
	return out, nil
}

const (
	xxPrime1 uint32 = 2654435761
	xxPrime2 uint32 = 2246822519
	xxPrime3 uint32 = 3266489917
	xxPrime4 uint32 = 668265263
	xxPrime5 uint32 = 374761393
)

// xxh32 is xxHash32 of b with seed (the lz4-java block checksum).
func xxh32(b []byte, seed uint32) uint32 {
	n := len(b)
	var h uint32
	if n >= 16 {
		v1 := seed + xxPrime1 + xxPrime2
		v2 := seed + xxPrime2
		v3 := seed
		v4 := seed - xxPrime1
		round := func(v, lane uint32) uint32 {
			return bits.RotateLeft32(v+lane*xxPrime2, 13) * xxPrime1
		}
		for len(b) >= 16 {
			v1 = round(v1, binary.LittleEndian.Uint32(b))
			v2 = round(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = round(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = round(v4, binary.LittleEndian.Uint32(b[12:]))
			b = b[16:]
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = seed + xxPrime5
	}
	h += uint32(n)
	for len(b) >= 4 {
		h += binary.LittleEndian.Uint32(b) * xxPrime3
		h = bits.RotateLeft32(h, 17) * xxPrime4
		b = b[4:]
	}
	for _, c := range b {
		h += uint32(c) * xxPrime5
		h = bits.RotateLeft32(h, 11) * xxPrime1
	}
	h ^= h >> 15
	h *= xxPrime2
	h ^= h >> 13
	h *= xxPrime3
	h ^= h >> 16
	return h
}
