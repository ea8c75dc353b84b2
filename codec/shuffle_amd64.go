//go:build amd64 && !purego

package codec

// On amd64 the byte planes of 2- and 4-byte elements are merged with SSE2
// unpack instructions, sixteen elements per step; SSE2 is part of the amd64
// baseline, so no CPU check is needed. Unshuffling is about half of the
// work of decoding a shuffled lz4 chunk, and the portable word-at-a-time
// code runs at a third of the speed of the vector one. Build with the
// purego tag to use the portable code only.

// interleave2SSE2 merges the first len(a)&^15 bytes of a and b into dst;
// the caller guarantees len(b) >= len(a) and len(dst) >= 2*len(a).
//
//go:noescape
func interleave2SSE2(dst, a, b []byte)

// interleave4SSE2 merges the first len(a)&^15 bytes of a, b, c and d into
// dst; the caller guarantees that b, c and d are as long as a and that
// len(dst) >= 4*len(a).
//
//go:noescape
func interleave4SSE2(dst, a, b, c, d []byte)

func interleave2(dst, a, b []byte) {
	n := len(a)
	b, dst = b[:n], dst[:2*n] // the bounds the assembly relies on
	v := n &^ 15
	interleave2SSE2(dst, a, b)
	interleave2Go(dst[2*v:], a[v:], b[v:])
}

func interleave4(dst, a, b, c, d []byte) {
	n := len(a)
	b, c, d, dst = b[:n], c[:n], d[:n], dst[:4*n] // the bounds the assembly relies on
	v := n &^ 15
	interleave4SSE2(dst, a, b, c, d)
	interleave4Go(dst[4*v:], a[v:], b[v:], c[v:], d[v:])
}
