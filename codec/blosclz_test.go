package codec

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// literalRuns encodes b as BloscLZ literal runs of at most 32 bytes.
func literalRuns(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		k := min(len(b), 32)
		out = append(out, byte(k-1))
		out = append(out, b[:k]...)
		b = b[k:]
	}
	return out
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestBlosclzDecompressVectors(t *testing.T) {
	far := randomBytes(7, 9000)
	near := randomBytes(8, 300)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		in   []byte
		out  int    // size of the destination
		want []byte // nil: expect failure (0 or a short count)
		n    int    // expected return when want is nil
	}{
		{name: "literal", in: []byte{0x02, 'a', 'b', 'c'}, out: 3, want: []byte("abc")},
		{name: "literal with marker bits", in: []byte{0x22, 'a', 'b', 'c'}, out: 3, want: []byte("abc")},
		{name: "run distance 1", in: []byte{0x00, 'a', 0x60, 0x00, 0x00, 'b'}, out: 7, want: []byte("aaaaaab")},
		{name: "overlap period 2", in: []byte{0x01, 'a', 'b', 0x80, 0x01, 0x00, 'c'}, out: 9, want: []byte("abababab" + "c")},
		{
			name: "length extension bytes",
			// k=7: 9 + 255 + 10 = 274 bytes at distance 3.
			in:   []byte{0x02, 'x', 'y', 'z', 0xE0, 0xFF, 0x0A, 0x02, 0x00, '!'},
			out:  3 + 274 + 1,
			want: append(bytes.Repeat([]byte("xyz"), 277/3+1)[:277], '!'),
		},
		{
			name: "near distance with high bits",
			// distance 300 = biased 299 = 1<<8 | 43; k=2 → 4 bytes.
			in:   cat(literalRuns(near), []byte{0x41, 43, 0x00, '!'}),
			out:  305,
			want: cat(near, near[:4], []byte("!")),
		},
		{
			name: "far distance",
			// distance 9000 = biased 8999 = 8191 + 808 (0x0328); k=6 → 8 bytes.
			in:   cat(literalRuns(far), []byte{0xDF, 0xFF, 0x03, 0x28, 0x00, '!'}),
			out:  9009,
			want: cat(far, far[:8], []byte("!")),
		},
		{
			name: "near code 255 below ofs 31 is not far",
			// biased 0x1EFF = 7935 → distance 7936, k=1 → 3 bytes.
			in:   cat(literalRuns(far[:8000]), []byte{0x3E, 0xFF, 0x00, '!'}),
			out:  8004,
			want: cat(far[:8000], far[64:67], []byte("!")),
		},
		{name: "empty input", in: nil, out: 4, n: 0},
		{name: "truncated literal", in: []byte{0x05, 'a'}, out: 6, n: 0},
		{name: "literal overflows output", in: []byte{0x02, 'a', 'b', 'c'}, out: 2, n: 0},
		{name: "match before output start", in: []byte{0x00, 'a', 0x20, 0x05, 0x00, 'b'}, out: 10, n: 0},
		{name: "match overflows output", in: []byte{0x00, 'a', 0x60, 0x00, 0x00, 'b'}, out: 4, n: 0},
		// c-blosc needs two bytes after a match control byte (code + next ctrl).
		{name: "stream ends in match code", in: []byte{0x00, 'a', 0x60, 0x00}, out: 6, n: 0},
		{name: "stream ends in length bytes", in: []byte{0x00, 'a', 0xE0, 0xFF}, out: 300, n: 0},
		{
			// The far-match bytes end the input: c-blosc stops before copying,
			// so only the literals come out and the caller sees a short count.
			name: "far match ends the stream",
			in:   cat(literalRuns(far), []byte{0xDF, 0xFF, 0x03, 0x28}),
			out:  9008,
			n:    9000,
		},
		{name: "truncated far bytes", in: cat(literalRuns(far), []byte{0xDF, 0xFF, 0x03}), out: 9008, n: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, tt.out)
			n := blosclzDecompress(dst, tt.in)
			if tt.want == nil {
				if n != tt.n {
					t.Fatalf("got %d, want %d", n, tt.n)
				}
				return
			}
			if n != len(tt.want) || !bytes.Equal(dst[:n], tt.want) {
				t.Fatalf("got %d bytes %q…, want %d bytes", n, dst[:min(n, 20)], len(tt.want))
			}
		})
	}
}

func TestBlosclzCompressRoundTrip(t *testing.T) {
	far := randomBytes(9, 20000)
	inputs := map[string][]byte{
		"short":    []byte("0123456789abcdef"),
		"zeros":    make([]byte, 70000),
		"ramp":     sample(65536),
		"random":   randomBytes(1, 5000),
		"periodic": bytes.Repeat([]byte("abcdefg"), 3000),
		"far":      append(append(append([]byte{}, far...), randomBytes(2, 30000)...), far...),
		"far-run":  append(append(append([]byte{}, far[:100]...), make([]byte, 9000)...), far[:100]...),
	}
	var c blosclzCompressor
	for name, in := range inputs {
		dst := make([]byte, len(in))
		n := c.compress(dst, in)
		if name == "random" || name == "short" {
			if n != 0 {
				t.Errorf("%s: random data compressed to %d of %d bytes", name, n, len(in))
			}
			continue
		}
		if n == 0 {
			t.Errorf("%s: did not compress", name)
			continue
		}
		got := make([]byte, len(in))
		if m := blosclzDecompress(got, dst[:n]); m != len(in) || !bytes.Equal(got, in) {
			t.Errorf("%s: round trip gave %d bytes, equal=%v", name, m, bytes.Equal(got, in))
		}
	}
	if n := c.compress(make([]byte, 100), make([]byte, 15)); n != 0 {
		t.Errorf("15-byte input compressed to %d bytes, want 0 (stored)", n)
	}
}
