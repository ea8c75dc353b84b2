package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/jpeg"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	jpegc "github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/volume"
)

// splitJPEG cuts a full JPEG stream into JPEGTables (SOI, DQT, DHT, EOI) and
// the abbreviated stream TIFF writers store per strip (SOI, SOF, SOS…).
func splitJPEG(t testing.TB, b []byte) (tables, rest []byte) {
	tables = []byte{0xFF, 0xD8}
	rest = []byte{0xFF, 0xD8}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		m := b[i+1]
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if m == 0xDA { // SOS: entropy-coded data follows to the end
			rest = append(rest, b[i:]...)
			break
		}
		seg := b[i : i+2+n]
		if m == 0xDB || m == 0xC4 {
			tables = append(tables, seg...)
		} else {
			rest = append(rest, seg...)
		}
		i += 2 + n
	}
	return append(tables, 0xFF, 0xD9), rest
}

// jpegTIFF builds a classic TIFF of h×w pixels in strips of rps rows, each
// strip a JPEG stream; with abbreviated, the tables go to JPEGTables.
func jpegTIFF(t testing.TB, img func(y0, y1 int) image.Image, w, h, rps, spp int, abbreviated bool) ([]byte, []image.Image) {
	var strips [][]byte
	var tables []byte
	var imgs []image.Image
	for y := 0; y < h; y += rps {
		im := img(y, min(h, y+rps))
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, im, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		s := buf.Bytes()
		if abbreviated {
			tables, s = splitJPEG(t, s)
		}
		strips = append(strips, s)
		imgs = append(imgs, im)
	}
	le := binary.LittleEndian
	// Layout: header, IFD, arrays, tables, strips.
	type ent struct {
		tag, typ uint16
		count    uint32
		val      uint32
	}
	photo := uint32(1)
	if spp == 3 {
		photo = 6
	}
	es := []ent{{tagImageWidth, typeLong, 1, uint32(w)}, {tagImageLength, typeLong, 1, uint32(h)},
		{tagBitsPerSample, typeShort, 1, 8}, {tagCompression, typeShort, 1, 7}, {tagPhotometric, typeShort, 1, photo},
		{tagStripOffsets, typeLong, uint32(len(strips)), 0}, {tagSamplesPerPixel, typeShort, 1, uint32(spp)},
		{tagRowsPerStrip, typeLong, 1, uint32(rps)}, {tagStripByteCounts, typeLong, uint32(len(strips)), 0}}
	if abbreviated {
		es = append(es, ent{tagJPEGTables, typeUndefined, uint32(len(tables)), 0})
	}
	if spp == 3 {
		// BitsPerSample 8,8,8 out of line is not needed: one value applies to all.
		es[2].count = 1
	}
	arr := int64(8 + 2 + 12*len(es) + 4)
	cnts := arr + 4*int64(len(strips))
	tab := cnts + 4*int64(len(strips))
	data := tab + int64(len(tables))
	es[5].val, es[8].val = uint32(arr), uint32(cnts)
	if len(strips) == 1 {
		es[5].val, es[8].val = uint32(data), uint32(len(strips[0]))
	}
	if abbreviated {
		es[len(es)-1].val = uint32(tab)
	}
	b := []byte("II*\x00\x08\x00\x00\x00")
	b = le.AppendUint16(b, uint16(len(es)))
	for _, e := range es {
		b = le.AppendUint16(b, e.tag)
		b = le.AppendUint16(b, e.typ)
		b = le.AppendUint32(b, e.count)
		b = le.AppendUint32(b, e.val)
	}
	b = le.AppendUint32(b, 0)
	pos := uint32(data)
	for _, s := range strips {
		b = le.AppendUint32(b, pos)
		pos += uint32(len(s))
	}
	for _, s := range strips {
		b = le.AppendUint32(b, uint32(len(s)))
	}
	b = append(b, tables...)
	for _, s := range strips {
		b = append(b, s...)
	}
	return b, imgs
}

// TestJPEG decodes JPEG strips, with and without JPEGTables, grey and YCbCr,
// with each decoder, and compares with the same decoder on the complete
// per-strip streams.
func TestJPEG(t *testing.T) {
	for _, impl := range []string{jpegc.ImplGo, jpegc.ImplTurbo} {
		t.Run(impl, func(t *testing.T) {
			t.Setenv(jpegc.EnvVar, impl)
			testJPEG(t, jpegc.Default())
		})
	}
}

func testJPEG(t *testing.T, dec *jpegc.Decoder) {
	ctx := context.Background()
	const w, h, rps = 37, 40, 16
	gray := func(y0, y1 int) image.Image {
		im := image.NewGray(image.Rect(0, 0, w, y1-y0))
		for i := range im.Pix {
			im.Pix[i] = byte(i*7 + y0*3)
		}
		return im
	}
	rgb := func(y0, y1 int) image.Image {
		im := image.NewRGBA(image.Rect(0, 0, w, y1-y0))
		for i := range im.Pix {
			im.Pix[i] = byte(i*5 + y0)
			if i%4 == 3 {
				im.Pix[i] = 255
			}
		}
		return im
	}
	for _, c := range []struct {
		name        string
		img         func(y0, y1 int) image.Image
		spp         int
		abbreviated bool
	}{
		{"gray", gray, 1, false}, {"gray-tables", gray, 1, true},
		{"ycbcr", rgb, 3, false}, {"ycbcr-tables", rgb, 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			file, imgs := jpegTIFF(t, c.img, w, h, rps, c.spp, c.abbreviated)
			vs, err := open(ctx, memStore(t, file), "f.tif", defaultMaxChunk)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(ctx, vs[0])
			if err != nil {
				t.Fatal(err)
			}
			// Reference: each strip re-encoded identically and decoded whole
			// by the same decoder.
			var want []byte
			for _, im := range imgs {
				var buf bytes.Buffer
				jpeg.Encode(&buf, im, &jpeg.Options{Quality: 90})
				b := im.Bounds()
				color := jpegc.Gray
				if c.spp == 3 {
					color = jpegc.RGB
				}
				strip := make([]byte, b.Dx()*b.Dy()*c.spp)
				if _, err := dec.Decode(jpegc.Dst{Pix: strip, Stride: b.Dx() * c.spp, Width: b.Dx(), Height: b.Dy(), Color: color}, nil, buf.Bytes()); err != nil {
					t.Fatal(err)
				}
				want = append(want, strip...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("decoded pixels differ from %s on whole strips (%d vs %d bytes)", dec.Name(), len(got), len(want))
			}
			in := vs[0].Info()
			if in.Compression != "jpeg" || (c.spp == 3 && !eqShape(in.Shape, []int64{h, w, 3})) {
				t.Errorf("info %v %v", in.Compression, in.Shape)
			}
			if got := in.Metadata[volume.MetaJPEGDecoder]; got != dec.Name() {
				t.Errorf("metadata names decoder %v, want %q", got, dec.Name())
			}
		})
	}

	t.Run("oversized-frame", func(t *testing.T) {
		// A strip whose JPEG declares a far larger frame than the strip must
		// fail before the decoder allocates for it.
		big := func(y0, y1 int) image.Image { return image.NewGray(image.Rect(0, 0, 400, 300)) }
		file, _ := jpegTIFF(t, big, w, h, h, 1, false)
		vs, err := open(ctx, memStore(t, file), "f.tif", defaultMaxChunk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(ctx, vs[0]); err == nil || !strings.Contains(err.Error(), "400x300") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestJPEGPillow compares the RGB JPEG preview of olympus_SIS.tif (the
// corpus's JPEG TIFF) with Pillow's decode (libjpeg-turbo): equal with
// libjpeg-turbo, every sample within ±1 with image/jpeg.
func TestJPEGPillow(t *testing.T) {
	for _, impl := range []string{jpegc.ImplGo, jpegc.ImplTurbo} {
		t.Run(impl, func(t *testing.T) {
			t.Setenv(jpegc.EnvVar, impl)
			testJPEGPillow(t)
		})
	}
}

func testJPEGPillow(t *testing.T) {
	path := filepath.Join(corpus.Dir(t), "tiff", "rosettasciio", "olympus_SIS.tif")
	py := "/usr/bin/python3"
	out, err := exec.Command(py, "-c", `
import sys
from PIL import Image
im = Image.open(sys.argv[1]); im.seek(0)
print(" ".join(str(v) for v in im.convert("RGB").tobytes()))`, path).Output()
	if err != nil {
		t.Skipf("Pillow oracle unavailable (%v); install python3-pil", err)
	}
	var want []byte
	for _, f := range strings.Fields(string(out)) {
		v, _ := strconv.Atoi(f)
		want = append(want, byte(v))
	}
	ctx := context.Background()
	vs, err := openFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	in := vs[0].Info()
	if in.Compression != "jpeg" || in.DType != volume.Uint8 {
		t.Fatalf("series 0 is %s %s", in.Compression, in.DType)
	}
	got, err := readAll(ctx, vs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples, Pillow %d", len(got), len(want))
	}
	var maxDiff, nDiff, sumG, sumW int
	for i := range got {
		d := int(got[i]) - int(want[i])
		maxDiff = max(maxDiff, d, -d)
		if d != 0 {
			nDiff++
		}
		sumG += int(got[i])
		sumW += int(want[i])
	}
	dec, _ := in.Metadata[volume.MetaJPEGDecoder].(string)
	t.Logf("%s: sum %d, Pillow %d, %d samples differ, by at most %d", dec, sumG, sumW, nDiff, maxDiff)
	switch {
	case strings.HasPrefix(dec, "libjpeg-turbo") && nDiff > 0:
		t.Errorf("%s: %d samples differ from Pillow, by up to %d", dec, nDiff, maxDiff)
	case maxDiff > 1:
		t.Errorf("%s: samples differ from Pillow by up to %d", dec, maxDiff)
	case dec == "":
		t.Errorf("metadata does not name the JPEG decoder")
	}
}
