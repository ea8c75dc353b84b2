package serve

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// typeStr returns the numpy array-interface type string of d ("<u2", "|u1",
// "<f4", "|b1"), which both .npy headers and zarr v2 .zarray use. ok is false
// for dtypes numpy has no plain scalar for (rgba8 is a 4-byte record).
// format/zarr has the same mapping unexported (v2DType).
func typeStr(d volume.DType) (s string, ok bool) {
	switch d {
	case volume.Bool:
		return "|b1", true
	case volume.Int8:
		return "|i1", true
	case volume.Uint8:
		return "|u1", true
	}
	for _, k := range []struct{ prefix, kind string }{{"uint", "u"}, {"int", "i"}, {"float", "f"}, {"complex", "c"}} {
		rest, found := strings.CutPrefix(string(d), k.prefix)
		if !found {
			continue
		}
		bits, err := strconv.Atoi(rest)
		if err != nil || d.Size() == 0 || bits != 8*d.Size() {
			return "", false
		}
		return "<" + k.kind + strconv.Itoa(d.Size()), true
	}
	return "", false
}

// npyLayout returns the numpy descr and shape a block of d with the given
// shape is saved as: rgba8 becomes a trailing axis of 4 uint8 samples.
func npyLayout(d volume.DType, shape []int64) (string, []int64, bool) {
	if d == volume.RGBA8 {
		return "|u1", append(append([]int64(nil), shape...), 4), true
	}
	s, ok := typeStr(d)
	return s, shape, ok
}

// npyHeader builds a NumPy format version 1.0 header: the magic, the version,
// a little-endian uint16 length and a Python dict literal padded with spaces
// and a newline so that the data starts at a multiple of 64 bytes.
func npyHeader(descr string, shape []int64) []byte {
	var d strings.Builder
	d.WriteString("{'descr': '")
	d.WriteString(descr)
	d.WriteString("', 'fortran_order': False, 'shape': (")
	for i, s := range shape {
		if i > 0 {
			d.WriteString(", ")
		}
		d.WriteString(strconv.FormatInt(s, 10))
	}
	if len(shape) == 1 {
		d.WriteString(",") // a 1-tuple in Python
	}
	d.WriteString("), }")
	const pre = 10 // magic (6) + version (2) + length (2)
	n := pre + d.Len() + 1
	pad := (64 - n%64) % 64
	out := make([]byte, 0, n+pad)
	out = append(out, "\x93NUMPY\x01\x00"...)
	out = binary.LittleEndian.AppendUint16(out, uint16(d.Len()+pad+1))
	out = append(out, d.String()...)
	for range pad {
		out = append(out, ' ')
	}
	return append(out, '\n')
}

// zarrChunks picks the chunk shape of the virtual zarr view: the volume's own
// chunks (or 128 on every axis when it has none), clipped to the shape, grown
// along the fastest axes up to the bytes of a 128³ chunk so that strip-shaped
// storage does not become millions of tiny chunks, then halved along the
// largest axis until one chunk fits maxBytes.
func zarrChunks(in volume.Info, maxBytes int64) []int64 {
	n := len(in.Shape)
	if n == 0 {
		return nil
	}
	elem := int64(max(in.DType.Size(), 1))
	base := make([]int64, n)
	for i := range base {
		c := int64(128)
		if in.Chunks != nil && in.Chunks[i] > 0 {
			c = in.Chunks[i]
		}
		base[i] = min(c, max(in.Shape[i], 1))
	}
	ch := base
	if p, ok := prodBounded(base, 128*128*128); ok && p > 0 {
		// Growth doubles one axis at a time from a product within budget,
		// so BlockShape's products cannot overflow.
		ch = volume.BlockShape(in.Shape, nil, base, elem, 128*128*128*elem)
	}
	for {
		if _, ok := prodBounded(ch, maxBytes/elem); ok {
			return ch
		}
		big := 0
		for i := range ch {
			if ch[i] > ch[big] {
				big = i
			}
		}
		if ch[big] == 1 {
			return ch // a single element cannot be split; maxBytes is tiny
		}
		ch[big] = (ch[big] + 1) / 2
	}
}

// prodBounded multiplies s, reporting false once the product passes limit (so
// hostile metadata cannot overflow it).
func prodBounded(s []int64, limit int64) (int64, bool) {
	p := int64(1)
	for _, v := range s {
		if v <= 0 {
			return 0, true
		}
		if p > limit/v {
			return 0, false
		}
		p *= v
	}
	return p, true
}

// chunkGrid is the number of chunks along each axis.
func chunkGrid(shape, chunks []int64) []int64 {
	g := make([]int64, len(shape))
	for i := range shape {
		g[i] = shape[i] / chunks[i]
		if shape[i]%chunks[i] != 0 {
			g[i]++
		}
	}
	return g
}
