package jpeg_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	stdjpeg "image/jpeg"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/internal/pyoracle"
	"github.com/imgdataset/imgdataset/sample"
)

// decoders returns the implementations to test: image/jpeg always,
// libjpeg-turbo when it loads (else the test says why it is left out).
func decoders(t testing.TB) []*jpeg.Decoder {
	t.Helper()
	g, err := jpeg.New(jpeg.ImplGo)
	if err != nil {
		t.Fatal(err)
	}
	out := []*jpeg.Decoder{g}
	if tj, err := jpeg.New(jpeg.ImplTurbo); err != nil {
		t.Logf("libjpeg-turbo not tested: %v", err)
	} else {
		out = append(out, tj)
	}
	return out
}

// turboOrSkip returns the libjpeg-turbo decoder, or skips saying why.
func turboOrSkip(t testing.TB) *jpeg.Decoder {
	t.Helper()
	d, err := jpeg.New(jpeg.ImplTurbo)
	if err != nil {
		t.Skipf("libjpeg-turbo unavailable (%v); install libturbojpeg0", err)
	}
	return d
}

// emImage is w × h pixels of synthetic EM texture: a chunk of x = w voxels
// and y·z = h rows, the 2-D layout precomputed uses for a 3-D chunk.
func emImage(w, h int, seed uint64) []byte {
	return sample.EM([3]int64{1, int64(h), int64(w)}, seed, 1)
}

// rgbImage is w × h RGB pixels made of three EM textures.
func rgbImage(w, h int) []byte {
	a, b, c := emImage(w, h, 1), emImage(w, h, 2), emImage(w, h, 3)
	out := make([]byte, 3*w*h)
	for i := range a {
		out[3*i], out[3*i+1], out[3*i+2] = a[i], b[i], c[i]
	}
	return out
}

// goEncode encodes pixels with image/jpeg, as the precomputed writer does.
func goEncode(t testing.TB, pix []byte, w, h, comps, q int) []byte {
	t.Helper()
	var img image.Image
	if comps == 1 {
		img = &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	} else {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < w*h; i++ {
			copy(m.Pix[4*i:], pix[3*i:3*i+3])
			m.Pix[4*i+3] = 255
		}
		img = m
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pilScript encodes and decodes with PIL (libjpeg-turbo, as CloudVolume
// and tensorstore use it). Requests: {"op":"encode","raw":…,"w","h","mode",
// "q","progressive","subsampling","out"} writes a JPEG; {"op":"decode",
// "path","mode"} answers the decoded bytes in base64.
const pilScript = `
import sys, json, base64
from PIL import Image
for line in sys.stdin:
    r = json.loads(line)
    if r["op"] == "encode":
        im = Image.frombytes(r["mode"], (r["w"], r["h"]), open(r["raw"], "rb").read())
        kw = {"quality": r["q"], "progressive": r["progressive"]}
        if r["mode"] != "L":
            kw["subsampling"] = r["subsampling"]
        im.save(r["out"], "JPEG", **kw)
        print("ok")
    else:
        im = Image.open(r["path"])
        if r["mode"] == "YCbCr":
            im.draft("YCbCr", im.size)  # libjpeg's output without colour conversion
        im.load()
        if im.mode != r["mode"]:
            im = im.convert(r["mode"])
        print(base64.b64encode(im.tobytes()).decode())
`

// pilOrSkip skips when /usr/bin/python3 has no PIL.
func pilOrSkip(t testing.TB) {
	t.Helper()
	if err := exec(pyoracle.Python, "-c", "import PIL.Image"); err != nil {
		t.Skipf("PIL oracle unavailable (%v); install python3-pil", err)
	}
}

// vector is one test stream and what PIL decodes it to.
type vector struct {
	name   string
	stream []byte
	w, h   int
	color  jpeg.Color
	pil    []byte
	exact  bool // the image/jpeg fallback is within ±1 of PIL
}

// vectors builds EM-like chunks encoded by PIL (as Neuroglancer's and
// CloudVolume's writers, libjpeg) and by image/jpeg (as ours), and decodes
// each with PIL.
func vectors(t *testing.T) []vector {
	t.Helper()
	pilOrSkip(t)
	dir := t.TempDir()
	type enc struct {
		name              string
		w, h, comps, q    int
		progressive, byGo bool
		subsampling       int // PIL: 0 = 4:4:4, 2 = 4:2:0
	}
	encs := []enc{
		{name: "ng-64x4096-q75", w: 64, h: 4096, comps: 1, q: 75},                // a 64³ chunk as Neuroglancer writes it
		{name: "ng-64x4096-q75-go", w: 64, h: 4096, comps: 1, q: 75, byGo: true}, // as our precomputed writer writes it
		{name: "ng-128x16384-q90", w: 128, h: 16384, comps: 1, q: 90},            // a 128³ chunk
		{name: "edge-37x493-q75", w: 37, h: 493, comps: 1, q: 75},                // an edge chunk: partial MCUs
		{name: "progressive-64x512", w: 64, h: 512, comps: 1, q: 75, progressive: true},
		{name: "rgb444-64x512", w: 64, h: 512, comps: 3, q: 85},
		{name: "rgb420-61x203", w: 61, h: 203, comps: 3, q: 75, subsampling: 2},
		{name: "rgb420-64x512-go", w: 64, h: 512, comps: 3, q: 75, byGo: true},
	}
	var reqs []any
	var vs []vector
	for i, e := range encs {
		pix := emImage(e.w, e.h, uint64(i+1))
		mode := "L"
		if e.comps == 3 {
			pix, mode = rgbImage(e.w, e.h), "RGB"
		}
		out := filepath.Join(dir, e.name+".jpg")
		if e.byGo {
			if err := os.WriteFile(out, goEncode(t, pix, e.w, e.h, e.comps, e.q), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			raw := filepath.Join(dir, e.name+".raw")
			if err := os.WriteFile(raw, pix, 0o644); err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, map[string]any{"op": "encode", "raw": raw, "w": e.w, "h": e.h, "mode": mode, "q": e.q,
				"progressive": e.progressive, "subsampling": e.subsampling, "out": out})
		}
		c := jpeg.Gray
		if e.comps == 3 {
			c = jpeg.RGB
		}
		vs = append(vs, vector{name: e.name, w: e.w, h: e.h, color: c, exact: e.comps == 1})
	}
	if len(reqs) > 0 {
		pyoracle.Answers(t, pilScript, reqs)
	}
	reqs = reqs[:0]
	for i := range vs {
		p := filepath.Join(dir, vs[i].name+".jpg")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		vs[i].stream = b
		mode := "L"
		if vs[i].color == jpeg.RGB {
			mode = "RGB"
		}
		reqs = append(reqs, map[string]any{"op": "decode", "path": p, "mode": mode})
	}
	for i, a := range pyoracle.Answers(t, pilScript, reqs) {
		b, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			t.Fatal(err)
		}
		vs[i].pil = b
	}
	return vs
}

// TestMatchesPIL decodes EM-like chunks with both implementations:
// libjpeg-turbo must equal PIL exactly, image/jpeg within ±1 on grayscale
// (on colour its YCbCr→RGB rounding and chroma upsampling differ by more,
// which is only reported).
func TestMatchesPIL(t *testing.T) {
	vs := vectors(t)
	for _, d := range decoders(t) {
		for _, v := range vs {
			t.Run(d.Name()+"/"+v.name, func(t *testing.T) {
				bpp := 1
				if v.color == jpeg.RGB {
					bpp = 3
				}
				// A stride wider than a row: the decoder must honour it.
				stride := v.w*bpp + 5
				buf := bytes.Repeat([]byte{0xA5}, stride*v.h)
				f, err := d.Decode(jpeg.Dst{Pix: buf, Stride: stride, Width: v.w, Height: v.h, Color: v.color}, nil, v.stream)
				if err != nil {
					t.Fatal(err)
				}
				if f.Width != v.w || f.Height != v.h {
					t.Fatalf("frame %dx%d, want %dx%d", f.Width, f.Height, v.w, v.h)
				}
				got := make([]byte, 0, v.w*v.h*bpp)
				for y := 0; y < v.h; y++ {
					got = append(got, buf[y*stride:y*stride+v.w*bpp]...)
					if pad := buf[y*stride+v.w*bpp : (y+1)*stride]; !bytes.Equal(pad, bytes.Repeat([]byte{0xA5}, len(pad))) {
						t.Fatalf("row %d: bytes past the row were written", y)
					}
				}
				maxd, ndiff := diff(got, v.pil)
				t.Logf("%d of %d samples differ from PIL, by at most %d", ndiff, len(got), maxd)
				switch {
				case isTurbo(d) && ndiff != 0:
					t.Errorf("libjpeg-turbo differs from PIL on %d samples (max %d)", ndiff, maxd)
				case !isTurbo(d) && v.exact && maxd > 1:
					t.Errorf("image/jpeg differs from PIL by %d (> 1)", maxd)
				}
			})
		}
	}
}

// diff returns the largest absolute difference and the number of differing
// samples; a length mismatch counts as 256.
func diff(a, b []byte) (maxd, n int) {
	if len(a) != len(b) {
		return 256, max(len(a), len(b))
	}
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d != 0 {
			n++
			maxd = max(maxd, d, -d)
		}
	}
	return maxd, n
}

// TestFallbackNamed checks that forcing image/jpeg says so, and that the
// environment variable chooses.
func TestFallbackNamed(t *testing.T) {
	for _, c := range []struct {
		env, name string
		fallback  bool
	}{
		{"go", jpeg.GoName, true},
		{"bogus", jpeg.GoName, true},
	} {
		t.Setenv(jpeg.EnvVar, c.env)
		d := jpeg.Default()
		if d.Name() != c.name || (d.Fallback() != "") != c.fallback {
			t.Errorf("%s=%s: name %q, fallback %q", jpeg.EnvVar, c.env, d.Name(), d.Fallback())
		}
	}
	t.Setenv(jpeg.EnvVar, "")
	d := jpeg.Default()
	if _, err := jpeg.New(jpeg.ImplTurbo); err == nil && !strings.HasPrefix(d.Name(), "libjpeg-turbo") {
		t.Errorf("libjpeg-turbo loads, but the default decoder is %q", d.Name())
	} else if err != nil && d.Name() != jpeg.GoName {
		t.Errorf("libjpeg-turbo does not load (%v), but the default decoder is %q", err, d.Name())
	}
	t.Logf("default decoder: %s %s", d.Name(), d.Fallback())
}

// TestTurboVersion checks that the library's version is found: the catalog
// and outputs record it.
func TestTurboVersion(t *testing.T) {
	d := turboOrSkip(t)
	if !strings.HasPrefix(d.Name(), "libjpeg-turbo ") || !strings.ContainsAny(d.Name(), "0123456789") {
		t.Errorf("name %q has no version", d.Name())
	}
}

// TestTables decodes an abbreviated stream with separate tables, as TIFF
// stores JPEG strips, and compares with the whole stream.
func TestTables(t *testing.T) {
	const w, h = 40, 24
	whole := goEncode(t, emImage(w, h, 7), w, h, 1, 80)
	tables, rest := split(t, whole)
	for _, d := range decoders(t) {
		want := make([]byte, w*h)
		if _, err := d.Decode(jpeg.Dst{Pix: want, Stride: w, Width: w, Height: h}, nil, whole); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, w*h)
		if _, err := d.Decode(jpeg.Dst{Pix: got, Stride: w, Width: w, Height: h}, tables, rest); err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: tables + abbreviated stream decode differently from the whole stream", d.Name())
		}
		if _, err := d.Decode(jpeg.Dst{Pix: got, Stride: w, Width: w, Height: h}, nil, rest); err == nil {
			t.Errorf("%s: an abbreviated stream without its tables decoded", d.Name())
		}
	}
}

// split cuts a JPEG stream into a table specification (SOI, DQT, DHT, EOI)
// and the abbreviated rest, as TIFF writers store them.
func split(t testing.TB, b []byte) (tables, rest []byte) {
	t.Helper()
	tables, rest = []byte{0xFF, 0xD8}, []byte{0xFF, 0xD8}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		m, n := b[i+1], int(b[i+2])<<8|int(b[i+3])
		if m == 0xDA {
			return append(tables, 0xFF, 0xD9), append(rest, b[i:]...)
		}
		if m == 0xDB || m == 0xC4 {
			tables = append(tables, b[i:i+2+n]...)
		} else {
			rest = append(rest, b[i:i+2+n]...)
		}
		i += 2 + n
	}
	t.Fatal("no SOS")
	return nil, nil
}

// TestBadInput: damaged streams and frames that do not fit the buffer are
// errors of the documented kinds, found before decoding where the header
// tells.
func TestBadInput(t *testing.T) {
	const w, h = 64, 256
	good := goEncode(t, emImage(w, h, 3), w, h, 1, 75)
	big := goEncode(t, emImage(300, 200, 3), 300, 200, 1, 75)
	rgb := goEncode(t, rgbImage(16, 16), 16, 16, 3, 75)
	flip := bytes.Clone(good)
	for i := len(flip) / 2; i < len(flip)/2+40; i++ {
		flip[i] ^= 0x5A
	}
	for _, c := range []struct {
		name   string
		stream []byte
		dst    jpeg.Dst
		want   error
		turbo  bool // only libjpeg-turbo detects it
	}{
		{"empty", nil, jpeg.Dst{Width: w, Height: h, Stride: w}, jpeg.ErrCorrupt, false},
		{"not-jpeg", []byte("II*\x00 a TIFF, not a JPEG"), jpeg.Dst{Width: w, Height: h, Stride: w}, jpeg.ErrCorrupt, false},
		{"header-only", good[:100], jpeg.Dst{Width: w, Height: h, Stride: w}, jpeg.ErrCorrupt, false},
		{"truncated", good[:len(good)*2/3], jpeg.Dst{Width: w, Height: h, Stride: w}, jpeg.ErrCorrupt, false},
		{"corrupt-data", flip, jpeg.Dst{Width: w, Height: h, Stride: w}, jpeg.ErrCorrupt, true},
		{"frame-too-large", big, jpeg.Dst{Width: w, Height: h, Stride: w}, jpeg.ErrTooLarge, false},
		{"short-buffer", good, jpeg.Dst{Width: w, Height: h, Stride: w, Pix: make([]byte, w*h-1)}, nil, false},
		{"components", rgb, jpeg.Dst{Width: 16, Height: 16, Stride: 48, Color: jpeg.Stored, Components: 1}, jpeg.ErrCorrupt, false},
	} {
		for _, d := range decoders(t) {
			if c.turbo && !isTurbo(d) {
				continue
			}
			t.Run(d.Name()+"/"+c.name, func(t *testing.T) {
				dst := c.dst
				if dst.Pix == nil {
					dst.Pix = make([]byte, dst.Stride*dst.Height)
				}
				_, err := d.Decode(dst, nil, c.stream)
				if err == nil {
					t.Fatal("no error")
				}
				if c.want != nil && !errors.Is(err, c.want) {
					t.Errorf("err = %v, want %v", err, c.want)
				}
				var se *jpeg.SizeError
				if c.want == jpeg.ErrTooLarge && (!errors.As(err, &se) || se.Frame.Width != 300 || se.Frame.Height != 200) {
					t.Errorf("err = %v: want a *jpeg.SizeError naming the 300x200 frame", err)
				}
				t.Log(err)
			})
		}
	}
}

// TestStored reads a 4:4:4 YCbCr stream (written by PIL from YCbCr planes)
// without colour conversion, as a JPEG TIFF with RGB photometric is read:
// both implementations give the stored planes, libjpeg-turbo exactly as PIL
// decodes the stream as YCbCr.
func TestStored(t *testing.T) {
	pilOrSkip(t)
	const w, h = 24, 16
	pix := rgbImage(w, h)
	dir := t.TempDir()
	raw, jpg := filepath.Join(dir, "p.raw"), filepath.Join(dir, "p.jpg")
	if err := os.WriteFile(raw, pix, 0o644); err != nil {
		t.Fatal(err)
	}
	pyoracle.Answers(t, pilScript, []any{map[string]any{"op": "encode", "raw": raw, "w": w, "h": h, "mode": "YCbCr", "q": 95, "progressive": false, "subsampling": 0, "out": jpg}})
	ans := pyoracle.Answers(t, pilScript, []any{map[string]any{"op": "decode", "path": jpg, "mode": "YCbCr"}})
	want, err := base64.StdEncoding.DecodeString(ans[0])
	if err != nil {
		t.Fatal(err)
	}
	stream, err := os.ReadFile(jpg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range decoders(t) {
		got := make([]byte, 3*w*h)
		if _, err := d.Decode(jpeg.Dst{Pix: got, Stride: 3 * w, Width: w, Height: h, Color: jpeg.Stored, Components: 3}, nil, stream); err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		maxd, n := diff(got, want)
		t.Logf("%s: %d samples differ from PIL's YCbCr planes, by at most %d", d.Name(), n, maxd)
		if isTurbo(d) && n != 0 || maxd > 1 {
			t.Errorf("%s: stored components differ from PIL's on %d samples, by up to %d", d.Name(), n, maxd)
		}
	}
}

// exec runs a command and returns its error (with its output when it fails).
func exec(name string, args ...string) error {
	out, err := osexec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// isTurbo reports whether d is backed by libjpeg-turbo.
func isTurbo(d *jpeg.Decoder) bool { return d.Fallback() == "" }
