package zarr

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/imgdataset/imgdataset/format"
)

// numType is a NumPy numeric typestr as a filter states it.
type numType struct {
	kind byte // 'i', 'u' or 'f'
	size int
	big  bool
	name string
}

func parseNumType(s string) (numType, error) {
	if len(s) < 3 {
		return numType{}, fmt.Errorf("filter dtype %q: malformed", s)
	}
	t := numType{kind: s[1], name: s}
	n, err := strconv.Atoi(s[2:])
	if err != nil {
		return numType{}, fmt.Errorf("filter dtype %q: malformed", s)
	}
	t.size = n
	ok := (t.kind == 'i' || t.kind == 'u') && (n == 1 || n == 2 || n == 4 || n == 8) ||
		t.kind == 'f' && (n == 4 || n == 8)
	if !ok {
		return numType{}, fmt.Errorf("filter dtype %q: %w", s, format.ErrNotSupported)
	}
	switch s[0] {
	case '<', '|', '=':
	case '>':
		t.big = n > 1
	default:
		return numType{}, fmt.Errorf("filter dtype %q: unknown byte order", s)
	}
	return t, nil
}

// value is one element: integers as two's-complement bits (sign-extended for
// signed types), floats as float64.
type value struct {
	bits  uint64
	f     float64
	float bool
}

func (t numType) load(b []byte) value {
	var u uint64
	switch t.size {
	case 1:
		u = uint64(b[0])
	case 2:
		if t.big {
			u = uint64(binary.BigEndian.Uint16(b))
		} else {
			u = uint64(binary.LittleEndian.Uint16(b))
		}
	case 4:
		if t.big {
			u = uint64(binary.BigEndian.Uint32(b))
		} else {
			u = uint64(binary.LittleEndian.Uint32(b))
		}
	case 8:
		if t.big {
			u = binary.BigEndian.Uint64(b)
		} else {
			u = binary.LittleEndian.Uint64(b)
		}
	}
	switch {
	case t.kind == 'f' && t.size == 4:
		return value{f: float64(math.Float32frombits(uint32(u))), float: true}
	case t.kind == 'f':
		return value{f: math.Float64frombits(u), float: true}
	case t.kind == 'i':
		shift := 64 - 8*uint(t.size)
		return value{bits: uint64(int64(u<<shift) >> shift)}
	}
	return value{bits: u}
}

// float is v as a float64, as NumPy converts integers.
func (v value) float64(signed bool) float64 {
	if v.float {
		return v.f
	}
	if signed {
		return float64(int64(v.bits))
	}
	return float64(v.bits)
}

// cast converts v (of type from) to type t as NumPy's astype does: floats
// to integers truncate toward zero, integers wrap to the narrower width.
func (t numType) cast(v value, from numType) value {
	if t.kind == 'f' {
		f := v.float64(from.kind == 'i')
		if t.size == 4 {
			f = float64(float32(f))
		}
		return value{f: f, float: true}
	}
	if !v.float {
		return v
	}
	f := math.Trunc(v.f)
	switch {
	case math.IsNaN(f):
		return value{}
	case f >= 0 && f >= math.MaxInt64:
		return value{bits: uint64(min(f, math.MaxUint64))}
	default:
		return value{bits: uint64(int64(max(f, math.MinInt64)))}
	}
}

func (t numType) store(b []byte, v value) {
	u := v.bits
	if t.kind == 'f' {
		if t.size == 4 {
			u = uint64(math.Float32bits(float32(v.f)))
		} else {
			u = math.Float64bits(v.f)
		}
	}
	switch t.size {
	case 1:
		b[0] = byte(u)
	case 2:
		if t.big {
			binary.BigEndian.PutUint16(b, uint16(u))
		} else {
			binary.LittleEndian.PutUint16(b, uint16(u))
		}
	case 4:
		if t.big {
			binary.BigEndian.PutUint32(b, uint32(u))
		} else {
			binary.LittleEndian.PutUint32(b, uint32(u))
		}
	case 8:
		if t.big {
			binary.BigEndian.PutUint64(b, u)
		} else {
			binary.LittleEndian.PutUint64(b, u)
		}
	}
}

// filter is one numcodecs v2 filter, decoded element-wise from enc (the
// stored type) to dec (the type handed to the filter before it).
type filter struct {
	id            string
	dec, enc      numType
	scale, offset float64 // fixedscaleoffset
}

// decode writes len(in)/enc.size elements of dec into out, following the
// numcodecs decode of each filter.
func (f *filter) decode(in, out []byte) {
	n := len(in) / f.enc.size
	switch f.id {
	case "delta":
		// np.cumsum in dtype: integer sums wrap, float32 sums round each step.
		var acc value
		for i := 0; i < n; i++ {
			v := f.dec.cast(f.enc.load(in[i*f.enc.size:]), f.enc)
			switch {
			case f.dec.kind != 'f':
				acc.bits += v.bits
			case f.dec.size == 4:
				acc = value{f: float64(float32(acc.f) + float32(v.f)), float: true}
			default:
				acc = value{f: acc.f + v.f, float: true}
			}
			f.dec.store(out[i*f.dec.size:], acc)
		}
	case "fixedscaleoffset":
		// enc / scale + offset, in float32 for float32 input (NumPy 1.x
		// scalar casting), float64 otherwise, then astype(dtype).
		for i := 0; i < n; i++ {
			e := f.enc.load(in[i*f.enc.size:])
			var r float64
			if f.enc.kind == 'f' && f.enc.size == 4 {
				r = float64(float32(e.f)/float32(f.scale) + float32(f.offset))
			} else {
				r = e.float64(f.enc.kind == 'i')/f.scale + f.offset
			}
			f.dec.store(out[i*f.dec.size:], f.dec.cast(value{f: r, float: true}, numType{kind: 'f', size: 8}))
		}
	default: // astype, quantize: a plain conversion back to dtype
		for i := 0; i < n; i++ {
			f.dec.store(out[i*f.dec.size:], f.dec.cast(f.enc.load(in[i*f.enc.size:]), f.enc))
		}
	}
}

// parseFilters reads a v2 "filters" list for an array of element size
// elem; null or [] gives no filters. The filters must chain: each one's
// decoded element size is the size of the one before it (the array's for
// the first). Unknown filters are format.ErrNotSupported.
func parseFilters(raw json.RawMessage, elem int) ([]filter, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("filters %s: %w", compact(raw), err)
	}
	if len(list) > 16 {
		return nil, fmt.Errorf("filters: %d filters", len(list))
	}
	fs := make([]filter, 0, len(list))
	size := elem
	for _, m := range list {
		f, err := parseFilter(m)
		if err != nil {
			return nil, err
		}
		if f.dec.size != size {
			return nil, fmt.Errorf("filter %q: decodes to %d-byte elements, want %d: %w", f.id, f.dec.size, size, format.ErrNotSupported)
		}
		size = f.enc.size
		fs = append(fs, f)
	}
	return fs, nil
}

func parseFilter(m map[string]json.RawMessage) (filter, error) {
	str := func(k string) (string, bool) {
		var s string
		if json.Unmarshal(m[k], &s) != nil {
			return "", false
		}
		return s, true
	}
	num := func(k string) (float64, error) {
		var v float64
		if err := json.Unmarshal(m[k], &v); err != nil {
			return 0, fmt.Errorf("filter fixedscaleoffset: %s %s: %w", k, compact(m[k]), err)
		}
		return v, nil
	}
	id, _ := str("id")
	f := filter{id: id}
	var decName, encName string
	switch id {
	case "delta", "fixedscaleoffset", "quantize":
		var ok bool
		if decName, ok = str("dtype"); !ok {
			return f, fmt.Errorf("filter %q: no dtype", id)
		}
		if encName, ok = str("astype"); !ok {
			encName = decName
		}
	case "astype":
		var ok1, ok2 bool
		encName, ok1 = str("encode_dtype")
		decName, ok2 = str("decode_dtype")
		if !ok1 || !ok2 {
			return f, fmt.Errorf("filter astype: encode_dtype and decode_dtype are required")
		}
	default:
		return f, fmt.Errorf("filter %q: %w", id, format.ErrNotSupported)
	}
	var err error
	if f.dec, err = parseNumType(decName); err != nil {
		return f, fmt.Errorf("filter %q: %w", id, err)
	}
	if f.enc, err = parseNumType(encName); err != nil {
		return f, fmt.Errorf("filter %q: %w", id, err)
	}
	if id == "fixedscaleoffset" {
		if f.scale, err = num("scale"); err != nil {
			return f, err
		}
		if f.offset, err = num("offset"); err != nil {
			return f, err
		}
		if f.scale == 0 {
			return f, fmt.Errorf("filter fixedscaleoffset: scale 0")
		}
	}
	return f, nil
}

// applyFilters decodes the compressor output b (n elements of the last
// filter's stored type) back through fs in reverse, into out's capacity for
// the first filter.
func applyFilters(fs []filter, b []byte, out []byte, n int) []byte {
	for k := len(fs) - 1; k >= 0; k-- {
		size := n * fs[k].dec.size
		var dst []byte
		if k == 0 {
			dst = out[:size]
		} else {
			dst = make([]byte, size)
		}
		fs[k].decode(b, dst)
		b = dst
	}
	return b
}
