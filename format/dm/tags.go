package dm

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
)

// Limits that keep a hostile or damaged file from costing unbounded time or memory.
const (
	maxDepth      = 64      // nesting of tag groups
	maxTags       = 1 << 20 // tag entries in one file
	maxInfoWords  = 1024    // words in one data tag's type description
	maxValueBytes = 1 << 16 // arrays larger than this are recorded, not read
)

// Encoded element types of tag data (formats.md §3.2).
const (
	typeInt16   = 2
	typeInt32   = 3
	typeUint16  = 4
	typeUint32  = 5
	typeFloat32 = 6
	typeFloat64 = 7
	typeBool    = 8
	typeInt8    = 9
	typeOctet   = 10
	typeInt64   = 11
	typeUint64  = 12
	typeStruct  = 15
	typeString  = 18
	typeArray   = 20
)

// ErrFormat is wrapped by every error about a malformed DM file: a header,
// tag or size that contradicts the format, or data declared past the end of
// the file. It wraps format.ErrCorrupt, so the catalog reports such a file as
// corrupt rather than as a failing store.
var ErrFormat = fmt.Errorf("malformed DigitalMicrograph file (%w)", format.ErrCorrupt)

// Tag is one entry of a DM tag tree. A group has Children and a nil Value; a
// data tag has a Value and no Children. Unnamed entries (list items such as
// the images of ImageList) have an empty Name and are addressed by position.
type Tag struct {
	Name     string
	Group    bool
	Children []*Tag
	// Value is int64 (integer types; uint64 for type 12), float64, bool, string
	// (text arrays and strings), []any (structs), []float64 / []int64 (small
	// numeric arrays) or *Array (large arrays such as pixel data, not read).
	Value any
}

// Array locates an array tag's bytes in the file without holding them.
type Array struct {
	Offset   int64 // absolute byte offset of the first element
	Length   int64 // bytes
	ElemType int   // encoded element type (formats.md §3.2); 15 for arrays of structs
	Count    int64 // number of elements
}

// Lookup finds the tag at a dotted path below t, such as
// "ImageList.1.ImageData.Calibrations.Dimension.0.Scale". A segment matches a
// child by name first; a number that names no child selects the child at that
// position. Names containing dots match too, because each step tries every
// child whose name is a prefix of the remaining path.
func (t *Tag) Lookup(path string) *Tag {
	if t == nil {
		return nil
	}
	if path == "" {
		return t
	}
	for _, c := range t.Children {
		if c.Name == "" {
			continue
		}
		if path == c.Name {
			return c
		}
		if strings.HasPrefix(path, c.Name+".") {
			if r := c.Lookup(path[len(c.Name)+1:]); r != nil {
				return r
			}
		}
	}
	seg, rest, _ := strings.Cut(path, ".")
	if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(t.Children) {
		return t.Children[i].Lookup(rest)
	}
	return nil
}

// Float returns the tag's value at path as a float64 when it is numeric.
func (t *Tag) Float(path string) (float64, bool) {
	x := t.Lookup(path)
	if x == nil {
		return 0, false
	}
	switch v := x.Value.(type) {
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// String returns the tag's value at path when it is text.
func (t *Tag) String(path string) (string, bool) {
	x := t.Lookup(path)
	if x == nil {
		return "", false
	}
	s, ok := x.Value.(string)
	return s, ok
}

// header is the fixed part at the start of a DM file.
type header struct {
	version int // 3 or 4
	order   binary.ByteOrder
	rootAt  int64 // offset of the root group's sorted/open bytes
}

func parseHeader(b []byte) (header, error) {
	if len(b) < 12 {
		return header{}, fmt.Errorf("%w: header truncated", ErrFormat)
	}
	h := header{version: int(binary.BigEndian.Uint32(b))}
	var bo uint32
	switch h.version {
	case 3:
		bo = binary.BigEndian.Uint32(b[8:])
		h.rootAt = 12
	case 4:
		if len(b) < 16 {
			return header{}, fmt.Errorf("%w: header truncated", ErrFormat)
		}
		bo = binary.BigEndian.Uint32(b[12:])
		h.rootAt = 16
	default:
		return header{}, fmt.Errorf("%w: version %d is not 3 or 4", ErrFormat, h.version)
	}
	// rsciio treats any non-zero value as little endian; accept only the two
	// documented values so random data is not taken for a DM file.
	switch bo {
	case 0:
		h.order = binary.BigEndian
	case 1:
		h.order = binary.LittleEndian
	default:
		return header{}, fmt.Errorf("%w: byte order word %d", ErrFormat, bo)
	}
	return h, nil
}

// parser walks the tag tree once, front to back, skipping array payloads.
type parser struct {
	r     *rangeReader
	h     header
	ntags int
}

// parseTags reads the whole tag tree of key. The pixel data is never read.
func parseTags(ctx context.Context, st *store.Store, key string, size int64) (header, *Tag, error) {
	r := newRangeReader(ctx, st, key, size)
	defer r.Close()
	hb, err := r.read(16)
	if err != nil {
		// A short file is already ErrFormat; a failing store must stay a
		// store error, not become a corrupt file.
		return header{}, nil, fmt.Errorf("header: %w", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return header{}, nil, err
	}
	if err := r.seek(h.rootAt); err != nil {
		return h, nil, err
	}
	p := &parser{r: r, h: h}
	root := &Tag{Group: true}
	if err := p.group(root, 0); err != nil {
		return h, nil, err
	}
	return h, root, nil
}

// word reads a structure integer: u32 BE in DM3, u64 BE in DM4.
func (p *parser) word() (uint64, error) {
	if p.h.version == 4 {
		b, err := p.r.read(8)
		if err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint64(b), nil
	}
	b, err := p.r.read(4)
	if err != nil {
		return 0, err
	}
	return uint64(binary.BigEndian.Uint32(b)), nil
}

// group reads is_sorted, is_open, ntags and the entries of a tag group.
func (p *parser) group(g *Tag, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: tag groups nested deeper than %d", ErrFormat, maxDepth)
	}
	if _, err := p.r.read(2); err != nil {
		return err
	}
	n, err := p.word()
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		if p.ntags++; p.ntags > maxTags {
			return fmt.Errorf("%w: more than %d tags", ErrFormat, maxTags)
		}
		if err := p.entry(g, depth); err != nil {
			if g.Name != "" {
				return fmt.Errorf("%s: %w", g.Name, err)
			}
			return err
		}
	}
	return nil
}

func (p *parser) entry(parent *Tag, depth int) error {
	b, err := p.r.read(3)
	if err != nil {
		return err
	}
	kind := b[0]
	nameLen := int(binary.BigEndian.Uint16(b[1:]))
	nb, err := p.r.read(nameLen)
	if err != nil {
		return err
	}
	t := &Tag{Name: latin1(nb)}
	end := int64(-1)
	if p.h.version == 4 {
		sz, err := p.word()
		if err != nil {
			return err
		}
		if err := p.r.fits(sz); err != nil {
			return fmt.Errorf("tag %q: %w", t.Name, err)
		}
		end = p.r.pos + int64(sz)
	}
	switch kind {
	case 20:
		t.Group = true
		if err := p.group(t, depth+1); err != nil {
			return err
		}
	case 21:
		if err := p.data(t); err != nil {
			return fmt.Errorf("tag %q: %w", t.Name, err)
		}
	default:
		return fmt.Errorf("%w: tag %q has type %d (want 20 or 21) at offset %d", ErrFormat, t.Name, kind, p.r.pos-int64(nameLen)-3)
	}
	if end >= 0 && p.r.pos != end {
		// The DM4 size field is authoritative for where the next tag starts.
		if p.r.pos > end {
			return fmt.Errorf("%w: tag %q overruns its declared size", ErrFormat, t.Name)
		}
		if err := p.r.seek(end); err != nil {
			return err
		}
	}
	parent.Children = append(parent.Children, t)
	return nil
}

// data reads a data tag: "%%%%", the type description and the value.
func (p *parser) data(t *Tag) error {
	d, err := p.r.read(4)
	if err != nil {
		return err
	}
	if string(d) != "%%%%" {
		return fmt.Errorf("%w: data tag delimiter %q", ErrFormat, d)
	}
	n, err := p.word()
	if err != nil {
		return err
	}
	if n == 0 || n > maxInfoWords {
		return fmt.Errorf("%w: %d type words", ErrFormat, n)
	}
	info := make([]uint64, n)
	for i := range info {
		if info[i], err = p.word(); err != nil {
			return err
		}
	}
	switch {
	case info[0] == typeString && n == 2:
		if err := p.r.fits(info[1]); err != nil {
			return err
		}
		if info[1] > maxValueBytes {
			return p.r.skip(int64(info[1]))
		}
		b, err := p.r.read(int(info[1]))
		if err != nil {
			return err
		}
		t.Value = latin1(b)
		return nil
	case info[0] == typeArray:
		return p.array(t, info[1:])
	case info[0] == typeStruct:
		fields, err := structFields(info[1:])
		if err != nil {
			return err
		}
		size := 0
		for _, f := range fields {
			size += elemSize(f)
		}
		b, err := p.r.read(size)
		if err != nil {
			return err
		}
		t.Value = p.decodeStruct(b, fields)
		return nil
	case n == 1:
		sz := elemSize(info[0])
		if sz == 0 {
			return fmt.Errorf("%w: element type %d", ErrFormat, info[0])
		}
		b, err := p.r.read(sz)
		if err != nil {
			return err
		}
		t.Value = p.decodeScalar(b, info[0])
		return nil
	}
	return fmt.Errorf("%w: type description %v", ErrFormat, info)
}

// structFields parses [name_len, nfields, (name_len, type)×nfields] and returns the types.
func structFields(w []uint64) ([]uint64, error) {
	if len(w) < 2 {
		return nil, fmt.Errorf("%w: struct description too short", ErrFormat)
	}
	nf := w[1]
	if nf == 0 || nf > uint64(len(w)-2)/2 {
		return nil, fmt.Errorf("%w: struct with %d fields in %d words", ErrFormat, nf, len(w))
	}
	fields := make([]uint64, nf)
	for i := range fields {
		fields[i] = w[2+2*i+1]
		if elemSize(fields[i]) == 0 {
			return nil, fmt.Errorf("%w: struct field type %d", ErrFormat, fields[i])
		}
	}
	return fields, nil
}

// array handles the info words after the leading 20.
func (p *parser) array(t *Tag, w []uint64) error {
	if len(w) < 2 {
		return fmt.Errorf("%w: array description too short", ErrFormat)
	}
	var esize uint64
	switch w[0] {
	case typeStruct:
		fields, err := structFields(w[1:])
		if err != nil {
			return err
		}
		for _, f := range fields {
			esize += uint64(elemSize(f))
		}
		if len(w) != 2*len(fields)+4 {
			return fmt.Errorf("%w: array of struct with %d words", ErrFormat, len(w))
		}
	case typeString:
		if len(w) != 3 {
			return fmt.Errorf("%w: array of strings with %d words", ErrFormat, len(w))
		}
		esize = w[1]
	case typeArray:
		if len(w) != 4 || elemSize(w[1]) == 0 {
			return fmt.Errorf("%w: array of arrays %v", ErrFormat, w)
		}
		if w[2] > math.MaxInt32 {
			return fmt.Errorf("%w: inner array length %d", ErrFormat, w[2])
		}
		esize = w[2] * uint64(elemSize(w[1]))
	default:
		esize = uint64(elemSize(w[0]))
		if esize == 0 || len(w) != 2 {
			return fmt.Errorf("%w: array element type %d", ErrFormat, w[0])
		}
	}
	count := w[len(w)-1]
	if esize != 0 && count > math.MaxInt64/esize {
		return fmt.Errorf("%w: array of %d elements overflows", ErrFormat, count)
	}
	length := count * esize
	if err := p.r.fits(length); err != nil {
		return err
	}
	a := &Array{Offset: p.r.pos, Length: int64(length), ElemType: int(w[0]), Count: int64(count)}
	if t.Name == "Data" || length > maxValueBytes || (w[0] != typeUint16 && len(w) != 2) {
		// Pixel data and anything large or exotic stay on disk.
		t.Value = a
		return p.r.skip(a.Length)
	}
	b, err := p.r.read(int(length))
	if err != nil {
		return err
	}
	switch w[0] {
	case typeUint16:
		// Text is stored as arrays of UTF-16 code units (Name, Units, ...).
		u := make([]uint16, count)
		for i := range u {
			u[i] = p.h.order.Uint16(b[2*i:])
		}
		t.Value = string(utf16.Decode(u))
	case typeFloat32, typeFloat64:
		f := make([]float64, count)
		for i := range f {
			f[i] = toFloat(p.decodeScalar(b[i*int(esize):], w[0]))
		}
		t.Value = f
	case typeInt8, typeOctet:
		// 1-byte arrays are text in older files (rsciio falls back to latin-1).
		t.Value = latin1(b)
	default:
		v := make([]int64, count)
		for i := range v {
			v[i] = int64(toFloat(p.decodeScalar(b[i*int(esize):], w[0])))
		}
		t.Value = v
	}
	return nil
}

func (p *parser) decodeStruct(b []byte, fields []uint64) []any {
	out := make([]any, len(fields))
	off := 0
	for i, f := range fields {
		out[i] = p.decodeScalar(b[off:], f)
		off += elemSize(f)
	}
	return out
}

// decodeScalar decodes one simple value in the file's data byte order.
func (p *parser) decodeScalar(b []byte, typ uint64) any {
	o := p.h.order
	switch typ {
	case typeInt16:
		return int64(int16(o.Uint16(b)))
	case typeInt32:
		return int64(int32(o.Uint32(b)))
	case typeUint16:
		return int64(o.Uint16(b))
	case typeUint32:
		return int64(o.Uint32(b))
	case typeFloat32:
		return float64(math.Float32frombits(o.Uint32(b)))
	case typeFloat64:
		return math.Float64frombits(o.Uint64(b))
	case typeBool:
		return b[0] != 0
	case typeInt8:
		return int64(int8(b[0]))
	case typeOctet:
		return int64(b[0])
	case typeInt64:
		// rsciio reads 11 as int64 and 12 as uint64 (formats.md §3.2 DISAGREE).
		return int64(o.Uint64(b))
	case typeUint64:
		return o.Uint64(b)
	}
	return nil
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

// elemSize is the byte size of a simple encoded type, 0 for others.
func elemSize(typ uint64) int {
	switch typ {
	case typeBool, typeInt8, typeOctet:
		return 1
	case typeInt16, typeUint16:
		return 2
	case typeInt32, typeUint32, typeFloat32:
		return 4
	case typeFloat64, typeInt64, typeUint64:
		return 8
	}
	return 0
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
