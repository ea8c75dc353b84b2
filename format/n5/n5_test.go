package n5

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// memVolume builds an in-memory volume whose elements are distinct and whose
// bytes differ in every position, so transposed or byte-swapped reads fail.
func memVolume(t testing.TB, dt volume.DType, shape []int64) *volume.Mem {
	t.Helper()
	n := volume.Prod(shape)
	elem := dt.Size()
	data := make([]byte, n*int64(elem))
	for i := int64(0); i < n; i++ {
		b := data[i*int64(elem):]
		switch dt {
		case volume.Float32:
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(i)*1.5-7))
		case volume.Float64:
			binary.LittleEndian.PutUint64(b, math.Float64bits(float64(i)*1.5-7))
		default:
			v := uint64(i)*0x9E3779B97F4A7C15 + 0x0102030405060708
			for k := 0; k < elem; k++ {
				b[k] = byte(v >> (8 * k))
			}
		}
	}
	axes := make([]volume.Axis, len(shape))
	for i, s := range shape {
		name := "t"
		if k := 3 - len(shape) + i; k >= 0 {
			name = []string{"z", "y", "x"}[k]
		}
		axes[i] = volume.Axis{Name: name, Size: s, Scale: 1}
	}
	m, err := volume.NewMem(volume.Info{Name: "src", Shape: shape, DType: dt, Axes: axes}, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileStore(t testing.TB) (*store.Store, string) {
	dir := t.TempDir()
	return store.New(store.NewFile(dir)), dir
}

func openOne(t testing.TB, st *store.Store, key string) volume.Volume {
	t.Helper()
	vs, err := Format{}.Open(context.Background(), st, key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	if len(vs) != 1 {
		t.Fatalf("Open(%q): %d volumes, want 1", key, len(vs))
	}
	return vs[0]
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		dt    volume.DType
		shape []int64
		block []int64
		comp  string
	}{
		{"uint8-3d-edges-gzip", volume.Uint8, []int64{7, 13, 10}, []int64{3, 5, 4}, "gzip"},
		{"int16-2d-raw", volume.Int16, []int64{9, 11}, []int64{4, 4}, "raw"},
		{"float32-3d-gzip", volume.Float32, []int64{5, 6, 7}, []int64{2, 4, 7}, "gzip"},
		{"uint64-3d-raw-one-block", volume.Uint64, []int64{3, 4, 5}, []int64{8, 8, 8}, "raw"},
		{"uint16-1d", volume.Uint16, []int64{100}, []int64{7}, ""},
		{"float64-4d", volume.Float64, []int64{2, 3, 4, 5}, []int64{1, 2, 3, 2}, "gzip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _ := fileStore(t)
			src := memVolume(t, c.dt, c.shape)
			ctx := context.Background()
			if err := Write(ctx, st, "data/vol", src, WriteOptions{BlockSize: c.block, Compression: c.comp}); err != nil {
				t.Fatal(err)
			}
			v := openOne(t, st, "data/vol")
			in := v.Info()
			if in.Name != "data/vol" || in.DType != c.dt {
				t.Errorf("Info: name %q dtype %s", in.Name, in.DType)
			}
			for i := range c.block {
				if in.Chunks[i] != c.block[i] {
					t.Errorf("Chunks %v, want %v", in.Chunks, c.block)
				}
			}
			if in.Axes[len(in.Axes)-1].Name != "x" || in.Axes[len(in.Axes)-1].ScaleKnown {
				t.Errorf("last axis %+v: want x without calibration", in.Axes[len(in.Axes)-1])
			}
			volumetest.Run(t, v, src.Bytes(), 0)
		})
	}
}

func TestWriteTruncatesEdgeBlocks(t *testing.T) {
	st, dir := fileStore(t)
	src := memVolume(t, volume.Uint8, []int64{5, 7})
	if err := Write(context.Background(), st, "a", src, WriteOptions{BlockSize: []int64{4, 4}, Compression: "raw"}); err != nil {
		t.Fatal(err)
	}
	// Block (x=1, y=1) covers x 4..6 and y 4..4: 3×1 in N5 order.
	b, err := os.ReadFile(filepath.Join(dir, "a", "1", "1"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1}
	if string(b[:12]) != string(want) || len(b) != 12+3 {
		t.Errorf("edge block header % x (len %d), want % x + 3 bytes", b[:12], len(b), want)
	}
	var root map[string]any
	rb, err := os.ReadFile(filepath.Join(dir, "attributes.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rb, &root); err != nil || root["n5"] != Version {
		t.Errorf("root attributes %s: %v", rb, err)
	}
}

func TestMissingBlocksReadZero(t *testing.T) {
	st, dir := fileStore(t)
	src := memVolume(t, volume.Int16, []int64{6, 10})
	if err := Write(context.Background(), st, "", src, WriteOptions{BlockSize: []int64{4, 4}}); err != nil {
		t.Fatal(err)
	}
	// Remove block x=1,y=0 (C rows 0..3, columns 4..7) and x=2,y=1.
	for _, k := range []string{"1/0", "2/1"} {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(k))); err != nil {
			t.Fatal(err)
		}
	}
	want := append([]byte(nil), src.Bytes()...)
	for r := 0; r < 6; r++ {
		for c := 0; c < 10; c++ {
			if (r < 4 && c >= 4 && c < 8) || (r >= 4 && c >= 8) {
				want[2*(r*10+c)], want[2*(r*10+c)+1] = 0, 0
			}
		}
	}
	v := openOne(t, st, "")
	volumetest.Run(t, v, want, 0)
}

func TestCalibration(t *testing.T) {
	st, dir := fileStore(t)
	write := func(key, s string) {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ds := `"dataType":"uint8","blockSize":[4,4,4],"compression":{"type":"raw"}`
	// N5 Viewer / n5-spark: per-scale pixelResolution + downsamplingFactors.
	write("viewer/attributes.json", `{"n5":"2.5.1"}`)
	write("viewer/s0/attributes.json", `{`+ds+`,"dimensions":[40,20,10],"pixelResolution":{"unit":"nm","dimensions":[4,5,6]}}`)
	write("viewer/s1/attributes.json", `{`+ds+`,"dimensions":[20,10,5],"downsamplingFactors":[2,2,2],"pixelResolution":{"unit":"nm","dimensions":[4,5,6]}}`)
	// Legacy root scales + pixelResolution.
	write("legacy/attributes.json", `{"scales":[[1,1,1],[2,2,1]],"pixelResolution":{"unit":"um","dimensions":[0.1,0.1,0.2]}}`)
	write("legacy/s0/attributes.json", `{`+ds+`,"dimensions":[8,8,8]}`)
	write("legacy/s1/attributes.json", `{`+ds+`,"dimensions":[4,4,8]}`)
	// tensorstore / Neuroglancer: resolution + units + axes on the dataset.
	write("ts/attributes.json", `{`+ds+`,"dimensions":[3,4,5],"resolution":[8,9,10],"units":["nm","nm","um"],"axes":["a","b","c"]}`)
	// No calibration at all.
	write("bare/attributes.json", `{`+ds+`,"dimensions":[3,4,5]}`)

	type ax struct {
		name   string
		scale  float64
		offset float64
		unit   string
		known  bool
	}
	cases := []struct {
		key   string
		level int // index into the returned volumes
		shape []int64
		axes  []ax
		md    map[string]any
	}{
		{"viewer", 0, []int64{10, 20, 40}, []ax{{"z", 6, 0, "nm", true}, {"y", 5, 0, "nm", true}, {"x", 4, 0, "nm", true}}, map[string]any{"level": 0, "n5_version": "2.5.1"}},
		{"viewer", 1, []int64{5, 10, 20}, []ax{{"z", 12, 3, "nm", true}, {"y", 10, 2.5, "nm", true}, {"x", 8, 2, "nm", true}}, map[string]any{"level": 1}},
		{"legacy", 1, []int64{8, 4, 4}, []ax{{"z", 0.2, 0, "um", true}, {"y", 0.2, 0.05, "um", true}, {"x", 0.2, 0.05, "um", true}}, nil},
		{"ts", 0, []int64{5, 4, 3}, []ax{{"c", 10, 0, "um", true}, {"b", 9, 0, "nm", true}, {"a", 8, 0, "nm", true}}, nil},
		{"bare", 0, []int64{5, 4, 3}, []ax{{"z", 1, 0, "", false}, {"y", 1, 0, "", false}, {"x", 1, 0, "", false}}, nil},
		{"viewer/s1", 0, []int64{5, 10, 20}, []ax{{"z", 12, 3, "nm", true}, {"y", 10, 2.5, "nm", true}, {"x", 8, 2, "nm", true}}, nil},
	}
	ctx := context.Background()
	for _, c := range cases {
		vs, err := Format{}.Open(ctx, st, c.key)
		if err != nil {
			t.Fatalf("Open(%q): %v", c.key, err)
		}
		if c.level >= len(vs) {
			t.Fatalf("Open(%q): %d volumes", c.key, len(vs))
		}
		in := vs[c.level].Info()
		if len(in.Shape) != len(c.shape) {
			t.Fatalf("%s[%d]: shape %v, want %v", c.key, c.level, in.Shape, c.shape)
		}
		for i := range c.shape {
			if in.Shape[i] != c.shape[i] {
				t.Errorf("%s[%d]: shape %v, want %v", c.key, c.level, in.Shape, c.shape)
			}
			got := in.Axes[i]
			w := c.axes[i]
			if got.Name != w.name || math.Abs(got.Scale-w.scale) > 1e-12 || math.Abs(got.Offset-w.offset) > 1e-12 || got.Unit != w.unit || got.ScaleKnown != w.known {
				t.Errorf("%s[%d] axis %d: got %+v, want %+v", c.key, c.level, i, got, w)
			}
		}
		for k, v := range c.md {
			if in.Metadata[k] != v {
				t.Errorf("%s[%d]: metadata %s = %v, want %v", c.key, c.level, k, in.Metadata[k], v)
			}
		}
	}
	// A listing walk of the root finds every dataset, in natural order.
	vs, err := Format{}.Open(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Info().Name)
	}
	if got := strings.Join(names, ","); got != "bare,legacy/s0,legacy/s1,ts,viewer/s0,viewer/s1" {
		t.Errorf("walk found %s", got)
	}
}

func TestWriteCalibrationRoundTrip(t *testing.T) {
	st, _ := fileStore(t)
	src := memVolume(t, volume.Uint8, []int64{2, 3, 4})
	in := src.Info()
	for i, s := range []float64{40, 8, 8} {
		in.Axes[i].Scale, in.Axes[i].Unit, in.Axes[i].ScaleKnown = s, "nm", true
	}
	cal, err := volume.NewMem(in, src.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(context.Background(), st, "c", cal, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := openOne(t, st, "c").Info()
	for i, a := range got.Axes {
		if a.Name != in.Axes[i].Name || a.Scale != in.Axes[i].Scale || a.Unit != "nm" || !a.ScaleKnown || a.Offset != 0 {
			t.Errorf("axis %d: %+v, want %+v", i, a, in.Axes[i])
		}
	}
}

func TestDetect(t *testing.T) {
	st, dir := fileStore(t)
	files := map[string]string{
		"root/attributes.json":        `{"n5":"4.0.0"}`,
		"ds/attributes.json":          `{"dimensions":[1],"blockSize":[1],"dataType":"uint8"}`,
		"ms/s0/attributes.json":       `{"dimensions":[1],"blockSize":[1],"dataType":"uint8"}`,
		"ms/attributes.json":          `{"scales":[[1]]}`,
		"other/attributes.json":       `{"something":"else"}`,
		"broken/attributes.json":      `{`,
		"zarr/.zarray":                `{}`,
		"deep/root/attributes.json":   `{"n5":"2.0.0"}`,
		"deep/root/g/attributes.json": `{}`,
	}
	for k, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		key  string
		head []byte
		want bool
	}{
		{"root", nil, true},
		{"root/attributes.json", []byte(`{"n5":"4.0.0"}`), true},
		{"ds", nil, true},
		{"ms", nil, true},
		{"other", nil, false},
		{"broken", nil, false},
		{"zarr", nil, false},
		{"missing", nil, false},
		{"root", []byte("not a prefix"), false},
		{"zarr/.zarray", []byte(`{}`), false},
	}
	for _, c := range cases {
		if got := (Format{}).Detect(context.Background(), st, c.key, c.head); got != c.want {
			t.Errorf("Detect(%q) = %v, want %v", c.key, got, c.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	cases := []struct {
		name    string
		attrs   string
		notSupp bool
	}{
		{"rank mismatch", `{"dimensions":[4,4],"blockSize":[2],"dataType":"uint8"}`, false},
		{"zero block", `{"dimensions":[4],"blockSize":[0],"dataType":"uint8"}`, false},
		{"negative dim", `{"dimensions":[-1],"blockSize":[1],"dataType":"uint8"}`, false},
		{"huge block", `{"dimensions":[4,4],"blockSize":[65536,65536],"dataType":"uint8"}`, false},
		{"overflowing dims", `{"dimensions":[4294967296,4294967296,4294967296],"blockSize":[1,1,1],"dataType":"uint8"}`, false},
		{"string dims", `{"dimensions":"4","blockSize":[1],"dataType":"uint8"}`, false},
		{"object type", `{"dimensions":[4],"blockSize":[1],"dataType":"object"}`, true},
		{"no compression type", `{"dimensions":[4],"blockSize":[1],"dataType":"uint8","compression":{}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, dir := fileStore(t)
			if err := os.WriteFile(filepath.Join(dir, "attributes.json"), []byte(c.attrs), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Format{}.Open(context.Background(), st, "")
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, format.ErrNotSupported) != c.notSupp {
				t.Errorf("Open: %v; ErrNotSupported = %v, want %v", err, !c.notSupp, c.notSupp)
			}
		})
	}
}

func TestUnknownCompressionFailsOnRead(t *testing.T) {
	st, dir := fileStore(t)
	if err := os.WriteFile(filepath.Join(dir, "attributes.json"),
		[]byte(`{"dimensions":[4],"blockSize":[4],"dataType":"uint8","compression":{"type":"jpeg2000"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0"), []byte{0, 0, 0, 1, 0, 0, 0, 4, 1, 2, 3, 4}, 0o644); err != nil {
		t.Fatal(err)
	}
	v := openOne(t, st, "")
	err := v.ReadRegion(context.Background(), volume.Full(v.Info().Shape), make([]byte, 4))
	if !errors.Is(err, format.ErrNotSupported) || !strings.Contains(err.Error(), `"0"`) {
		t.Errorf("ReadRegion: %v, want ErrNotSupported naming block \"0\"", err)
	}
}

func TestNaturalCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"s9", "s10", -1}, {"s10", "s9", 1}, {"s1", "s1", 0}, {"a/s2", "a/s02", 0}, {"b", "a10", 1}, {"s1", "s1x", -1},
	}
	for _, c := range cases {
		if got := naturalCompare(c.a, c.b); got != c.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
