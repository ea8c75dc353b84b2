package codec

import "encoding/binary"

// The shuffle filters of Blosc work on one block at a time. Byte shuffle
// groups byte j of every element together; bit shuffle (the bitshuffle
// library's bshuf_trans_bit_elem) groups bit i of byte j of every element
// together. Bytes that do not fill a whole element (or, for bit shuffle, a
// whole group of 8 elements) are copied unchanged, as c-blosc does.

// shuffleBytes writes the byte-shuffled form of src into dst (same length):
// dst[j*n+i] = src[i*ts+j] for n = len(src)/ts elements.
func shuffleBytes(dst, src []byte, ts int) {
	n := len(src) / ts
	dst = dst[:len(src)]
	switch ts {
	case 2:
		shuffle2(dst[:n], dst[n:2*n], src[:2*n])
	case 4:
		shuffle4(dst[:n], dst[n:2*n], dst[2*n:3*n], dst[3*n:4*n], src[:4*n])
	default:
		shuffleGeneric(dst, src, ts, n)
	}
	copy(dst[n*ts:], src[n*ts:])
}

// unshuffleBytes inverts shuffleBytes: dst[i*ts+j] = src[j*n+i]. planes is
// scratch space for the plane slices (nil is fine); it is returned, grown,
// for reuse.
func unshuffleBytes(dst, src []byte, ts int, planes [][]byte) [][]byte {
	n := len(src) / ts
	planes = planesOf(planes[:0], src, ts)
	interleave(dst, planes, n)
	copy(dst[n*ts:len(src)], src[n*ts:])
	return planes
}

// planesOf appends to planes the ts byte planes of the shuffled src.
func planesOf(planes [][]byte, src []byte, ts int) [][]byte {
	n := len(src) / ts
	for j := range ts {
		planes = append(planes, src[j*n:(j+1)*n])
	}
	return planes
}

// The word-at-a-time paths below transpose small byte matrices held in
// uint64 registers with swapBytes, the delta swap of the classic 8×8 bit
// transpose applied to bytes: three rounds (s = 8, 16, 32) transpose an
// 8×8 byte matrix, fewer rounds handle 2 or 4 rows of 8 bytes. A swap is its
// own inverse, so shuffling runs the rounds of unshuffling backwards.

// swapBytes exchanges the bytes selected by m in b with those s bits
// higher in a: with s = 8 and m = 0x00FF00FF00FF00FF, a = [a0 a1 a2 a3 ...]
// and b = [b0 b1 b2 b3 ...] (least significant byte first) become
// [a0 b0 a2 b2 ...] and [a1 b1 a3 b3 ...].
func swapBytes(a, b uint64, s uint, m uint64) (uint64, uint64) {
	t := (a>>s ^ b) & m
	return a ^ t<<s, b ^ t
}

const (
	swapMask8  = 0x00FF00FF00FF00FF
	swapMask16 = 0x0000FFFF0000FFFF
	swapMask32 = 0x00000000FFFFFFFF
)

// transpose8x8 transposes the 8×8 byte matrix whose row r is w_r (byte c
// of w_r is column c): the result's word c holds column c.
func transpose8x8(w0, w1, w2, w3, w4, w5, w6, w7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	w0, w1 = swapBytes(w0, w1, 8, swapMask8)
	w2, w3 = swapBytes(w2, w3, 8, swapMask8)
	w4, w5 = swapBytes(w4, w5, 8, swapMask8)
	w6, w7 = swapBytes(w6, w7, 8, swapMask8)
	w0, w2 = swapBytes(w0, w2, 16, swapMask16)
	w1, w3 = swapBytes(w1, w3, 16, swapMask16)
	w4, w6 = swapBytes(w4, w6, 16, swapMask16)
	w5, w7 = swapBytes(w5, w7, 16, swapMask16)
	w0, w4 = swapBytes(w0, w4, 32, swapMask32)
	w1, w5 = swapBytes(w1, w5, 32, swapMask32)
	w2, w6 = swapBytes(w2, w6, 32, swapMask32)
	w3, w7 = swapBytes(w3, w7, 32, swapMask32)
	return w0, w1, w2, w3, w4, w5, w6, w7
}

// shuffle2 splits the 2-byte elements of src into the planes a and b, eight
// elements per step.
func shuffle2(a, b, src []byte) {
	n := len(a)
	b, src = b[:n], src[:2*n]
	i := 0
	for ; i <= n-8; i += 8 {
		s := src[2*i : 2*i+16]
		w0 := binary.LittleEndian.Uint64(s)     // elements 0-3
		w1 := binary.LittleEndian.Uint64(s[8:]) // elements 4-7
		w0, w1 = swapBytes(w0, w1, 32, swapMask32)
		w0, w1 = swapBytes(w0, w1, 16, swapMask16)
		w0, w1 = swapBytes(w0, w1, 8, swapMask8)
		binary.LittleEndian.PutUint64(a[i:i+8], w0)
		binary.LittleEndian.PutUint64(b[i:i+8], w1)
	}
	for ; i < n; i++ {
		a[i], b[i] = src[2*i], src[2*i+1]
	}
}

// shuffle4 splits the 4-byte elements of src into the planes a, b, c and
// d, eight elements per step.
func shuffle4(a, b, c, d, src []byte) {
	n := len(a)
	b, c, d, src = b[:n], c[:n], d[:n], src[:4*n]
	i := 0
	for ; i <= n-8; i += 8 {
		s := src[4*i : 4*i+32]
		w0 := binary.LittleEndian.Uint64(s)      // elements 0, 1
		w2 := binary.LittleEndian.Uint64(s[8:])  // elements 2, 3
		w1 := binary.LittleEndian.Uint64(s[16:]) // elements 4, 5
		w3 := binary.LittleEndian.Uint64(s[24:]) // elements 6, 7
		w0, w1 = swapBytes(w0, w1, 32, swapMask32)
		w2, w3 = swapBytes(w2, w3, 32, swapMask32)
		w0, w2 = swapBytes(w0, w2, 16, swapMask16)
		w1, w3 = swapBytes(w1, w3, 16, swapMask16)
		w0, w1 = swapBytes(w0, w1, 8, swapMask8)
		w2, w3 = swapBytes(w2, w3, 8, swapMask8)
		binary.LittleEndian.PutUint64(a[i:i+8], w0)
		binary.LittleEndian.PutUint64(b[i:i+8], w1)
		binary.LittleEndian.PutUint64(c[i:i+8], w2)
		binary.LittleEndian.PutUint64(d[i:i+8], w3)
	}
	for ; i < n; i++ {
		e := src[4*i : 4*i+4]
		a[i], b[i], c[i], d[i] = e[0], e[1], e[2], e[3]
	}
}

// shuffleGeneric shuffles n elements of any size: each group of eight
// bytes of eight elements is one 8×8 transpose; the element bytes beyond the
// last whole group, and the elements beyond the last whole step, go one by
// one.
func shuffleGeneric(dst, src []byte, ts, n int) {
	n8 := n &^ 7
	j := 0
	for ; j+8 <= ts; j += 8 {
		p0, p1, p2, p3 := dst[j*n:(j+1)*n], dst[(j+1)*n:(j+2)*n], dst[(j+2)*n:(j+3)*n], dst[(j+3)*n:(j+4)*n]
		p4, p5, p6, p7 := dst[(j+4)*n:(j+5)*n], dst[(j+5)*n:(j+6)*n], dst[(j+6)*n:(j+7)*n], dst[(j+7)*n:(j+8)*n]
		for i := 0; i < n8; i += 8 {
			s := src[i*ts+j:]
			w0, w1, w2, w3, w4, w5, w6, w7 := transpose8x8(
				binary.LittleEndian.Uint64(s),
				binary.LittleEndian.Uint64(s[ts:]),
				binary.LittleEndian.Uint64(s[2*ts:]),
				binary.LittleEndian.Uint64(s[3*ts:]),
				binary.LittleEndian.Uint64(s[4*ts:]),
				binary.LittleEndian.Uint64(s[5*ts:]),
				binary.LittleEndian.Uint64(s[6*ts:]),
				binary.LittleEndian.Uint64(s[7*ts:]))
			binary.LittleEndian.PutUint64(p0[i:i+8], w0)
			binary.LittleEndian.PutUint64(p1[i:i+8], w1)
			binary.LittleEndian.PutUint64(p2[i:i+8], w2)
			binary.LittleEndian.PutUint64(p3[i:i+8], w3)
			binary.LittleEndian.PutUint64(p4[i:i+8], w4)
			binary.LittleEndian.PutUint64(p5[i:i+8], w5)
			binary.LittleEndian.PutUint64(p6[i:i+8], w6)
			binary.LittleEndian.PutUint64(p7[i:i+8], w7)
		}
		for i := n8; i < n; i++ {
			for k := range 8 {
				dst[(j+k)*n+i] = src[i*ts+j+k]
			}
		}
	}
	for ; j < ts; j++ {
		row := dst[j*n : (j+1)*n]
		for i := range row {
			row[i] = src[i*ts+j]
		}
	}
}

// interleave writes dst[i*ts+j] = planes[j][i] for the first n bytes of
// each of the ts = len(planes) planes. The planes need not be adjacent: the
// Blosc decoder passes raw streams in place.
func interleave(dst []byte, planes [][]byte, n int) {
	ts := len(planes)
	dst = dst[:n*ts]
	switch ts {
	case 2:
		interleave2(dst, planes[0][:n], planes[1][:n])
	case 4:
		interleave4(dst, planes[0][:n], planes[1][:n], planes[2][:n], planes[3][:n])
	default:
		interleaveGeneric(dst, planes, n)
	}
}

// interleave2Go merges the planes a and b into 2-byte elements, eight per
// step. interleave2 is this function, or an assembly version of it.
func interleave2Go(dst, a, b []byte) {
	n := len(a)
	b, dst = b[:n], dst[:2*n]
	i := 0
	// Indexing (rather than reslicing a, b and dst) measured fastest.
	for ; i <= n-8; i += 8 {
		w0 := binary.LittleEndian.Uint64(a[i : i+8])
		w1 := binary.LittleEndian.Uint64(b[i : i+8])
		w0, w1 = swapBytes(w0, w1, 8, swapMask8)   // [e0 e2 e4 e6], [e1 e3 e5 e7]
		w0, w1 = swapBytes(w0, w1, 16, swapMask16) // [e0 e1 e4 e5], [e2 e3 e6 e7]
		w0, w1 = swapBytes(w0, w1, 32, swapMask32) // [e0 e1 e2 e3], [e4 e5 e6 e7]
		d := dst[2*i : 2*i+16]
		binary.LittleEndian.PutUint64(d, w0)
		binary.LittleEndian.PutUint64(d[8:], w1)
	}
	for ; i < n; i++ {
		dst[2*i], dst[2*i+1] = a[i], b[i]
	}
}

// interleave4Go merges the planes a, b, c and d into 4-byte elements, eight
// per step. interleave4 is this function, or an assembly version of it.
func interleave4Go(dst, a, b, c, d []byte) {
	n := len(a)
	b, c, d, dst = b[:n], c[:n], d[:n], dst[:4*n]
	i := 0
	for ; i <= n-8; i += 8 {
		w0 := binary.LittleEndian.Uint64(a[i : i+8])
		w1 := binary.LittleEndian.Uint64(b[i : i+8])
		w2 := binary.LittleEndian.Uint64(c[i : i+8])
		w3 := binary.LittleEndian.Uint64(d[i : i+8])
		w0, w1 = swapBytes(w0, w1, 8, swapMask8)
		w2, w3 = swapBytes(w2, w3, 8, swapMask8)
		w0, w2 = swapBytes(w0, w2, 16, swapMask16) // [e0 e4], [e2 e6]
		w1, w3 = swapBytes(w1, w3, 16, swapMask16) // [e1 e5], [e3 e7]
		w0, w1 = swapBytes(w0, w1, 32, swapMask32) // [e0 e1], [e4 e5]
		w2, w3 = swapBytes(w2, w3, 32, swapMask32) // [e2 e3], [e6 e7]
		o := dst[4*i : 4*i+32]
		binary.LittleEndian.PutUint64(o, w0)
		binary.LittleEndian.PutUint64(o[8:], w2)
		binary.LittleEndian.PutUint64(o[16:], w1)
		binary.LittleEndian.PutUint64(o[24:], w3)
	}
	for ; i < n; i++ {
		o := dst[4*i : 4*i+4]
		o[0], o[1], o[2], o[3] = a[i], b[i], c[i], d[i]
	}
}

// interleaveGeneric merges planes of any count: each group of eight planes
// is transposed eight elements at a time, the planes beyond the last whole
// group and the elements beyond the last whole step go one by one.
func interleaveGeneric(dst []byte, planes [][]byte, n int) {
	ts := len(planes)
	n8 := n &^ 7
	j := 0
	for ; j+8 <= ts; j += 8 {
		p0, p1, p2, p3 := planes[j][:n], planes[j+1][:n], planes[j+2][:n], planes[j+3][:n]
		p4, p5, p6, p7 := planes[j+4][:n], planes[j+5][:n], planes[j+6][:n], planes[j+7][:n]
		for i := 0; i < n8; i += 8 {
			w0, w1, w2, w3, w4, w5, w6, w7 := transpose8x8(
				binary.LittleEndian.Uint64(p0[i:i+8]),
				binary.LittleEndian.Uint64(p1[i:i+8]),
				binary.LittleEndian.Uint64(p2[i:i+8]),
				binary.LittleEndian.Uint64(p3[i:i+8]),
				binary.LittleEndian.Uint64(p4[i:i+8]),
				binary.LittleEndian.Uint64(p5[i:i+8]),
				binary.LittleEndian.Uint64(p6[i:i+8]),
				binary.LittleEndian.Uint64(p7[i:i+8]))
			o := dst[i*ts+j:]
			binary.LittleEndian.PutUint64(o, w0)
			binary.LittleEndian.PutUint64(o[ts:], w1)
			binary.LittleEndian.PutUint64(o[2*ts:], w2)
			binary.LittleEndian.PutUint64(o[3*ts:], w3)
			binary.LittleEndian.PutUint64(o[4*ts:], w4)
			binary.LittleEndian.PutUint64(o[5*ts:], w5)
			binary.LittleEndian.PutUint64(o[6*ts:], w6)
			binary.LittleEndian.PutUint64(o[7*ts:], w7)
		}
		for i := n8; i < n; i++ {
			for k := range 8 {
				dst[i*ts+j+k] = planes[j+k][i]
			}
		}
	}
	for ; j < ts; j++ {
		for i, b := range planes[j][:n] {
			dst[i*ts+j] = b
		}
	}
}

// transpose8 transposes the 8×8 bit matrix whose row r is byte r of x and
// whose column c is bit c (LSB first): bit 8r+c moves to bit 8c+r.
func transpose8(x uint64) uint64 {
	t := (x ^ (x >> 7)) & 0x00AA00AA00AA00AA
	x ^= t ^ (t << 7)
	t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCC
	x ^= t ^ (t << 14)
	t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0
	x ^= t ^ (t << 28)
	return x
}

// bitShuffle writes the bit-shuffled form of src into dst. The output is
// 8*ts bit rows of n/8 bytes; row 8*j+i holds bit i of byte j of every
// element, element e at byte e/8, bit e%8. When the element count is not a
// multiple of 8 the whole block is copied unchanged.
func bitShuffle(dst, src []byte, ts int) {
	n := len(src) / ts
	if n%8 != 0 {
		copy(dst, src)
		return
	}
	nb := n / 8
	for p := range nb {
		base := 8 * p * ts
		for j := range ts {
			var x uint64
			for m := range 8 {
				x |= uint64(src[base+m*ts+j]) << (8 * m)
			}
			x = transpose8(x)
			for i := range 8 {
				dst[(8*j+i)*nb+p] = byte(x >> (8 * i))
			}
		}
	}
	copy(dst[n*ts:], src[n*ts:])
}

// bitUnshuffle inverts bitShuffle.
func bitUnshuffle(dst, src []byte, ts int) {
	n := len(src) / ts
	if n%8 != 0 {
		copy(dst, src)
		return
	}
	nb := n / 8
	for j := range ts {
		rows := src[8*j*nb : 8*(j+1)*nb]
		for p := range nb {
			var x uint64
			for i := range 8 {
				x |= uint64(rows[i*nb+p]) << (8 * i)
			}
			x = transpose8(x)
			base := 8*p*ts + j
			for m := range 8 {
				dst[base+m*ts] = byte(x >> (8 * m))
			}
		}
	}
	copy(dst[n*ts:], src[n*ts:])
}
