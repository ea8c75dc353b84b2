package tiff

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
)

// errCorrupt is wrapped by every structural error in a TIFF file. It is
// format.ErrCorrupt, so the catalog and the server tell a broken file from a
// failing store.
var errCorrupt = format.ErrCorrupt

// pastEndError is a structural error that points past the end of the file:
// the file was cut short. Other corrupt structure costs only the part it is
// in (a metadata tag, a SubIFD level, an OME image), but this one always
// fails the file, since a truncated multi-page file must read as an error
// and not as a shorter stack (see fatal).
type pastEndError struct{ msg string }

func (e *pastEndError) Error() string { return e.msg + ": " + errCorrupt.Error() }

func (e *pastEndError) Unwrap() error { return errCorrupt }

// pastEnd reports that what (an IFD, a strip, a range) lies past the end of
// the file.
func (r *reader) pastEnd(what string, a ...any) error {
	return &pastEndError{msg: fmt.Sprintf("tiff %q: %s lies past end of file (%d bytes)", r.key, fmt.Sprintf(what, a...), r.size)}
}

// Tag numbers the reader and writer use.
const (
	tagNewSubfileType   = 254
	tagImageWidth       = 256
	tagImageLength      = 257
	tagBitsPerSample    = 258
	tagCompression      = 259
	tagPhotometric      = 262
	tagFillOrder        = 266
	tagImageDescription = 270
	tagMake             = 271
	tagModel            = 272
	tagStripOffsets     = 273
	tagSamplesPerPixel  = 277
	tagRowsPerStrip     = 278
	tagStripByteCounts  = 279
	tagXResolution      = 282
	tagYResolution      = 283
	tagPlanarConfig     = 284
	tagResolutionUnit   = 296
	tagSoftware         = 305
	tagDateTime         = 306
	tagPredictor        = 317
	tagTileWidth        = 322
	tagTileLength       = 323
	tagTileOffsets      = 324
	tagTileByteCounts   = 325
	tagSubIFDs          = 330
	tagExtraSamples     = 338
	tagSampleFormat     = 339
	tagJPEGTables       = 347
	tagImageDepth       = 32997
)

// TIFF field types.
const (
	typeByte      = 1
	typeASCII     = 2
	typeShort     = 3
	typeLong      = 4
	typeRational  = 5
	typeSByte     = 6
	typeUndefined = 7
	typeSShort    = 8
	typeSLong     = 9
	typeSRational = 10
	typeFloat     = 11
	typeDouble    = 12
	typeIFD       = 13
	typeLong8     = 16
	typeSLong8    = 17
	typeIFD8      = 18
)

// Limits on what a file may declare; they keep hostile files from costing
// unbounded memory or time.
const (
	maxIFDs         = 1 << 20 // pages in one file
	maxEntries      = 4096    // tags in one IFD
	ifdWindow       = 4096    // bytes read at the first IFD, whose metadata usually follows it
	maxMetaValue    = 1 << 20 // bytes of one metadata tag value (descriptions, OME-XML)
	maxTableBytes   = 256 << 20
	maxDimension    = 1 << 31
	headerProbeSize = mmHeaderSize // BigTIFF needs 16, Micro-Manager's header 40
)

func typeSize(t uint16) int64 {
	switch t {
	case typeByte, typeASCII, typeSByte, typeUndefined:
		return 1
	case typeShort, typeSShort:
		return 2
	case typeLong, typeSLong, typeFloat, typeIFD:
		return 4
	case typeRational, typeSRational, typeDouble, typeLong8, typeSLong8, typeIFD8:
		return 8
	}
	return 0
}

// reader reads the structure of one TIFF object through a store.
type reader struct {
	st   *store.Store
	key  string
	size int64
	bo   binary.ByteOrder
	big  bool // BigTIFF
	// maxChunk bounds one decoded compressed chunk or uncompressed row.
	maxChunk int64
	// walkRounds is how many request waves walking the IFD chain took.
	walkRounds int
	// codecs holds the file's pooled decompressors (zstd).
	codecs *codec.Codecs
	// jpeg decodes compression 7 chunks.
	jpeg *jpeg.Decoder
}

// readAt reads n bytes at off after checking the range lies inside the object,
// so a declared offset or count never causes an allocation larger than the file.
func (r *reader) readAt(ctx context.Context, off, n int64) ([]byte, error) {
	if err := r.checkRange(off, n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if err := r.st.ReadAt(ctx, r.key, b, off); err != nil {
		return nil, fmt.Errorf("tiff %q: %w", r.key, err)
	}
	return b, nil
}

// readInto fills p with the bytes at off, with the same range check as readAt,
// so pixel data can land in a caller's buffer without an intermediate copy.
func (r *reader) readInto(ctx context.Context, off int64, p []byte) error {
	if err := r.checkRange(off, int64(len(p))); err != nil {
		return err
	}
	if err := r.st.ReadAt(ctx, r.key, p, off); err != nil {
		return fmt.Errorf("tiff %q: %w", r.key, err)
	}
	return nil
}

// checkRange checks that [off, off+n) lies inside the file.
func (r *reader) checkRange(off, n int64) error {
	if off < 0 || n < 0 {
		return fmt.Errorf("tiff %q: range [%d,+%d): %w", r.key, off, n, errCorrupt)
	}
	if off > r.size || n > r.size-off {
		return r.pastEnd("range at offset %d+%d", off, n)
	}
	return nil
}

// header parses the file header and returns the first IFD offset.
func parseHeader(key string, b []byte) (bo binary.ByteOrder, big bool, first int64, err error) {
	if len(b) < 8 {
		return nil, false, 0, fmt.Errorf("tiff %q: %d-byte header: %w", key, len(b), errCorrupt)
	}
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, false, 0, fmt.Errorf("tiff %q: bad byte-order mark %q: %w", key, b[:2], errCorrupt)
	}
	switch bo.Uint16(b[2:]) {
	case 42:
		return bo, false, int64(bo.Uint32(b[4:])), nil
	case 43:
		if len(b) < 16 {
			return nil, false, 0, fmt.Errorf("tiff %q: short BigTIFF header: %w", key, errCorrupt)
		}
		if bo.Uint16(b[4:]) != 8 || bo.Uint16(b[6:]) != 0 {
			return nil, false, 0, fmt.Errorf("tiff %q: BigTIFF offset size %d: %w", key, bo.Uint16(b[4:]), errCorrupt)
		}
		f := bo.Uint64(b[8:])
		if f > math.MaxInt64 {
			return nil, false, 0, fmt.Errorf("tiff %q: first IFD offset %d: %w", key, f, errCorrupt)
		}
		return bo, true, int64(f), nil
	}
	return nil, false, 0, fmt.Errorf("tiff %q: version %d is neither 42 nor 43: %w", key, bo.Uint16(b[2:]), errCorrupt)
}

// entry is one IFD entry; its value is either inline or at off.
type entry struct {
	tag    uint16
	typ    uint16
	count  uint64
	off    int64 // file offset of the value when !inline
	inline bool
	data   [8]byte
}

// nbytes is the value size, already checked against the file size.
func (e *entry) nbytes() int64 { return int64(e.count) * typeSize(e.typ) }

// ifd is one parsed IFD with the window it was read from, so that small
// out-of-line values next to the entry table cost no extra request.
type ifd struct {
	off     int64
	next    int64
	entries []entry
	winOff  int64
	win     []byte
}

func (d *ifd) find(tag uint16) *entry {
	for i := range d.entries {
		if d.entries[i].tag == tag {
			return &d.entries[i]
		}
	}
	return nil
}

// ifdSizes returns the byte sizes of an IFD's entry count, one entry and
// the next-IFD pointer.
func (r *reader) ifdSizes() (countSize, entrySize, nextSize int64) {
	if r.big {
		return 8, 20, 8
	}
	return 2, 12, 4
}

// readIFD reads the IFD at off: win bytes first, and the rest of the entry
// table only when the entry count needs it.
func (r *reader) readIFD(ctx context.Context, off, win int64) (*ifd, error) {
	if err := r.checkIFDOffset(off, "IFD"); err != nil {
		return nil, err
	}
	countSize, _, _ := r.ifdSizes()
	b, err := r.readAt(ctx, off, min(max(win, countSize), r.size-off))
	if err != nil {
		return nil, err
	}
	return r.parseIFD(ctx, off, b, true)
}

// checkIFDOffset checks that the entry count of an IFD at off (what names
// it in messages) lies inside the file.
func (r *reader) checkIFDOffset(off int64, what string) error {
	countSize, _, _ := r.ifdSizes()
	if off < 8 {
		return fmt.Errorf("tiff %q: %s at offset %d, inside the header: %w", r.key, what, off, errCorrupt)
	}
	if off > r.size-countSize {
		return r.pastEnd("%s at offset %d", what, off)
	}
	return nil
}

// errShortWindow reports that an IFD does not fit the bytes at hand and
// parseIFD was told not to fetch more.
var errShortWindow = errors.New("IFD larger than its window")

// parseIFD parses the IFD at off from win, the file's bytes from off on. When
// the entry table runs past win it reads the rest if fetch is set, else it
// returns errShortWindow.
func (r *reader) parseIFD(ctx context.Context, off int64, win []byte, fetch bool) (*ifd, error) {
	countSize, entrySize, nextSize := r.ifdSizes()
	if err := r.checkIFDOffset(off, "IFD"); err != nil {
		return nil, err
	}
	if int64(len(win)) < countSize {
		return nil, r.pastEnd("IFD at offset %d", off)
	}
	var n uint64
	if r.big {
		n = r.bo.Uint64(win)
	} else {
		n = uint64(r.bo.Uint16(win))
	}
	if n > maxEntries {
		return nil, fmt.Errorf("tiff %q: IFD at %d declares %d entries: %w", r.key, off, n, errCorrupt)
	}
	need := countSize + int64(n)*entrySize + nextSize
	if need > r.size-off {
		// Tolerate a missing next-IFD pointer at the very end of the file,
		// as libtiff and tifffile do (some writers omit the final zero), but
		// not part of one: only a cut file ends inside it.
		if have := r.size - off - (need - nextSize); have > 0 {
			return nil, fmt.Errorf("tiff %q: IFD at offset %d: %d of the %d bytes of its next-IFD offset lie before the end of file (%d bytes): %w",
				r.key, off, have, nextSize, r.size, errCorrupt)
		}
		if need-nextSize > r.size-off {
			// Not a pastEndError: garbage read as an IFD (a hostile SubIFD
			// offset) looks the same, and costs only its SubIFD level.
			return nil, fmt.Errorf("tiff %q: IFD at offset %d with %d entries (%d bytes) lies past end of file (%d bytes): %w",
				r.key, off, n, need-nextSize, r.size, errCorrupt)
		}
	}
	if have, want := int64(len(win)), min(need, r.size-off); have < want {
		if !fetch {
			return nil, errShortWindow
		}
		rest, err := r.readAt(ctx, off+have, want-have)
		if err != nil {
			return nil, err
		}
		win = append(win[:have:have], rest...)
	}
	d := &ifd{off: off, winOff: off, win: win, entries: make([]entry, 0, n)}
	inl := int64(4)
	if r.big {
		inl = 8
	}
	for i := uint64(0); i < n; i++ {
		b := win[countSize+int64(i)*entrySize:]
		e := entry{tag: r.bo.Uint16(b), typ: r.bo.Uint16(b[2:])}
		var val []byte
		if r.big {
			e.count = r.bo.Uint64(b[4:])
			val = b[12:20]
		} else {
			e.count = uint64(r.bo.Uint32(b[4:]))
			val = b[8:12]
		}
		ts := typeSize(e.typ)
		if ts == 0 {
			continue // unknown type: skip, as libtiff does
		}
		if e.count > uint64(r.size)/uint64(ts) {
			// A value larger than the whole file cannot be real; drop the entry
			// rather than the page, since it is usually a vendor tag.
			continue
		}
		if int64(e.count)*ts <= inl {
			e.inline = true
			copy(e.data[:], val)
		} else {
			var o uint64
			if r.big {
				o = r.bo.Uint64(val)
			} else {
				o = uint64(r.bo.Uint32(val))
			}
			if o > uint64(r.size) || int64(e.count)*ts > r.size-int64(o) {
				continue
			}
			e.off = int64(o)
		}
		d.entries = append(d.entries, e)
	}
	nextAt := countSize + int64(n)*entrySize
	if nextAt+nextSize <= int64(len(win)) {
		if r.big {
			nx := r.bo.Uint64(win[nextAt:])
			if nx > math.MaxInt64 {
				nx = math.MaxInt64 // caught as out of range by the walker
			}
			d.next = int64(nx)
		} else {
			d.next = int64(r.bo.Uint32(win[nextAt:]))
		}
	}
	return d, nil
}

// raw returns the bytes of an entry's value, at most limit bytes of it.
func (r *reader) raw(ctx context.Context, d *ifd, e *entry, limit int64) ([]byte, error) {
	n := e.nbytes()
	if n > limit {
		n = limit - limit%typeSize(e.typ)
	}
	if e.inline {
		return e.data[:n], nil
	}
	if e.off >= d.winOff && e.off+n <= d.winOff+int64(len(d.win)) {
		return d.win[e.off-d.winOff : e.off-d.winOff+n], nil
	}
	return r.readAt(ctx, e.off, n)
}

func isInteger(t uint16) bool {
	switch t {
	case typeByte, typeShort, typeLong, typeSByte, typeUndefined, typeSShort, typeSLong, typeIFD, typeLong8, typeSLong8, typeIFD8:
		return true
	}
	return false
}

// decodeUints converts raw values of an integer type to uint64s.
func decodeUints(bo binary.ByteOrder, typ uint16, b []byte) ([]uint64, error) {
	ts := typeSize(typ)
	if ts == 0 {
		return nil, fmt.Errorf("type %d: %w", typ, errCorrupt)
	}
	out := make([]uint64, len(b)/int(ts))
	for i := range out {
		p := b[int64(i)*ts:]
		switch typ {
		case typeByte, typeUndefined, typeASCII, typeSByte:
			out[i] = uint64(p[0])
		case typeShort, typeSShort:
			out[i] = uint64(bo.Uint16(p))
		case typeLong, typeSLong, typeIFD:
			out[i] = uint64(bo.Uint32(p))
		case typeLong8, typeSLong8, typeIFD8:
			out[i] = bo.Uint64(p)
		default:
			return nil, fmt.Errorf("type %d is not an integer type: %w", typ, errCorrupt)
		}
	}
	return out, nil
}

// uints reads up to limit values of an integer tag.
func (r *reader) uints(ctx context.Context, d *ifd, tag uint16, limit int64) ([]uint64, error) {
	e := d.find(tag)
	if e == nil || !isInteger(e.typ) {
		// A scalar tag of a non-integer type (seen in fuzzed and broken
		// files) is treated as absent, as tifffile does for most of them.
		return nil, nil
	}
	b, err := r.raw(ctx, d, e, limit*typeSize(e.typ))
	if err != nil {
		return nil, err
	}
	v, err := decodeUints(r.bo, e.typ, b)
	if err != nil {
		return nil, fmt.Errorf("tiff %q: tag %d: %w", r.key, tag, err)
	}
	return v, nil
}

// uint1 returns the first value of an integer tag, or def when absent or empty.
func (r *reader) uint1(ctx context.Context, d *ifd, tag uint16, def uint64) (uint64, error) {
	v, err := r.uints(ctx, d, tag, 1)
	if err != nil {
		return 0, err
	}
	if len(v) == 0 {
		return def, nil
	}
	return v[0], nil
}

// rational returns the first value of a RATIONAL tag as (num, den).
func (r *reader) rational(ctx context.Context, d *ifd, tag uint16) (num, den uint32, ok bool, err error) {
	e := d.find(tag)
	if e == nil || e.count == 0 || (e.typ != typeRational && e.typ != typeSRational) {
		return 0, 0, false, nil
	}
	b, err := r.raw(ctx, d, e, 8)
	if err != nil {
		return 0, 0, false, err
	}
	return r.bo.Uint32(b), r.bo.Uint32(b[4:]), true, nil
}

// ascii returns an ASCII tag (or the given one of several with the same tag),
// cut at the first NUL and at limit bytes.
func (r *reader) ascii(ctx context.Context, d *ifd, e *entry, limit int64) (string, error) {
	if e == nil || (e.typ != typeASCII && e.typ != typeByte && e.typ != typeUndefined) {
		return "", nil
	}
	b, err := r.raw(ctx, d, e, limit)
	if err != nil {
		return "", err
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " "), nil
}

// asciiTags returns the values of every entry with tag (ImageJ and OME writers
// sometimes store two ImageDescription tags).
func (r *reader) asciiTags(ctx context.Context, d *ifd, tag uint16, limit int64) ([]string, error) {
	var out []string
	for i := range d.entries {
		if d.entries[i].tag != tag {
			continue
		}
		s, err := r.ascii(ctx, d, &d.entries[i], limit)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
