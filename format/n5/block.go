package n5

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
)

// Block modes of the N5 block header.
const (
	modeDefault   = 0
	modeVarLength = 1
)

// blockHeader is the uncompressed header in front of every N5 block:
// mode u16, ndim u16, ndim × u32 dims, and in varlength mode a u32 element
// count, all big-endian.
type blockHeader struct {
	mode  uint16
	dims  []int64 // N5 order
	count int64   // elements in the payload
	size  int     // header length in bytes
}

// errBlock is wrapped by malformed block headers; it wraps
// format.ErrCorrupt.
var errBlock = fmt.Errorf("malformed N5 block (%w)", format.ErrCorrupt)

// parseBlockHeader decodes the header at the start of b. It checks only the
// header's own consistency; the caller checks it against the dataset.
func parseBlockHeader(b []byte) (blockHeader, error) {
	if len(b) < 4 {
		return blockHeader{}, fmt.Errorf("%w: %d bytes, short of a header", errBlock, len(b))
	}
	h := blockHeader{mode: binary.BigEndian.Uint16(b)}
	if h.mode != modeDefault && h.mode != modeVarLength {
		// Object mode (2) and later modes are features, not damage.
		return blockHeader{}, fmt.Errorf("N5 block mode %d: %w", h.mode, format.ErrNotSupported)
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n == 0 || n > maxRank {
		return blockHeader{}, fmt.Errorf("%w: %d dimensions", errBlock, n)
	}
	h.size = 4 + 4*n
	if h.mode == modeVarLength {
		h.size += 4
	}
	if len(b) < h.size {
		return blockHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", errBlock, len(b), h.size)
	}
	h.dims = make([]int64, n)
	h.count = 1
	for i := range h.dims {
		h.dims[i] = int64(binary.BigEndian.Uint32(b[4+4*i:]))
		// Each factor is < 2^32 and the running product is capped below, so
		// it cannot overflow.
		h.count *= h.dims[i]
		if h.count > maxBlockBytes {
			return blockHeader{}, fmt.Errorf("%w: dimensions %v exceed %d elements", errBlock, h.dims[:i+1], maxBlockBytes)
		}
	}
	if h.mode == modeVarLength {
		h.count = int64(binary.BigEndian.Uint32(b[4+4*n:]))
	}
	return h, nil
}

// checkAgainst verifies that the header describes a block of this dataset at
// this position: need is the in-bounds extent (N5 order), block the nominal
// block size. Truncated edge blocks (n5-java, z5, tensorstore) declare
// exactly need; zarr-python's N5Store writes edge blocks padded to the full
// block size, which is accepted and cropped.
func (h blockHeader) checkAgainst(need, block []int64) error {
	if len(h.dims) != len(need) {
		return fmt.Errorf("%w: %d dimensions, dataset has %d", errBlock, len(h.dims), len(need))
	}
	for i := range need {
		if h.dims[i] < need[i] || h.dims[i] > max(block[i], need[i]) {
			return fmt.Errorf("%w: block dimensions %v, expected %v (or up to %v)", errBlock, h.dims, need, block)
		}
	}
	if h.mode == modeVarLength {
		area := int64(1)
		for _, d := range h.dims {
			area *= d
		}
		if h.count != area {
			return fmt.Errorf("%w: varlength block holds %d elements, dimensions %v need %d", errBlock, h.count, h.dims, area)
		}
	}
	return nil
}

// decompress decodes a block payload with the dataset's compression into
// exactly want bytes. The codecs that can decode into a caller's buffer
// write into out when its capacity is at least want, so that pooled buffers
// are reused instead of freshly zeroed ones; out may be nil.
func decompress(cs *codec.Codecs, c compression, payload []byte, want int, out []byte) ([]byte, error) {
	into := func(id string) ([]byte, error) {
		if cap(out) < want {
			return cs.Decode(id, payload, want)
		}
		return cs.DecodeInto(id, out[:0], payload)
	}
	var data []byte
	var err error
	switch c.Type {
	case "raw":
		data = payload
	case "gzip":
		id := "gzip"
		if c.Zlib {
			id = "zlib"
		}
		data, err = into(id)
	case "bzip2":
		data, err = into("bz2")
	case "zstd", "blosc":
		data, err = into(c.Type)
	case "lz4":
		data, err = decodeLZ4Java(payload, want)
	case "xz":
		data, err = decodeXZ(payload, want)
	default:
		return nil, fmt.Errorf("compression %q: %w", c.Type, format.ErrNotSupported)
	}
	if err != nil {
		if errors.Is(err, codec.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", format.ErrNotSupported, err)
		}
		// A payload that does not decode is truncated or damaged.
		return nil, fmt.Errorf("%w: %w", err, format.ErrCorrupt)
	}
	if len(data) != want {
		return nil, fmt.Errorf("decoded to %d bytes, want %d: %w", len(data), want, format.ErrCorrupt)
	}
	return data, nil
}
