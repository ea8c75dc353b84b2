package precomputed

import (
	"encoding/binary"
	"math/bits"
)

// murmurHash3x86_128 hashes data with MurmurHash3 x86_128 and the given seed,
// returning the four 32-bit output words h1..h4. Common Go packages only ship
// the x64_128 variant, which gives different values, hence this own copy.
// The four lanes differ only in their constants, so they are one loop.
func murmurHash3x86_128(data []byte, seed uint32) (h1, h2, h3, h4 uint32) {
	c := [4]uint32{0x239b961b, 0xab0e9789, 0x38b34ae5, 0xa1e38b93}
	kRot := [4]int{15, 16, 17, 18}
	hRot := [4]int{19, 17, 15, 13}
	add := [4]uint32{0x561ccd1b, 0x0bcaa747, 0x96cd1c35, 0x32ac3b17}
	h := [4]uint32{seed, seed, seed, seed}
	mix := func(i int, k uint32) uint32 {
		return bits.RotateLeft32(k*c[i], kRot[i]) * c[(i+1)%4]
	}
	n := len(data)
	for b := data; len(b) >= 16; b = b[16:] {
		// h[i+1] is still the previous block's when lane i reads it; lane 3
		// reads lane 0's new value, as the reference does.
		for i := range 4 {
			h[i] ^= mix(i, binary.LittleEndian.Uint32(b[4*i:]))
			h[i] = bits.RotateLeft32(h[i], hRot[i])
			h[i] += h[(i+1)%4]
			h[i] = h[i]*5 + add[i]
		}
	}
	var tail [16]byte
	t := copy(tail[:], data[n/16*16:])
	for i := range 4 {
		if t > 4*i {
			h[i] ^= mix(i, binary.LittleEndian.Uint32(tail[4*i:]))
		}
	}
	for i := range h {
		h[i] ^= uint32(n)
	}
	combine := func() {
		h[0] += h[1] + h[2] + h[3]
		h[1] += h[0]
		h[2] += h[0]
		h[3] += h[0]
	}
	combine()
	for i := range h {
		h[i] = fmix32(h[i])
	}
	combine()
	return h[0], h[1], h[2], h[3]
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
