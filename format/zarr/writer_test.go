package zarr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

func memVolume(t *testing.T, name string, shape []int64, vt volume.DType, axes []volume.Axis) *volume.Mem {
	t.Helper()
	if axes == nil {
		axes = defaultAxes(shape, nil)
	}
	m, err := volume.NewMem(volume.Info{Name: name, Shape: shape, DType: vt, Axes: axes}, pattern(volume.Prod(shape), vt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCreateArrayRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		shape []int64
		vt    volume.DType
		opt   WriteOptions
	}{
		{"u8-zstd-ragged", []int64{19, 23, 17}, volume.Uint8, WriteOptions{Chunks: []int64{8, 8, 8}}},
		{"i16-gzip-dot", []int64{9, 31}, volume.Int16, WriteOptions{Chunks: []int64{4, 10}, Compressor: "gzip", DimensionSeparator: "."}},
		{"f32-none", []int64{5, 6, 7}, volume.Float32, WriteOptions{Chunks: []int64{2, 3, 7}, Compressor: "none"}},
		{"u64-lz4-default-chunks", []int64{3, 130}, volume.Uint64, WriteOptions{Compressor: "lz4"}},
		{"bool-zlib", []int64{10, 3}, volume.Bool, WriteOptions{Chunks: []int64{3, 3}, Compressor: "zlib"}},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			src := memVolume(t, c.name, c.shape, c.vt, nil)
			w, err := CreateArray(ctx, st, "out/"+c.name, src.Info(), c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := volume.Copy(ctx, w, src, volume.CopyOptions{Workers: 3}); err != nil {
				t.Fatal(err)
			}
			// Before Close no array is visible.
			if _, err := st.Stat(ctx, "out/"+c.name+"/.zarray"); err == nil {
				t.Fatal(".zarray written before Close")
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			v := openOne(t, st, "out/"+c.name)
			volumetest.Run(t, v, src.Bytes(), 0)
		})
	}
}

func TestCreateArrayUnaligned(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewFile(t.TempDir()))
	src := memVolume(t, "a", []int64{8, 8}, volume.Uint8, nil)
	w, err := CreateArray(ctx, st, "a", src.Info(), WriteOptions{Chunks: []int64{4, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRegion(ctx, volume.NewBox([]int64{1, 0}, []int64{4, 4}), make([]byte, 16)); err == nil {
		t.Fatal("unaligned WriteRegion accepted")
	}
}

func TestWriteNGFF(t *testing.T) {
	ctx := context.Background()
	axes := []volume.Axis{
		{Name: "z", Size: 20, Scale: 2.96, Unit: "nm", ScaleKnown: true},
		{Name: "y", Size: 33, Scale: 4, Offset: 100, Unit: "nm", ScaleKnown: true},
		{Name: "x", Size: 18, Scale: 4, Unit: "µm", ScaleKnown: true},
	}
	for _, method := range []volume.Method{volume.Mean, volume.Mode} {
		t.Run(string(method), func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			src := memVolume(t, "em", []int64{20, 33, 18}, volume.Int16, axes)
			opt := WriteOptions{Chunks: []int64{8, 8, 8}, Levels: 3, Method: method}
			if err := WriteNGFF(ctx, st, "img.zarr", src, opt); err != nil {
				t.Fatal(err)
			}
			vs, err := Format{}.Open(ctx, st, "img.zarr")
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 3 {
				t.Fatalf("%d levels", len(vs))
			}
			volumetest.Run(t, vs[0], src.Bytes(), 0)
			// ceil(n/2) per level: the partial blocks at the far edges are kept.
			wantShapes := [][]int64{{20, 33, 18}, {10, 17, 9}, {5, 9, 5}}
			for k, v := range vs {
				in := v.Info()
				if fmt.Sprint(in.Shape) != fmt.Sprint(wantShapes[k]) || in.Name != fmt.Sprintf("img.zarr/s%d", k) {
					t.Errorf("level %d: %q %v", k, in.Name, in.Shape)
				}
				f := float64(int(1) << k)
				for i, ax := range in.Axes {
					// x is given in µm next to z and y in nm: written in nm.
					per, _ := volume.NanometresPer(axes[i].Unit)
					wantScale := axes[i].Scale * f * per
					wantOff := (axes[i].Offset + (f-1)/2*axes[i].Scale) * per
					if !ax.ScaleKnown || math.Abs(ax.Scale-wantScale) > 1e-9 || math.Abs(ax.Offset-wantOff) > 1e-9 {
						t.Errorf("level %d axis %s: %+v, want scale %v offset %v", k, ax.Name, ax, wantScale, wantOff)
					}
				}
				if in.Axes[0].Unit != "nanometer" || in.Axes[2].Unit != "nanometer" {
					t.Errorf("units %q %q", in.Axes[0].Unit, in.Axes[2].Unit)
				}
				if got := in.Metadata["downsampling_method"]; got != string(method) {
					t.Errorf("level %d: multiscale type %v, want %s", k, got, method)
				}
				if k == 0 {
					continue
				}
				// Each level is volume.Downsample of the level before, as stored.
				d, err := volume.Downsample(vs[k-1], []int64{2, 2, 2}, method)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]byte, d.Info().NumBytes())
				if err := d.ReadRegion(ctx, volume.Full(d.Info().Shape), want); err != nil {
					t.Fatal(err)
				}
				volumetest.Run(t, v, want, 0)
			}
			b, err := st.ReadAll(ctx, "img.zarr/.zattrs", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var attrs struct {
				Multiscales []struct {
					Version string
					Axes    []map[string]string
				}
			}
			if err := json.Unmarshal(b, &attrs); err != nil || attrs.Multiscales[0].Version != "0.4" || attrs.Multiscales[0].Axes[0]["type"] != "space" {
				t.Errorf(".zattrs %s (%v)", b, err)
			}
			za, _ := st.ReadAll(ctx, "img.zarr/s0/.zarray", 1<<20)
			if !bytes.Contains(za, []byte(`"dimension_separator": "/"`)) || !bytes.Contains(za, []byte(`"id": "zstd"`)) {
				t.Errorf(".zarray %s", za)
			}
		})
	}
}

// TestWriteNGFFAttributesASCII names the source with non-ASCII characters:
// .zattrs must be ASCII, because zarr-python 2 decodes it as ASCII and
// would otherwise show no attribute at all (multiscales included), and must
// read back the same.
func TestWriteNGFFAttributesASCII(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewFile(t.TempDir()))
	src := memVolume(t, "Ångström µ", []int64{2, 3, 4}, volume.Uint8, nil)
	const url = "/data/Ångström µ/😀.tif"
	opt := WriteOptions{Chunks: []int64{2, 2, 2}, Attributes: map[string]any{"imgdataset_source": map[string]any{"url": url}}}
	if err := WriteNGFF(ctx, st, "img.zarr", src, opt); err != nil {
		t.Fatal(err)
	}
	b, err := st.ReadAll(ctx, "img.zarr/.zattrs", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range b {
		if c >= 0x80 {
			t.Fatalf(".zattrs byte %d is not ASCII: %s", i, b)
		}
	}
	var attrs struct {
		Source      map[string]string `json:"imgdataset_source"`
		Multiscales []any             `json:"multiscales"`
	}
	if err := json.Unmarshal(b, &attrs); err != nil {
		t.Fatal(err)
	}
	if attrs.Source["url"] != url || len(attrs.Multiscales) != 1 {
		t.Errorf(".zattrs reads back source %q, %d multiscales", attrs.Source["url"], len(attrs.Multiscales))
	}
}

// Chunks whose bytes are one run of the written region are encoded from the
// caller's buffer without a copy; the result must be the same as through the
// padded copy, for whole chunks, slabs, boxes that split rows and edge
// chunks, and the caller's buffer must be left as it was.
func TestWriteRegionDirect(t *testing.T) {
	shape := []int64{10, 8, 6}
	chunks := []int64{4, 4, 6}
	want := pattern(volume.Prod(shape), volume.Uint16)
	boxes := map[string][]volume.Box{
		"whole chunks one by one": {
			{Start: []int64{0, 0, 0}, Stop: []int64{4, 4, 6}}, {Start: []int64{0, 4, 0}, Stop: []int64{4, 8, 6}},
			{Start: []int64{4, 0, 0}, Stop: []int64{8, 4, 6}}, {Start: []int64{4, 4, 0}, Stop: []int64{8, 8, 6}},
			{Start: []int64{8, 0, 0}, Stop: []int64{10, 4, 6}}, {Start: []int64{8, 4, 0}, Stop: []int64{10, 8, 6}},
		},
		"slabs spanning y and x":  {{Start: []int64{0, 0, 0}, Stop: []int64{8, 8, 6}}, {Start: []int64{8, 0, 0}, Stop: []int64{10, 8, 6}}},
		"everything in one write": {volume.Full(shape)},
		"columns of chunks": {
			{Start: []int64{0, 0, 0}, Stop: []int64{10, 4, 6}}, {Start: []int64{0, 4, 0}, Stop: []int64{10, 8, 6}},
		},
	}
	for name, bs := range boxes {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			st := store.New(store.NewFile(dir))
			info := volume.Info{Name: "a", Shape: shape, DType: volume.Uint16, Axes: defaultAxes(shape, nil), Chunks: chunks}
			w, err := CreateArray(context.Background(), st, "a", info, WriteOptions{Chunks: chunks})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				src := make([]byte, b.NumElements()*2)
				volume.CopyBox(src, b, want, volume.Full(shape), b, 2)
				keep := bytes.Clone(src)
				if err := w.WriteRegion(context.Background(), b, src); err != nil {
					t.Fatalf("WriteRegion(%v): %v", b, err)
				}
				if !bytes.Equal(src, keep) {
					t.Fatalf("WriteRegion(%v) changed the caller's buffer", b)
				}
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			v := openOne(t, st, "a")
			got := make([]byte, len(want))
			if err := v.ReadRegion(context.Background(), volume.Full(shape), got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Error("read back differs from what was written")
			}
		})
	}
}
