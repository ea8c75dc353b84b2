package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/imgdataset/imgdataset/volume"
)

// zstdPixels is a 64×64 int16 image (little-endian) whose rows repeat with a
// period of 8 rows (1 KiB), so the encoder emits long back-references.
func zstdPixels() []byte {
	const w, h = 64, 64
	r := rand.New(rand.NewPCG(50000, 34926))
	period := make([]byte, 8*w*2)
	for i := range period {
		period[i] = byte(r.Uint32())
	}
	b := make([]byte, 0, w*h*2)
	for len(b) < w*h*2 {
		b = append(b, period...)
	}
	return b
}

// zstdStream compresses b the way libtiff's ZSTD codec does (a stream
// whose size the encoder is not told), so the frame header carries a
// window of window bytes and no content size.
func zstdStream(t testing.TB, b []byte, window int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	// Flush before Close: a stream closed after one small Write is
	// compressed as a whole, with its size in the header.
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS || h.WindowSize < uint64(window) {
		t.Fatalf("test frame header: %+v, %v; want window %d and no content size", h, err, window)
	}
	return buf.Bytes()
}

// zstdTIFF builds a classic little-endian TIFF of 64×64 int16 pixels in
// strips of rps rows, each strip compressed with encode, under
// compression code comp.
func zstdTIFF(pix []byte, rps int, comp uint32, encode func([]byte) []byte) []byte {
	const w, h, rowBytes = 64, 64, 64 * 2
	le := binary.LittleEndian
	var strips [][]byte
	for y := 0; y < h; y += rps {
		strips = append(strips, encode(pix[y*rowBytes:min(y+rps, h)*rowBytes]))
	}
	const nEntries = 9
	tailAt := uint32(8 + 2 + nEntries*12 + 4)
	offsAt := tailAt
	countsAt := offsAt + uint32(4*len(strips))
	dataAt := countsAt + uint32(4*len(strips))
	var offs, counts, data []byte
	for _, s := range strips {
		offs = le.AppendUint32(offs, dataAt+uint32(len(data)))
		counts = le.AppendUint32(counts, uint32(len(s)))
		data = append(data, s...)
	}
	tail := append(append(offs, counts...), data...)
	if len(strips) == 1 {
		// One value fits in the entry, where readers look for it.
		offsAt, countsAt = le.Uint32(offs), le.Uint32(counts)
	}
	return classic([]rawEntry{
		{tagImageWidth, typeShort, 1, w},
		{tagImageLength, typeShort, 1, h},
		{tagBitsPerSample, typeShort, 1, 16},
		{tagCompression, typeShort, 1, comp},
		{tagPhotometric, typeShort, 1, 1},
		{tagStripOffsets, typeLong, uint32(len(strips)), offsAt},
		{tagRowsPerStrip, typeShort, 1, uint32(rps)},
		{tagStripByteCounts, typeLong, uint32(len(strips)), countsAt},
		{tagSampleFormat, typeShort, 1, 2},
	}, 0, tail)
}

// TestZstdWindowLargerThanStrip reads zstd strips whose frames declare a
// window (1 MiB) far larger than the strip (2 or 8 KiB), as libtiff writes
// them: the window is the encoder's, not a bound on the strip's size.
func TestZstdWindowLargerThanStrip(t *testing.T) {
	ctx := context.Background()
	pix := zstdPixels()
	stream := func(b []byte) []byte { return zstdStream(t, b, 1<<20) }
	cases := []struct {
		name string
		file []byte
	}{
		{"50000 one 8 KiB strip", zstdTIFF(pix, 64, 50000, stream)},
		{"50000 four 2 KiB strips", zstdTIFF(pix, 16, 50000, stream)},
		{"34926 four 2 KiB strips", zstdTIFF(pix, 16, 34926, stream)},
		{"50000 last strip short", zstdTIFF(pix, 24, 50000, stream)},
		{"50000 last strip padded to its full rows", zstdTIFF(pix, 24, 50000, func(b []byte) []byte {
			return stream(append(bytes.Clone(b), make([]byte, 24*64*2-len(b))...))
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := Format{}.Open(ctx, memStore(t, tc.file), "f.tif")
			if err != nil {
				t.Fatal(err)
			}
			in := vs[0].Info()
			if !eqShape(in.Shape, []int64{64, 64}) || in.DType != volume.Int16 || in.Compression != "zstd" {
				t.Fatalf("info: shape %v dtype %s compression %q", in.Shape, in.DType, in.Compression)
			}
			got, err := readAll(ctx, vs[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pix) {
				t.Fatal("pixels differ")
			}
		})
	}
	t.Run("tifffile structure", func(t *testing.T) {
		checkZstdStructure(t, zstdTIFF(pix, 16, 50000, stream))
	})
	t.Run("libtiff decodes it", func(t *testing.T) {
		got := libtiffDecompress(t, zstdTIFF(pix, 16, 50000, stream))
		vs, err := Format{}.Open(ctx, memStore(t, got), "f.tif")
		if err != nil {
			t.Fatal(err)
		}
		b, err := readAll(ctx, vs[0])
		if err != nil || !bytes.Equal(b, pix) {
			t.Fatalf("tiffcp's uncompressed copy: %v, equal %v", err, bytes.Equal(b, pix))
		}
	})
}

// TestZstdLibtiff reads a file that libtiff itself compressed (tiffcp -c
// zstd, which streams with libzstd's default window of several MiB).
func TestZstdLibtiff(t *testing.T) {
	ctx := context.Background()
	pix := zstdPixels()
	raw := zstdTIFF(pix, 64, 1, func(b []byte) []byte { return b })
	dir := t.TempDir()
	in, out := filepath.Join(dir, "raw.tif"), filepath.Join(dir, "zstd.tif")
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tiffcp := requireTiffcp(t)
	if msg, err := exec.CommandContext(ctx, tiffcp, "-c", "zstd", "-r", "16", in, out).CombinedOutput(); err != nil {
		t.Skipf("tiffcp cannot write zstd here (%v: %s); libtiff built without ZSTD", err, bytes.TrimSpace(msg))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(b, []byte{0x28, 0xb5, 0x2f, 0xfd}); i >= 0 {
		var h zstd.Header
		if err := h.Decode(b[i:]); err == nil {
			t.Logf("libtiff's first frame: window %d bytes, content size stated: %v", h.WindowSize, h.HasFCS)
		}
	}
	vs, err := Format{}.Open(ctx, memStore(t, b), "f.tif")
	if err != nil {
		t.Fatal(err)
	}
	if c := vs[0].Info().Compression; c != "zstd" {
		t.Fatalf("compression %q, want zstd", c)
	}
	got, err := readAll(ctx, vs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pix) {
		t.Fatal("pixels differ from what was given to tiffcp")
	}
}

// TestZstdBounded checks that a strip cannot decode to more memory than the
// image needs, and that broken frames are errors, not panics.
func TestZstdBounded(t *testing.T) {
	ctx := context.Background()
	pix := zstdPixels()
	cases := []struct {
		name   string
		encode func([]byte) []byte
	}{
		// 8 MiB of zeros in every 2 KiB strip.
		{"bomb without content size", func([]byte) []byte { return zstdStream(t, make([]byte, 8<<20), 1<<20) }},
		{"bomb with content size", func([]byte) []byte {
			enc, err := zstd.NewWriter(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			return enc.EncodeAll(make([]byte, 8<<20), nil)
		}},
		{"truncated frame", func(b []byte) []byte { s := zstdStream(t, b, 1<<20); return s[:len(s)/2] }},
		{"not zstd", func(b []byte) []byte { return b }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := Format{}.Open(ctx, memStore(t, zstdTIFF(pix, 16, 50000, tc.encode)), "f.tif")
			if err != nil {
				t.Fatal(err)
			}
			_, err = readAll(ctx, vs[0])
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("got %v, want a corrupt-data error", err)
			}
		})
	}
}

// requireTiffcp returns the path of libtiff's tiffcp or skips the test.
func requireTiffcp(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tiffcp")
	if err != nil {
		t.Skipf("tiffcp not installed (apt-get install libtiff-tools): %v", err)
	}
	return p
}

// libtiffDecompress has libtiff rewrite file uncompressed: an independent
// decoder of the zstd strips.
func libtiffDecompress(t *testing.T, file []byte) []byte {
	t.Helper()
	tiffcp := requireTiffcp(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "z.tif"), filepath.Join(dir, "raw.tif")
	if err := os.WriteFile(in, file, 0o644); err != nil {
		t.Fatal(err)
	}
	msg, err := exec.CommandContext(context.Background(), tiffcp, "-c", "none", in, out).CombinedOutput()
	if err != nil {
		if strings.Contains(strings.ToLower(string(msg)), "zstd") {
			t.Skipf("libtiff here cannot decode zstd (%v: %s)", err, bytes.TrimSpace(msg))
		}
		t.Fatalf("tiffcp -c none: %v: %s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tifffileZstd prints what tifffile says of a file's first page; without
// imagecodecs it cannot decode zstd, but it parses the structure.
const tifffileZstd = `
import json, sys, tifffile
with tifffile.TiffFile(sys.argv[1]) as f:
    p = f.pages[0]
    print(json.dumps(dict(shape=list(p.shape), dtype=str(p.dtype), compression=int(p.compression),
        strips=len(p.dataoffsets), bytecounts=[int(c) for c in p.databytecounts])))
`

// checkZstdStructure has tifffile parse file: shape, dtype, compression and
// strip table must be what zstdTIFF wrote.
func checkZstdStructure(t *testing.T, file []byte) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import tifffile").CombinedOutput(); err != nil {
		t.Skipf("tifffile oracle unavailable (%v): %s; install python3-tifffile", err, out)
	}
	p := filepath.Join(t.TempDir(), "z.tif")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", tifffileZstd, p).Output()
	if err != nil {
		t.Fatalf("tifffile: %v", err)
	}
	var got struct {
		Shape       []int64 `json:"shape"`
		DType       string  `json:"dtype"`
		Compression int     `json:"compression"`
		Strips      int     `json:"strips"`
		ByteCounts  []int   `json:"bytecounts"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tifffile output %q: %v", out, err)
	}
	if !eqShape(got.Shape, []int64{64, 64}) || got.DType != "int16" || got.Compression != 50000 || got.Strips != 4 || len(got.ByteCounts) != 4 {
		t.Errorf("tifffile sees %+v", got)
	}
}
