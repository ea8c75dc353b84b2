//go:build !amd64 || purego

package codec

func interleave2(dst, a, b []byte) { interleave2Go(dst, a, b) }

func interleave4(dst, a, b, c, d []byte) { interleave4Go(dst, a, b, c, d) }
