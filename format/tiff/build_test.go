package tiff

import (
	"encoding/binary"
)

// tPage describes one uint8 grayscale page for buildTIFF.
type tPage struct {
	w, h    int
	base    byte     // pixel i holds base+i (mod 256)
	pad     int      // bytes of a Software tag, to make IFD spacing irregular
	subs    []*tPage // first IFDs of the page's SubIFD chains, written before it
	rawSubs []uint32 // SubIFD offsets written as is (after subs), for hostile files
	res     uint32   // XResolution/YResolution in pixels per cm (0: no tags)
	off     int64    // set by buildTIFF: the page's IFD offset
}

// pixels is the page's content.
func (p *tPage) pixels() []byte {
	b := make([]byte, p.w*p.h)
	for i := range b {
		b[i] = p.base + byte(i)
	}
	return b
}

// buildTIFF writes a little-endian classic TIFF of the pages, chained in
// order, after reserve bytes kept free behind the 8-byte header (where
// Micro-Manager puts its own header). SubIFDs are single IFDs, written
// before their parent, and may nest.
func buildTIFF(pages []*tPage, reserve int) []byte {
	le := binary.LittleEndian
	b := []byte("II*\x00\x00\x00\x00\x00")
	b = append(b, make([]byte, reserve)...)
	var emit func(p *tPage) (nextAt int)
	emit = func(p *tPage) int {
		var subOffs []uint32
		for _, s := range p.subs {
			emit(s)
			subOffs = append(subOffs, uint32(s.off))
		}
		subOffs = append(subOffs, p.rawSubs...)
		dataOff := len(b)
		b = append(b, p.pixels()...)
		softOff := len(b)
		b = append(b, make([]byte, p.pad)...)
		for i := softOff; i < len(b)-1; i++ {
			b[i] = 'x'
		}
		subArr := len(b)
		for _, o := range subOffs {
			b = le.AppendUint32(b, o)
		}
		resOff := len(b)
		b = le.AppendUint32(b, p.res)
		b = le.AppendUint32(b, 1)
		if len(b)%2 == 1 {
			b = append(b, 0)
		}
		type ent struct {
			tag, typ uint16
			count    uint32
			value    uint32
		}
		es := []ent{
			{tagImageWidth, typeLong, 1, uint32(p.w)},
			{tagImageLength, typeLong, 1, uint32(p.h)},
			{tagBitsPerSample, typeShort, 1, 8},
			{tagStripOffsets, typeLong, 1, uint32(dataOff)},
			{tagRowsPerStrip, typeLong, 1, uint32(p.h)},
			{tagStripByteCounts, typeLong, 1, uint32(p.w * p.h)},
		}
		if p.res != 0 {
			es = append(es, ent{tagXResolution, typeRational, 1, uint32(resOff)},
				ent{tagYResolution, typeRational, 1, uint32(resOff)},
				ent{tagResolutionUnit, typeShort, 1, 3})
		}
		if p.pad > 0 {
			es = append(es, ent{tagSoftware, typeASCII, uint32(p.pad), uint32(softOff)})
		}
		if n := len(subOffs); n == 1 {
			es = append(es, ent{tagSubIFDs, typeIFD, 1, subOffs[0]})
		} else if n > 1 {
			es = append(es, ent{tagSubIFDs, typeIFD, uint32(n), uint32(subArr)})
		}
		// Entries must be sorted by tag.
		for i := 1; i < len(es); i++ {
			for j := i; j > 0 && es[j].tag < es[j-1].tag; j-- {
				es[j], es[j-1] = es[j-1], es[j]
			}
		}
		p.off = int64(len(b))
		b = le.AppendUint16(b, uint16(len(es)))
		for _, e := range es {
			b = le.AppendUint16(b, e.tag)
			b = le.AppendUint16(b, e.typ)
			b = le.AppendUint32(b, e.count)
			b = le.AppendUint32(b, e.value)
		}
		nextAt := len(b)
		b = le.AppendUint32(b, 0)
		return nextAt
	}
	prevNext := 4
	for _, p := range pages {
		at := emit(p)
		le.PutUint32(b[prevNext:], uint32(p.off))
		prevNext = at
	}
	return b
}

// stackPixels is the C-order content of pages stacked along a leading axis.
func stackPixels(pages ...*tPage) []byte {
	var out []byte
	for _, p := range pages {
		out = append(out, p.pixels()...)
	}
	return out
}
