package zarr

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// Limits that keep hostile metadata from driving allocations.
const (
	maxRank       = 32
	maxChunkBytes = 1 << 30 // one decoded chunk
	maxMetaBytes  = 16 << 20
	maxElements   = 1 << 62
)

// dtype is a Zarr element type resolved to a volume dtype plus its storage
// byte order.
type dtype struct {
	vt      volume.DType
	big     bool // stored big-endian
	swapLen int  // byte-swap unit: the element size, or half of it for complex
	zarr    string
	// chars is the length of a fixed-size string dtype (S<n>, U<n>), whose
	// elements are whole strings and vt a volume.FixedString (see
	// strings.go); 0 for numeric dtypes.
	chars int
	// object marks a variable-length (object) dtype, read through
	// StringReader (see vlen.go); vt is then ObjectDType, of size 0.
	object bool
}

func (d dtype) size() int { return d.vt.Size() }

// parseV2DType reads a NumPy typestr such as "<i2", ">f4", "|u1", "|b1".
func parseV2DType(raw json.RawMessage) (dtype, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return dtype{}, fmt.Errorf("structured dtype %s: %w", compact(raw), format.ErrNotSupported)
	}
	if len(s) == 2 && s[1] == 'O' && (s[0] == '|' || s[0] == '<' || s[0] == '>' || s[0] == '=') {
		// The object codec in the filters says how elements are stored.
		return dtype{vt: ObjectDType, zarr: s, object: true}, nil
	}
	if len(s) < 3 {
		return dtype{}, fmt.Errorf("dtype %q: malformed", s)
	}
	order, kind, nstr := s[0], s[1], s[2:]
	n, err := strconv.Atoi(nstr)
	if err != nil {
		return dtype{}, fmt.Errorf("dtype %q: %w", s, format.ErrNotSupported)
	}
	var vt volume.DType
	switch {
	case kind == 'S' || kind == 'U':
		return stringDType(s, order, kind, n)
	case kind == 'b' && n == 1:
		vt = volume.Bool
	case kind == 'i' || kind == 'u':
		bits := map[int]string{1: "8", 2: "16", 4: "32", 8: "64"}[n]
		if bits == "" {
			return dtype{}, fmt.Errorf("dtype %q: malformed", s)
		}
		if kind == 'i' {
			vt = volume.DType("int" + bits)
		} else {
			vt = volume.DType("uint" + bits)
		}
	case kind == 'f' && (n == 2 || n == 4 || n == 8):
		vt = volume.DType("float" + strconv.Itoa(8*n))
	case kind == 'c' && (n == 8 || n == 16):
		vt = volume.DType("complex" + strconv.Itoa(8*n))
	default:
		return dtype{}, fmt.Errorf("dtype %q: %w", s, format.ErrNotSupported)
	}
	d := dtype{vt: vt, swapLen: n, zarr: s}
	if kind == 'c' {
		d.swapLen = n / 2
	}
	switch order {
	case '<', '|', '=':
	case '>':
		d.big = n > 1
	default:
		return dtype{}, fmt.Errorf("dtype %q: unknown byte order %q", s, order)
	}
	return d, nil
}

// parseV3DType reads a Zarr v3 data_type (a name or {"name": ...}).
func parseV3DType(raw json.RawMessage) (dtype, error) {
	name, _, err := extName(raw)
	if err != nil {
		return dtype{}, fmt.Errorf("data_type: %w", err)
	}
	if _, ok := parseV3ObjectDType(name); ok {
		return dtype{vt: ObjectDType, zarr: name, object: true}, nil
	}
	vt := volume.DType(name)
	if _, _, str := vt.FixedString(); !vt.Valid() || vt == volume.RGBA8 || str {
		return dtype{}, fmt.Errorf("data_type %q: %w", name, format.ErrNotSupported)
	}
	d := dtype{vt: vt, swapLen: vt.Size(), zarr: name}
	if strings.HasPrefix(name, "complex") {
		d.swapLen /= 2
	}
	return d, nil
}

// extName reads an extension point: "name" or {"name": ..., "configuration": {...}}.
func extName(raw json.RawMessage) (string, json.RawMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil, nil
	}
	var o struct {
		Name          string          `json:"name"`
		Configuration json.RawMessage `json:"configuration"`
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.Name == "" {
		return "", nil, fmt.Errorf("malformed extension %s", compact(raw))
	}
	return o.Name, o.Configuration, nil
}

// parseFill encodes a fill_value as one little-endian element. null (Zarr v2
// "undefined") reads as zero.
func parseFill(raw json.RawMessage, d dtype) ([]byte, error) {
	out := make([]byte, d.size())
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	switch raw[0] {
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("fill_value %s: %w", compact(raw), err)
		}
		if b {
			return putNumber(out, d.vt, "1")
		}
		return out, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("fill_value %s: %w", compact(raw), err)
		}
		switch s {
		case "NaN", "Infinity", "-Infinity":
			return putNumber(out, d.vt, s)
		}
		if strings.HasPrefix(s, "0x") {
			v, err := strconv.ParseUint(s[2:], 16, 64)
			if err != nil || len(s)-2 != 2*d.size() {
				return nil, fmt.Errorf("fill_value %q: bad bit pattern for %s", s, d.vt)
			}
			for i := range out {
				out[i] = byte(v >> (8 * i))
			}
			return out, nil
		}
		// Zarr v2 stores other fills as base64 of the raw (stored-order) bytes.
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != d.size() {
			return nil, fmt.Errorf("fill_value %q: not valid for %s", s, d.vt)
		}
		copy(out, b)
		if d.big {
			codec.SwapBytes(out, d.swapLen)
		}
		return out, nil
	case '[':
		var parts []json.Number
		if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != 2 || !strings.HasPrefix(string(d.vt), "complex") {
			return nil, fmt.Errorf("fill_value %s: not valid for %s", compact(raw), d.vt)
		}
		half := volume.Float32
		if d.vt == volume.Complex128 {
			half = volume.Float64
		}
		h := d.size() / 2
		if _, err := putNumber(out[:h], half, string(parts[0])); err != nil {
			return nil, err
		}
		if _, err := putNumber(out[h:], half, string(parts[1])); err != nil {
			return nil, err
		}
		return out, nil
	}
	return putNumber(out, d.vt, string(raw))
}

// putNumber writes the decimal (or NaN/Infinity) s as one element of vt.
func putNumber(out []byte, vt volume.DType, s string) ([]byte, error) {
	bad := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("fill_value %s: not valid for %s: %v", s, vt, err)
	}
	f, ferr := strconv.ParseFloat(strings.Replace(strings.Replace(s, "Infinity", "Inf", 1), "NaN", "NaN", 1), 64)
	switch vt {
	case volume.Float16:
		if ferr != nil {
			return bad(ferr)
		}
		binary.LittleEndian.PutUint16(out, volume.Float16FromFloat64(f))
	case volume.Float32:
		if ferr != nil {
			return bad(ferr)
		}
		binary.LittleEndian.PutUint32(out, math.Float32bits(float32(f)))
	case volume.Float64:
		if ferr != nil {
			return bad(ferr)
		}
		binary.LittleEndian.PutUint64(out, math.Float64bits(f))
	case volume.Complex64, volume.Complex128:
		h := len(out) / 2
		half := volume.Float32
		if vt == volume.Complex128 {
			half = volume.Float64
		}
		return putNumber(out[:h], half, s)
	case volume.Bool, volume.Uint8, volume.Uint16, volume.Uint32, volume.Uint64:
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			if ferr != nil || f < 0 || f != math.Trunc(f) || f > math.MaxUint64 {
				return bad(err)
			}
			u = uint64(f)
		}
		for i := range out {
			out[i] = byte(u >> (8 * i))
		}
	default: // signed integers
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt64 {
				return bad(err)
			}
			v = int64(f)
		}
		for i := range out {
			out[i] = byte(uint64(v) >> (8 * i))
		}
	}
	return out, nil
}

// zarray is the v2 array metadata (.zarray).
type zarray struct {
	ZarrFormat         int             `json:"zarr_format"`
	Shape              []int64         `json:"shape"`
	Chunks             []int64         `json:"chunks"`
	DType              json.RawMessage `json:"dtype"`
	Compressor         json.RawMessage `json:"compressor"`
	FillValue          json.RawMessage `json:"fill_value"`
	Order              string          `json:"order"`
	Filters            json.RawMessage `json:"filters"`
	DimensionSeparator string          `json:"dimension_separator"`
}

// compressor is the numcodecs config of a v2 compressor; Level is -1 when not stated.
type compressor struct {
	ID     string
	Level  int
	Config map[string]any
}

// parseZarray parses and validates .zarray bytes.
func parseZarray(b []byte) (*zarray, dtype, []byte, *compressor, error) {
	var z zarray
	if err := json.Unmarshal(b, &z); err != nil {
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: %w", err)
	}
	if z.ZarrFormat != 2 {
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: zarr_format %d, want 2", z.ZarrFormat)
	}
	if err := checkGrid(z.Shape, z.Chunks); err != nil {
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: %w", err)
	}
	d, err := parseV2DType(z.DType)
	if err != nil {
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: %w", err)
	}
	elem := d.size()
	if d.object {
		elem = 4 // each element stores at least its length
	}
	if err := checkSizes(z.Shape, z.Chunks, elem); err != nil {
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: %w", err)
	}
	switch z.Order {
	case "C", "F":
	case "":
		z.Order = "C"
	default:
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: order %q", z.Order)
	}
	switch z.DimensionSeparator {
	case "":
		z.DimensionSeparator = "."
	case ".", "/":
	default:
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: dimension_separator %q", z.DimensionSeparator)
	}
	var fill []byte
	switch {
	case d.object:
		// Parsed by setupV2Object.
	case d.chars > 0:
		fill, err = parseStringFill(z.FillValue, d)
	default:
		fill, err = parseFill(z.FillValue, d)
	}
	if err != nil {
		return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: %w", err)
	}
	c := &compressor{ID: "raw", Level: -1}
	if cb := bytes.TrimSpace(z.Compressor); len(cb) > 0 && string(cb) != "null" {
		if err := json.Unmarshal(cb, &c.Config); err != nil {
			return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: compressor: %w", err)
		}
		id, _ := c.Config["id"].(string)
		if id == "" {
			return nil, dtype{}, nil, nil, fmt.Errorf(".zarray: compressor without id: %s", compact(cb))
		}
		c.ID = id
		for _, k := range []string{"level", "clevel"} {
			if v, ok := c.Config[k].(float64); ok {
				c.Level = int(v)
			}
		}
	}
	return &z, d, fill, c, nil
}

// checkGrid validates rank, shape and chunk shape.
func checkGrid(shape, chunks []int64) error {
	if len(shape) > maxRank {
		return fmt.Errorf("rank %d exceeds %d", len(shape), maxRank)
	}
	if len(chunks) != len(shape) {
		return fmt.Errorf("chunks %v do not match shape %v", chunks, shape)
	}
	for i := range shape {
		if shape[i] < 0 || chunks[i] <= 0 {
			return fmt.Errorf("bad shape %v / chunks %v", shape, chunks)
		}
	}
	return nil
}

// checkSizes refuses arrays whose element count or chunk size overflow the caps.
func checkSizes(shape, chunks []int64, elem int) error {
	n := uint64(1)
	for _, s := range shape {
		if s != 0 && n > maxElements/uint64(s) {
			return fmt.Errorf("shape %v too large", shape)
		}
		n *= uint64(s)
	}
	c := uint64(elem)
	for _, s := range chunks {
		if c > maxChunkBytes/uint64(s) {
			return fmt.Errorf("chunk %v of %d-byte elements exceeds %d bytes", chunks, elem, maxChunkBytes)
		}
		c *= uint64(s)
	}
	return nil
}

func compact(b []byte) string {
	s := string(b)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
