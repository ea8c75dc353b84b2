// Package tiff reads TIFF, BigTIFF and ImageJ hyperstacks lazily through a
// store.Store, and writes ImageJ-compatible stacks.
//
// Open reads the header and every IFD's entry table and groups pages into
// series; pixel data, and even the strip and tile offset arrays, are read
// only by ReadRegion. Each IFD costs a few hundred bytes, and the IFDs of
// regularly laid out stacks are fetched in parallel batches (see walker).
package tiff

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Format is the TIFF format for the registry.
type Format struct {
	// JPEG decodes JPEG-compressed chunks (compression 7); nil means
	// jpeg.Default(). A registry shares one between the formats.
	JPEG *jpeg.Decoder
}

var _ format.Format = Format{}

// Name implements format.Format.
func (Format) Name() string { return "tiff" }

// Detect implements format.Format: classic or BigTIFF magic, either byte order.
func (Format) Detect(_ context.Context, _ *store.Store, _ string, head []byte) bool {
	if len(head) < 4 {
		return false
	}
	switch string(head[:4]) {
	case "II*\x00", "MM\x00*", "II+\x00", "MM\x00+":
		return true
	}
	return false
}

// Open implements format.Format. It returns one volume per series, the main
// series first.
func (f Format) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	dec := f.JPEG
	if dec == nil {
		dec = jpeg.Default()
	}
	return openWith(ctx, st, key, defaultMaxChunk, dec)
}

// defaultMaxChunk bounds one decoded compressed chunk (or one uncompressed row).
const defaultMaxChunk = 256 << 20

// descriptionLimit is how much of ImageDescription the metadata map keeps.
const descriptionLimit = 4096

// pageMeta holds the descriptive tags of the first page of each series.
type pageMeta struct {
	descriptions       []string
	software, datetime string
	make, model        string
	xres, yres         [2]uint32
	hasXRes, hasYRes   bool
	resUnit            uint64
	vendor             *vendorMeta
}

func (r *reader) parseMeta(ctx context.Context, d *ifd) (*pageMeta, error) {
	m := &pageMeta{}
	var err error
	if m.descriptions, err = r.asciiTags(ctx, d, tagImageDescription, maxMetaValue); err != nil {
		return nil, err
	}
	one := func(tag uint16) string {
		if err != nil {
			return ""
		}
		limit := int64(descriptionLimit)
		if tag == tagSoftware {
			limit = maxMetaValue // ScanImage keeps its whole state there
		}
		var s string
		s, err = r.ascii(ctx, d, d.find(tag), limit)
		return s
	}
	m.software, m.datetime, m.make, m.model = one(tagSoftware), one(tagDateTime), one(tagMake), one(tagModel)
	if err != nil {
		return nil, err
	}
	var num, den uint32
	if num, den, m.hasXRes, err = r.rational(ctx, d, tagXResolution); err != nil {
		return nil, err
	}
	m.xres = [2]uint32{num, den}
	if num, den, m.hasYRes, err = r.rational(ctx, d, tagYResolution); err != nil {
		return nil, err
	}
	m.yres = [2]uint32{num, den}
	if m.resUnit, err = r.uint1(ctx, d, tagResolutionUnit, 2); err != nil {
		return nil, err
	}
	if m.vendor, err = r.readVendor(ctx, d); err != nil {
		return nil, err
	}
	return m, nil
}

// fatal reports whether an error in an optional part of a file (a metadata
// tag, a SubIFD level, an OME image) must fail Open rather than cost only that
// part: a failing store must, and so must structure past the end of the file,
// because a truncated file must not read as less data than it holds.
func fatal(err error) bool {
	var pe *pastEndError
	return !errors.Is(err, errCorrupt) || errors.As(err, &pe)
}

// open opens key with the default JPEG decoder.
func open(ctx context.Context, st *store.Store, key string, maxChunk int64) ([]volume.Volume, error) {
	return openWith(ctx, st, key, maxChunk, jpeg.Default())
}

func openWith(ctx context.Context, st *store.Store, key string, maxChunk int64, dec *jpeg.Decoder) ([]volume.Volume, error) {
	f, err := loadFile(ctx, st, key, maxChunk, maxIFDs, dec)
	if err != nil {
		return nil, err
	}
	return f.r.buildSeries(ctx, f)
}

// file is the walked structure of one TIFF object.
type file struct {
	r        *reader
	pages    []*page           // one per IFD of the chain, in order
	metas    map[int]*pageMeta // descriptive tags of each group's first page
	mm       *mmInfo           // Micro-Manager header data, nil for other files
	warnings []string
}

// loadFile reads the header and walks at most limit IFDs of key.
func loadFile(ctx context.Context, st *store.Store, key string, maxChunk int64, limit int, dec *jpeg.Decoder) (*file, error) {
	oi, err := st.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if oi.Size < 0 {
		return nil, fmt.Errorf("tiff %q: object size unknown: %w", key, format.ErrNotSupported)
	}
	r := &reader{st: st, key: key, size: oi.Size, maxChunk: maxChunk, codecs: codec.New(), jpeg: dec}
	hdr, err := r.readAt(ctx, 0, min(headerProbeSize, oi.Size))
	if err != nil {
		return nil, err
	}
	var first int64
	if r.bo, r.big, first, err = parseHeader(key, hdr); err != nil {
		return nil, err
	}

	f := &file{r: r, metas: map[int]*pageMeta{}}
	if f.mm, err = r.readMicroManager(ctx, hdr); err != nil {
		return nil, err
	}
	seen := map[int64]struct{}{}
	w := newWalker(r)
	if f.mm != nil {
		w.setKnown(f.mm.ifds)
	}
	for off := first; off != 0 && len(f.pages) < limit; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(f.pages) >= maxIFDs {
			f.warnings = append(f.warnings, fmt.Sprintf("stopped after %d IFDs", maxIFDs))
			break
		}
		if _, dup := seen[off]; dup {
			f.warnings = append(f.warnings, fmt.Sprintf("IFD chain loops back to offset %d", off))
			break
		}
		seen[off] = struct{}{}
		// Every page of the chain must parse: a corrupt page fails the file
		// rather than ending the stack early.
		d, err := w.next(ctx, off)
		if err != nil {
			return nil, err
		}
		p, err := r.parsePage(ctx, d, len(f.pages))
		if err != nil {
			return nil, err
		}
		// tifffile (2023.2) logs "invalid page offset" and stops at a
		// next-IFD offset past the end, so half of a multi-page file reads as
		// a shorter stack without an error; we are stricter and fail, because
		// pages the file claims are missing.
		if d.next != 0 {
			if err := r.checkIFDOffset(d.next, p.name()+": next IFD"); err != nil {
				return nil, err
			}
		}
		if len(f.pages) == 0 || !stackable(&f.pages[len(f.pages)-1].layout, &p.layout) {
			m, err := r.parseMeta(ctx, d)
			if err != nil {
				if fatal(err) {
					return nil, err
				}
				f.warnings = append(f.warnings, err.Error())
				m = &pageMeta{}
			}
			f.metas[len(f.pages)] = m
		}
		f.pages = append(f.pages, p)
		off = d.next
	}
	r.walkRounds = w.rounds
	if len(f.pages) == 0 {
		return nil, fmt.Errorf("tiff %q: no IFD: %w", key, errCorrupt)
	}
	// A file cut inside the pixel data of its last page keeps every IFD
	// intact when IFDs precede their data (tifffile's layout), so the last
	// page's chunk table is checked now, at the cost of one small read;
	// tifffile only fails when it reads those pixels. The tables of the other
	// pages are checked as they are read.
	if p := f.pages[len(f.pages)-1]; p.decodable() {
		if _, err := r.loadTable(ctx, p); err != nil && fatal(err) {
			return nil, err
		}
	}
	return f, nil
}

// group is a run of stackable pages.
type group struct {
	start int
	pages []*page
	meta  *pageMeta
}

func (r *reader) buildSeries(ctx context.Context, f *file) ([]volume.Volume, error) {
	pages, metas, warnings := f.pages, f.metas, f.warnings
	var groups []group
	for i, p := range pages {
		if m, ok := metas[i]; ok {
			groups = append(groups, group{start: i, meta: m})
		}
		g := &groups[len(groups)-1]
		g.pages = append(g.pages, p)
	}
	var out []volume.Volume
	var skipped []string
	nSeries := 0
	common := func(v *tiffVolume) {
		v.info.Metadata["n_ifds"] = len(pages)
		if len(warnings) > 0 {
			v.info.Metadata["warnings"] = warnings
		}
		f.mm.addTo(v.info.Metadata)
	}
	// addLevels adds a series and then its pyramid levels, named
	// "<series>#level<n>" so that inspect and catalog list them.
	addLevels := func(v *tiffVolume, levels []*tiffVolume) {
		v.info.Name = r.key
		if nSeries > 0 {
			v.info.Name = fmt.Sprintf("%s#series%d", r.key, nSeries)
		}
		nSeries++
		common(v)
		if len(levels) > 0 {
			v.info.Metadata["pyramid_levels"] = len(levels) + 1
		}
		out = append(out, v)
		for k, lv := range levels {
			lv.info.Name = fmt.Sprintf("%s#level%d", v.info.Name, k+1)
			common(lv)
			markLevel(v, lv, k+1)
			out = append(out, lv)
		}
	}
	add := func(v *tiffVolume) { addLevels(v, nil) }
	if isOME(f.firstDescription()) {
		vs, err := r.omeSeries(ctx, f)
		if err != nil && fatal(err) {
			return nil, err
		}
		if err == nil {
			for _, v := range vs {
				levels, ws, err := r.omeLevels(ctx, v)
				if err != nil {
					return nil, err
				}
				warnings = append(warnings, ws...)
				addLevels(v, levels)
			}
			return out, nil
		}
		warnings = append(warnings, "OME-XML not used: "+err.Error())
	}
	if g0 := groups[0]; f.hasSubIFDs() && scanImageState(g0.meta.software) == nil && imagejDescription(g0.meta.descriptions) == nil {
		// ImageJ and ScanImage series ignore SubIFDs, as tifffile's do.
		series, sk, ws, err := r.subIFDSeries(ctx, f)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, ws...)
		for _, s := range series {
			addLevels(s.v, s.levels)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("tiff %q: %s: %w", r.key, strings.Join(sk, "; "), format.ErrNotSupported)
		}
		return out, nil
	}
	for gi, g := range groups {
		if g.pages[0].dtype == "" {
			skipped = append(skipped, fmt.Sprintf("IFD at %d: %s", g.pages[0].ifdOff, g.pages[0].unsupported))
			continue
		}
		if gi == 0 {
			if si := scanImageState(g.meta.software); si != nil {
				if v, used := r.scanImageSeries(g, si); v != nil {
					add(v)
					if used < len(g.pages) {
						add(r.genericSeries(group{start: g.start + used, pages: g.pages[used:], meta: g.meta}))
					}
					continue
				}
			}
			if ij := imagejDescription(g.meta.descriptions); ij != nil {
				v, used, err := r.imagejSeries(ctx, g, ij)
				if err != nil {
					return nil, err
				}
				if v != nil {
					add(v)
					if used < len(g.pages) {
						add(r.genericSeries(group{start: g.start + used, pages: g.pages[used:], meta: g.meta}))
					}
					continue
				}
			}
		}
		add(r.genericSeries(g))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tiff %q: %s: %w", r.key, strings.Join(skipped, "; "), format.ErrNotSupported)
	}
	return out, nil
}

// newVolume builds the volume for pages stacked along the given leading axes.
func (r *reader) newVolume(pages []*page, meta *pageMeta, lead []volume.Axis) *tiffVolume {
	p0 := pages[0]
	v := &tiffVolume{r: r, lay: p0.layout, pages: pages, nlead: len(lead), tables: map[int64]*table{}}
	v.planes = 1
	for _, a := range lead {
		v.planes *= a.Size
	}
	axes := append([]volume.Axis(nil), lead...)
	chunks := make([]int64, len(lead))
	for i := range chunks {
		chunks[i] = 1
	}
	sName := "c"
	for _, a := range lead {
		if a.Name == "c" {
			sName = "s"
		}
	}
	yx := resolutionAxes(meta, p0)
	scaleSource, overridden := "", ""
	if yx[0].ScaleKnown || yx[1].ScaleKnown {
		scaleSource = "resolution tags"
	}
	if meta != nil && meta.vendor != nil && meta.vendor.scale == nil && meta.vendor.noSpecimenScale != "" && scaleSource != "" {
		// The tags are the detector's pitch, not a size on the specimen.
		overridden = fmt.Sprintf("resolution tags (%g × %g %s) ignored: %s", yx[0].Scale, yx[1].Scale, yx[1].Unit, meta.vendor.noSpecimenScale)
		yx[0] = volume.Axis{Name: "y", Scale: 1}
		yx[1] = volume.Axis{Name: "x", Scale: 1}
		scaleSource = ""
	}
	if meta != nil && meta.vendor != nil && meta.vendor.scale != nil {
		// A microscope's own calibration beats the resolution tags, which
		// vendors fill with a screen resolution (72 or 96 dpi).
		s := meta.vendor.scale
		if scaleSource != "" {
			overridden = fmt.Sprintf("resolution tags (%g × %g %s) overridden by %s", yx[0].Scale, yx[1].Scale, yx[1].Unit, s.source)
		}
		yx[0] = volume.Axis{Name: "y", Scale: s.y, Offset: s.yOff, Unit: s.unit, ScaleKnown: true}
		yx[1] = volume.Axis{Name: "x", Scale: s.x, Offset: s.xOff, Unit: s.unit, ScaleKnown: true}
		scaleSource = s.source
	}
	ch := max(1, min(p0.chunkH(), p0.height))
	cw := max(1, min(p0.chunkW(), p0.width))
	if p0.spp > 1 && p0.planar == 2 {
		axes = append(axes, volume.Axis{Name: sName, Size: p0.spp, Scale: 1})
		chunks = append(chunks, 1)
	}
	yx[0].Size, yx[1].Size = p0.height, p0.width
	axes = append(axes, yx[0], yx[1])
	chunks = append(chunks, ch, cw)
	if p0.spp > 1 && p0.planar != 2 {
		axes = append(axes, volume.Axis{Name: sName, Size: p0.spp, Scale: 1})
		chunks = append(chunks, p0.spp)
	}
	shape := make([]int64, len(axes))
	for i, a := range axes {
		shape[i] = a.Size
	}
	md := map[string]any{
		"compression":     compressionName(p0.compression),
		"photometric":     photometricName(p0.photometric),
		"bigtiff":         r.big,
		"byte_order":      byteOrderName(r),
		"first_ifd":       p0.ifdOff,
		"series_ifds":     len(pages),
		"bits_per_sample": p0.bps,
	}
	if p0.predictor != 1 {
		md["predictor"] = p0.predictor
	}
	if scaleSource != "" {
		md["voxel_size_source"] = scaleSource
	}
	if overridden != "" {
		md["voxel_size_note"] = overridden
	}
	if p0.tiled {
		md["tile"] = []int64{p0.tileH, p0.tileW}
	} else {
		md["rows_per_strip"] = p0.rowsPerStrip
	}
	if p0.subfileType&1 != 0 {
		md["reduced_resolution"] = true
	}
	if p0.subfileType&4 != 0 {
		md["mask"] = true
	}
	if p0.nSub > 0 {
		md["subifds"] = p0.nSub
	}
	if p0.unsupported != "" {
		md["unsupported"] = p0.unsupported
	}
	if p0.compression == 7 {
		// Decoders differ by ±1 on some samples: say which one read them.
		md[volume.MetaJPEGDecoder] = r.jpeg.Name()
	}
	if meta != nil {
		if len(meta.descriptions) > 0 {
			md["description"] = truncate(meta.descriptions[0], descriptionLimit)
			if d := strings.TrimSpace(meta.descriptions[0]); strings.HasSuffix(d, "OME>") {
				md["ome"] = true
			}
		}
		for k, s := range map[string]string{"software": truncate(meta.software, descriptionLimit), "datetime": meta.datetime, "make": meta.make, "model": meta.model} {
			if s != "" {
				md[k] = s
			}
		}
		if meta.hasXRes {
			md["x_resolution"] = []uint32{meta.xres[0], meta.xres[1]}
			md["resolution_unit"] = meta.resUnit
		}
		if meta.hasYRes {
			md["y_resolution"] = []uint32{meta.yres[0], meta.yres[1]}
		}
		meta.vendor.addTo(md)
	}
	v.info = volume.Info{Shape: shape, DType: p0.dtype, Axes: axes, Chunks: chunks,
		Compression: compressionName(p0.compression), Metadata: md}
	if meta != nil {
		v.info.Acquisition = meta.vendor.acquisition()
	}
	return v
}

func byteOrderName(r *reader) string {
	if r.bo.String() == "BigEndian" {
		return "big-endian"
	}
	return "little-endian"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// resolutionAxes returns y and x axes calibrated from the resolution tags:
// pixel size is 1/resolution in the resolution unit (TIFF gives pixels per unit).
func resolutionAxes(m *pageMeta, p *page) [2]volume.Axis {
	ax := [2]volume.Axis{{Name: "y", Scale: 1}, {Name: "x", Scale: 1}}
	if m == nil {
		return ax
	}
	unit, factor := "", 0.0
	switch m.resUnit {
	case 2:
		unit, factor = "cm", 2.54 // inches, stated in centimetres
	case 3:
		unit, factor = "cm", 1
	}
	if factor == 0 {
		return ax
	}
	set := func(a *volume.Axis, res [2]uint32, ok bool) {
		if !ok || res[0] == 0 || res[1] == 0 {
			return
		}
		a.Scale = factor * float64(res[1]) / float64(res[0])
		a.Unit = unit
		a.ScaleKnown = true
	}
	set(&ax[0], m.yres, m.hasYRes)
	set(&ax[1], m.xres, m.hasXRes)
	return ax
}

// genericSeries stacks a group's pages along a "z" page axis (tifffile's "I").
func (r *reader) genericSeries(g group) *tiffVolume {
	var lead []volume.Axis
	if len(g.pages) > 1 {
		lead = []volume.Axis{{Name: "z", Size: int64(len(g.pages)), Scale: 1}}
	}
	v := r.newVolume(g.pages, g.meta, lead)
	if len(g.pages) > 1 {
		v.info.Metadata["page_axis"] = "generic"
	}
	return v
}

// imagejDescription finds an ImageJ description among the ImageDescription tags.
func imagejDescription(descs []string) map[string]string {
	for _, d := range descs {
		if strings.HasPrefix(d, "ImageJ=") || strings.HasPrefix(d, "SCIFIO=") {
			return parseImageJ(d)
		}
	}
	return nil
}

// parseImageJ splits an ImageJ description into its key=value lines.
func parseImageJ(desc string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(desc, "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "=")
		if !ok || k == "" {
			continue
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return kv
}

// typedImageJ converts values as tifffile does: int, float, bool, else string.
func typedImageJ(kv map[string]string) map[string]any {
	out := make(map[string]any, len(kv))
	for k, s := range kv {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			out[k] = i
		} else if f, err := strconv.ParseFloat(s, 64); err == nil {
			out[k] = f
		} else if s == "true" || s == "false" {
			out[k] = s == "true"
		} else {
			out[k] = s
		}
	}
	return out
}

// decodeUnit turns ImageJ's \uXXXX escapes (ImageJ writes `\u00B5m`) into runes.
func decodeUnit(s string) string {
	if !strings.Contains(s, `\u`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+6 <= len(s) && s[i+1] == 'u' {
			if n, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
				b.WriteRune(rune(n))
				i += 5
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// imagejSeries builds the ImageJ hyperstack of the first group. It returns
// a nil volume when the description cannot be honoured (the caller then falls
// back to the generic series), and how many of the group's pages it used.
func (r *reader) imagejSeries(ctx context.Context, g group, ij map[string]string) (*tiffVolume, int, error) {
	num := func(k string) int64 {
		n, err := strconv.ParseInt(ij[k], 10, 64)
		if err != nil || n < 1 {
			return 1
		}
		return n
	}
	c, z, t := num("channels"), num("slices"), num("frames")
	images := num("images")
	if _, ok := ij["images"]; !ok {
		images = c * z * t
	}
	if n, ok := mul(c, z, t); !ok || n != images {
		c, z, t = 1, images, 1
	}
	p0 := g.pages[0]
	virtual := false
	var planeBytes int64
	used := int(min(images, int64(len(g.pages))))
	if images > int64(len(g.pages)) {
		var ok bool
		var err error
		planeBytes, ok, err = r.contiguous(ctx, p0, images)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, nil
		}
		virtual = true
		used = len(g.pages)
	}
	unit := decodeUnit(ij["unit"])
	var lead []volume.Axis
	if t > 1 {
		a := volume.Axis{Name: "t", Size: t, Scale: 1}
		if f, err := strconv.ParseFloat(ij["finterval"], 64); err == nil && f > 0 {
			a.Scale, a.Unit, a.ScaleKnown = f, "s", true
		}
		lead = append(lead, a)
	}
	if z > 1 {
		a := volume.Axis{Name: "z", Size: z, Scale: 1}
		if f, err := strconv.ParseFloat(ij["spacing"], 64); err == nil && f > 0 && unit != "" {
			a.Scale, a.Unit, a.ScaleKnown = f, unit, true
			a.Offset = imagejOffset(ij, "zorigin", f)
		}
		lead = append(lead, a)
	}
	if c > 1 {
		lead = append(lead, volume.Axis{Name: "c", Size: c, Scale: 1})
	}
	pages := g.pages[:used]
	if virtual {
		pages = g.pages[:1]
	}
	v := r.newVolume(pages, g.meta, lead)
	if unit != "" {
		// ImageJ states the pixel size in its own unit, whatever ResolutionUnit says.
		k := len(lead)
		if p0.spp > 1 && p0.planar == 2 {
			k++
		}
		m := g.meta
		for i, res := range [][2]uint32{m.yres, m.xres} {
			a := &v.info.Axes[k+i]
			has := m.hasYRes
			if i == 1 {
				has = m.hasXRes
			}
			if has && res[0] > 0 && res[1] > 0 {
				a.Scale, a.Unit, a.ScaleKnown = float64(res[1])/float64(res[0]), unit, true
				a.Offset = imagejOffset(ij, []string{"yorigin", "xorigin"}[i], a.Scale)
			} else {
				a.Scale, a.Unit, a.ScaleKnown = 1, "", false
			}
		}
		v.info.Metadata["voxel_size_source"] = "ImageJ description unit and resolution tags"
		delete(v.info.Metadata, "voxel_size_note")
	}
	v.virtual, v.planeBytes = virtual, planeBytes
	if virtual {
		v.info.Metadata["imagej_virtual"] = true
	}
	v.info.Metadata["imagej"] = typedImageJ(ij)
	return v, used, nil
}

// contiguous reports whether page 0 is uncompressed with its strips back to
// back, and the file holds n such planes after it; it returns the plane size.
func (r *reader) contiguous(ctx context.Context, p *page, n int64) (int64, bool, error) {
	if p.compression != 1 || p.tiled || p.unsupported != "" || p.width == 0 || p.height == 0 {
		return 0, false, nil
	}
	t, err := r.loadTable(ctx, p)
	if err != nil {
		if fatal(err) {
			return 0, false, err
		}
		return 0, false, nil
	}
	rb := p.rowBytes()
	pos := t.offsets[0]
	for k := range t.offsets {
		if t.offsets[k] != pos {
			return 0, false, nil
		}
		rows := min(p.rowsPerStrip, p.height-(int64(k)%p.chunksDown())*p.rowsPerStrip)
		pos += uint64(rows * rb)
	}
	planeBytes := int64(pos - t.offsets[0])
	end, ok := mul(planeBytes, n)
	if !ok || int64(t.offsets[0]) > r.size {
		return 0, false, nil
	}
	if have := r.size - int64(t.offsets[0]); end > have {
		// ImageJ writes fewer IFDs than images only when the planes follow
		// page 0 back to back (its layout for stacks over 4 GB). A file that
		// holds two or more such planes but not all of them was cut short:
		// tifffile (2023.2) logs "ImageJ series metadata invalid or corrupted
		// file" and returns page 0 alone, we fail. With less than two planes
		// the description itself is likely wrong (Bio-Formats counts samples
		// as channels), and the pages are read as they are.
		if planeBytes > 0 && have >= 2*planeBytes {
			return 0, false, r.pastEnd("%s: data of %d ImageJ planes (%d bytes each) at offset %d", p.name(), n, planeBytes, t.offsets[0])
		}
		return 0, false, nil
	}
	return planeBytes, true, nil
}
