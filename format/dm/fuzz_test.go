package dm

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/volume"
)

// corpusFiles returns the dm corpus files up to maxSize bytes, read in place
// (several are GPL: they are never copied into this repository).
func corpusFiles(maxSize int64) map[string][]byte {
	dir := os.Getenv("IMGDATASET_CORPUS")
	if dir == "" {
		if root, err := corpus.RepoRoot(); err == nil {
			dir = filepath.Join(root, "..", "shared", "testdata")
		}
	}
	out := map[string][]byte{}
	_ = filepath.WalkDir(filepath.Join(dir, "dm"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() <= maxSize {
			if b, err := os.ReadFile(p); err == nil {
				out[p] = b
			}
		}
		return nil
	})
	return out
}

// syntheticSeeds are small files from the writer in each layout.
func syntheticSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, opt := range [][]Option{nil, {BigEndian()}, {AsDM4()}, {AsDM4(), NoThumbnail()}} {
		for _, dt := range []volume.DType{volume.Uint8, volume.Complex64, volume.RGBA8} {
			img := Image{Name: "s", DType: dt, Shape: []int64{2, 3, 4}, Data: ramp(dt, 24), ZSpacing: 5,
				Tags: map[string]any{"DigiScan.TimeStamp": "Mon Jun 11 22:26:45 2018"}}
			out = append(out, writeImage(t, img, opt...))
		}
		// Packed FFTs of odd and even width, a spectrum image and a
		// squeezable stack: the layouts ReadRegion remaps.
		p64, _ := packedFile(t, volume.Complex64, 3, 5, opt...)
		p128, _ := packedFile(t, volume.Complex128, 2, 4, opt...)
		si := Image{Name: "si", DType: volume.Float32, Shape: []int64{5, 2, 3}, Data: ramp(volume.Float32, 30),
			Tags: map[string]any{"Meta Data.Format": "Spectrum image"}}
		one := Image{Name: "one", DType: volume.Uint16, Shape: []int64{1, 2, 3}, Data: ramp(volume.Uint16, 6)}
		out = append(out, p64, p128, writeImage(t, si, opt...), writeImage(t, one, opt...))
	}
	return out
}

// exercise opens b as a DM file and reads every small volume; it must never
// panic, and every failure must be an error.
func exercise(t testing.TB, b []byte) error {
	ctx := context.Background()
	st := newMem(t, map[string][]byte{"f.dm3": b})
	head := b[:min(len(b), format.HeadSize)]
	_ = (Format{}).Detect(ctx, st, "f.dm3", head)
	vols, err := Format{}.Open(ctx, st, "f.dm3")
	if err != nil {
		return err
	}
	for _, v := range vols {
		in := v.Info()
		if err := in.Validate(); err != nil {
			t.Fatalf("Open returned an invalid volume: %v", err)
		}
		if in.NumBytes() > 4<<20 {
			continue
		}
		if err := v.ReadRegion(ctx, volume.Full(in.Shape), make([]byte, in.NumBytes())); err != nil {
			return err
		}
	}
	return nil
}

func FuzzParse(f *testing.F) {
	for _, b := range corpusFiles(64 << 10) {
		f.Add(b)
	}
	for _, b := range syntheticSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = exercise(t, b)
	})
}

// cleanError reports whether err is one of the errors a damaged file may
// cause: malformed structure, a short object, or an unsupported feature.
func cleanError(err error) bool {
	return errors.Is(err, ErrFormat) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, format.ErrNotSupported)
}

// TestDamagedCorpus truncates and bit-flips real files at many positions.
func TestDamagedCorpus(t *testing.T) {
	files := corpusFiles(1 << 20)
	if len(files) == 0 {
		t.Skip("dm corpus not found (set IMGDATASET_CORPUS); damaged-file test skipped")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	var opened, failed int
	for p, b := range files {
		check := func(what string, d []byte) {
			err := exercise(t, d)
			switch {
			case err == nil:
				opened++
			case cleanError(err):
				failed++
			default:
				t.Errorf("%s %s: unexpected kind of error: %v", filepath.Base(p), what, err)
			}
		}
		// Truncations: densely through the header and tag tree, then spread.
		for n := 0; n < min(len(b), 256); n += 3 {
			check("truncated", b[:n])
		}
		for i := 0; i < 40; i++ {
			check("truncated", b[:rng.IntN(len(b))])
		}
		// Bit flips in the tag tree (where structure lives), one at a time.
		for i := 0; i < 60; i++ {
			d := append([]byte(nil), b...)
			pos := rng.IntN(min(len(d), 8192))
			d[pos] ^= 1 << rng.IntN(8)
			check("bit-flipped", d)
		}
	}
	if opened == 0 || failed == 0 {
		t.Errorf("damage produced %d successful opens and %d errors: the test is not exercising both paths", opened, failed)
	}
	t.Logf("%d files: %d damaged variants opened, %d failed cleanly", len(files), opened, failed)
}
