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
	for j := range ts {
		row := dst[j*n : (j+1)*n]
		for i := range row {
			row[i] = src[i*ts+j]
		}
	}
	copy(dst[n*ts:], src[n*ts:])
}

// unshuffleBytes inverts shuffleBytes: dst[i*ts+j] = src[j*n+i].
func unshuffleBytes(dst, src []byte, ts int) {
	n := len(src) / ts
	switch ts {
	case 2:
		a, b := src[:n], src[n:2*n]
		i := 0
		// Eight elements per step, interleaving whole words.
		for ; i+8 <= n; i += 8 {
			x := binary.LittleEndian.Uint64(a[i:])
			y := binary.LittleEndian.Uint64(b[i:])
			d := dst[2*i : 2*i+16]
			binary.LittleEndian.PutUint64(d, spread8(x&0xFFFFFFFF)|spread8(y&0xFFFFFFFF)<<8)
			binary.LittleEndian.PutUint64(d[8:], spread8(x>>32)|spread8(y>>32)<<8)
		}
		for ; i < n; i++ {
			dst[2*i] = a[i]
			dst[2*i+1] = b[i]
		}
	case 4:
		a, b, c, e := src[:n], src[n:2*n], src[2*n:3*n], src[3*n:4*n]
		i := 0
		for ; i+4 <= n; i += 4 {
			ab := spread8(uint64(binary.LittleEndian.Uint32(a[i:]))) | spread8(uint64(binary.LittleEndian.Uint32(b[i:])))<<8
			ce := spread8(uint64(binary.LittleEndian.Uint32(c[i:]))) | spread8(uint64(binary.LittleEndian.Uint32(e[i:])))<<8
			d := dst[4*i : 4*i+16]
			binary.LittleEndian.PutUint64(d, spread16(ab&0xFFFFFFFF)|spread16(ce&0xFFFFFFFF)<<16)
			binary.LittleEndian.PutUint64(d[8:], spread16(ab>>32)|spread16(ce>>32)<<16)
		}
		for ; i < n; i++ {
			binary.LittleEndian.PutUint32(dst[4*i:],
				uint32(a[i])|uint32(b[i])<<8|uint32(c[i])<<16|uint32(e[i])<<24)
		}
	case 8:
		for i := range n {
			var v uint64
			for j := range 8 {
				v |= uint64(src[j*n+i]) << (8 * j)
			}
			binary.LittleEndian.PutUint64(dst[8*i:], v)
		}
	default:
		for j := range ts {
			row := src[j*n : (j+1)*n]
			for i, b := range row {
				dst[i*ts+j] = b
			}
		}
	}
	copy(dst[n*ts:], src[n*ts:])
}

// spread8 moves byte k of the low 32 bits of x to byte 2k.
func spread8(x uint64) uint64 {
	x = (x | x<<16) & 0x0000FFFF0000FFFF
	return (x | x<<8) & 0x00FF00FF00FF00FF
}

// spread16 moves 16-bit lane k of the low 32 bits of x to lane 2k.
func spread16(x uint64) uint64 {
	return (x | x<<16) & 0x0000FFFF0000FFFF
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
