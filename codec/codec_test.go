package codec

import (
	"bytes"
	"compress/bzip2"
	"errors"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func sample(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := range b {
		// Compressible but not trivial: a ramp with noise.
		b[i] = byte(i/7) + byte(rng.IntN(4))
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	c := New()
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	inputs := map[string][]byte{"empty": {}, "small": []byte("abc"), "ramp": sample(70000), "random": random}
	for _, id := range []string{"raw", "none", "zstd", "gzip", "zlib", "lz4"} {
		for name, in := range inputs {
			for _, level := range []int{0, 1, 5} {
				enc, err := c.Encode(id, level, in)
				if err != nil {
					t.Fatalf("%s/%s level %d: encode: %v", id, name, level, err)
				}
				got, err := c.Decode(id, enc, len(in))
				if err != nil {
					t.Fatalf("%s/%s level %d: decode: %v", id, name, level, err)
				}
				if !bytes.Equal(got, in) {
					t.Fatalf("%s/%s level %d: round trip differs", id, name, level)
				}
				if len(in) > 0 {
					if _, err := c.Decode(id, enc, len(in)-1); !errors.Is(err, ErrTooLarge) {
						t.Errorf("%s/%s: decode with a too small maximum: got %v, want ErrTooLarge", id, name, err)
					}
				}
			}
		}
	}
}

// A frame without the content-size field (as some zarr v3 writers produce) must
// decode, and must still stop at maxOut.
func TestZstdWithoutContentSize(t *testing.T) {
	in := sample(200000)
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(in)
	w.Close()
	var h zstd.Header
	if err := h.Decode(b.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("test frame should lack FCS: %+v %v", h, err)
	}
	c := New()
	defer c.Close()
	got, err := c.Decode("zstd", b.Bytes(), len(in))
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("decode: %v (equal %v)", err, bytes.Equal(got, in))
	}
	// Without a content size the overflow is only seen mid-frame, where the
	// decoder reports it as a block error; what matters is that it fails.
	if out, err := c.Decode("zstd", b.Bytes(), 1000); err == nil {
		t.Fatalf("bomb: decoded %d bytes with a maximum of 1000", len(out))
	}
}

// A frame that states its content size is decoded into a buffer of that
// size, not of maxOut (object arrays pass a loose maximum), and a second
// frame after it still decodes.
func TestZstdContentSizeAllocation(t *testing.T) {
	c := New()
	defer c.Close()
	a, b := sample(3000), sample(5000)[1000:]
	ea, err := c.Encode("zstd", 1, a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := c.Encode("zstd", 1, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode("zstd", ea, 64<<20)
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("decode: %v", err)
	}
	if cap(got) > 2*len(a) {
		t.Errorf("decoded %d bytes into a buffer of capacity %d", len(got), cap(got))
	}
	two := append(append([]byte{}, ea...), eb...)
	got, err = c.Decode("zstd", two, 64<<10)
	if err != nil || !bytes.Equal(got, append(append([]byte{}, a...), b...)) {
		t.Fatalf("two frames: %v (%d bytes)", err, len(got))
	}
	if _, err := c.Decode("zstd", two, len(a)+len(b)-1); err == nil {
		t.Error("two frames decoded past maxOut")
	}
}

func TestSniffFallback(t *testing.T) {
	c := New()
	defer c.Close()
	in := sample(1000)
	for _, real := range []string{"gzip", "zlib", "zstd"} {
		enc, err := c.Encode(real, 0, in)
		if err != nil {
			t.Fatal(err)
		}
		if s := Sniff(enc); s != real {
			t.Errorf("Sniff(%s data) = %q", real, s)
		}
		for _, claimed := range []string{"gzip", "zlib", "zstd"} {
			got, err := c.Decode(claimed, enc, len(in))
			if err != nil || !bytes.Equal(got, in) {
				t.Errorf("%s data labelled %s: %v", real, claimed, err)
			}
		}
	}
}

func TestUnsupported(t *testing.T) {
	c := New()
	for _, id := range []string{"lzma", "whatever"} {
		_, err := c.Decode(id, []byte{1, 2, 3}, 10)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: got %v, want ErrUnsupported", id, err)
		}
	}
	if _, err := c.Encode("bz2", 1, []byte("x")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("bz2 encode: %v", err)
	}
}

// bz2 has no Go encoder; use the system bzip2 when present.
func TestBz2(t *testing.T) {
	in := sample(30000)
	bin, err := exec.LookPath("bzip2")
	if err != nil {
		t.Skip("bzip2 binary not installed; bz2 decode checked only by the fuzzer")
	}
	cmd := exec.Command(bin, "-c")
	cmd.Stdin = bytes.NewReader(in)
	enc, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	c := New()
	got, err := c.Decode("bz2", enc, len(in))
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("bz2: %v", err)
	}
	if _, err := c.Decode("bz2", enc, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bz2 bomb: %v", err)
	}
	_ = bzip2.NewReader
}

func TestLZ4Framing(t *testing.T) {
	c := New()
	// Prefix claims more than allowed: refused before allocating.
	if _, err := c.Decode("lz4", []byte{0xff, 0xff, 0xff, 0x7f, 0}, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge prefix: %v", err)
	}
	if _, err := c.Decode("lz4", []byte{1, 0}, 10); err == nil {
		t.Errorf("short input accepted")
	}
	// Prefix larger than what the block holds.
	enc, _ := c.Encode("lz4", 0, []byte("hello hello hello"))
	enc[0]++
	if _, err := c.Decode("lz4", enc, 100); err == nil {
		t.Errorf("lying prefix accepted")
	}
}

const fuzzMax = 1 << 16

func fuzzCodec(f *testing.F, id string) {
	c := New()
	for _, in := range [][]byte{{}, []byte("hello"), sample(3000)} {
		if enc, err := c.Encode(id, 0, in); err == nil {
			f.Add(enc)
		}
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x78, 0x9c, 1, 2})
	f.Add([]byte("BZh91AY&SY"))
	buf := make([]byte, fuzzMax)
	stale := bytes.Repeat([]byte{0xa5}, fuzzMax)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := c.Decode(id, data, fuzzMax)
		if err == nil && len(out) > fuzzMax {
			t.Fatalf("%s decoded %d bytes past the maximum %d", id, len(out), fuzzMax)
		}
		// DecodeInto, into a dirty reused buffer, must agree with Decode.
		copy(buf, stale) // a plain loop here would be coverage-instrumented
		into, ierr := c.DecodeInto(id, buf, data)
		if (err == nil) != (ierr == nil) {
			t.Fatalf("%s: Decode error %v, DecodeInto error %v", id, err, ierr)
		}
		if err == nil {
			if !bytes.Equal(into, out) {
				t.Fatalf("%s: DecodeInto gave %d bytes, Decode %d, contents differ", id, len(into), len(out))
			}
			if len(into) > 0 && &into[0] != &buf[0] {
				t.Fatalf("%s: DecodeInto did not decode into the buffer", id)
			}
		}
	})
}

func FuzzZstd(f *testing.F) { fuzzCodec(f, "zstd") }
func FuzzGzip(f *testing.F) { fuzzCodec(f, "gzip") }
func FuzzZlib(f *testing.F) { fuzzCodec(f, "zlib") }
func FuzzBz2(f *testing.F)  { fuzzCodec(f, "bz2") }
func FuzzLZ4(f *testing.F)  { fuzzCodec(f, "lz4") }

// Every zstd frame Encode writes states its content size, small ones
// included: numcodecs up to 0.11 refuses frames without it.
func TestZstdFramesStateContentSize(t *testing.T) {
	c := New()
	defer c.Close()
	for _, n := range []int{0, 1, 90, 255, 256, 1024, 1025, 5000, 1 << 20} {
		in := sample(n)
		enc, err := c.Encode("zstd", 0, in)
		if err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(enc); err != nil || !h.HasFCS || h.FrameContentSize != uint64(n) {
			t.Errorf("%d bytes: header %+v (%v)", n, h, err)
		}
		got, err := c.Decode("zstd", enc, n)
		if err != nil || !bytes.Equal(got, in) {
			t.Errorf("%d bytes: round trip %v", n, err)
		}
	}
}
