package tiff

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/volume"
)

// fullWidthBox is a random box spanning every column (and sample) of the
// trailing page axes, which is what lets rows be read straight into dst.
func fullWidthBox(rng *rand.Rand, shape []int64, pageAxes int) volume.Box {
	n := len(shape)
	b := volume.Full(shape)
	for i := 0; i < n-pageAxes+1; i++ { // leading axes and y
		a := rng.Int64N(shape[i])
		b.Start[i], b.Stop[i] = a, a+1+rng.Int64N(shape[i]-a)
	}
	return b
}

// TestDirectRows checks reads that go straight into dst (and those that may
// not) against the written source, for both byte orders, strips and tiles.
func TestDirectRows(t *testing.T) {
	be := binary.BigEndian
	cases := []struct {
		name   string
		dt     volume.DType
		shape  []int64
		opt    WriteOptions
		direct bool
	}{
		{"uint8 strips", volume.Uint8, []int64{5, 40, 48}, WriteOptions{RowsPerStrip: 7}, true},
		{"uint16 big-endian strips", volume.Uint16, []int64{4, 33, 20}, WriteOptions{RowsPerStrip: 5, ByteOrder: be}, true},
		{"float32 big-endian strips", volume.Float32, []int64{3, 17, 9}, WriteOptions{RowsPerStrip: 4, ByteOrder: be}, true},
		{"float64 one page", volume.Float64, []int64{21, 11}, WriteOptions{RowsPerStrip: 6}, true},
		{"uint16 tiles as wide as the page", volume.Uint16, []int64{3, 40, 32}, WriteOptions{Tile: 32, ByteOrder: be}, true},
		{"uint16 narrow tiles", volume.Uint16, []int64{3, 40, 48}, WriteOptions{Tile: 16, ByteOrder: be}, false},
		{"uint16 deflate", volume.Uint16, []int64{3, 20, 24}, WriteOptions{RowsPerStrip: 6, Compression: "deflate"}, false},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := testVolume(t, tc.dt, tc.shape...)
			st, key, _ := writeTemp(t, src, tc.opt)
			vs, err := Format{}.Open(ctx, st, key)
			if err != nil {
				t.Fatal(err)
			}
			v := vs[0].(*tiffVolume)
			want := src.Bytes()
			elem := tc.dt.Size()
			rng := rand.New(rand.NewPCG(3, uint64(len(tc.name))))
			for i := range 30 {
				box := fullWidthBox(rng, tc.shape, 2)
				if i == 0 {
					box = volume.Full(tc.shape)
				}
				if got := v.directRows(box); got != tc.direct {
					t.Fatalf("directRows(%v) = %v, want %v", box, got, tc.direct)
				}
				got := make([]byte, box.NumElements()*int64(elem))
				if err := v.ReadRegion(ctx, box, got); err != nil {
					t.Fatalf("ReadRegion(%v): %v", box, err)
				}
				ref := make([]byte, len(got))
				volume.CopyBox(ref, box, want, volume.Full(tc.shape), box, elem)
				if string(got) != string(ref) {
					t.Fatalf("ReadRegion(%v) differs from the source", box)
				}
			}
			// A box short of the last column never reads straight into dst.
			part := volume.Full(tc.shape)
			part.Stop[len(part.Stop)-1]--
			if v.directRows(part) {
				t.Errorf("directRows(%v) = true for a box short of a column", part)
			}
		})
	}
}

// planarFile is an uncompressed little-endian planar (PlanarConfiguration 2)
// two-sample page, one strip per sample plane; pixel i of plane s is i*3+s*101.
func planarFile(w, h uint32) []byte {
	n := w * h
	const dataOff = 8 + 2 + 10*12 + 4 + 16
	tail := binary.LittleEndian.AppendUint32(nil, dataOff)
	tail = binary.LittleEndian.AppendUint32(tail, dataOff+n)
	tail = binary.LittleEndian.AppendUint32(tail, n)
	tail = binary.LittleEndian.AppendUint32(tail, n)
	for s := range uint32(2) {
		for i := range n {
			tail = append(tail, byte(i*3+s*101))
		}
	}
	const arrays = 8 + 2 + 10*12 + 4
	return classic([]rawEntry{
		{256, 4, 1, w},
		{257, 4, 1, h},
		{258, 3, 2, 8 | 8<<16},
		{259, 3, 1, 1},
		{262, 3, 1, 1},
		{273, 4, 2, arrays},
		{277, 3, 1, 2},
		{278, 4, 1, h},
		{279, 4, 2, arrays + 8},
		{284, 3, 1, 2},
	}, 0, tail)
}

// TestDirectRowsSamples compares full-width reads of multi-sample pages
// (chunky RGB in big-endian order, chunky seven-sample float32, a three-page
// RGB stack, synthetic planar) with the same pixels read in two halves of the
// columns, which go through the buffered path.
func TestDirectRowsSamples(t *testing.T) {
	dir := corpus.Dir(t)
	ctx := context.Background()
	type opener func() ([]volume.Volume, error)
	fromCorpus := func(p string) opener {
		return func() ([]volume.Volume, error) { return openFile(ctx, filepath.Join(dir, filepath.FromSlash(p))) }
	}
	cases := []struct {
		name string
		open opener
	}{
		{"rgb-3c-16b big-endian", fromCorpus("tiff/image-tiff/images/rgb-3c-16b.tiff")},
		{"shapes_hyper 7 samples", fromCorpus("tiff/exampletiffs/shapes_hyper.tif")},
		{"rgba 8-bit", fromCorpus("tiff/image-tiff/seq/seq-4c-8b-rgba-50969cda.tiff")},
		{"D75 three pages", fromCorpus("tiff/tensorstore/D75_08b_3page.tiff")},
		{"planar synthetic", func() ([]volume.Volume, error) {
			return Format{}.Open(ctx, memStore(t, planarFile(13, 9)), "f.tif")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			v := vs[0].(*tiffVolume)
			in := v.Info()
			if v.lay.compression != 1 || v.lay.spp < 2 {
				t.Fatalf("compression %d, %d samples: the test needs uncompressed multi-sample pages", v.lay.compression, v.lay.spp)
			}
			elem := in.DType.Size()
			// The x axis: the last, or the one before the samples of a chunky page.
			xa := len(in.Shape) - 1
			if v.lay.planar != 2 {
				xa--
			}
			full := volume.Full(in.Shape)
			if !v.directRows(full) {
				t.Fatalf("directRows(full) = false")
			}
			ref := make([]byte, in.NumBytes())
			for _, half := range [][2]int64{{0, in.Shape[xa] / 2}, {in.Shape[xa] / 2, in.Shape[xa]}} {
				b := volume.Full(in.Shape)
				b.Start[xa], b.Stop[xa] = half[0], half[1]
				if v.directRows(b) {
					t.Fatalf("directRows(%v) = true for half the columns", b)
				}
				buf := make([]byte, b.NumElements()*int64(elem))
				if err := v.ReadRegion(ctx, b, buf); err != nil {
					t.Fatal(err)
				}
				volume.CopyBox(ref, full, buf, b, b, elem)
			}
			if v.lay.planar == 2 {
				// The synthetic file's pixels are known: check the reference too.
				for i, b := range ref {
					s, p := i/(len(ref)/2), i%(len(ref)/2)
					if b != byte(p*3+s*101) {
						t.Fatalf("planar byte %d = %d, want %d", i, b, byte(p*3+s*101))
					}
				}
			}
			rng := rand.New(rand.NewPCG(5, 6))
			for i := range 20 {
				box := fullWidthBox(rng, in.Shape, len(in.Shape)-xa+1)
				if i == 0 {
					box = full
				}
				if !v.directRows(box) {
					t.Fatalf("directRows(%v) = false", box)
				}
				got := make([]byte, box.NumElements()*int64(elem))
				if err := v.ReadRegion(ctx, box, got); err != nil {
					t.Fatalf("ReadRegion(%v): %v", box, err)
				}
				want := make([]byte, len(got))
				volume.CopyBox(want, box, ref, full, box, elem)
				if string(got) != string(want) {
					t.Fatalf("ReadRegion(%v): direct read differs from the buffered one", box)
				}
			}
			// A box missing one sample is read through the buffered path.
			if v.lay.planar != 2 {
				b := volume.Full(in.Shape)
				b.Stop[len(b.Stop)-1]--
				if v.directRows(b) {
					t.Errorf("directRows(%v) = true for a box missing a sample", b)
				}
			}
		})
	}
}

// TestDirectRowsNoCopyBuffers checks that a full-width read of uncompressed
// rows allocates nothing in proportion to the data: the bytes go straight
// into dst instead of through per-range buffers.
func TestDirectRowsNoCopyBuffers(t *testing.T) {
	ctx := context.Background()
	shape := []int64{16, 256, 256} // 1 MiB in 16 pages of 4 strips
	st, key, _ := writeTemp(t, testVolume(t, volume.Uint8, shape...), WriteOptions{RowsPerStrip: 64})
	vs, err := Format{}.Open(ctx, st, key)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, volume.Prod(shape))
	read := func() {
		if err := vs[0].ReadRegion(ctx, volume.Full(shape), dst); err != nil {
			t.Fatal(err)
		}
	}
	read() // the strip tables are read and cached once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	read()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(dst))/8 {
		t.Errorf("a %d-byte read allocated %d bytes", len(dst), got)
	}
}
