package n5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// errXZ is wrapped by every xz container error found before decoding.
var errXZ = errors.New("xz stream")

const (
	xzLZMA2ID   = 0x21
	xzMagic     = "\xfd7zXZ\x00"
	xzFooterMag = "YZ"
)

// decodeXZ decodes one xz stream into at most maxOut bytes.
//
// The xz decoder allocates each block's LZMA2 dictionary at the size the
// block header declares (8 MiB at the default preset, up to 1.5 GiB in a
// hostile header), even when the block decodes to a few KiB. A back
// reference can never reach before the start of the output, so a dictionary
// of maxOut+1 bytes is always enough: every block header is rewritten (and
// its CRC recomputed) to declare no more than that before decoding. Streams
// whose blocks cannot be located through the index are rejected.
func decodeXZ(src []byte, maxOut int) ([]byte, error) {
	patched, err := capXZDict(src, maxOut+1)
	if err != nil {
		return nil, err
	}
	r, err := xz.ReaderConfig{DictCap: lzma.MinDictCap, SingleStream: true}.NewReader(bytes.NewReader(patched))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errXZ, err)
	}
	var buf bytes.Buffer
	buf.Grow(min(maxOut, 4*len(src)+512))
	n, err := buf.ReadFrom(io.LimitReader(r, int64(maxOut)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errXZ, err)
	}
	if n > int64(maxOut) {
		return nil, fmt.Errorf("%w: decodes to more than %d bytes", errXZ, maxOut)
	}
	return buf.Bytes(), nil
}

// capXZDict returns a copy of the single xz stream src whose LZMA2 filters
// declare dictionaries of at most limit bytes (rounded up to an encodable size).
func capXZDict(src []byte, limit int) ([]byte, error) {
	// Stream padding: zero bytes in multiples of four after the footer.
	end := len(src)
	for end >= 4 && end%4 == 0 && binary.LittleEndian.Uint32(src[end-4:end]) == 0 {
		end -= 4
	}
	if end < 24 || string(src[:6]) != xzMagic || string(src[end-2:end]) != xzFooterMag {
		return nil, fmt.Errorf("%w: not a complete xz stream", errXZ)
	}
	footer := src[end-12 : end]
	indexSize := (int64(binary.LittleEndian.Uint32(footer[4:])) + 1) * 4
	indexStart := int64(end-12) - indexSize
	if indexStart < 12 {
		return nil, fmt.Errorf("%w: index of %d bytes does not fit", errXZ, indexSize)
	}
	index := src[indexStart : end-12]
	if len(index) == 0 || index[0] != 0 {
		return nil, fmt.Errorf("%w: bad index indicator", errXZ)
	}
	p := 1
	count, ok := uvarint(index, &p)
	if !ok || count > uint64(len(index)) {
		return nil, fmt.Errorf("%w: bad index record count", errXZ)
	}
	out := append([]byte(nil), src...)
	want := dictCode(limit)
	off := int64(12)
	for range count {
		unpadded, ok1 := uvarint(index, &p)
		_, ok2 := uvarint(index, &p)
		if !ok1 || !ok2 || unpadded == 0 || unpadded > uint64(indexStart) {
			return nil, fmt.Errorf("%w: bad index record", errXZ)
		}
		if off >= indexStart {
			return nil, fmt.Errorf("%w: index names blocks past the stream", errXZ)
		}
		if err := capBlockDict(out[off:indexStart], want); err != nil {
			return nil, err
		}
		off += int64((unpadded + 3) &^ 3)
	}
	if off != indexStart {
		return nil, fmt.Errorf("%w: blocks end at %d, index starts at %d", errXZ, off, indexStart)
	}
	return out, nil
}

// capBlockDict rewrites, in place, the LZMA2 dictionary size of the block
// header at the start of b to at most the size encoded by code.
func capBlockDict(b []byte, code byte) error {
	if len(b) < 1 || b[0] == 0 {
		return fmt.Errorf("%w: missing block header", errXZ)
	}
	size := (int(b[0]) + 1) * 4
	if size > len(b) || size < 8 {
		return fmt.Errorf("%w: block header of %d bytes", errXZ, size)
	}
	h := b[:size]
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return fmt.Errorf("%w: block header checksum mismatch", errXZ)
	}
	flags := h[1]
	p := 2
	if flags&0x40 != 0 {
		if _, ok := uvarint(h[:size-4], &p); !ok {
			return fmt.Errorf("%w: bad block header", errXZ)
		}
	}
	if flags&0x80 != 0 {
		if _, ok := uvarint(h[:size-4], &p); !ok {
			return fmt.Errorf("%w: bad block header", errXZ)
		}
	}
	changed := false
	for range int(flags&3) + 1 {
		id, ok1 := uvarint(h[:size-4], &p)
		n, ok2 := uvarint(h[:size-4], &p)
		if !ok1 || !ok2 || n > uint64(size-4-p) {
			return fmt.Errorf("%w: bad filter flags", errXZ)
		}
		if id == xzLZMA2ID && n == 1 && h[p] > code && h[p] <= 40 {
			h[p] = code
			changed = true
		}
		p += int(n)
	}
	if changed {
		binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	}
	return nil
}

// dictCode is the smallest LZMA2 dictionary-size code for at least n bytes.
func dictCode(n int) byte {
	for c := 0; c < 40; c++ {
		if int64(2|c&1)<<(c/2+11) >= int64(n) {
			return byte(c)
		}
	}
	return 40
}

// uvarint reads an xz multibyte integer (at most 9 bytes) at *p.
func uvarint(b []byte, p *int) (uint64, bool) {
	var v uint64
	for i := 0; i < 9; i++ {
		if *p >= len(b) {
			return 0, false
		}
		c := b[*p]
		*p++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, true
		}
	}
	return 0, false
}
