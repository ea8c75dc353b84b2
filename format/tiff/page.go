package tiff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// tableRef points at a strip/tile offset or byte-count array without reading it:
// Open reads only each IFD's entry table, the arrays are read on demand.
type tableRef struct {
	typ    uint16
	count  int64
	off    int64
	inline bool
	data   [8]byte
}

func refOf(e *entry) tableRef {
	if e == nil {
		return tableRef{}
	}
	return tableRef{typ: e.typ, count: int64(e.count), off: e.off, inline: e.inline, data: e.data}
}

// layout is what every page of a series shares: it decides the dtype, the page
// shape and how pixels are split into chunks.
type layout struct {
	width, height int64
	spp           int64
	bps           int
	sampleFormat  int
	compression   int
	photometric   int
	planar        int // 1 chunky, 2 planar
	predictor     int
	fillOrder     int
	tiled         bool
	rowsPerStrip  int64 // strips only, clamped to [1, height]
	tileW, tileH  int64 // tiles only
	subfileType   uint32
	dtype         volume.DType
	unsupported   string // why pixels cannot be decoded; "" when they can
}

// page is one IFD's image.
type page struct {
	layout
	src     *reader // the file holding the page (OME sets span several)
	index   int     // position in the IFD chain; -1 for a SubIFD
	ifdOff  int64
	offsets tableRef
	counts  tableRef
	jpegTab tableRef // JPEGTables (compression 7), read with the chunk table
	nSub    int      // SubIFDs the page lists
	subOffs []int64  // their offsets (at most maxSubIFDsPerPage), read by series building
}

// name is how messages refer to the page: by its position in the IFD chain,
// or by its offset for a SubIFD, which has none.
func (p *page) name() string {
	if p.index < 0 {
		return fmt.Sprintf("SubIFD at offset %d", p.ifdOff)
	}
	return fmt.Sprintf("page %d", p.index)
}

// decodable reports whether the page's pixels can be read at all, so that
// its chunk table means something.
func (p *page) decodable() bool {
	return p.dtype != "" && p.unsupported == "" && p.width > 0 && p.height > 0
}

// elemSize is the byte size of one decoded element.
func (l *layout) elemSize() int64 { return int64(l.dtype.Size()) }

// planes is the number of separately stored sample planes.
func (l *layout) planes() int64 {
	if l.planar == 2 {
		return l.spp
	}
	return 1
}

// sppChunk is the number of interleaved samples in one chunk.
func (l *layout) sppChunk() int64 {
	if l.planar == 2 {
		return 1
	}
	return l.spp
}

// chunkW and chunkH are the stored chunk dimensions (tiles are padded).
func (l *layout) chunkW() int64 {
	if l.tiled {
		return l.tileW
	}
	return l.width
}

func (l *layout) chunkH() int64 {
	if l.tiled {
		return l.tileH
	}
	return l.rowsPerStrip
}

// chunksDown and chunksAcross give the chunk grid of one sample plane.
func (l *layout) chunksDown() int64 {
	h := l.chunkH()
	if h <= 0 {
		return 0
	}
	return (l.height + h - 1) / h
}

func (l *layout) chunksAcross() int64 {
	if !l.tiled {
		return 1
	}
	return (l.width + l.tileW - 1) / l.tileW
}

// numChunks is how many offsets the page must list.
func (l *layout) numChunks() int64 { return l.chunksDown() * l.chunksAcross() * l.planes() }

// rowBytes is the stored size of one chunk row (rows start on byte boundaries).
func (l *layout) rowBytes() int64 {
	return (l.chunkW()*l.sppChunk()*int64(l.bps) + 7) / 8
}

// decodedRowBytes is the size of one chunk row once unpacked to whole elements.
func (l *layout) decodedRowBytes() int64 { return l.chunkW() * l.sppChunk() * l.elemSize() }

// stackable reports whether pages with layouts a and b belong to one series:
// everything that decides dtype, shape and decoding must match; the
// "multi-page" subfile bit may differ.
func stackable(a, b *layout) bool {
	x, y := *a, *b
	x.subfileType &^= 2
	y.subfileType &^= 2
	return x == y
}

// mul multiplies non-negative sizes, reporting overflow.
func mul(a ...int64) (int64, bool) {
	p := uint64(1)
	for _, v := range a {
		if v < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(p, uint64(v))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		p = lo
	}
	return int64(p), true
}

// parsePage reads the tags that describe pixels of the page at position
// index of the IFD chain (-1 for a SubIFD); it does no request beyond those
// for out-of-line values that are not next to the entry table.
func (r *reader) parsePage(ctx context.Context, d *ifd, index int) (*page, error) {
	p := &page{src: r, index: index, ifdOff: d.off}
	var err error
	get := func(tag uint16, def uint64) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = r.uint1(ctx, d, tag, def)
		return v
	}
	w := get(tagImageWidth, 0)
	h := get(tagImageLength, 0)
	spp := get(tagSamplesPerPixel, 1)
	comp := get(tagCompression, 1)
	photo := get(tagPhotometric, 1<<16)
	planar := get(tagPlanarConfig, 1)
	pred := get(tagPredictor, 1)
	fill := get(tagFillOrder, 1)
	sft := get(tagNewSubfileType, 0)
	depth := get(tagImageDepth, 1)
	sf := get(tagSampleFormat, 1)
	if err != nil {
		return nil, err
	}
	if d.find(tagImageWidth) == nil || d.find(tagImageLength) == nil {
		return nil, fmt.Errorf("tiff %q: IFD at %d has no ImageWidth/ImageLength: %w", r.key, d.off, errCorrupt)
	}
	if w >= maxDimension || h >= maxDimension || spp == 0 || spp > 1<<16 {
		return nil, fmt.Errorf("tiff %q: IFD at %d: %dx%d pixels with %d samples: %w", r.key, d.off, w, h, spp, errCorrupt)
	}
	p.width, p.height, p.spp = int64(w), int64(h), int64(spp)
	p.compression, p.predictor, p.fillOrder = int(min(comp, 1<<20)), int(min(pred, 1<<20)), int(min(fill, 1<<20))
	p.photometric = int(min(photo, 1<<20))
	p.subfileType = uint32(sft)
	p.sampleFormat = int(min(sf, 1<<20))
	p.planar = 1
	if planar == 2 && spp > 1 {
		p.planar = 2
	}
	bpsv, err := r.uints(ctx, d, tagBitsPerSample, int64(spp))
	if err != nil {
		return nil, err
	}
	p.bps = 1
	if len(bpsv) > 0 {
		p.bps = int(min(bpsv[0], 1<<16))
		for _, b := range bpsv[1:] {
			if b != bpsv[0] {
				p.unsupported = fmt.Sprintf("samples of different bit depths %v", bpsv)
			}
		}
	}
	if e := d.find(tagSubIFDs); e != nil {
		p.nSub = int(min(e.count, 1<<20))
		offs, err := r.uints(ctx, d, tagSubIFDs, maxSubIFDsPerPage)
		if err != nil && fatal(err) {
			return nil, err
		}
		// A SubIFD offset that cannot hold an IFD is dropped here; one that
		// holds garbage fails when it is read, costing only that level.
		for _, o := range offs {
			if o >= 8 && o < uint64(r.size) {
				p.subOffs = append(p.subOffs, int64(o))
			}
		}
	}
	if depth > 1 {
		p.unsupported = fmt.Sprintf("SGI ImageDepth %d", depth)
	}

	// Chunk layout and offset tables.
	tw, tl := d.find(tagTileWidth), d.find(tagTileLength)
	if tw != nil || tl != nil || d.find(tagTileOffsets) != nil {
		p.tiled = true
		tws := get(tagTileWidth, 0)
		tls := get(tagTileLength, 0)
		if err != nil {
			return nil, err
		}
		if tws == 0 || tls == 0 || tws >= maxDimension || tls >= maxDimension {
			return nil, fmt.Errorf("tiff %q: IFD at %d: tile %dx%d: %w", r.key, d.off, tws, tls, errCorrupt)
		}
		p.tileW, p.tileH = int64(tws), int64(tls)
		p.offsets = refOf(d.find(tagTileOffsets))
		p.counts = refOf(d.find(tagTileByteCounts))
	} else {
		rps := get(tagRowsPerStrip, uint64(h))
		if err != nil {
			return nil, err
		}
		if rps == 0 || rps > h {
			rps = h
		}
		p.rowsPerStrip = int64(max(rps, 1))
		p.offsets = refOf(d.find(tagStripOffsets))
		p.counts = refOf(d.find(tagStripByteCounts))
	}
	if e := d.find(tagJPEGTables); e != nil && p.compression == 7 && typeSize(e.typ) == 1 && e.count <= maxJPEGTables {
		p.jpegTab = refOf(e)
	}
	p.dtype, p.unsupported = pickDType(p.sampleFormat, p.bps, p.unsupported)
	if p.dtype == "" {
		return p, nil
	}
	// The decoded page must be addressable: refuse sizes that overflow int64.
	if n, ok := mul(p.width, p.height, p.spp, p.elemSize()); !ok || n > 1<<50 {
		return nil, fmt.Errorf("tiff %q: IFD at %d: page of %dx%dx%d is implausibly large: %w", r.key, d.off, p.width, p.height, p.spp, errCorrupt)
	}
	if p.unsupported == "" {
		p.unsupported = p.checkCodec()
	}
	if p.unsupported == "" && p.height > 0 && p.width > 0 {
		if err := r.checkTables(p); err != nil {
			if !errors.Is(err, format.ErrNotSupported) {
				return nil, err
			}
			p.unsupported = err.Error()
		}
	}
	// A chunk table held in the IFD entries themselves (one strip or tile
	// per plane, the common case) costs nothing to check, so every such page
	// is checked for chunks past the end of the file now rather than when
	// its pixels are read.
	if p.decodable() && p.offsets.inline && (p.counts.inline || p.counts.count == 0) && p.jpegTab.count == 0 {
		if _, err := r.loadTable(ctx, p); err != nil && fatal(err) {
			return nil, err
		}
	}
	return p, nil
}

// checkTables validates the declared offset tables against the chunk grid.
func (r *reader) checkTables(p *page) error {
	n := p.numChunks()
	if p.offsets.count == 0 {
		return fmt.Errorf("tiff %q: IFD at %d has no strip/tile offsets: %w", r.key, p.ifdOff, errCorrupt)
	}
	if p.offsets.count < n {
		return fmt.Errorf("tiff %q: IFD at %d lists %d strips/tiles, the image needs %d: %w", r.key, p.ifdOff, p.offsets.count, n, errCorrupt)
	}
	if p.counts.count == 0 && p.compression != 1 {
		return fmt.Errorf("tiff %q: IFD at %d: compressed image without byte counts: %w", r.key, p.ifdOff, errCorrupt)
	}
	if p.counts.count != 0 && p.counts.count < n {
		return fmt.Errorf("tiff %q: IFD at %d lists %d byte counts, the image needs %d: %w", r.key, p.ifdOff, p.counts.count, n, errCorrupt)
	}
	if n*typeSize(p.offsets.typ) > maxTableBytes {
		return fmt.Errorf("tiff %q: IFD at %d: %d chunks: %w", r.key, p.ifdOff, n, errCorrupt)
	}
	if ts := typeSize(p.offsets.typ); ts < 2 || ts > 8 || p.offsets.typ == typeRational || p.offsets.typ == typeDouble {
		return fmt.Errorf("tiff %q: IFD at %d: offsets of type %d: %w", r.key, p.ifdOff, p.offsets.typ, errCorrupt)
	}
	// One chunk, decoded, must be a sane size: a tiny file must not make the
	// reader allocate gigabytes. Uncompressed chunks are read by rows, so only
	// a row has to fit then.
	rows := p.chunkH()
	if p.compression == 1 {
		rows = 1
	}
	if n, ok := mul(rows, p.decodedRowBytes()); !ok || n > r.maxChunk {
		return fmt.Errorf("tiff %q: IFD at %d: %dx%d chunks of %d bytes per row are too large: %w",
			r.key, p.ifdOff, p.chunkW(), p.chunkH(), p.decodedRowBytes(), format.ErrNotSupported)
	}
	return nil
}

// pickDType maps SampleFormat and BitsPerSample to a numpy dtype.
func pickDType(sf, bps int, why string) (volume.DType, string) {
	if why != "" {
		return "", why
	}
	switch sf {
	case 1, 4: // uint, void
		switch {
		case bps == 1:
			return volume.Bool, ""
		case bps >= 2 && bps <= 8:
			return volume.Uint8, ""
		case bps > 8 && bps <= 16:
			return volume.Uint16, ""
		case bps == 32:
			return volume.Uint32, ""
		case bps == 64:
			return volume.Uint64, ""
		}
	case 2:
		switch bps {
		case 8:
			return volume.Int8, ""
		case 16:
			return volume.Int16, ""
		case 32:
			return volume.Int32, ""
		case 64:
			return volume.Int64, ""
		}
	case 3:
		switch bps {
		case 16:
			return volume.Float16, ""
		case 32:
			return volume.Float32, ""
		case 64:
			return volume.Float64, ""
		}
	}
	return "", fmt.Sprintf("SampleFormat %d with %d bits per sample", sf, bps)
}

// checkCodec reports, as a reason string, features the decoder lacks.
func (l *layout) checkCodec() string {
	if !codecSupported(l.compression) {
		return fmt.Sprintf("compression %s", compressionName(l.compression))
	}
	if l.compression == 7 && (l.bps != 8 || l.sampleFormat != 1 || (l.sppChunk() != 1 && l.sppChunk() != 3)) {
		return fmt.Sprintf("JPEG with %d samples of %d bits", l.sppChunk(), l.bps)
	}
	if l.fillOrder == 2 {
		return "FillOrder 2 (bit-reversed bytes)"
	}
	byteAligned := l.bps%8 == 0
	switch l.predictor {
	case 1:
	case 2:
		if !byteAligned {
			return fmt.Sprintf("horizontal predictor with %d-bit samples", l.bps)
		}
	case 3:
		if l.sampleFormat != 3 {
			return "floating-point predictor on integer samples"
		}
	default:
		return fmt.Sprintf("predictor %d", l.predictor)
	}
	return ""
}

func compressionName(c int) string {
	switch c {
	case 1:
		return "none"
	case 2:
		return "ccitt-rle"
	case 3:
		return "ccitt-fax3"
	case 4:
		return "ccitt-fax4"
	case 5:
		return "lzw"
	case 6:
		return "old-jpeg"
	case 7:
		return "jpeg"
	case 8, 32946:
		return "deflate"
	case 32773:
		return "packbits"
	case 34676:
		return "sgilog"
	case 34712, 33003, 33005:
		return "jpeg2000"
	case 34887:
		return "lerc"
	case 34925:
		return "lzma"
	case 50000, 34926:
		return "zstd"
	case 50001:
		return "webp"
	case 50002:
		return "jpegxl"
	case 65000, 65001, 65002:
		return "eer"
	}
	return fmt.Sprintf("%d", c)
}

func photometricName(p int) string {
	switch p {
	case 0:
		return "miniswhite"
	case 1:
		return "minisblack"
	case 2:
		return "rgb"
	case 3:
		return "palette"
	case 4:
		return "mask"
	case 5:
		return "separated"
	case 6:
		return "ycbcr"
	case 8:
		return "cielab"
	case 1 << 16:
		return "unspecified"
	}
	return fmt.Sprintf("%d", p)
}
