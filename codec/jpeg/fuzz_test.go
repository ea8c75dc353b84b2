package jpeg_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/internal/corpus"
)

// FuzzDecode feeds arbitrary streams (and table specifications) to every
// implementation: each must return a frame that fits the buffer or an error
// of a documented kind, and never crash or write past the buffer. Seeds are
// EM-like chunks as the writers make them (grey, colour, progressive,
// abbreviated with tables), truncated and damaged copies, and the JPEG
// strip of the corpus's JPEG TIFF when the corpus is present.
func FuzzDecode(f *testing.F) {
	const w, h = 64, 96
	gray := goEncode(f, emImage(w, h, 1), w, h, 1, 75)
	rgb := goEncode(f, rgbImage(w, h), w, h, 3, 75)
	tables, rest := split(f, gray)
	f.Add(gray, []byte(nil))
	f.Add(rgb, []byte(nil))
	f.Add(rest, tables)
	f.Add(gray[:len(gray)/2], []byte(nil))
	bad := bytes.Clone(rgb)
	for i := len(bad) / 3; i < len(bad)/3+16; i++ {
		bad[i] = ^bad[i]
	}
	f.Add(bad, []byte(nil))
	if p := olympusStrip(f); p != nil {
		f.Add(p[1], p[0])
	}
	decs := decoders(f)
	f.Fuzz(func(t *testing.T, src, tables []byte) {
		for _, d := range decs {
			for _, c := range []jpeg.Color{jpeg.Gray, jpeg.RGB, jpeg.Stored} {
				// A guard band after the buffer must stay untouched.
				const guard = 64
				stride := 3*w + 7
				buf := make([]byte, stride*h+guard)
				fr, err := d.Decode(jpeg.Dst{Pix: buf[:stride*h], Stride: stride, Width: w, Height: h, Color: c}, tables, src)
				if err != nil {
					if !errors.Is(err, jpeg.ErrCorrupt) && !errors.Is(err, jpeg.ErrUnsupported) && !errors.Is(err, jpeg.ErrTooLarge) {
						t.Errorf("%s: error of no documented kind: %v", d.Name(), err)
					}
				} else if fr.Width > w || fr.Height > h || fr.Width <= 0 || fr.Height <= 0 {
					t.Errorf("%s: frame %dx%d accepted for a %dx%d buffer", d.Name(), fr.Width, fr.Height, w, h)
				}
				for _, b := range buf[stride*h:] {
					if b != 0 {
						t.Fatalf("%s: wrote past the buffer", d.Name())
					}
				}
			}
		}
	})
}

// olympusStrip returns the JPEGTables and the first strip of the corpus's
// JPEG TIFF (offsets read with tifffile once; they are fixed in the file),
// or nil when the corpus is absent.
func olympusStrip(f *testing.F) [][]byte {
	dir := corpusDir()
	if dir == "" {
		f.Log("corpus absent: the olympus_SIS.tif seed is left out")
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "tiff", "rosettasciio", "olympus_SIS.tif"))
	if err != nil || len(b) < 409+9339 || b[409] != 0xFF || b[410] != 0xD8 || b[120] != 0xFF || b[121] != 0xD8 {
		f.Logf("olympus_SIS.tif not read (%v): seed left out", err)
		return nil
	}
	// JPEGTables: 289 bytes at 120; strip 0: 9339 bytes at 409.
	return [][]byte{b[120 : 120+289], b[409 : 409+9339]}
}

// corpusDir is the corpus directory, or "" (without skipping the fuzz
// target) when there is none.
func corpusDir() string {
	if d := os.Getenv("IMGDATASET_CORPUS"); d != "" {
		return d
	}
	root, err := corpus.RepoRoot()
	if err != nil {
		return ""
	}
	d := filepath.Join(root, "..", "shared", "testdata")
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err != nil {
		return ""
	}
	return d
}
