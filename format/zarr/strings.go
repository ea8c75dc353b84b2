package zarr

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// maxStringReadBytes bounds the element bytes one ReadStrings call of a
// fixed-size string array holds at once (the strings it returns come on
// top).
const maxStringReadBytes = 256 << 20

// stringDType resolves a NumPy fixed-size string typestr. An element is a
// whole string, as in NumPy: S<n> is n bytes, U<n> n UCS-4 code points
// (read little-endian whatever the stored order).
func stringDType(s string, order, kind byte, n int) (dtype, error) {
	vt := volume.FixedString(kind, n)
	if vt == "" {
		return dtype{}, fmt.Errorf("dtype %q: string length %d outside 1..%d: %w", s, n, volume.MaxStringChars, format.ErrNotSupported)
	}
	d := dtype{vt: vt, swapLen: 1, zarr: s, chars: n}
	if kind == 'U' {
		d.swapLen = 4
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

// parseStringFill returns the fill_value of a string array as one element:
// the fill string, cut to the dtype's length and NUL-padded, as NumPy
// stores it. Zarr v2 writes S fills as base64 and U fills as the string;
// zarr-python's default fill 0 is stored as "0" (U) or "MA==" (S), so
// non-empty fills are common.
func parseStringFill(raw json.RawMessage, d dtype) ([]byte, error) {
	elem := make([]byte, d.size())
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return elem, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("fill_value %s for %s: %w", compact(raw), d.zarr, err)
	}
	if d.swapLen == 1 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("fill_value %q for %s: not base64: %w", s, d.zarr, err)
		}
		copy(elem, b)
		return elem, nil
	}
	i := 0
	for _, r := range s {
		if i == d.chars {
			break
		}
		binary.LittleEndian.PutUint32(elem[4*i:], uint32(r))
		i++
	}
	return elem, nil
}

// fixedStringArray is the volume of a fixed-size string array: ReadRegion
// gives NumPy's bytes of the strings (C order, code points little-endian),
// ReadStrings the strings.
type fixedStringArray struct {
	*array
}

var _ StringReader = (*fixedStringArray)(nil)

// ReadStrings implements StringReader. As NumPy does, trailing NULs are not
// part of a string; S elements are returned byte for byte, U elements as
// UTF-8, and a U element holding no Unicode character is an error.
func (f *fixedStringArray) ReadStrings(ctx context.Context, box volume.Box) ([]string, error) {
	if err := box.Within(f.info.Shape); err != nil {
		return nil, fmt.Errorf("zarr %q: %w", f.info.Name, err)
	}
	n, size := box.NumElements(), int64(f.dt.size())
	if n > maxStringsPerRead || n*size > maxStringReadBytes {
		return nil, fmt.Errorf("zarr %q: box %v holds %d %s elements, more than one ReadStrings returns (%d elements, %d bytes)",
			f.info.Name, box, n, f.info.DType, maxStringsPerRead, maxStringReadBytes)
	}
	buf := make([]byte, n*size)
	if err := f.ReadRegion(ctx, box, buf); err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		s, err := decodeFixed(buf[int64(i)*size:int64(i+1)*size], f.dt.swapLen == 4)
		if err != nil {
			return nil, fmt.Errorf("zarr %q: element %d of box %v: %w", f.info.Name, i, box, err)
		}
		out[i] = s
	}
	return out, nil
}

// decodeFixed turns one little-endian element into its string, without
// the trailing NULs.
func decodeFixed(b []byte, ucs4 bool) (string, error) {
	if !ucs4 {
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	end := len(b) / 4
	for end > 0 && binary.LittleEndian.Uint32(b[4*(end-1):]) == 0 {
		end--
	}
	s := make([]byte, 0, end)
	for i := 0; i < end; i++ {
		c := binary.LittleEndian.Uint32(b[4*i:])
		if c > utf8.MaxRune || !utf8.ValidRune(rune(c)) {
			return "", fmt.Errorf("code point %#x at character %d is not a Unicode character", c, i)
		}
		s = utf8.AppendRune(s, rune(c))
	}
	return string(s), nil
}
