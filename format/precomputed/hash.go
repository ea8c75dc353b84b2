package precomputed

import (
	"encoding/binary"
	"math/bits"
)

// murmurHash3x86_128 hashes data with MurmurHash3 x86_128 and the given seed,
// returning the four 32-bit output words h1..h4. Common Go packages only ship
// the x64_128 variant, which gives different values, hence this own copy.
func murmurHash3x86_128(data []byte, seed uint32) (h1, h2, h3, h4 uint32) {
	const (
		c1 = 0x239b961b
		c2 = 0xab0e9789
		c3 = 0x38b34ae5
		c4 = 0xa1e38b93
	)
	h1, h2, h3, h4 = seed, seed, seed, seed
	n := len(data)
	nblocks := n / 16
	for i := 0; i < nblocks; i++ {
		b := data[i*16:]
		k1 := binary.LittleEndian.Uint32(b[0:])
		k2 := binary.LittleEndian.Uint32(b[4:])
		k3 := binary.LittleEndian.Uint32(b[8:])
		k4 := binary.LittleEndian.Uint32(b[12:])

		k1 *= c1
		k1 = bits.RotateLeft32(k1, 15)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft32(h1, 19)
		h1 += h2
		h1 = h1*5 + 0x561ccd1b

		k2 *= c2
		k2 = bits.RotateLeft32(k2, 16)
		k2 *= c3
		h2 ^= k2
		h2 = bits.RotateLeft32(h2, 17)
		h2 += h3
		h2 = h2*5 + 0x0bcaa747

		k3 *= c3
		k3 = bits.RotateLeft32(k3, 17)
		k3 *= c4
		h3 ^= k3
		h3 = bits.RotateLeft32(h3, 15)
		h3 += h4
		h3 = h3*5 + 0x96cd1c35

		k4 *= c4
		k4 = bits.RotateLeft32(k4, 18)
		k4 *= c1
		h4 ^= k4
		h4 = bits.RotateLeft32(h4, 13)
		h4 += h1
		h4 = h4*5 + 0x32ac3b17
	}

	tail := data[nblocks*16:]
	var k1, k2, k3, k4 uint32
	switch len(tail) & 15 {
	case 15:
		k4 ^= uint32(tail[14]) << 16
		fallthrough
	case 14:
		k4 ^= uint32(tail[13]) << 8
		fallthrough
	case 13:
		k4 ^= uint32(tail[12])
		k4 *= c4
		k4 = bits.RotateLeft32(k4, 18)
		k4 *= c1
		h4 ^= k4
		fallthrough
	case 12:
		k3 ^= uint32(tail[11]) << 24
		fallthrough
	case 11:
		k3 ^= uint32(tail[10]) << 16
		fallthrough
	case 10:
		k3 ^= uint32(tail[9]) << 8
		fallthrough
	case 9:
		k3 ^= uint32(tail[8])
		k3 *= c3
		k3 = bits.RotateLeft32(k3, 17)
		k3 *= c4
		h3 ^= k3
		fallthrough
	case 8:
		k2 ^= uint32(tail[7]) << 24
		fallthrough
	case 7:
		k2 ^= uint32(tail[6]) << 16
		fallthrough
	case 6:
		k2 ^= uint32(tail[5]) << 8
		fallthrough
	case 5:
		k2 ^= uint32(tail[4])
		k2 *= c2
		k2 = bits.RotateLeft32(k2, 16)
		k2 *= c3
		h2 ^= k2
		fallthrough
	case 4:
		k1 ^= uint32(tail[3]) << 24
		fallthrough
	case 3:
		k1 ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		k1 ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		k1 ^= uint32(tail[0])
		k1 *= c1
		k1 = bits.RotateLeft32(k1, 15)
		k1 *= c2
		h1 ^= k1
	}

	l := uint32(n)
	h1 ^= l
	h2 ^= l
	h3 ^= l
	h4 ^= l

	h1 += h2
	h1 += h3
	h1 += h4
	h2 += h1
	h3 += h1
	h4 += h1

	h1 = fmix32(h1)
	h2 = fmix32(h2)
	h3 = fmix32(h3)
	h4 = fmix32(h4)

	h1 += h2
	h1 += h3
	h1 += h4
	h2 += h1
	h3 += h1
	h4 += h1
	return h1, h2, h3, h4
}

func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// murmurHash64 is the sharding hash "murmurhash3_x86_128": the low 64 bits of the
// 128-bit hash (seed 0) of the 8-byte little-endian encoding of x.
func murmurHash64(x uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], x)
	h1, h2, _, _ := murmurHash3x86_128(b[:], 0)
	return uint64(h1) | uint64(h2)<<32
}

// lowMask returns a mask of the n lowest bits; n >= 64 gives all ones.
func lowMask(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return uint64(1)<<uint(n) - 1
}

// shiftRight shifts x right by n bits, giving 0 for n >= 64 (Go would too, but
// the spec calls it out, so keep it explicit).
func shiftRight(x uint64, n int) uint64 {
	if n >= 64 {
		return 0
	}
	return x >> uint(n)
}

// mortonBits returns, per axis, the number of bits the compressed Morton code
// spends on grid positions below grid[d]: the bit length of grid[d]-1.
func mortonBits(grid [3]int64) [3]int {
	var b [3]int
	for d, g := range grid {
		if g > 1 {
			b[d] = bits.Len64(uint64(g - 1))
		}
	}
	return b
}

// compressedMorton interleaves the bits of the grid position g (x, y, z) into a
// compressed Morton code: for bit i = 0.., axes x, y, z in turn contribute their
// bit i while i is below that axis's bit count. The caller ensures the total of
// nbits is at most 64.
func compressedMorton(g [3]int64, nbits [3]int) uint64 {
	var out uint64
	o := uint(0)
	maxb := max(nbits[0], nbits[1], nbits[2])
	for i := 0; i < maxb; i++ {
		for d := 0; d < 3; d++ {
			if i < nbits[d] {
				out |= (uint64(g[d]) >> uint(i) & 1) << o
				o++
			}
		}
	}
	return out
}
