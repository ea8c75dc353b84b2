package zarr

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// maxStringChars caps the length of a fixed-size string dtype, which becomes
// an axis of the volume.
const maxStringChars = 1 << 20

// stringDType resolves a NumPy fixed-size string typestr. volume has no
// string dtype, so the characters are exposed as a trailing "char" axis:
// S<n> as uint8 bytes, U<n> as uint32 UCS-4 code points. In C order these are
// exactly NumPy's little-endian bytes of the string array.
func stringDType(s string, order, kind byte, n int) (dtype, error) {
	if n <= 0 || n > maxStringChars {
		return dtype{}, fmt.Errorf("dtype %q: string length %d outside 1..%d: %w", s, n, maxStringChars, format.ErrNotSupported)
	}
	d := dtype{vt: volume.Uint8, swapLen: 1, zarr: s, chars: n}
	if kind == 'U' {
		d.vt, d.swapLen = volume.Uint32, 4
	}
	switch order {
	case '<', '|', '=':
	case '>':
		d.big = kind == 'U'
	default:
		return dtype{}, fmt.Errorf("dtype %q: unknown byte order %q", s, order)
	}
	return d, nil
}

// stringDTypeName is the byte-order-free NumPy name ("S7", "U13") reported
// in Metadata["string_dtype"].
func stringDTypeName(d dtype) string {
	if d.vt == volume.Uint8 {
		return fmt.Sprintf("S%d", d.chars)
	}
	return fmt.Sprintf("U%d", d.chars)
}

// parseStringFill checks the fill_value of a string array and returns one
// zero code unit as the array's element fill, plus the whole fill string as
// C-order little-endian code units (nil when it is empty), which absent
// chunks are filled with. Zarr v2 writes S fills as base64 and U fills as
// the string; zarr-python's default fill 0 is stored as "0" (U) or "MA=="
// (S), so non-empty fills are common.
func parseStringFill(raw json.RawMessage, d dtype) (unit, pattern []byte, err error) {
	unit = make([]byte, d.size())
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return unit, nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("fill_value %s for %s: %w", compact(raw), d.zarr, err)
	}
	pattern = make([]byte, d.chars*d.size())
	if d.vt == volume.Uint8 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("fill_value %q for %s: not base64: %w", s, d.zarr, err)
		}
		copy(pattern, b)
	} else {
		i := 0
		for _, r := range s {
			if i == d.chars {
				break
			}
			binary.LittleEndian.PutUint32(pattern[4*i:], uint32(r))
			i++
		}
	}
	if len(bytes.Trim(pattern, "\x00")) == 0 {
		pattern = nil
	}
	return unit, pattern, nil
}

// fillPattern writes copies of pattern over b.
func fillPattern(b, pattern []byte) []byte {
	n := copy(b, pattern)
	for n < len(b) {
		n += copy(b[n:], b[:n])
	}
	return b
}

// stringInfo marks info, whose last axis holds a string's characters, as a
// string array.
func stringInfo(info *volume.Info, d dtype) {
	n := len(info.Shape) - 1
	info.Axes = append(defaultAxes(info.Shape[:n], nil), volume.Axis{Name: "char", Size: int64(d.chars), Scale: 1})
	info.Metadata["string_dtype"] = stringDTypeName(d)
}
