package codec

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// pair returns a Codecs that decodes zstd in Go and one that uses libzstd,
// or skips (saying why) when the C library cannot be loaded here.
func pair(t *testing.T) (goc, cc *Codecs) {
	t.Helper()
	goc = &Codecs{zencs: map[zencKey]*zstd.Encoder{}, pureGo: true}
	cc = &Codecs{zencs: map[zencKey]*zstd.Encoder{}}
	t.Cleanup(func() { goc.Close(); cc.Close() })
	if cc.libzstd() == nil {
		_, err := loadLibzstd()
		t.Skipf("libzstd not loadable, only the Go decoder runs here: %v", err)
	}
	if goc.ZstdDecoder() != "klauspost/compress" {
		t.Fatalf("pure-Go Codecs reports %q", goc.ZstdDecoder())
	}
	return goc, cc
}

// zstdFrames are the frame shapes chunk writers produce: with and without a
// content size, with a checksum, several frames, a skippable frame.
func zstdFrames(t *testing.T) map[string][]byte {
	t.Helper()
	in := typedSample(11, 300000, 2)
	frames := map[string][]byte{}
	for _, lvl := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBestCompression} {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderCRC(lvl == zstd.SpeedDefault))
		if err != nil {
			t.Fatal(err)
		}
		frames["level-"+lvl.String()] = e.EncodeAll(in, nil)
		e.Close()
	}
	var b bytes.Buffer
	w, _ := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	w.Write(in)
	w.Close()
	frames["no-content-size"] = b.Bytes()
	one := frames["level-fastest"]
	frames["two-frames"] = append(append([]byte{}, one...), one...)
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	frames["skippable-then-frame"] = append(skippable, one...)
	frames["empty-input"] = []byte{}
	frames["empty-frame"] = zstdEmpty(t)
	return frames
}

func zstdEmpty(t *testing.T) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(nil, nil)
}

// TestLibzstdMatchesGo: the C and Go decoders give the same bytes for every
// frame shape, and both refuse what does not fit the destination.
func TestLibzstdMatchesGo(t *testing.T) {
	goc, cc := pair(t)
	for name, src := range zstdFrames(t) {
		t.Run(name, func(t *testing.T) {
			want, err := goc.DecodeInto("zstd", dirty(700000)[:0], src)
			if err != nil {
				t.Fatalf("go: %v", err)
			}
			got, err := cc.DecodeInto("zstd", dirty(700000)[:0], src)
			if err != nil {
				t.Fatalf("libzstd: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("libzstd decoded %d bytes, go %d; contents equal: %v", len(got), len(want), bytes.Equal(got, want))
			}
			if len(want) == 0 {
				return
			}
			// One byte short: both fail; libzstd says ErrTooLarge.
			if _, err := goc.DecodeInto("zstd", make([]byte, 0, len(want)-1), src); err == nil {
				t.Error("go: decoded into a destination one byte short")
			}
			if _, err := cc.DecodeInto("zstd", make([]byte, 0, len(want)-1), src); !errors.Is(err, ErrTooLarge) {
				t.Errorf("libzstd, destination one byte short: %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestLibzstdCorrupt: damaged frames are errors from both decoders, never a
// crash, and the C decoder's contexts stay usable after an error.
func TestLibzstdCorrupt(t *testing.T) {
	goc, cc := pair(t)
	good := zstdFrames(t)["level-default"]
	want, err := goc.Decode("zstd", good, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated":     good[:len(good)/2],
		"header only":   good[:6],
		"magic only":    good[:4],
		"flipped body":  flip(good, len(good)/3),
		"flipped tail":  flip(good, len(good)-2), // the checksum
		"garbage":       bytes.Repeat([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xff}, 40),
		"trailing junk": append(append([]byte{}, good...), 1, 2, 3),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			_, gerr := goc.DecodeInto("zstd", make([]byte, 0, 1<<20), src)
			_, cerr := cc.DecodeInto("zstd", make([]byte, 0, 1<<20), src)
			if cerr == nil {
				t.Errorf("libzstd accepted a damaged frame (go: %v)", gerr)
			}
			if gerr == nil {
				t.Logf("go decoder accepted it (libzstd: %v)", cerr)
			}
			// The pooled context decodes a good frame next.
			got, err := cc.DecodeInto("zstd", make([]byte, 0, 1<<20), good)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("good frame after a damaged one: %v", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0xa5
	return c
}

// TestLibzstdNoCgo builds a program that decodes zstd with CGO_ENABLED=0,
// as a machine without a C compiler builds imgdataset, and runs it on chunk
// files: it builds, leaves libzstd alone (the binary stays static, as
// codec/jpeg's fallback does) and decodes with the Go decoder.
func TestLibzstdNoCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("building a program skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v)", err)
	}
	_, pc, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(pc), "..")
	dir := t.TempDir()
	exe := filepath.Join(dir, "zstdbench")
	build := exec.Command(goBin, "build", "-o", exe, "./bench/cmd/zstdbench")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./bench/cmd/zstdbench: %v\n%s", err, out)
	}
	c := New()
	defer c.Close()
	in := typedSample(5, 64*64*64*2, 2)
	var files []string
	for i, lvl := range []int{1, 3, 9} {
		enc, err := c.Encode("zstd", lvl, in)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "chunk"+string(rune('0'+i)))
		if err := os.WriteFile(p, enc, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	args := append([]string{"-rounds", "1", "-size", "524288"}, files...)
	out, err := exec.Command(exe, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 zstdbench: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("pure-Go decoder only")) || bytes.Contains(out, []byte(`decoder "libzstd`)) {
		t.Fatalf("CGO_ENABLED=0 zstdbench should decode in Go only:\n%s", out)
	}
	t.Logf("%s", out)
}
