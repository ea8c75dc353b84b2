package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// testVolume builds an in-memory volume with a pattern that is neither
// constant nor random, so compression does something and errors show.
func testVolume(t testing.TB, dt volume.DType, shape ...int64) *volume.Mem {
	t.Helper()
	names := []string{"z", "y", "x"}[3-len(shape):]
	axes := make([]volume.Axis, len(shape))
	for i, s := range shape {
		axes[i] = volume.Axis{Name: names[i], Size: s, Scale: 1}
	}
	in := volume.Info{Name: "test", Shape: shape, DType: dt, Axes: axes}
	n := volume.Prod(shape)
	data := make([]byte, n*int64(dt.Size()))
	le := binary.LittleEndian
	for i := int64(0); i < n; i++ {
		v := (i*7919)%1009 + (i/13)%17
		p := data[i*int64(dt.Size()):]
		switch dt {
		case volume.Uint8, volume.Int8:
			p[0] = byte(v)
		case volume.Uint16, volume.Int16:
			le.PutUint16(p, uint16(v*61-30000))
		case volume.Uint32, volume.Int32:
			le.PutUint32(p, uint32(v*1000003))
		case volume.Float32:
			le.PutUint32(p, math.Float32bits(float32(v)*0.37-100))
		case volume.Float64:
			le.PutUint64(p, math.Float64bits(float64(v)*-1.5e-3))
		}
	}
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeTemp writes v with opt into a temporary file and opens it as a store.
func writeTemp(t testing.TB, v volume.Volume, opt WriteOptions) (*store.Store, string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, v, opt); err != nil {
		t.Fatalf("Write: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "out.tif"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return store.New(store.NewFile(dir)), "out.tif", buf.Bytes()
}

func TestWriteRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		dt    volume.DType
		shape []int64
		opt   WriteOptions
	}{
		{"u8-strips-none-II-classic", volume.Uint8, []int64{5, 37, 53}, WriteOptions{RowsPerStrip: 4}},
		{"u8-2d-deflate-MM", volume.Uint8, []int64{61, 45}, WriteOptions{Compression: "deflate", ByteOrder: binary.BigEndian, RowsPerStrip: 7}},
		{"u16-tiles-deflate-MM-classic", volume.Uint16, []int64{4, 50, 70}, WriteOptions{Tile: 16, Compression: "deflate", ByteOrder: binary.BigEndian}},
		{"u16-strips-none-MM-bigtiff", volume.Uint16, []int64{3, 31, 29}, WriteOptions{BigTIFF: true, ByteOrder: binary.BigEndian, RowsPerStrip: 5}},
		{"f32-strips-zstd-II-bigtiff", volume.Float32, []int64{3, 40, 33}, WriteOptions{Compression: "zstd", BigTIFF: true}},
		{"f32-tiles-none-MM", volume.Float32, []int64{2, 33, 47}, WriteOptions{Tile: 32, ByteOrder: binary.BigEndian}},
		{"i16-tiles-zstd-MM-bigtiff", volume.Int16, []int64{2, 33, 47}, WriteOptions{Tile: 32, Compression: "zstd", ByteOrder: binary.BigEndian, BigTIFF: true}},
		{"u8-imagej-deflate", volume.Uint8, []int64{6, 20, 30}, WriteOptions{ImageJ: true, Spacing: 0.02, Unit: "µm", PixelWidth: 0.02, PixelHeight: 0.02, Compression: "deflate"}},
		{"f32-imagej-tiles-MM", volume.Float32, []int64{3, 40, 40}, WriteOptions{ImageJ: true, Spacing: 2.5, Unit: "nm", PixelWidth: 4, PixelHeight: 5, Tile: 16, ByteOrder: binary.BigEndian}},
		{"f64-described", volume.Float64, []int64{2, 9, 11}, WriteOptions{Description: "hello"}},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := testVolume(t, c.dt, c.shape...)
			st, key, file := writeTemp(t, src, c.opt)
			wantMagic := "II"
			if c.opt.ByteOrder == binary.BigEndian {
				wantMagic = "MM"
			}
			if string(file[:2]) != wantMagic || (file[2] == 43 || file[3] == 43) != c.opt.BigTIFF {
				t.Fatalf("header % x: want %s, BigTIFF %v", file[:4], wantMagic, c.opt.BigTIFF)
			}
			vs, err := Format{}.Open(ctx, st, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 1 {
				t.Fatalf("%d series, want 1", len(vs))
			}
			in := vs[0].Info()
			if !eqShape(in.Shape, c.shape) || in.DType != c.dt {
				t.Fatalf("read back %v %s, wrote %v %s", in.Shape, in.DType, c.shape, c.dt)
			}
			if c.opt.Tile > 0 {
				if got := in.Chunks[len(in.Chunks)-1]; got != min(int64(c.opt.Tile), c.shape[len(c.shape)-1]) {
					t.Errorf("chunk width %d, want the tile", got)
				}
			}
			if c.opt.ImageJ {
				checkImageJAxes(t, in, c.opt)
			}
			if c.opt.Description != "" && in.Metadata["description"] != c.opt.Description {
				t.Errorf("description %q", in.Metadata["description"])
			}
			volumetest.Run(t, vs[0], src.Bytes(), 0)
		})
	}
}

func checkImageJAxes(t *testing.T, in volume.Info, opt WriteOptions) {
	t.Helper()
	unit := strings.ReplaceAll(opt.Unit, "μ", "µ")
	want := map[string]float64{"z": opt.Spacing, "y": opt.PixelHeight, "x": opt.PixelWidth}
	for _, a := range in.Axes {
		w := want[a.Name]
		if !a.ScaleKnown || a.Unit != unit || math.Abs(a.Scale-w) > 1e-6*w {
			t.Errorf("axis %s = %+v, want scale %g %s", a.Name, a, w, unit)
		}
	}
	ij, _ := in.Metadata["imagej"].(map[string]any)
	if ij == nil || ij["ImageJ"] != ImageJVersion {
		t.Errorf("imagej metadata %v", in.Metadata["imagej"])
	}
}

func TestWriteImageJDescription(t *testing.T) {
	src := testVolume(t, volume.Uint8, 4, 8, 8)
	_, _, file := writeTemp(t, src, WriteOptions{ImageJ: true, Spacing: 0.02, Unit: "µm", PixelWidth: 0.02, PixelHeight: 0.02})
	want := "ImageJ=1.52p\nimages=4\nslices=4\nunit=\\u00B5m\nspacing=0.02\nloop=false\nmin=0.0\nmax="
	if !bytes.Contains(file, []byte(want)) {
		t.Errorf("file lacks the ImageJ description %q", want)
	}
}

func TestWriteRejects(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		v    volume.Volume
		opt  WriteOptions
	}{
		{"rank1", testVolume(t, volume.Uint8, 10), WriteOptions{}},
		{"bad-tile", testVolume(t, volume.Uint8, 2, 8, 8), WriteOptions{Tile: 10}},
		{"bad-compression", testVolume(t, volume.Uint8, 2, 8, 8), WriteOptions{Compression: "lzw"}},
		{"desc-and-imagej", testVolume(t, volume.Uint8, 2, 8, 8), WriteOptions{ImageJ: true, Description: "x"}},
		{"bad-pixel", testVolume(t, volume.Uint8, 2, 8, 8), WriteOptions{PixelWidth: math.Inf(1)}},
	} {
		if err := Write(ctx, &bytes.Buffer{}, c.v, c.opt); err == nil {
			t.Errorf("%s: Write succeeded", c.name)
		}
	}
}

func TestRationalFor(t *testing.T) {
	for _, x := range []float64{50, 1 / 0.02, 0.25, 1e-7, 3e5, 123456.789} {
		n, d, err := rationalFor(x)
		if err != nil {
			t.Fatalf("%g: %v", x, err)
		}
		if got := float64(n) / float64(d); math.Abs(got-x) > 1e-6*x+1e-9 && math.Abs(got-x)/x > 1e-3 {
			t.Errorf("rationalFor(%g) = %d/%d = %g", x, n, d, got)
		}
	}
	for _, x := range []float64{0, -1, math.NaN(), math.Inf(1), 1e12} {
		if _, _, err := rationalFor(x); err == nil {
			t.Errorf("rationalFor(%g) succeeded", x)
		}
	}
}
