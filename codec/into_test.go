package codec

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"
)

// dirty returns a buffer of capacity n whose bytes are not zero, so that a
// decoder relying on a cleared buffer is caught.
func dirty(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0x5a
	}
	return b
}

func TestDecodeInto(t *testing.T) {
	c := New()
	defer c.Close()
	in := typedSample(7, 100000, 2)
	encode := map[string]func() ([]byte, error){
		"raw":  func() ([]byte, error) { return c.Encode("raw", 0, in) },
		"zstd": func() ([]byte, error) { return c.Encode("zstd", 1, in) },
		"gzip": func() ([]byte, error) { return c.Encode("gzip", 1, in) },
		"zlib": func() ([]byte, error) { return c.Encode("zlib", 6, in) },
		"lz4":  func() ([]byte, error) { return c.Encode("lz4", 0, in) },
		"blosc": func() ([]byte, error) {
			return c.EncodeBlosc(in, BloscOptions{CName: "zstd", CLevel: 3, Shuffle: BloscShuffle, TypeSize: 2})
		},
		"bz2": func() ([]byte, error) {
			bin, err := exec.LookPath("bzip2")
			if err != nil {
				return nil, nil
			}
			cmd := exec.Command(bin, "-c")
			cmd.Stdin = bytes.NewReader(in)
			return cmd.Output()
		},
	}
	for id, enc := range encode {
		t.Run(id, func(t *testing.T) {
			src, err := enc()
			if err != nil {
				t.Fatal(err)
			}
			if src == nil {
				t.Skip("bzip2 binary not installed")
			}
			buf := dirty(len(in))
			// Twice into the same buffer: reuse must not leave stale bytes.
			for pass := range 2 {
				out, err := c.DecodeInto(id, buf[:17], src)
				if err != nil {
					t.Fatalf("pass %d: %v", pass, err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("pass %d: decoded data differs", pass)
				}
				if &out[0] != &buf[0] {
					t.Fatalf("pass %d: result does not share the buffer", pass)
				}
			}
			// One byte too little room: refused, and nothing written past it.
			small := dirty(len(in))
			guard := small[len(in)-1:]
			if _, err := c.DecodeInto(id, small[:0:len(in)-1], src); err == nil {
				t.Fatalf("capacity %d accepted %d bytes", len(in)-1, len(in))
			} else if id != "blosc" && id != "lz4" && id != "raw" && id != "zstd" && !errors.Is(err, ErrTooLarge) {
				t.Errorf("error %v, want ErrTooLarge", err)
			}
			if guard[0] != 0x5a {
				t.Errorf("wrote past the capacity")
			}
			// A larger buffer is fine too, and the result is cut to size.
			out, err := c.DecodeInto(id, dirty(2*len(in)), src)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("larger buffer: %v", err)
			}
		})
	}
}

func TestDecodeIntoSizeErrors(t *testing.T) {
	c := New()
	defer c.Close()
	in := sample(5000)
	for _, id := range []string{"raw", "zstd", "lz4", "gzip", "zlib"} {
		src, err := c.Encode(id, 0, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DecodeInto(id, make([]byte, 100), src); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s into 100 bytes: got %v, want ErrTooLarge", id, err)
		}
		if _, err := c.DecodeInto(id, nil, src); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s into nil: got %v, want ErrTooLarge", id, err)
		}
	}
	if _, err := c.DecodeInto("lzma", make([]byte, 10), []byte{1}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("lzma: %v", err)
	}
}

// A truncated gzip or zlib stream is an error even though the decoder stops
// with io.ErrUnexpectedEOF, which io.ReadFull would have taken as a short read.
func TestDecodeIntoTruncated(t *testing.T) {
	c := New()
	defer c.Close()
	in := sample(50000)
	for _, id := range []string{"gzip", "zlib", "zstd", "lz4"} {
		src, err := c.Encode(id, 0, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range []int{len(src) / 2, len(src) - 1} {
			if out, err := c.DecodeInto(id, make([]byte, len(in)), src[:cut]); err == nil {
				t.Errorf("%s cut to %d of %d bytes: decoded %d bytes without error", id, cut, len(src), len(out))
			}
		}
	}
}

// Data labelled with one codec and carrying another's magic number is decoded
// with the one sniffed, as by Decode.
func TestDecodeIntoSniff(t *testing.T) {
	c := New()
	defer c.Close()
	in := sample(3000)
	enc, err := c.Encode("zstd", 0, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.DecodeInto("gzip", make([]byte, len(in)), enc)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("zstd data labelled gzip: %v", err)
	}
}
