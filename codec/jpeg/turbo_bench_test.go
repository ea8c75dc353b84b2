//go:build cgo && (linux || darwin || freebsd || netbsd) && !android

package jpeg

import (
	"bytes"
	"image"
	stdjpeg "image/jpeg"
	"testing"

	"github.com/ebitengine/purego"
)

// BenchmarkCallOverhead measures what one call into libturbojpeg through
// purego costs by itself (tjGetErrorCode, which only reads a field), next
// to the decode of one 64×4096 chunk: the binding's overhead per chunk is
// a few such calls.
func BenchmarkCallOverhead(b *testing.B) {
	t, err := loadTurbo()
	if err != nil {
		b.Skipf("libjpeg-turbo unavailable: %v", err)
	}
	lib, err := purego.Dlopen(soNames()[0], purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		b.Skipf("libjpeg-turbo unavailable: %v", err)
	}
	code, err := purego.Dlsym(lib, "tjGetErrorCode")
	if err != nil {
		b.Fatal(err)
	}
	h, err := t.get()
	if err != nil {
		b.Fatal(err)
	}
	defer t.put(h)
	b.Run("call", func(b *testing.B) {
		for b.Loop() {
			purego.SyscallN(code, h.h)
		}
	})
	const w, hgt = 64, 4096
	img := image.NewGray(image.Rect(0, 0, w, hgt))
	for i := range img.Pix {
		img.Pix[i] = byte(i*7 ^ i>>6*13)
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: 75}); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, w*hgt)
	b.Run("decode-64x4096", func(b *testing.B) {
		b.SetBytes(w * hgt)
		for b.Loop() {
			if _, err := t.decode(Dst{Pix: out, Stride: w, Width: w, Height: hgt}, buf.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
