package codec

import (
	"bytes"
	"fmt"
	"testing"
)

// refShuffle and refUnshuffle are the definitions the fast paths must match.
func refShuffle(src []byte, ts int) []byte {
	dst := make([]byte, len(src))
	n := len(src) / ts
	for i := range n {
		for j := range ts {
			dst[j*n+i] = src[i*ts+j]
		}
	}
	copy(dst[n*ts:], src[n*ts:])
	return dst
}

func refUnshuffle(src []byte, ts int) []byte {
	dst := make([]byte, len(src))
	n := len(src) / ts
	for i := range n {
		for j := range ts {
			dst[i*ts+j] = src[j*n+i]
		}
	}
	copy(dst[n*ts:], src[n*ts:])
	return dst
}

// TestShuffleFastPaths covers every type size with a word-at-a-time path
// and the generic one, with element counts around the 8- and 16-element
// steps and trailing bytes that do not fill an element.
func TestShuffleFastPaths(t *testing.T) {
	for _, ts := range []int{2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 32, 255} {
		for _, ne := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 128, 1001} {
			for _, extra := range []int{0, 1, ts - 1} {
				in := randomBytes(uint64(1000*ts+ne), ne*ts+extra)
				name := fmt.Sprintf("ts=%d/n=%d/extra=%d", ts, ne, extra)
				// Garbage in dst must not leak into the result.
				got := bytes.Repeat([]byte{0xA5}, len(in))
				shuffleBytes(got, in, ts)
				if want := refShuffle(in, ts); !bytes.Equal(got, want) {
					t.Fatalf("%s: shuffle differs from the reference", name)
				}
				back := bytes.Repeat([]byte{0x5A}, len(in))
				unshuffleBytes(back, got, ts, nil)
				if want := refUnshuffle(got, ts); !bytes.Equal(back, want) {
					t.Fatalf("%s: unshuffle differs from the reference", name)
				}
				if !bytes.Equal(back, in) {
					t.Fatalf("%s: unshuffle does not invert shuffle", name)
				}
			}
		}
	}
}

// TestInterleaveSeparatePlanes checks the decoder's form of unshuffle, whose
// planes live in separate buffers (raw streams are read in place) and may
// be longer than the element count.
func TestInterleaveSeparatePlanes(t *testing.T) {
	for _, ts := range []int{2, 4, 8, 3, 16} {
		const n = 203
		in := randomBytes(uint64(ts), n*ts)
		shuf := refShuffle(in, ts)
		planes := make([][]byte, ts)
		for j := range planes {
			// Each plane in its own, longer buffer.
			planes[j] = append(append([]byte{}, shuf[j*n:(j+1)*n]...), 0xEE, 0xEE)
		}
		got := bytes.Repeat([]byte{0xA5}, n*ts)
		interleave(got, planes, n)
		if !bytes.Equal(got, in) {
			t.Fatalf("ts=%d: interleave of separate planes differs", ts)
		}
	}
}

func BenchmarkShuffle(b *testing.B) {
	const size = 256 << 10 // one block of the benchmark chunk
	for _, ts := range []int{2, 4, 8, 3, 16} {
		src := randomBytes(uint64(ts), size)
		dst := make([]byte, size)
		b.Run(fmt.Sprintf("shuffle/ts=%d", ts), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				shuffleBytes(dst, src, ts)
			}
		})
		b.Run(fmt.Sprintf("unshuffle/ts=%d", ts), func(b *testing.B) {
			b.SetBytes(size)
			var planes [][]byte
			for b.Loop() {
				planes = unshuffleBytes(dst, src, ts, planes)
			}
		})
	}
}

// TestInterleaveKernels checks both the portable and (on amd64) the
// assembly kernels for 2- and 4-byte elements against the reference, on
// lengths around their 8- and 16-element steps, and that they write nothing
// past the n*ts bytes they own.
func TestInterleaveKernels(t *testing.T) {
	kernels := []struct {
		name string
		ts   int
		f    func(dst []byte, p [][]byte)
	}{
		{"interleave2", 2, func(d []byte, p [][]byte) { interleave2(d, p[0], p[1]) }},
		{"interleave2Go", 2, func(d []byte, p [][]byte) { interleave2Go(d, p[0], p[1]) }},
		{"interleave4", 4, func(d []byte, p [][]byte) { interleave4(d, p[0], p[1], p[2], p[3]) }},
		{"interleave4Go", 4, func(d []byte, p [][]byte) { interleave4Go(d, p[0], p[1], p[2], p[3]) }},
	}
	for _, k := range kernels {
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 4096 + 5} {
			in := randomBytes(uint64(n*k.ts+k.ts), n*k.ts)
			shuf := refShuffle(in, k.ts)
			planes := planesOf(nil, shuf, k.ts)
			dst := bytes.Repeat([]byte{0xA5}, n*k.ts+16)
			k.f(dst[:n*k.ts], planes)
			if !bytes.Equal(dst[:n*k.ts], in) {
				t.Fatalf("%s n=%d: differs from the reference", k.name, n)
			}
			if !bytes.Equal(dst[n*k.ts:], bytes.Repeat([]byte{0xA5}, 16)) {
				t.Fatalf("%s n=%d: wrote past its output", k.name, n)
			}
		}
	}
}

// FuzzShuffle checks the fast shuffle paths against the definitions for
// any data and type size.
func FuzzShuffle(f *testing.F) {
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), uint8(2))
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5}, 40), uint8(4))
	f.Add(bytes.Repeat([]byte{9, 8, 7}, 70), uint8(8))
	f.Add(bytes.Repeat([]byte{0xFF, 0}, 100), uint8(16))
	f.Fuzz(func(t *testing.T, in []byte, ts8 uint8) {
		ts := max(int(ts8), 1)
		got := make([]byte, len(in))
		shuffleBytes(got, in, ts)
		if !bytes.Equal(got, refShuffle(in, ts)) {
			t.Fatalf("ts=%d: shuffle differs from the reference", ts)
		}
		back := make([]byte, len(in))
		unshuffleBytes(back, got, ts, nil)
		if !bytes.Equal(back, in) {
			t.Fatalf("ts=%d: unshuffle does not invert shuffle", ts)
		}
	})
}
