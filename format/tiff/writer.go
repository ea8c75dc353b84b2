package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/imgdataset/imgdataset/volume"
)

// WriteOptions controls Write.
type WriteOptions struct {
	// BigTIFF forces BigTIFF; it is chosen anyway when the file could pass
	// 4 GiB. Otherwise the file is a classic TIFF, the only kind ImageJ 1
	// opens.
	BigTIFF bool
	// ImageJ writes an ImageJ hyperstack description (images, slices, unit,
	// spacing, min, max) so ImageJ and tifffile see the calibration.
	ImageJ bool
	// Spacing is the z step in Unit (ImageJ only; 0 = not written).
	Spacing float64
	// Frames writes the pages as ImageJ frames (time points) instead of
	// slices (ImageJ only): the leading axis is t, not z.
	Frames bool
	// FrameInterval is the time between frames in seconds, ImageJ's
	// finterval (Frames only; 0 = not written).
	FrameInterval float64
	// Unit is the length unit of Spacing and the pixel sizes ("µm", "nm", ...).
	// ImageJ descriptions are ASCII: non-ASCII runes are written as \uXXXX
	// escapes, as ImageJ does for µm.
	Unit string
	// PixelWidth and PixelHeight, when positive, are stored as
	// X/YResolution = 1/size (ResolutionUnit none; the unit is Unit).
	PixelWidth, PixelHeight float64
	// XOrigin, YOrigin and ZOrigin are ImageJ's origins (ImageJ only): in
	// pixels, the physical position of index 0 being -origin × size, so a
	// crop keeps its place. Zero ones are not written.
	XOrigin, YOrigin, ZOrigin float64
	// Properties are further key=value lines of the ImageJ description
	// (provenance such as the voxel size's source); ImageJ ignores keys it
	// does not know and tifffile returns them. Keys are lower-case ASCII
	// letters, digits and '_'; values are escaped as ImageJ escapes units.
	Properties map[string]string
	// Compression is "none" (or ""), "deflate" or "zstd".
	Compression string
	// Tile, when positive, writes square tiles of that size (a multiple of
	// 16); 0 writes strips.
	Tile int
	// RowsPerStrip sets the strip height; 0 picks about 256 KiB per strip.
	RowsPerStrip int
	// ByteOrder of the file; nil means little-endian.
	ByteOrder binary.ByteOrder
	// Description is stored as ImageDescription; it cannot be combined with ImageJ.
	Description string
	// DisplayRange is ImageJ's min/max; nil scans the volume once more to find it.
	DisplayRange *[2]float64
}

// ImageJVersion is the version string written in ImageJ descriptions.
const ImageJVersion = "1.52p"

// Write streams v to w as a TIFF stack: one page per index of the leading
// axis of a (z, y, x) volume, or a single page for (y, x). Pages are read
// with ReadRegion one at a time, so memory holds one page (and its encoded
// form) whatever the volume's size. Each page's IFD is written just before its
// data, so no seeking is needed even for compressed output; uncompressed
// strip stacks put all pixels after the first IFD instead, as ImageJ needs.
func Write(ctx context.Context, w io.Writer, v volume.Volume, opt WriteOptions) error {
	in := v.Info()
	name := in.Name
	if len(in.Shape) != 2 && len(in.Shape) != 3 {
		return fmt.Errorf("tiff write %q: rank %d, want (y,x) or (z,y,x)", name, len(in.Shape))
	}
	sf, bps := 0, in.DType.Size()*8
	switch in.DType {
	case volume.Uint8, volume.Uint16, volume.Uint32, volume.Uint64:
		sf = 1
	case volume.Int8, volume.Int16, volume.Int32, volume.Int64:
		sf = 2
	case volume.Float32, volume.Float64:
		sf = 3
	default:
		return fmt.Errorf("tiff write %q: dtype %s not supported", name, in.DType)
	}
	nz, h, wd := int64(1), in.Shape[len(in.Shape)-2], in.Shape[len(in.Shape)-1]
	if len(in.Shape) == 3 {
		nz = in.Shape[0]
	}
	if nz < 1 || h < 1 || wd < 1 || h > math.MaxUint32 || wd > math.MaxUint32 {
		return fmt.Errorf("tiff write %q: shape %v cannot be a TIFF stack", name, in.Shape)
	}
	if opt.ImageJ && opt.Description != "" {
		return fmt.Errorf("tiff write %q: Description and ImageJ are exclusive", name)
	}
	for k := range opt.Properties {
		if !propertyKey(k) {
			return fmt.Errorf("tiff write %q: ImageJ property key %q (want lower-case letters, digits and _)", name, k)
		}
	}
	comp := 1
	switch opt.Compression {
	case "", "none":
	case "deflate":
		comp = 8
	case "zstd":
		comp = 50000
	default:
		return fmt.Errorf("tiff write %q: compression %q not supported", name, opt.Compression)
	}
	if opt.Tile < 0 || opt.Tile%16 != 0 {
		return fmt.Errorf("tiff write %q: tile size %d is not a positive multiple of 16", name, opt.Tile)
	}
	bo := opt.ByteOrder
	if bo == nil {
		bo = binary.LittleEndian
	}
	elem := int64(in.DType.Size())
	pageBytes := h * wd * elem

	tw := &tiffWriter{w: w, bo: bo, big: opt.BigTIFF, comp: comp, elem: elem, h: h, wd: wd, sf: sf, bps: bps}
	if opt.Tile > 0 {
		tw.tile = int64(opt.Tile)
	} else {
		tw.rps = int64(opt.RowsPerStrip)
		if tw.rps <= 0 {
			tw.rps = max(1, (256<<10)/(wd*elem))
		}
		tw.rps = min(tw.rps, h)
	}
	// Classic offsets suffice unless the pixels and the IFDs could pass
	// 4 GiB. Compressed data can exceed the raw size slightly: leave room.
	slack := int64(0)
	if comp != 1 {
		slack = nz * pageBytes / 64
	}
	if est := nz*pageBytes + slack + nz*(1<<12) + 1<<20; est >= math.MaxUint32 {
		tw.big = true
	}

	var desc string
	switch {
	case opt.ImageJ:
		lo, hi := 0.0, 0.0
		if opt.DisplayRange != nil {
			lo, hi = opt.DisplayRange[0], opt.DisplayRange[1]
		} else {
			var err error
			if lo, hi, err = valueRange(ctx, v); err != nil {
				return err
			}
		}
		desc = imagejDesc(nz, opt, lo, hi)
	default:
		desc = opt.Description
	}
	if opt.PixelWidth > 0 {
		n, d, err := rationalFor(1 / opt.PixelWidth)
		if err != nil {
			return fmt.Errorf("tiff write %q: pixel width %g: %w", name, opt.PixelWidth, err)
		}
		tw.xres = [2]uint32{n, d}
	}
	if opt.PixelHeight > 0 {
		n, d, err := rationalFor(1 / opt.PixelHeight)
		if err != nil {
			return fmt.Errorf("tiff write %q: pixel height %g: %w", name, opt.PixelHeight, err)
		}
		tw.yres = [2]uint32{n, d}
	}
	if comp == 50000 {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		defer enc.Close()
		tw.zenc = enc
	}
	if err := tw.header(); err != nil {
		return fmt.Errorf("tiff write %q: %w", name, err)
	}
	// Uncompressed strip stacks use ImageJ's contiguous layout (see
	// contiguousLayout); compressed or tiled pages keep each IFD before its
	// data, which ImageJ reads IFD by IFD.
	var layout *contiguousLayout
	if comp == 1 && tw.tile == 0 && nz > 1 {
		var err error
		if layout, err = tw.planContiguous(nz, desc); err != nil {
			return fmt.Errorf("tiff write %q: %w", name, err)
		}
		if err := tw.writeContiguousHead(layout, nz, desc); err != nil {
			return fmt.Errorf("tiff write %q: %w", name, err)
		}
	}
	page := make([]byte, pageBytes)
	for z := int64(0); z < nz; z++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		box := volume.Box{Start: []int64{0, 0}, Stop: []int64{h, wd}}
		if len(in.Shape) == 3 {
			box = volume.Box{Start: []int64{z, 0, 0}, Stop: []int64{z + 1, h, wd}}
		}
		if err := v.ReadRegion(ctx, box, page); err != nil {
			return fmt.Errorf("tiff write %q: read page %d: %w", name, z, err)
		}
		swapToLE(page, bo, int(elem)) // little-endian → file order (a swap is its own inverse)
		if layout != nil {
			if err := tw.write(page); err != nil {
				return fmt.Errorf("tiff write %q: page %d: %w", name, z, err)
			}
			continue
		}
		d := ""
		if z == 0 {
			d = desc
		}
		if err := tw.page(page, d, z == nz-1); err != nil {
			return fmt.Errorf("tiff write %q: page %d: %w", name, z, err)
		}
	}
	if layout != nil {
		if err := tw.writeContiguousTail(layout, nz); err != nil {
			return fmt.Errorf("tiff write %q: %w", name, err)
		}
	}
	return nil
}

// valueRange is ImageJ's display range: the extremes of the volume's finite
// values (ImageJ leaves infinities out too), read whole by volume.Stats in
// bounded memory; 0, 0 when there is no finite value.
func valueRange(ctx context.Context, v volume.Volume) (float64, float64, error) {
	s, err := volume.Stats(ctx, v, volume.StatsOptions{ExactBytes: -1})
	if err != nil {
		return 0, 0, fmt.Errorf("tiff write %q: display range: %w", v.Info().Name, err)
	}
	if math.IsNaN(s.FiniteMin) {
		return 0, 0, nil
	}
	return s.FiniteMin, s.FiniteMax, nil
}

// javaDouble formats like Java's Double.toString for ordinary magnitudes
// (ImageJ writes min=36.0, spacing=0.02).
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// escapeUnit writes non-ASCII runes as \uXXXX, as ImageJ does for µm.
func escapeUnit(u string) string {
	u = strings.ReplaceAll(u, "μ", "µ") // Greek mu → micro sign, ImageJ's spelling
	var b strings.Builder
	for _, r := range u {
		if r < 0x80 && r >= 0x20 && r != '\\' {
			b.WriteRune(r)
		} else if r <= 0xFFFF {
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	return b.String()
}

func imagejDesc(nz int64, opt WriteOptions, lo, hi float64) string {
	var b strings.Builder
	b.WriteString("ImageJ=" + ImageJVersion + "\n")
	if nz > 1 {
		dim := "slices"
		if opt.Frames {
			dim = "frames"
		}
		fmt.Fprintf(&b, "images=%d\n%s=%d\n", nz, dim, nz)
	}
	if opt.Unit != "" {
		b.WriteString("unit=" + escapeUnit(opt.Unit) + "\n")
	}
	if opt.Spacing > 0 && nz > 1 && !opt.Frames {
		b.WriteString("spacing=" + javaDouble(opt.Spacing) + "\n")
	}
	if opt.FrameInterval > 0 && nz > 1 && opt.Frames {
		b.WriteString("finterval=" + javaDouble(opt.FrameInterval) + "\n")
	}
	for _, o := range []struct {
		key string
		v   float64
	}{{"xorigin", opt.XOrigin}, {"yorigin", opt.YOrigin}, {"zorigin", opt.ZOrigin}} {
		if o.v != 0 && (o.key != "zorigin" || nz > 1 && !opt.Frames) {
			b.WriteString(o.key + "=" + javaDouble(o.v) + "\n")
		}
	}
	if nz > 1 {
		b.WriteString("loop=false\n")
	}
	b.WriteString("min=" + javaDouble(lo) + "\nmax=" + javaDouble(hi) + "\n")
	keys := make([]string, 0, len(opt.Properties))
	for k := range opt.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + escapeUnit(opt.Properties[k]) + "\n")
	}
	return b.String()
}

// imagejOffset reads back an origin Calibrate writes: the physical position
// of index 0 of an axis of the given pixel size, from an ImageJ origin in
// pixels (index 0 sits at -origin × size); 0 when absent or not finite.
func imagejOffset(ij map[string]string, key string, size float64) float64 {
	f, err := strconv.ParseFloat(ij[key], 64)
	if err != nil || f == 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return -f * size
}

// propertyKey reports whether k can be an ImageJ description key that no
// parser (Java Properties, tifffile) splits or unescapes.
func propertyKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// Calibrate sets o to write in's spatial calibration as an ImageJ
// hyperstack in one unit (volume.OneUnit): pixel width and height from the x
// and y axes, spacing from z, and the origins from their offsets. ImageJ has
// one unit for all three, so a z in nm next to x and y in µm must be
// converted, not written as is. It reports false, changing nothing, when x
// and y do not share a calibrated length unit.
func (o *WriteOptions) Calibrate(in volume.Info) bool {
	n := len(in.Axes)
	if n < 2 {
		return false
	}
	axes := volume.OneUnit(in.Axes)
	x, y := axes[n-1], axes[n-2]
	if _, ok := volume.NanometresPer(x.Unit); !ok || !x.ScaleKnown || !y.ScaleKnown || x.Unit != y.Unit || x.Scale <= 0 || y.Scale <= 0 {
		return false
	}
	o.ImageJ, o.Unit, o.PixelWidth, o.PixelHeight = true, x.Unit, x.Scale, y.Scale
	o.XOrigin, o.YOrigin = -x.Offset/x.Scale, -y.Offset/y.Scale
	if n >= 3 {
		z := axes[n-3]
		if z.Name == "t" {
			// A time series: ImageJ frames, so that it does not open as a
			// z-stack, with the interval in seconds as ImageJ keeps it.
			o.Frames = true
			if s, ok := secondsPer(z.Unit); ok && z.ScaleKnown && z.Scale > 0 {
				o.FrameInterval = z.Scale * s
			}
		} else if z.ScaleKnown && z.Unit == x.Unit && z.Scale > 0 {
			o.Spacing, o.ZOrigin = z.Scale, -z.Offset/z.Scale
		}
	}
	return true
}

// secondsPer returns the seconds in one time unit, as files and NGFF
// (UDUNITS names) spell them.
func secondsPer(unit string) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(strings.ReplaceAll(unit, "μ", "µ"))) {
	case "s", "sec", "second", "seconds":
		return 1, true
	case "ms", "msec", "millisecond", "milliseconds":
		return 1e-3, true
	case "µs", "us", "microsecond", "microseconds":
		return 1e-6, true
	case "ns", "nanosecond", "nanoseconds":
		return 1e-9, true
	case "min", "minute", "minutes":
		return 60, true
	case "h", "hr", "hour", "hours":
		return 3600, true
	}
	return 0, false
}

// rationalFor approximates x as num/den with both fitting in 32 bits: the
// last continued-fraction convergent that fits, the closest fraction with
// a denominator that small. A pixel size of 3.3 is stored as 10/33 and
// reads back as 3.3, where ImageJ's own num/1e6 would give 3.3000033.
func rationalFor(x float64) (uint32, uint32, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
		return 0, 0, fmt.Errorf("resolution %g is not a positive number", x)
	}
	if x > math.MaxUint32 {
		return 0, 0, fmt.Errorf("resolution %g too large for a RATIONAL", x)
	}
	// Convergents h/k from h(-2)/k(-2) = 0/1 and h(-1)/k(-1) = 1/0.
	h0, h1, k0, k1 := 0.0, 1.0, 1.0, 0.0
	num, den := 0.0, 0.0
	r := x
	for range 64 { // a float64 has at most ~40 partial quotients
		a := math.Floor(r)
		h, k := a*h1+h0, a*k1+k0
		if h > math.MaxUint32 || k > math.MaxUint32 {
			break
		}
		num, den = h, k
		h0, h1, k0, k1 = h1, h, k1, k
		f := r - a
		if f == 0 || math.Abs(num/den-x) <= x*0x1p-52 {
			break // exact to float64 precision: more terms only add noise
		}
		r = 1 / f
	}
	if num == 0 {
		return 0, 0, fmt.Errorf("resolution %g too small for a RATIONAL", x)
	}
	return uint32(num), uint32(den), nil
}

// tiffWriter lays out pages as [IFD, its out-of-line values, its data].
type tiffWriter struct {
	w          io.Writer
	pos        int64
	bo         binary.ByteOrder
	big        bool
	comp       int
	elem       int64
	h, wd      int64
	sf, bps    int
	rps, tile  int64
	xres, yres [2]uint32
	zenc       *zstd.Encoder
	zbuf       bytes.Buffer
	zw         *zlib.Writer
}

func (t *tiffWriter) write(b []byte) error {
	n, err := t.w.Write(b)
	t.pos += int64(n)
	return err
}

func (t *tiffWriter) header() error {
	var b []byte
	if t.big {
		b = make([]byte, 16)
		t.bo.PutUint16(b[2:], 43)
		t.bo.PutUint16(b[4:], 8)
		t.bo.PutUint64(b[8:], 16)
	} else {
		b = make([]byte, 8)
		t.bo.PutUint16(b[2:], 42)
		t.bo.PutUint32(b[4:], 8)
	}
	if t.bo == binary.BigEndian {
		copy(b, "MM")
	} else {
		copy(b, "II")
	}
	return t.write(b)
}

// chunks splits a page (already in file byte order) into encoded strips or tiles.
func (t *tiffWriter) chunks(page []byte) ([][]byte, error) {
	row := t.wd * t.elem
	var raw [][]byte
	if t.tile == 0 {
		for y := int64(0); y < t.h; y += t.rps {
			raw = append(raw, page[y*row:min(t.h, y+t.rps)*row])
		}
	} else {
		ts := t.tile
		trow := ts * t.elem
		for ty := int64(0); ty < t.h; ty += ts {
			for tx := int64(0); tx < t.wd; tx += ts {
				b := make([]byte, ts*trow) // edge tiles are padded with zeros
				for y := ty; y < min(t.h, ty+ts); y++ {
					copy(b[(y-ty)*trow:], page[y*row+tx*t.elem:y*row+min(t.wd, tx+ts)*t.elem])
				}
				raw = append(raw, b)
			}
		}
	}
	if t.comp == 1 {
		return raw, nil
	}
	out := make([][]byte, len(raw))
	for i, c := range raw {
		switch t.comp {
		case 8:
			t.zbuf.Reset()
			if t.zw == nil {
				t.zw = zlib.NewWriter(&t.zbuf)
			} else {
				t.zw.Reset(&t.zbuf)
			}
			if _, err := t.zw.Write(c); err != nil {
				return nil, err
			}
			if err := t.zw.Close(); err != nil {
				return nil, err
			}
			out[i] = bytes.Clone(t.zbuf.Bytes())
		case 50000:
			out[i] = t.zenc.EncodeAll(c, nil)
		}
	}
	return out, nil
}

// wentry is a tag to write, its value already encoded in file byte order.
type wentry struct {
	tag   uint16
	typ   uint16
	count uint64
	val   []byte
}

func (t *tiffWriter) uintEntry(tag uint16, typ uint16, vals ...uint64) wentry {
	ts := typeSize(typ)
	b := make([]byte, int64(len(vals))*ts)
	for i, v := range vals {
		switch typ {
		case typeShort:
			t.bo.PutUint16(b[int64(i)*ts:], uint16(v))
		case typeLong:
			t.bo.PutUint32(b[int64(i)*ts:], uint32(v))
		case typeLong8:
			t.bo.PutUint64(b[int64(i)*ts:], v)
		}
	}
	return wentry{tag: tag, typ: typ, count: uint64(len(vals)), val: b}
}

// page writes one IFD followed by its values and pixel data.
func (t *tiffWriter) page(page []byte, desc string, last bool) error {
	chunks, err := t.chunks(page)
	if err != nil {
		return err
	}
	counts := make([]uint64, len(chunks))
	var dataLen int64
	for i, c := range chunks {
		counts[i] = uint64(len(c))
		dataLen += int64(len(c))
	}
	if err := t.align(); err != nil {
		return err
	}
	ifdPos := t.pos
	es := t.entries(desc, counts)
	dataPos := ifdPos + t.ifdSize(es)
	offs := make([]uint64, len(chunks))
	p := uint64(dataPos)
	for i, c := range chunks {
		offs[i] = p
		p += uint64(len(c))
	}
	end := dataPos + dataLen
	if !t.big && end > math.MaxUint32 {
		return fmt.Errorf("classic TIFF cannot address %d bytes; use BigTIFF", end)
	}
	next := uint64(0)
	if !last {
		next = uint64(end + end%2) // the next IFD starts on a word boundary (see align)
	}
	if err := t.write(t.ifdBlock(es, offs, uint64(ifdPos), next)); err != nil {
		return err
	}
	for _, c := range chunks {
		if err := t.write(c); err != nil {
			return err
		}
	}
	return nil
}

// align pads the output to a word boundary, where every IFD starts.
func (t *tiffWriter) align() error {
	if t.pos%2 == 1 {
		return t.write([]byte{0})
	}
	return nil
}

// contiguousLayout plans an uncompressed strip stack of nz pages the way
// ImageJ writes one: the first IFD, the pixel data of every page back to
// back, then the other IFDs. ImageJ reads a stack whose description says
// images=n from the first IFD alone, assuming this layout; with the IFDs
// interleaved it would read them as pixels. Uncompressed sizes are known
// before any page is read, so the file still streams without seeking.
type contiguousLayout struct {
	counts   []uint64 // strip byte counts of every page
	dataPos  int64    // offset of page 0's pixels
	pageLen  int64    // bytes of one page
	tailPos  int64    // offset of the IFD of page 1
	tailSize int64    // bytes of one IFD without a description
}

// planContiguous lays out nz pages after the header (t.pos, already written).
func (t *tiffWriter) planContiguous(nz int64, desc string) (*contiguousLayout, error) {
	row := t.wd * t.elem
	var counts []uint64
	for y := int64(0); y < t.h; y += t.rps {
		counts = append(counts, uint64((min(t.h, y+t.rps)-y)*row))
	}
	l := &contiguousLayout{counts: counts, pageLen: t.h * row}
	head := t.pos + t.pos%2
	l.dataPos = head + t.ifdSize(t.entries(desc, counts))
	end := l.dataPos + nz*l.pageLen
	l.tailPos = end + end%2
	l.tailSize = t.ifdSize(t.entries("", counts))
	if last := l.tailPos + (nz-1)*l.tailSize; !t.big && last > math.MaxUint32 {
		return nil, fmt.Errorf("classic TIFF cannot address %d bytes; use BigTIFF", last)
	}
	return l, nil
}

// offsets returns the strip offsets of page z.
func (l *contiguousLayout) offsets(z int64) []uint64 {
	offs := make([]uint64, len(l.counts))
	p := uint64(l.dataPos + z*l.pageLen)
	for i, c := range l.counts {
		offs[i] = p
		p += c
	}
	return offs
}

// writeContiguousHead writes the first IFD of a contiguous stack of nz pages.
// The caller then streams every page's pixels with t.write and finishes
// with writeContiguousTail.
func (t *tiffWriter) writeContiguousHead(l *contiguousLayout, nz int64, desc string) error {
	if err := t.align(); err != nil {
		return err
	}
	next := uint64(0)
	if nz > 1 {
		next = uint64(l.tailPos)
	}
	if err := t.write(t.ifdBlock(t.entries(desc, l.counts), l.offsets(0), uint64(t.pos), next)); err != nil {
		return err
	}
	if t.pos != l.dataPos {
		return fmt.Errorf("pixels planned at %d, output at %d", l.dataPos, t.pos)
	}
	return nil
}

// writeContiguousTail writes the IFDs of pages 1..nz-1 after the pixels.
func (t *tiffWriter) writeContiguousTail(l *contiguousLayout, nz int64) error {
	if err := t.align(); err != nil {
		return err
	}
	es := t.entries("", l.counts)
	for z := int64(1); z < nz; z++ {
		pos := l.tailPos + (z-1)*l.tailSize
		if t.pos != pos {
			return fmt.Errorf("IFD %d planned at %d, output at %d", z, pos, t.pos)
		}
		next := uint64(0)
		if z < nz-1 {
			next = uint64(pos + l.tailSize)
		}
		if err := t.write(t.ifdBlock(es, l.offsets(z), uint64(pos), next)); err != nil {
			return err
		}
	}
	return nil
}

// entries returns the tags of one page, sorted, with zero chunk offsets
// (ifdBlock fills them in).
func (t *tiffWriter) entries(desc string, counts []uint64) []wentry {
	offType := uint16(typeLong)
	if t.big {
		offType = typeLong8
	}
	es := []wentry{
		t.uintEntry(tagImageWidth, typeLong, uint64(t.wd)),
		t.uintEntry(tagImageLength, typeLong, uint64(t.h)),
		t.uintEntry(tagBitsPerSample, typeShort, uint64(t.bps)),
		t.uintEntry(tagCompression, typeShort, uint64(t.comp)),
		t.uintEntry(tagPhotometric, typeShort, 1),
		t.uintEntry(tagSamplesPerPixel, typeShort, 1),
		t.uintEntry(tagPlanarConfig, typeShort, 1),
		t.uintEntry(tagSampleFormat, typeShort, uint64(t.sf)),
		{tag: tagSoftware, typ: typeASCII, count: uint64(len("imgdataset") + 1), val: []byte("imgdataset\x00")},
	}
	if desc != "" {
		es = append(es, wentry{tag: tagImageDescription, typ: typeASCII, count: uint64(len(desc) + 1), val: append([]byte(desc), 0)})
	}
	offTag, cntTag := t.chunkTags()
	if t.tile > 0 {
		es = append(es, t.uintEntry(tagTileWidth, typeLong, uint64(t.tile)), t.uintEntry(tagTileLength, typeLong, uint64(t.tile)))
	} else {
		es = append(es, t.uintEntry(tagRowsPerStrip, typeLong, uint64(t.rps)))
	}
	if t.xres[0] != 0 || t.yres[0] != 0 {
		for _, r := range []struct {
			tag uint16
			v   [2]uint32
		}{{tagXResolution, t.xres}, {tagYResolution, t.yres}} {
			v := r.v
			if v[0] == 0 {
				v = [2]uint32{1, 1}
			}
			b := make([]byte, 8)
			t.bo.PutUint32(b, v[0])
			t.bo.PutUint32(b[4:], v[1])
			es = append(es, wentry{tag: r.tag, typ: typeRational, count: 1, val: b})
		}
		es = append(es, t.uintEntry(tagResolutionUnit, typeShort, 1))
	}
	es = append(es, t.uintEntry(cntTag, offType, counts...))
	es = append(es, t.uintEntry(offTag, offType, make([]uint64, len(counts))...))
	sort.SliceStable(es, func(i, j int) bool { return es[i].tag < es[j].tag })
	return es
}

// chunkTags names the offset and byte-count tags of strips or tiles.
func (t *tiffWriter) chunkTags() (uint16, uint16) {
	if t.tile > 0 {
		return tagTileOffsets, tagTileByteCounts
	}
	return tagStripOffsets, tagStripByteCounts
}

// ifdLayout returns the size of an entry count, an entry, the next-IFD
// offset, and the largest value stored inline.
func (t *tiffWriter) ifdLayout() (countSize, entrySize, nextSize int64, inl int) {
	if t.big {
		return 8, 20, 8, 8
	}
	return 2, 12, 4, 4
}

// ifdSize is the length of the IFD of es with its out-of-line values (an
// even number, so what follows stays word-aligned).
func (t *tiffWriter) ifdSize(es []wentry) int64 {
	countSize, entrySize, nextSize, inl := t.ifdLayout()
	n := countSize + int64(len(es))*entrySize + nextSize
	for _, e := range es {
		if len(e.val) > inl {
			n += int64(len(e.val)) + int64(len(e.val))%2
		}
	}
	return n
}

// ifdBlock encodes es as an IFD at ifdPos followed by its out-of-line
// values, with offs as the chunk offsets and next as the next IFD's offset.
func (t *tiffWriter) ifdBlock(es []wentry, offs []uint64, ifdPos, next uint64) []byte {
	offTag, _ := t.chunkTags()
	offType := uint16(typeLong)
	if t.big {
		offType = typeLong8
	}
	countSize, entrySize, nextSize, inl := t.ifdLayout()
	tableLen := countSize + int64(len(es))*entrySize + nextSize
	block := make([]byte, tableLen, t.ifdSize(es))
	if t.big {
		t.bo.PutUint64(block, uint64(len(es)))
	} else {
		t.bo.PutUint16(block, uint16(len(es)))
	}
	for i, e := range es {
		if e.tag == offTag {
			e = t.uintEntry(offTag, offType, offs...)
		}
		b := block[countSize+int64(i)*entrySize:]
		t.bo.PutUint16(b, e.tag)
		t.bo.PutUint16(b[2:], e.typ)
		var val []byte
		if t.big {
			t.bo.PutUint64(b[4:], e.count)
			val = b[12:20]
		} else {
			t.bo.PutUint32(b[4:], uint32(e.count))
			val = b[8:12]
		}
		if len(e.val) <= inl {
			copy(val, e.val)
			continue
		}
		at := ifdPos + uint64(len(block))
		if t.big {
			t.bo.PutUint64(val, at)
		} else {
			t.bo.PutUint32(val, uint32(at))
		}
		block = append(block, e.val...)
		if len(e.val)%2 == 1 {
			block = append(block, 0)
		}
	}
	nb := block[countSize+int64(len(es))*entrySize:]
	if t.big {
		t.bo.PutUint64(nb, next)
	} else {
		t.bo.PutUint32(nb, uint32(next))
	}
	return block
}
