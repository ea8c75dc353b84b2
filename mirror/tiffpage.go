package mirror

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// tiffPage is what render_image needs from one TIFF page (IFD).
type tiffPage struct {
	width, height int
	bitsPerSample int
	samples       int
	compression   int
	offsets       []int64
	counts        []int64
}

// tiffInfo is the little the IDR mirror reads from a TIFF: byte order and
// pages. It is not a format reader (the project's format/tiff is); it only
// lets render_image draw a plane of the uncompressed classic TIFFs the demo
// serves and lets the JSON fill sizes left zero.
type tiffInfo struct {
	order binary.ByteOrder
	pages []tiffPage
}

// Limits that keep a hostile file from costing much.
const (
	tiffMaxPages   = 1 << 16
	tiffMaxEntries = 4096
	tiffMaxStrips  = 1 << 20
	tiffMaxValues  = 1 << 22 // strip offsets+counts decoded over all pages
	tiffMaxScanned = 1 << 21 // IFD entries looked at over all pages
)

var errNotTIFF = errors.New("not a classic TIFF")

// parseTIFF reads the IFD chain of a classic (not Big) TIFF held in memory.
func parseTIFF(b []byte) (*tiffInfo, error) {
	if len(b) < 8 {
		return nil, errNotTIFF
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, errNotTIFF
	}
	if bo.Uint16(b[2:]) != 42 {
		return nil, errNotTIFF
	}
	info := &tiffInfo{order: bo}
	seen := map[uint32]bool{}
	budget, scan := int64(tiffMaxValues), tiffMaxScanned
	for off := bo.Uint32(b[4:]); off != 0; {
		if seen[off] || len(info.pages) >= tiffMaxPages {
			return nil, fmt.Errorf("tiff: IFD chain loops or exceeds %d pages", tiffMaxPages)
		}
		seen[off] = true
		if uint64(off)+2 > uint64(len(b)) {
			return nil, fmt.Errorf("tiff: IFD offset %d beyond %d bytes", off, len(b))
		}
		n := int(bo.Uint16(b[off:]))
		end := uint64(off) + 2 + uint64(n)*12
		if n > tiffMaxEntries || end+4 > uint64(len(b)) {
			return nil, fmt.Errorf("tiff: IFD at %d has %d entries past the end", off, n)
		}
		if scan -= n; scan < 0 {
			return nil, fmt.Errorf("tiff: more than %d IFD entries in all", tiffMaxScanned)
		}
		p := tiffPage{bitsPerSample: 1, samples: 1, compression: 1}
		for i := range n {
			e := b[uint64(off)+2+uint64(i)*12:]
			tag, typ, cnt := bo.Uint16(e), bo.Uint16(e[2:]), bo.Uint32(e[4:])
			switch tag {
			case 256, 257, 258, 259, 273, 277, 279:
			default:
				continue // only what render_image needs is decoded
			}
			if budget -= int64(cnt); budget < 0 {
				return nil, fmt.Errorf("tiff: more than %d strip values", tiffMaxValues)
			}
			vals, err := tiffValues(b, bo, typ, cnt, e[8:12])
			if err != nil {
				return nil, fmt.Errorf("tiff: tag %d: %w", tag, err)
			}
			if len(vals) == 0 {
				continue
			}
			switch tag {
			case 256:
				p.width = int(min(vals[0], 1<<31))
			case 257:
				p.height = int(min(vals[0], 1<<31))
			case 258:
				p.bitsPerSample = int(min(vals[0], 1<<16))
			case 259:
				p.compression = int(min(vals[0], 1<<16))
			case 273:
				p.offsets = vals
			case 277:
				p.samples = int(min(vals[0], 1<<16))
			case 279:
				p.counts = vals
			}
		}
		info.pages = append(info.pages, p)
		off = bo.Uint32(b[end:])
	}
	if len(info.pages) == 0 {
		return nil, errNotTIFF
	}
	return info, nil
}

// tiffValues reads an entry's integer values (BYTE, SHORT, LONG).
func tiffValues(b []byte, bo binary.ByteOrder, typ uint16, cnt uint32, inline []byte) ([]int64, error) {
	size := map[uint16]uint64{1: 1, 3: 2, 4: 4}[typ]
	if size == 0 {
		return nil, nil // a type render_image never needs
	}
	if cnt > tiffMaxStrips {
		return nil, fmt.Errorf("%d values", cnt)
	}
	total := size * uint64(cnt)
	data := inline
	if total > 4 {
		o := uint64(bo.Uint32(inline))
		if o+total > uint64(len(b)) {
			return nil, fmt.Errorf("values at %d+%d beyond %d bytes", o, total, len(b))
		}
		data = b[o : o+total]
	}
	out := make([]int64, cnt)
	for i := range out {
		switch size {
		case 1:
			out[i] = int64(data[i])
		case 2:
			out[i] = int64(bo.Uint16(data[2*i:]))
		case 4:
			out[i] = int64(bo.Uint32(data[4*i:]))
		}
	}
	return out, nil
}

// plane returns page i's samples as uint16 values (8- or 16-bit, one sample
// per pixel, uncompressed), row-major.
func (t *tiffInfo) plane(b []byte, i int) ([]uint16, int, int, error) {
	if i < 0 || i >= len(t.pages) {
		return nil, 0, 0, fmt.Errorf("tiff: page %d of %d", i, len(t.pages))
	}
	p := t.pages[i]
	if p.compression != 1 || p.samples != 1 || (p.bitsPerSample != 8 && p.bitsPerSample != 16) {
		return nil, 0, 0, fmt.Errorf("tiff: page %d: compression %d, %d samples of %d bits not drawn", i, p.compression, p.samples, p.bitsPerSample)
	}
	bpp := p.bitsPerSample / 8
	need := uint64(p.width) * uint64(p.height) * uint64(bpp)
	if p.width <= 0 || p.height <= 0 || need > uint64(len(b)) || len(p.offsets) != len(p.counts) {
		return nil, 0, 0, fmt.Errorf("tiff: page %d: %dx%d does not fit the file", i, p.width, p.height)
	}
	raw := make([]byte, 0, need)
	for s := range p.offsets {
		o, c := p.offsets[s], p.counts[s]
		if o < 0 || c < 0 || uint64(o)+uint64(c) > uint64(len(b)) {
			return nil, 0, 0, fmt.Errorf("tiff: page %d strip %d beyond the file", i, s)
		}
		c = min(c, int64(need)-int64(len(raw)))
		raw = append(raw, b[o:o+c]...)
		if uint64(len(raw)) == need {
			break
		}
	}
	if uint64(len(raw)) < need {
		return nil, 0, 0, fmt.Errorf("tiff: page %d has %d of %d bytes", i, len(raw), need)
	}
	px := make([]uint16, p.width*p.height)
	for k := range px {
		if bpp == 1 {
			px[k] = uint16(raw[k])
		} else {
			px[k] = t.order.Uint16(raw[2*k:])
		}
	}
	return px, p.width, p.height, nil
}
