package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
)

// Limits that keep a hostile archive from costing more than a sane one.
const (
	// MaxZipDirectory caps the central directory read into memory (about a
	// million entries): a zip store with more keys than that should be sharded.
	MaxZipDirectory = 64 << 20
	// zipTailSize covers the end of central directory record with the longest
	// comment and the Zip64 locator before it, so one read finds both.
	zipTailSize = 22 + 0xffff + 20
	// zipCombineMax is how far into a stored entry a first read may start and
	// still fetch the local header and the data in one request.
	zipCombineMax = 256 << 10
	// zipHeaderSlack is read past the expected local header for extra fields
	// that only the local header carries (Zip64 sizes, alignment padding).
	zipHeaderSlack = 512
	// maxDeflateRatio is the largest expansion deflate can achieve (258 bytes
	// per 2 bits, rounded up); a larger declared size is a lie.
	maxDeflateRatio = 1032
)

// Record signatures and sizes (APPNOTE.TXT 4.3).
const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigEnd        = 0x06054b50
	sigEnd64      = 0x06064b50
	sigLocator64  = 0x07064b50
	localLen      = 30
	centralLen    = 46
	endLen        = 22
	end64Len      = 56
	locator64Len  = 20
	zip64ExtraID  = 0x0001
	methodStored  = 0
	methodDeflate = 8
)

// ErrBadZip is wrapped by errors about a malformed or hostile zip archive.
// It wraps ErrCorrupt: the archive's bytes contradict the format.
var ErrBadZip = fmt.Errorf("malformed zip archive (%w)", ErrCorrupt)

// ZipDriver serves the entries of a zip archive stored in another store as
// objects (a zarr ZipStore or an RFC-9 .ozx OME-Zarr file): the entry names are
// the keys. Only the archive's tail and central directory are read when it is
// opened; an entry is then read by ranged reads of the parent object, so a
// remote archive is never downloaded whole. Stored entries are served straight
// from the parent; deflated ones are inflated on the fly, never past their
// declared size.
//
// Entries whose names are unsafe keys (absolute, "..", not UTF-8) are left
// out; of entries with the same name the last one in the central directory
// wins, as with Python's zipfile. Entries that are listed but cannot be read
// (encrypted, unsupported method, overlapping or out-of-range data) fail on
// ReadRange with an error naming them, so a damaged chunk is never mistaken
// for a missing one.
type ZipDriver struct {
	parent  *Store
	key     string
	name    string
	size    int64
	etag    string
	entries []*zipEntry // sorted by key, one per key
	skipped int
}

var _ Driver = (*ZipDriver)(nil)

// zipEntry is one file of the archive, as the central directory describes it.
type zipEntry struct {
	key     string
	raw     string // the name as stored, which the local header must repeat
	method  uint16
	flags   uint16
	crc     uint32
	modTime uint32 // MS-DOS date (high half) and time (low half)
	csize   int64
	usize   int64
	hdrOff  int64 // offset of the local header in the archive
	end     int64 // where the next local header (or the directory) begins
	bad     error // why the entry cannot be read, nil when it can
	placed  bool  // hdrOff and csize lie within the archive
	dataOff atomic.Int64
}

// NewZip opens the zip archive at key of parent as a read-only store.
func NewZip(ctx context.Context, parent *Store, key string) (*Store, error) {
	d, err := NewZipDriver(ctx, parent, key)
	if err != nil {
		return nil, err
	}
	return New(d), nil
}

// NewZipDriver reads the directory of the zip archive at key of parent: a
// Stat, one read of the archive's tail and, unless the tail already holds it,
// one read of the central directory (plus one for a Zip64 record that is not
// in the tail).
func NewZipDriver(ctx context.Context, parent *Store, key string) (*ZipDriver, error) {
	k, err := CleanKey(key)
	if err != nil {
		return nil, err
	}
	name := strings.TrimRight(parent.String(), "/") + "/" + k
	d := &ZipDriver{parent: parent, key: k, name: "zip:" + name}
	oi, err := parent.Stat(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("zip %s: %w", name, err)
	}
	if oi.Size < 0 {
		return nil, fmt.Errorf("zip %s: the store does not tell the archive's size", name)
	}
	d.size, d.etag = oi.Size, oi.ETag
	read := func(off, n int64) ([]byte, error) {
		b := make([]byte, n)
		if err := d.readParent(ctx, b, off); err != nil {
			return nil, err
		}
		return b, nil
	}
	if err := d.load(read); err != nil {
		return nil, fmt.Errorf("zip %s: %w", name, err)
	}
	return d, nil
}

// readParent reads len(p) bytes of the archive at off, refusing an archive
// that changed since it was opened.
func (d *ZipDriver) readParent(ctx context.Context, p []byte, off int64) error {
	rc, err := d.openParent(ctx, off, int64(len(p)))
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, p); err != nil {
		return fmt.Errorf("read [%d,+%d): %w", off, len(p), err)
	}
	return nil
}

// openParent opens [off, off+n) of the archive.
func (d *ZipDriver) openParent(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	rc, err := d.parent.ReadRange(ctx, d.key, off, n)
	if err != nil {
		return nil, err
	}
	if ir, ok := rc.(InfoReader); ok {
		oi := ir.ObjectInfo()
		if (oi.Size >= 0 && oi.Size != d.size) || (oi.ETag != "" && d.etag != "" && oi.ETag != d.etag) {
			rc.Close()
			return nil, fmt.Errorf("archive changed since it was opened (size %d, ETag %q; was %d, %q)", oi.Size, oi.ETag, d.size, d.etag)
		}
	}
	return rc, nil
}

// zipDir locates the central directory.
type zipDir struct {
	off, size int64
	end       int64 // the first byte after the directory area (Zip64 record or end record)
	count     uint64
	zip64     bool
}

// load finds and parses the central directory through read, which returns
// exactly the n bytes at off of an archive of d.size bytes.
func (d *ZipDriver) load(read func(off, n int64) ([]byte, error)) error {
	if d.size < endLen {
		return fmt.Errorf("%w: %d bytes is too small for a zip archive", ErrBadZip, d.size)
	}
	tailOff := max(0, d.size-zipTailSize)
	tail, err := read(tailOff, d.size-tailOff)
	if err != nil {
		return err
	}
	dir, err := locateDir(tail, tailOff, d.size, read)
	if err != nil {
		return err
	}
	var b []byte
	if dir.off >= tailOff {
		b = tail[dir.off-tailOff : dir.off-tailOff+dir.size]
	} else if b, err = read(dir.off, dir.size); err != nil {
		return err
	}
	entries, skipped, err := parseCentralDir(b, dir)
	if err != nil {
		return err
	}
	d.entries, d.skipped = entries, skipped
	return nil
}

// locateDir reads the end of central directory record (and the Zip64 one when
// a locator points to it) from the archive's tail, which starts at tailOff of
// an archive of size bytes.
func locateDir(tail []byte, tailOff, size int64, read func(off, n int64) ([]byte, error)) (zipDir, error) {
	i := findEnd(tail)
	if i < 0 {
		return zipDir{}, fmt.Errorf("%w: no end of central directory record", ErrBadZip)
	}
	e := tail[i:]
	le := binary.LittleEndian
	disk, dirDisk := le.Uint16(e[4:]), le.Uint16(e[6:])
	dir := zipDir{
		count: uint64(le.Uint16(e[10:])),
		size:  int64(le.Uint32(e[12:])),
		off:   int64(le.Uint32(e[16:])),
		end:   tailOff + int64(i),
	}
	if i >= locator64Len && le.Uint32(tail[i-locator64Len:]) == sigLocator64 {
		loc := tail[i-locator64Len:]
		recOff := le.Uint64(loc[8:])
		if le.Uint32(loc[4:]) != 0 || le.Uint32(loc[16:]) > 1 {
			return zipDir{}, fmt.Errorf("%w: multi-disk archives are not supported", ErrNotSupported)
		}
		if recOff > uint64(dir.end-locator64Len-end64Len) || dir.end-locator64Len < end64Len {
			return zipDir{}, fmt.Errorf("%w: Zip64 end record offset %d out of range", ErrBadZip, recOff)
		}
		ro := int64(recOff)
		var rec []byte
		if ro >= tailOff {
			rec = tail[ro-tailOff : ro-tailOff+end64Len]
		} else {
			var err error
			if rec, err = read(ro, end64Len); err != nil {
				return zipDir{}, err
			}
		}
		if le.Uint32(rec) != sigEnd64 {
			return zipDir{}, fmt.Errorf("%w: no Zip64 end record at offset %d", ErrBadZip, ro)
		}
		if le.Uint32(rec[16:]) != 0 || le.Uint32(rec[20:]) != 0 {
			return zipDir{}, fmt.Errorf("%w: multi-disk archives are not supported", ErrNotSupported)
		}
		dsize, doff := le.Uint64(rec[40:]), le.Uint64(rec[48:])
		if dsize > uint64(size) || doff > uint64(size) {
			return zipDir{}, fmt.Errorf("%w: Zip64 directory [%d,+%d) beyond the %d-byte archive", ErrBadZip, doff, dsize, size)
		}
		dir.count, dir.size, dir.off, dir.end, dir.zip64 = le.Uint64(rec[32:]), int64(dsize), int64(doff), ro, true
	} else if disk != 0 || dirDisk != 0 {
		return zipDir{}, fmt.Errorf("%w: multi-disk archives are not supported", ErrNotSupported)
	}
	if dir.off+dir.size > dir.end {
		return zipDir{}, fmt.Errorf("%w: central directory [%d,+%d) overlaps the end records at %d", ErrBadZip, dir.off, dir.size, dir.end)
	}
	if dir.size > MaxZipDirectory {
		return zipDir{}, fmt.Errorf("%w: central directory of %d bytes exceeds the %d-byte limit", ErrBadZip, dir.size, MaxZipDirectory)
	}
	if dir.count > uint64(dir.size/centralLen) {
		return zipDir{}, fmt.Errorf("%w: %d entries cannot fit in a %d-byte central directory", ErrBadZip, dir.count, dir.size)
	}
	return dir, nil
}

// findEnd returns the position in tail of the last end of central directory
// record whose comment fits in what follows it, or -1.
func findEnd(tail []byte) int {
	for i := len(tail) - endLen; i >= 0; i-- {
		if tail[i] == 'P' && binary.LittleEndian.Uint32(tail[i:]) == sigEnd {
			if n := int(binary.LittleEndian.Uint16(tail[i+20:])); i+endLen+n <= len(tail) {
				return i
			}
		}
	}
	return -1
}

// parseCentralDir parses the directory bytes b into entries sorted by key,
// with unsafe names skipped (counted) and unreadable entries marked bad.
func parseCentralDir(b []byte, dir zipDir) ([]*zipEntry, int, error) {
	le := binary.LittleEndian
	all := make([]*zipEntry, 0, min(dir.count, uint64(len(b)/centralLen)))
	skipped := 0
	n := uint64(0)
	for p := 0; len(b)-p >= 4 && le.Uint32(b[p:]) == sigCentral; n++ {
		if len(b)-p < centralLen {
			return nil, 0, fmt.Errorf("%w: central directory entry %d truncated", ErrBadZip, n)
		}
		h := b[p : p+centralLen]
		nl, xl, cl := int(le.Uint16(h[28:])), int(le.Uint16(h[30:])), int(le.Uint16(h[32:]))
		if len(b)-p-centralLen < nl+xl+cl {
			return nil, 0, fmt.Errorf("%w: central directory entry %d truncated", ErrBadZip, n)
		}
		raw := b[p+centralLen : p+centralLen+nl]
		extra := b[p+centralLen+nl : p+centralLen+nl+xl]
		p += centralLen + nl + xl + cl
		e := &zipEntry{
			raw:     string(raw),
			flags:   le.Uint16(h[8:]),
			method:  le.Uint16(h[10:]),
			modTime: uint32(le.Uint16(h[14:]))<<16 | uint32(le.Uint16(h[12:])),
			crc:     le.Uint32(h[16:]),
		}
		key, ok := zipKey(e.raw)
		if !ok {
			if !strings.HasSuffix(e.raw, "/") || !utf8.ValidString(e.raw) {
				skipped++ // directories are implied by the keys; anything else is unsafe
			}
			continue
		}
		e.key = key
		csize, usize, hdrOff := uint64(le.Uint32(h[20:])), uint64(le.Uint32(h[24:])), uint64(le.Uint32(h[42:]))
		if err := zip64Sizes(extra, &usize, &csize, &hdrOff); err != nil {
			e.bad = err
		}
		e.check(csize, usize, hdrOff, dir)
		all = append(all, e)
	}
	if n != dir.count && (dir.zip64 || uint16(n) != uint16(dir.count)) {
		return nil, 0, fmt.Errorf("%w: central directory holds %d entries, the end record says %d", ErrBadZip, n, dir.count)
	}
	setLimits(all, dir.off)
	// One entry per key: stable sort keeps directory order within a key, and
	// the last one wins.
	slices.SortStableFunc(all, func(a, b *zipEntry) int { return strings.Compare(a.key, b.key) })
	out := all[:0]
	for i, e := range all {
		if i+1 < len(all) && all[i+1].key == e.key {
			skipped++
			continue
		}
		out = append(out, e)
	}
	clear(all[len(out):])
	return out, skipped, nil
}

// zipKey turns an entry name into a store key; ok is false for directory
// entries and names that are not safe keys.
func zipKey(raw string) (string, bool) {
	if raw == "" || !utf8.ValidString(raw) || strings.HasSuffix(raw, "/") || strings.HasSuffix(raw, "\\") {
		return "", false
	}
	k, err := CleanKey(raw)
	if err != nil || k == "" || k == "." {
		return "", false
	}
	return k, true
}

// zip64Sizes replaces the saturated 32-bit fields by the values of the Zip64
// extra field, which holds exactly the saturated ones, in this order.
func zip64Sizes(extra []byte, usize, csize, hdrOff *uint64) error {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if len(extra)-4 < n {
			break
		}
		f := extra[4 : 4+n]
		extra = extra[4+n:]
		if id != zip64ExtraID {
			continue
		}
		for _, v := range []*uint64{usize, csize, hdrOff} {
			if *v != 0xffffffff {
				continue
			}
			if len(f) < 8 {
				return fmt.Errorf("%w: Zip64 extra field too short", ErrBadZip)
			}
			*v, f = le.Uint64(f), f[8:]
		}
		return nil
	}
	return nil
}

// check validates the sizes and offset of an entry against the directory,
// marking the entry bad when it cannot be read.
func (e *zipEntry) check(csize, usize, hdrOff uint64, dir zipDir) {
	limit := uint64(dir.off)
	switch {
	case hdrOff >= limit || csize > limit || hdrOff+localLen+csize > limit:
		e.setBad(fmt.Errorf("%w: data at offset %d (+%d) reaches past the central directory at %d", ErrBadZip, hdrOff, csize, dir.off))
		return
	case usize > 1<<62:
		e.setBad(fmt.Errorf("%w: absurd size %d", ErrBadZip, usize))
		return
	}
	e.csize, e.usize, e.hdrOff, e.placed = int64(csize), int64(usize), int64(hdrOff), true
	switch {
	case e.flags&1 != 0:
		e.setBad(fmt.Errorf("entry is encrypted: %w", ErrNotSupported))
	case e.method == methodStored && csize != usize:
		e.setBad(fmt.Errorf("%w: stored entry with compressed size %d != size %d", ErrBadZip, csize, usize))
	case e.method == methodDeflate && usize > maxDeflateRatio*csize+1024:
		e.setBad(fmt.Errorf("%w: %d deflated bytes cannot expand to the declared %d", ErrBadZip, csize, usize))
	case e.method != methodStored && e.method != methodDeflate:
		e.setBad(fmt.Errorf("compression method %d: %w", e.method, ErrNotSupported))
	}
}

func (e *zipEntry) setBad(err error) {
	if e.bad == nil {
		e.bad = err
	}
}

// setLimits records where each entry's region ends (the next local header or
// the directory) and marks entries that share a local header with another.
func setLimits(all []*zipEntry, dirOff int64) {
	byOff := make([]*zipEntry, 0, len(all))
	for _, e := range all {
		if e.placed {
			byOff = append(byOff, e)
		}
	}
	slices.SortFunc(byOff, func(a, b *zipEntry) int { return cmp.Compare(a.hdrOff, b.hdrOff) })
	for i, e := range byOff {
		e.end = dirOff
		if i+1 < len(byOff) {
			e.end = byOff[i+1].hdrOff
		}
		if (i+1 < len(byOff) && byOff[i+1].hdrOff == e.hdrOff) || (i > 0 && byOff[i-1].hdrOff == e.hdrOff) {
			e.setBad(fmt.Errorf("%w: local header at offset %d is shared with another entry", ErrBadZip, e.hdrOff))
		} else if e.hdrOff+localLen+e.csize > e.end {
			e.setBad(fmt.Errorf("%w: data at offset %d (+%d) overlaps the next entry at %d", ErrBadZip, e.hdrOff, e.csize, e.end))
		}
	}
}

// String names the archive.
func (d *ZipDriver) String() string { return d.name }

// Skipped is the number of entries left out of the store: unsafe names and
// entries shadowed by a later one of the same name.
func (d *ZipDriver) Skipped() int { return d.skipped }

// find returns the entry of key, or nil.
func (d *ZipDriver) find(key string) *zipEntry {
	i, ok := slices.BinarySearchFunc(d.entries, key, func(e *zipEntry, k string) int { return strings.Compare(e.key, k) })
	if !ok {
		return nil
	}
	return d.entries[i]
}

func (e *zipEntry) info() ObjectInfo {
	return ObjectInfo{Key: e.key, Size: e.usize, ModTime: dosTime(e.modTime)}
}

// dosTime converts an MS-DOS date and time (local time of an unknown zone,
// read as UTC); zero when unset or invalid.
func dosTime(v uint32) time.Time {
	date, tm := int(v>>16), int(v&0xffff)
	if date == 0 {
		return time.Time{}
	}
	return time.Date(date>>9+1980, time.Month(date>>5&0xf), date&0x1f, tm>>11, tm>>5&0x3f, tm&0x1f*2, 0, time.UTC)
}

// Stat implements Driver.
func (d *ZipDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	e := d.find(key)
	if e == nil {
		return ObjectInfo{}, fmt.Errorf("%s: stat %q: %w", d.name, key, ErrNotExist)
	}
	return e.info(), nil
}

// List implements Driver. Directories are implied by the keys, as in a bucket.
func (d *ZipDriver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i, _ := slices.BinarySearchFunc(d.entries, prefix, func(e *zipEntry, k string) int { return strings.Compare(e.key, k) })
	lastDir := ""
	for n := 0; i < len(d.entries) && strings.HasPrefix(d.entries[i].key, prefix); i, n = i+1, n+1 {
		if n%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := d.entries[i]
		if delim != "" {
			if j := strings.Index(e.key[len(prefix):], delim); j >= 0 {
				// Keys sharing a directory are contiguous in sorted order.
				dk := e.key[:len(prefix)+j+len(delim)]
				if dk != lastDir {
					lastDir = dk
					if err := fn(ObjectInfo{Key: dk, Size: -1, IsDir: true}); err != nil {
						return err
					}
				}
				continue
			}
		}
		if err := fn(e.info()); err != nil {
			return err
		}
	}
	return nil
}

// ReadRange implements Driver. A whole-entry read also checks the entry's CRC-32.
func (d *ZipDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := d.find(key)
	if e == nil {
		return nil, fmt.Errorf("%s: read %q: %w", d.name, key, ErrNotExist)
	}
	if e.bad != nil {
		return nil, fmt.Errorf("%s: entry %q: %w", d.name, key, e.bad)
	}
	if off > e.usize {
		return nil, fmt.Errorf("%s: %q: range start %d beyond size %d", d.name, key, off, e.usize)
	}
	if n < 0 {
		n = e.usize - off
	} else if off+n > e.usize {
		return nil, fmt.Errorf("%s: %q: range [%d,+%d) beyond size %d: %w", d.name, key, off, n, e.usize, io.ErrUnexpectedEOF)
	}
	zr := &zipReader{ctx: ctx, d: d, e: e, left: n, size: n, final: off+n == e.usize}
	if off == 0 && n == e.usize {
		zr.crc = crc32.NewIEEE()
	}
	if n == 0 {
		zr.crc, zr.r = nil, bytes.NewReader(nil)
		return zr, nil
	}
	var err error
	switch e.method {
	case methodStored:
		zr.body, err = d.entryData(ctx, e, off, n)
		zr.r = zr.body
	case methodDeflate:
		if zr.body, err = d.entryData(ctx, e, 0, e.csize); err == nil {
			fr := flate.NewReader(zr.body)
			zr.r, zr.inflate = fr, fr
			if off > 0 {
				var m int64
				if m, err = io.CopyN(io.Discard, fr, off); err != nil {
					err = fmt.Errorf("inflating to offset %d: %d bytes only: %w", off, m, eofUnexpected(err))
				}
			}
		}
	}
	if err != nil {
		zr.Close()
		return nil, fmt.Errorf("%s: entry %q: %w", d.name, key, err)
	}
	return zr, nil
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// entryData opens [off, off+n) of an entry's raw (possibly compressed) data.
// The first read of an entry near its start fetches the local header and the
// data in one request; later reads use the cached data offset.
func (d *ZipDriver) entryData(ctx context.Context, e *zipEntry, off, n int64) (io.ReadCloser, error) {
	dataOff := e.dataOff.Load()
	if dataOff == 0 {
		want := int64(localLen+len(e.raw)+zipHeaderSlack) + off + n
		if off > zipCombineMax {
			want = int64(localLen + len(e.raw))
		}
		fetch := min(e.end-e.hdrOff, want)
		rc, err := d.openParent(ctx, e.hdrOff, fetch)
		if err != nil {
			return nil, err
		}
		extra, err := d.localHeader(e, rc, fetch)
		if err != nil {
			rc.Close()
			return nil, err
		}
		dataOff = e.dataOff.Load()
		if dataOff+off+n <= e.hdrOff+fetch {
			if _, err := io.CopyN(io.Discard, rc, extra+off); err != nil {
				rc.Close()
				return nil, eofUnexpected(err)
			}
			return rc, nil
		}
		rc.Close()
	}
	return d.openParent(ctx, dataOff+off, n)
}

// localHeader parses the local header at the start of r (which holds avail
// bytes of the entry's region), checks it against the directory and caches the
// data offset. It consumes the header and name and returns the length of the
// extra field that follows.
func (d *ZipDriver) localHeader(e *zipEntry, r io.Reader, avail int64) (int64, error) {
	le := binary.LittleEndian
	var h [localLen]byte
	if avail < localLen {
		return 0, fmt.Errorf("%w: no room for a local header at offset %d", ErrBadZip, e.hdrOff)
	}
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("local header: %w", eofUnexpected(err))
	}
	if le.Uint32(h[:]) != sigLocal {
		return 0, fmt.Errorf("%w: no local header at offset %d", ErrBadZip, e.hdrOff)
	}
	nl, xl := int64(le.Uint16(h[26:])), int64(le.Uint16(h[28:]))
	if nl != int64(len(e.raw)) || localLen+nl > avail {
		return 0, fmt.Errorf("%w: local header at offset %d names another entry", ErrBadZip, e.hdrOff)
	}
	name := make([]byte, nl)
	if _, err := io.ReadFull(r, name); err != nil {
		return 0, fmt.Errorf("local header: %w", eofUnexpected(err))
	}
	if string(name) != e.raw {
		return 0, fmt.Errorf("%w: local header at offset %d names %q", ErrBadZip, e.hdrOff, name)
	}
	dataOff := e.hdrOff + localLen + nl + xl
	if dataOff+e.csize > e.end {
		return 0, fmt.Errorf("%w: data at offset %d (+%d) overlaps the next entry at %d", ErrBadZip, dataOff, e.csize, e.end)
	}
	e.dataOff.Store(dataOff)
	return xl, nil
}

// zipReader delivers exactly the requested bytes of an entry and checks, when
// it reaches the entry's end, that the data ends there (a deflate stream that
// would inflate past its declared size stops with an error) and, for a whole
// entry, that its CRC-32 matches.
type zipReader struct {
	ctx     context.Context
	d       *ZipDriver
	e       *zipEntry
	r       io.Reader     // the entry's bytes from the current offset
	body    io.ReadCloser // the parent's reader
	inflate io.ReadCloser // the decompressor, when deflated
	crc     hash.Hash32   // nil unless the read covers the whole entry
	left    int64
	size    int64
	final   bool // the read ends at the entry's end
	err     error
}

// Size is the number of bytes the reader delivers, so ReadAll allocates once.
func (z *zipReader) Size() int64 { return z.size }

func (z *zipReader) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if err := z.ctx.Err(); err != nil {
		return 0, err
	}
	if z.left == 0 {
		z.err = io.EOF
		return 0, io.EOF
	}
	if int64(len(p)) > z.left {
		p = p[:z.left]
	}
	n, err := z.r.Read(p)
	z.left -= int64(n)
	if z.crc != nil {
		z.crc.Write(p[:n])
	}
	if err == io.EOF && z.left > 0 {
		err = fmt.Errorf("%s: entry %q ends %d bytes short: %w: %w", z.d.name, z.e.key, z.left, ErrBadZip, io.ErrUnexpectedEOF)
	} else if err == io.EOF {
		err = nil
	}
	if err == nil && z.left == 0 {
		// The last bytes are withheld when a check fails: io.ReadFull drops an
		// error that comes with the bytes completing its buffer.
		if err = z.finish(); err != nil {
			n = 0
		}
	}
	if err != nil {
		if !errors.Is(err, io.EOF) && z.ctx.Err() != nil {
			err = z.ctx.Err()
		}
		z.err = err
	}
	return n, err
}

// finish runs the end-of-entry checks.
func (z *zipReader) finish() error {
	if z.final && z.inflate != nil {
		var b [1]byte
		if n, err := io.ReadFull(z.inflate, b[:]); n > 0 {
			return fmt.Errorf("%s: entry %q inflates past its declared size %d: %w", z.d.name, z.e.key, z.e.usize, ErrBadZip)
		} else if err != io.EOF {
			return fmt.Errorf("%s: entry %q: %w", z.d.name, z.e.key, err)
		}
	}
	if z.crc != nil && z.crc.Sum32() != z.e.crc {
		return fmt.Errorf("%s: entry %q: CRC-32 %08x, directory says %08x: %w", z.d.name, z.e.key, z.crc.Sum32(), z.e.crc, ErrBadZip)
	}
	return nil
}

// Close releases the parent's reader.
func (z *zipReader) Close() error {
	if z.inflate != nil {
		z.inflate.Close()
	}
	if z.body != nil {
		return z.body.Close()
	}
	return nil
}
