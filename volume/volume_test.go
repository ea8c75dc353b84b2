package volume_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

func memInfo(shape []int64, dt volume.DType) volume.Info {
	axes := make([]volume.Axis, len(shape))
	names := []string{"z", "y", "x"}
	for i, s := range shape {
		axes[i] = volume.Axis{Name: names[len(names)-len(shape)+i], Size: s, Scale: 1}
	}
	return volume.Info{Name: "mem", Shape: shape, DType: dt, Axes: axes}
}

func randBytes(n int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMemConformance(t *testing.T) {
	for _, tc := range []struct {
		shape []int64
		dt    volume.DType
	}{
		{[]int64{7, 13, 5}, volume.Uint8},
		{[]int64{3, 4, 9}, volume.Int16},
		{[]int64{31}, volume.Float64},
		{[]int64{2, 3}, volume.RGBA8},
	} {
		in := memInfo(tc.shape, tc.dt)
		data := randBytes(in.NumBytes(), 3)
		m, err := volume.NewMem(in, data)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(string(tc.dt), func(t *testing.T) { volumetest.Run(t, m, data, 0) })
	}
}

func TestCopyCropBounded(t *testing.T) {
	src, _ := volume.NewMem(memInfo([]int64{20, 30, 40}, volume.Uint16), randBytes(20*30*40*2, 9))
	dstInfo := memInfo([]int64{5, 11, 17}, volume.Uint16)
	dstInfo.Chunks = []int64{2, 4, 8}
	dst, _ := volume.NewMem(dstInfo, make([]byte, dstInfo.NumBytes()))
	origin := []int64{3, 7, 20}
	var last int64
	if err := volume.Copy(context.Background(), dst, src, volume.CopyOptions{Origin: origin, BudgetBytes: 1024, Progress: func(d, _ int64) { last = d }}); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, dstInfo.NumBytes())
	if err := src.ReadRegion(context.Background(), volume.NewBox(origin, dstInfo.Shape), want); err != nil {
		t.Fatal(err)
	}
	if string(want) != string(dst.Bytes()) {
		t.Fatal("crop differs from the source region")
	}
	if last != dstInfo.NumBytes() {
		t.Fatalf("progress reported %d bytes, want %d", last, dstInfo.NumBytes())
	}
	if err := volume.Copy(context.Background(), dst, src, volume.CopyOptions{Origin: []int64{16, 0, 0}}); err == nil {
		t.Fatal("crop past the source end succeeded")
	}
}

func TestToNanometres(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want float64
		ok   bool
	}{
		{0.02, "µm", 20, true}, {0.02, `\u00B5m`, 20, true}, {0.02, "micron", 20, true},
		{80, "Å", 8, true}, {8e-9, "m", 8, true}, {50, "nm", 50, true}, {2.96, "nanometer", 2.96, true},
		{1, "", 0, false}, {1, "parsec-ish", 0, false},
	} {
		got, ok := volume.ToNanometres(tc.v, tc.unit)
		if ok != tc.ok || (ok && (got-tc.want > 1e-9 || tc.want-got > 1e-9)) {
			t.Errorf("ToNanometres(%v, %q) = %v, %v; want %v, %v", tc.v, tc.unit, got, ok, tc.want, tc.ok)
		}
	}
}

func TestGridClipsEdges(t *testing.T) {
	var regions []volume.Box
	err := volume.Grid([]int64{5, 7}, []int64{2, 4}, volume.Full([]int64{5, 7}), func(_ []int64, r volume.Box) error {
		regions = append(regions, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) != 6 {
		t.Fatalf("got %d cells, want 6", len(regions))
	}
	last := regions[len(regions)-1]
	if last.Start[0] != 4 || last.Stop[0] != 5 || last.Start[1] != 4 || last.Stop[1] != 7 {
		t.Fatalf("last cell %v, want [4:5,4:7]", last)
	}
}

func TestWindowAndStackConform(t *testing.T) {
	in := memInfo([]int64{6, 7, 8}, volume.Uint8)
	for i := range in.Axes {
		in.Axes[i].Scale = 2
	}
	data := randBytes(in.NumBytes(), 5)
	src, _ := volume.NewMem(in, data)
	w, err := volume.Window(src, []int64{1, 2, 3}, []int64{4, 5, 2})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 4*5*2)
	_ = src.ReadRegion(context.Background(), volume.NewBox([]int64{1, 2, 3}, []int64{4, 5, 2}), want)
	if off := w.Info().Axes[2].Offset; off != 6 {
		t.Fatalf("window x offset %v, want 6 (3 voxels × 2)", off)
	}
	t.Run("window", func(t *testing.T) { volumetest.Run(t, w, want, 0) })

	p := memInfo([]int64{3, 4}, volume.Int16)
	var parts []volume.Volume
	var all []byte
	for i := 0; i < 5; i++ {
		d := randBytes(p.NumBytes(), uint64(10+i))
		m, _ := volume.NewMem(p, d)
		parts = append(parts, m)
		all = append(all, d...)
	}
	s, err := volume.Stack("s", parts, volume.Axis{Name: "z", Scale: 50, Unit: "nm", ScaleKnown: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("stack", func(t *testing.T) { volumetest.Run(t, s, all, 0) })
}

type recordingVolume struct {
	volume.Volume
	info  volume.Info
	boxes chan volume.Box
}

func (r *recordingVolume) Info() volume.Info { return r.info }

func (r *recordingVolume) ReadRegion(ctx context.Context, b volume.Box, dst []byte) error {
	r.boxes <- b
	return r.Volume.ReadRegion(ctx, b, dst)
}

// Checksum16 must not split a chunk between slabs (that decodes it twice).
func TestChecksumSlabsFollowChunks(t *testing.T) {
	in := memInfo([]int64{40, 16, 16}, volume.Uint8)
	data := randBytes(in.NumBytes(), 2)
	m, _ := volume.NewMem(in, data)
	ref, _ := volume.Checksum16(context.Background(), m, 0)
	rin := in
	rin.Chunks = []int64{8, 16, 16}
	rv := &recordingVolume{Volume: m, info: rin, boxes: make(chan volume.Box, 100)}
	// Budget for 11 planes per slab (two slabs in flight): rounded down to 8.
	got, err := volume.Checksum16(context.Background(), rv, 2*11*16*16)
	if err != nil {
		t.Fatal(err)
	}
	if got != ref {
		t.Fatalf("checksum %s, want %s", got, ref)
	}
	close(rv.boxes)
	for b := range rv.boxes {
		if b.Start[0]%8 != 0 || (b.Stop[0]%8 != 0 && b.Stop[0] != 40) {
			t.Errorf("slab %v splits a chunk of 8", b)
		}
	}
}

func TestEach(t *testing.T) {
	var got [][]int64
	collect := func(idx []int64) error { got = append(got, append([]int64(nil), idx...)); return nil }
	if err := volume.Each(volume.Box{Start: []int64{1, 5}, Stop: []int64{3, 7}}, collect); err != nil {
		t.Fatal(err)
	}
	want := [][]int64{{1, 5}, {1, 6}, {2, 5}, {2, 6}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("C order: got %v, want %v", got, want)
	}
	got = nil
	volume.Each(volume.Box{Start: []int64{0, 2}, Stop: []int64{4, 2}}, collect)
	if len(got) != 0 {
		t.Errorf("empty box visited %v", got)
	}
	got = nil
	volume.Each(volume.Box{}, collect)
	if len(got) != 1 || len(got[0]) != 0 {
		t.Errorf("zero rank: %v, want one empty index", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := volume.Each(volume.NewBox([]int64{0, 0}, []int64{3, 3}), func([]int64) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("error not returned at once: %v after %d calls", err, n)
	}
}

func TestAsFindsThroughViews(t *testing.T) {
	m, err := volume.NewMem(memInfo([]int64{4, 4}, volume.Uint8), make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	w, err := volume.Window(m, []int64{1, 1}, []int64{2, 2})
	if err != nil {
		t.Fatal(err)
	}
	v := volume.Reframe(w, volume.Frame{VoxelNM: [3]float64{0, 4, 4}, Source: "test"})
	want := make([]byte, 4) // the window of a zero Mem
	t.Run("reframed window", func(t *testing.T) { volumetest.Run(t, v, want, 0) })
	if got, ok := volume.As[*volume.Mem](v); !ok || got != m {
		t.Fatalf("As[*Mem] through a reframed window = %v, %v; want the Mem", got, ok)
	}
	st, err := volume.Stack("s", []volume.Volume{m, m}, volume.Axis{Name: "z", Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := volume.As[*volume.Mem](st); ok {
		t.Fatal("As[*Mem] found a Mem through a stack, which changes the voxels' meaning")
	}
}

func TestFixedStringDTypes(t *testing.T) {
	cases := []struct {
		dt       volume.DType
		kind     byte
		n, size  int
		isString bool
	}{
		{"<U13", 'U', 13, 52, true},
		{"|S5", 'S', 5, 5, true},
		{"|S1048576", 'S', volume.MaxStringChars, volume.MaxStringChars, true},
		{"<U1048577", 0, 0, 0, false}, // over MaxStringChars
		{">U13", 0, 0, 0, false},      // volumes are little-endian
		{"|U13", 0, 0, 0, false},
		{"<S5", 0, 0, 0, false},
		{"|S0", 0, 0, 0, false},
		{"|S-1", 0, 0, 0, false},
		{"|S05", 0, 0, 0, false}, // not how numpy spells it
		{"|S", 0, 0, 0, false},
		{"<U99999999999999999999", 0, 0, 0, false},
		{volume.Uint16, 0, 0, 2, false},
		{volume.RGBA8, 0, 0, 4, false},
	}
	for _, c := range cases {
		kind, n, ok := c.dt.FixedString()
		if ok != c.isString || kind != c.kind || n != c.n {
			t.Errorf("%q.FixedString() = %q %d %v, want %q %d %v", c.dt, kind, n, ok, c.kind, c.n, c.isString)
		}
		if got := c.dt.Size(); got != c.size {
			t.Errorf("%q.Size() = %d, want %d", c.dt, got, c.size)
		}
		if ok && volume.FixedString(kind, n) != c.dt {
			t.Errorf("FixedString(%q, %d) = %q, want %q", kind, n, volume.FixedString(kind, n), c.dt)
		}
		if _, isNum := c.dt.Value(make([]byte, max(c.size, 8))); c.isString && isNum {
			t.Errorf("%q has a numeric Value", c.dt)
		}
	}
	for _, bad := range []struct {
		kind byte
		n    int
	}{{'U', 0}, {'S', volume.MaxStringChars + 1}, {'O', 3}} {
		if d := volume.FixedString(bad.kind, bad.n); d != "" {
			t.Errorf("FixedString(%q, %d) = %q, want \"\"", bad.kind, bad.n, d)
		}
	}
}
