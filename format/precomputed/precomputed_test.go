package precomputed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	jpegdec "github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

func TestMurmurVectors(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{
		{0, 0x4772b084e028ae41},
		{1, 0xe8bd67d616d4ce9a},
		{42, 0xc20b94f95119f47a},
	} {
		if got := murmurHash64(c.in); got != c.want {
			t.Errorf("murmurHash64(%d) = %#x, want %#x", c.in, got, c.want)
		}
	}
	// The general routine on the empty input with seed 0 is all zeros.
	if a, b, c, d := murmurHash3x86_128(nil, 0); a|b|c|d != 0 {
		t.Errorf("hash of empty input = %x %x %x %x, want 0", a, b, c, d)
	}
}

func TestCompressedMorton(t *testing.T) {
	for _, c := range []struct {
		grid, g [3]int64
		want    uint64
	}{
		{[3]int64{2, 2, 2}, [3]int64{1, 0, 1}, 5},
		{[3]int64{2, 2, 2}, [3]int64{1, 1, 1}, 7},
		// grid (4,1,2): output bits are x0, z0, x1.
		{[3]int64{4, 1, 2}, [3]int64{1, 0, 0}, 1},
		{[3]int64{4, 1, 2}, [3]int64{0, 0, 1}, 2},
		{[3]int64{4, 1, 2}, [3]int64{2, 0, 0}, 4},
		{[3]int64{4, 1, 2}, [3]int64{3, 0, 1}, 7},
		{[3]int64{1, 1, 1}, [3]int64{0, 0, 0}, 0},
		// Unequal bit counts: x has 3 bits, y 1, z 0 → x0 y0 x1 x2.
		{[3]int64{8, 2, 1}, [3]int64{5, 1, 0}, 0b1011},
	} {
		if got := compressedMorton(c.g, mortonBits(c.grid)); got != c.want {
			t.Errorf("morton(grid %v, g %v) = %b, want %b", c.grid, c.g, got, c.want)
		}
	}
	if b := mortonBits([3]int64{1, 2, 5}); b != [3]int{0, 1, 3} {
		t.Errorf("mortonBits = %v", b)
	}
}

func TestShardLocate(t *testing.T) {
	for _, c := range []struct {
		bits int
		sh   uint64
		want string
	}{
		{0, 0, "0.shard"},
		{1, 1, "1.shard"},
		{4, 0xa, "a.shard"},
		{5, 0x1f, "1f.shard"},
		{15, 0x2a, "002a.shard"},
		{64, 0xabc, "0000000000000abc.shard"},
	} {
		if got := shardName(c.sh, c.bits); got != c.want {
			t.Errorf("shardName(%#x, %d) = %q, want %q", c.sh, c.bits, got, c.want)
		}
	}
	id := uint64(0xfedcba9876543210)
	for _, c := range []struct {
		spec           Sharding
		wantSh, wantMi uint64
	}{
		{Sharding{Hash: "identity", PreshiftBits: 4, MinishardBits: 8, ShardBits: 8}, 0x43, 0x21},
		{Sharding{Hash: "identity", PreshiftBits: 64, MinishardBits: 8, ShardBits: 8}, 0, 0},
		{Sharding{Hash: "identity", PreshiftBits: 0, MinishardBits: 0, ShardBits: 64}, id, 0},
		{Sharding{Hash: "identity", PreshiftBits: 0, MinishardBits: 64, ShardBits: 0}, 0, id},
		{Sharding{Hash: "murmurhash3_x86_128", PreshiftBits: 0, MinishardBits: 4, ShardBits: 8},
			(0xc20b94f95119f47a >> 4) & 0xff, 0xc20b94f95119f47a & 0xf},
	} {
		s := &sharder{spec: c.spec}
		in := id
		if c.spec.Hash != "identity" {
			in = 42
		}
		sh, mi := s.locate(in)
		if sh != c.wantSh || mi != c.wantMi {
			t.Errorf("%+v: locate = shard %#x minishard %#x, want %#x %#x", c.spec, sh, mi, c.wantSh, c.wantMi)
		}
	}
}

// Test volume geometry: x 50, y 45, z 37 with chunks 16×12×8 gives a 4×4×5
// grid with truncated edge chunks on every axis.
var (
	testShape = []int64{37, 45, 50} // z, y, x
	testChunk = [3]int64{16, 12, 8}
)

func makeSource(t *testing.T, dt volume.DType, nc int, smooth bool) *volume.Mem {
	t.Helper()
	shape := testShape
	if nc > 1 {
		shape = append([]int64{int64(nc)}, shape...)
	}
	info := volume.Info{Name: "src", Shape: shape, DType: dt}
	for i, s := range shape {
		info.Axes = append(info.Axes, volume.Axis{Name: []string{"z", "y", "x"}[(i+3-len(shape)+3)%3], Size: s, Scale: 1})
	}
	es := dt.Size()
	n := volume.Prod(shape)
	b := make([]byte, n*int64(es))
	rng := rand.New(rand.NewPCG(3, 4))
	zyx := volume.Prod(testShape)
	for i := int64(0); i < n; i++ {
		c, p := i/zyx, i%zyx
		z, y, x := p/(45*50), p/50%45, p%50
		var v uint64
		switch {
		case smooth:
			v = uint64(20 + x + y + z + c*30 + int64(rng.IntN(3)))
		case dt == volume.Uint32 || dt == volume.Uint64:
			v = uint64(x/5 + (y/7)*13 + (z/3)*101 + c*7)
			if dt == volume.Uint64 {
				v += 1 << 40
			}
		default:
			v = rng.Uint64()
		}
		switch es {
		case 1:
			b[i] = byte(v)
		case 2:
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		case 4:
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		case 8:
			binary.LittleEndian.PutUint64(b[8*i:], v)
		}
	}
	m, err := volume.NewMem(info, b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sharding(hash string, gz bool) *Sharding {
	s := &Sharding{Type: ShardingType, Hash: hash, PreshiftBits: 2, MinishardBits: 2, ShardBits: 2,
		MinishardIndexEncoding: "raw", DataEncoding: "raw"}
	if gz {
		s.MinishardIndexEncoding, s.DataEncoding = "gzip", "gzip"
	}
	return s
}

// writeOpen writes src into a fresh in-memory store under "vol" and opens it
// through detection, as the pipeline would.
func writeOpen(t *testing.T, src volume.Volume, opt WriteOptions) (*memDriver, *store.Store, []volume.Volume) {
	t.Helper()
	ctx := context.Background()
	d := newMem(t)
	st := store.New(d)
	if err := Write(ctx, st, "vol", src, opt); err != nil {
		t.Fatalf("Write: %v", err)
	}
	reg := format.NewRegistry(Format{})
	f, vs, err := reg.Open(ctx, st, "vol")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if f.Name() != "precomputed" {
		t.Fatalf("detected %q", f.Name())
	}
	if len(vs) != max(opt.Scales, 1) {
		t.Fatalf("%d volumes, want %d", len(vs), max(opt.Scales, 1))
	}
	return d, st, vs
}

func TestRoundTrip(t *testing.T) {
	type enc struct {
		name string
		enc  string
		dt   volume.DType
		nc   int
	}
	encs := []enc{
		{"raw-uint8", EncRaw, volume.Uint8, 1},
		{"raw-uint16-2ch", EncRaw, volume.Uint16, 2},
		{"raw-float32", EncRaw, volume.Float32, 1},
		{"png-uint8", EncPNG, volume.Uint8, 1},
		{"png-uint16", EncPNG, volume.Uint16, 1},
		{"png-rgb", EncPNG, volume.Uint8, 3},
		{"cseg-uint32", EncCSeg, volume.Uint32, 1},
		{"cseg-uint64-2ch", EncCSeg, volume.Uint64, 2},
	}
	layouts := []struct {
		name string
		sh   *Sharding
	}{
		{"unsharded", nil},
		{"identity", sharding("identity", false)},
		{"murmur-gzip", sharding("murmurhash3_x86_128", true)},
	}
	for _, e := range encs {
		for _, l := range layouts {
			t.Run(e.name+"/"+l.name, func(t *testing.T) {
				src := makeSource(t, e.dt, e.nc, false)
				opt := WriteOptions{Encoding: e.enc, ChunkSize: testChunk, Sharding: l.sh,
					Resolution: [3]float64{4, 4, 40}, CSBlockSize: [3]int64{8, 4, 3}}
				if e.enc == EncCSeg {
					opt.Type = "segmentation"
				}
				d, _, vs := writeOpen(t, src, opt)
				if l.sh != nil && len(d.keys("vol/4.0x4.0x40.0/")) < 2 {
					t.Fatalf("want ≥ 2 shards, have %v", d.keys("vol/"))
				}
				volumetest.Run(t, vs[0], src.Bytes(), 0)
			})
		}
	}
}

func TestRoundTripJPEG(t *testing.T) {
	for _, impl := range []string{jpegdec.ImplGo, jpegdec.ImplTurbo} {
		t.Run(impl, func(t *testing.T) {
			t.Setenv(jpegdec.EnvVar, impl)
			testRoundTripJPEG(t)
		})
	}
}

func testRoundTripJPEG(t *testing.T) {
	for _, nc := range []int{1, 3} {
		t.Run(fmt.Sprint(nc, "ch"), func(t *testing.T) {
			src := makeSource(t, volume.Uint8, nc, true)
			opt := WriteOptions{Encoding: EncJPEG, JPEGQuality: 95, ChunkSize: testChunk}
			d, _, unsh := writeOpen(t, src, opt)
			opt.Sharding = sharding("identity", true)
			_, _, sh := writeOpen(t, src, opt)

			// Reference 1: every chunk decoded whole by the volume's own
			// decoder and placed by hand. The reader must match it exactly.
			direct := directJPEG(t, d, unsh[0].(*scaleVolume), nc)
			t.Run("exact-unsharded", func(t *testing.T) { volumetest.Run(t, unsh[0], direct, 0) })
			t.Run("exact-sharded", func(t *testing.T) { volumetest.Run(t, sh[0], direct, 0) })
			// Reference 2: the data before JPEG. JPEG is lossy (quantised DCT
			// and, for colour, 4:2:0 chroma subsampling), so the values only
			// come back approximately: on this smooth ramp with ±2 noise at
			// quality 95 Go's codec is off by at most 3 levels (gray) and 4
			// (colour, whose chroma is subsampled 2× in x and y); allow one more.
			tol := 4
			if nc == 3 {
				tol = 5
			}
			t.Run("tolerance", func(t *testing.T) { volumetest.Run(t, sh[0], src.Bytes(), tol) })
			md := sh[0].Info().Metadata
			if md["jpeg_quality"] != 95 || md["encoding"] != "jpeg" || md[volume.MetaJPEGDecoder] != jpegdec.Default().Name() {
				t.Errorf("metadata %v", md)
			}
		})
	}
}

// directJPEG decodes each unsharded chunk object of v whole with v's
// decoder and places its voxels by hand.
func directJPEG(t *testing.T, d *memDriver, v *scaleVolume, nc int) []byte {
	t.Helper()
	n := volume.Prod(testShape)
	out := make([]byte, n*int64(nc))
	forGrid(v, func(g [3]int64) error {
		lo, hi := v.chunkBox(g)
		w, h := hi[0]-lo[0], (hi[1]-lo[1])*(hi[2]-lo[2])
		color := jpegdec.Gray
		if nc == 3 {
			color = jpegdec.RGB
		}
		img := make([]byte, w*h*int64(nc))
		if _, err := v.lay.jpeg.Decode(jpegdec.Dst{Pix: img, Stride: int(w) * nc, Width: int(w), Height: int(h), Color: color}, nil, d.get(v.objectKey(g))); err != nil {
			t.Fatalf("chunk %v: %v", g, err)
		}
		for z := lo[2]; z < hi[2]; z++ {
			for y := lo[1]; y < hi[1]; y++ {
				for x := lo[0]; x < hi[0]; x++ {
					px, py := x-lo[0], (z-lo[2])*(hi[1]-lo[1])+(y-lo[1])
					for c := 0; c < nc; c++ {
						out[int64(c)*n+(z*45+y)*50+x] = img[(py*w+px)*int64(nc)+int64(c)]
					}
				}
			}
		}
		return nil
	})
	return out
}

func TestScalesDownsample(t *testing.T) {
	for _, c := range []struct {
		name  string
		dt    volume.DType
		enc   string
		typ   string // "" lets Write choose from label
		label bool   // the source says it holds labels
		sh    *Sharding
	}{
		{"image-raw", volume.Uint8, EncRaw, "image", false, nil},
		{"image-uint64", volume.Uint64, EncRaw, "image", false, sharding("identity", true)},
		{"image-int16", volume.Int16, EncRaw, "", false, nil},
		{"image-float32", volume.Float32, EncRaw, "image", false, nil},
		{"seg-cseg", volume.Uint32, EncCSeg, "segmentation", false, sharding("murmurhash3_x86_128", false)},
		{"seg-from-label-source", volume.Uint64, EncRaw, "", true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var src volume.Volume = makeSource(t, c.dt, 1, c.dt == volume.Uint8)
			if c.label {
				in := src.Info()
				in.Metadata = map[string]any{volume.MetaIsLabel: true}
				m, err := volume.NewMem(in, src.(*volume.Mem).Bytes())
				if err != nil {
					t.Fatal(err)
				}
				src = m
			}
			opt := WriteOptions{Encoding: c.enc, ChunkSize: testChunk, Scales: 3, Type: c.typ,
				Resolution: [3]float64{8, 8, 8}, VoxelOffset: [3]int64{-3, 5, 0}, Sharding: c.sh}
			_, _, vs := writeOpen(t, src, opt)
			want := src.(*volume.Mem).Bytes()
			shape := slices.Clone(testShape)
			typ, method := "image", volume.Mean
			if c.typ == "segmentation" || (c.typ == "" && c.label) {
				typ, method = "segmentation", volume.Mode
			}
			if got := vs[0].Info().Metadata["type"]; got != typ {
				t.Errorf("info type %v, want %s", got, typ)
			}
			for level, v := range vs {
				in := v.Info()
				if level > 0 {
					// Each scale is volume.Downsample of the scale before, as stored.
					for d := range shape {
						shape[d] = (shape[d] + 1) / 2
					}
					d, err := volume.Downsample(vs[level-1], []int64{2, 2, 2}, method)
					if err != nil {
						t.Fatal(err)
					}
					want = make([]byte, d.Info().NumBytes())
					if err := d.ReadRegion(context.Background(), volume.Full(d.Info().Shape), want); err != nil {
						t.Fatal(err)
					}
				}
				if fmt.Sprint(in.Shape) != fmt.Sprint(shape) {
					t.Fatalf("scale %d shape %v, want %v", level, in.Shape, shape)
				}
				if volume.IsLabel(in) != (typ == "segmentation") {
					t.Errorf("scale %d: is_label %v for type %s", level, in.Metadata[volume.MetaIsLabel], typ)
				}
				f := float64(int(1) << level)
				if in.Axes[0].Scale != 8*f || in.Axes[0].Unit != "nm" || !in.Axes[0].ScaleKnown {
					t.Errorf("scale %d axis z %+v", level, in.Axes[0])
				}
				if got := in.Metadata["downsampling_factor"].([]float64); got[0] != f {
					t.Errorf("scale %d downsampling_factor %v", level, got)
				}
				t.Run(fmt.Sprint("scale", level), func(t *testing.T) { volumetest.Run(t, v, want, 0) })
			}
			// voxel_offset −3 halves to −2 (floor), then −1; the axis offset is in nm.
			if x := vs[2].Info().Axes[2]; x.Offset != -1*32 {
				t.Errorf("scale 2 x offset %v nm, want -32", x.Offset)
			}
		})
	}
}

func TestAbsentChunks(t *testing.T) {
	ctx := context.Background()
	src := makeSource(t, volume.Uint8, 1, false)
	want := bytes.Clone(src.Bytes())
	zero := func(v *scaleVolume, g [3]int64) {
		lo, hi := v.chunkBox(g)
		for z := lo[2]; z < hi[2]; z++ {
			for y := lo[1]; y < hi[1]; y++ {
				clear(want[(z*45+y)*50+lo[0] : (z*45+y)*50+hi[0]])
			}
		}
	}

	t.Run("unsharded", func(t *testing.T) {
		want = bytes.Clone(src.Bytes())
		d, _, vs := writeOpen(t, src, WriteOptions{ChunkSize: testChunk})
		v := vs[0].(*scaleVolume)
		for _, g := range [][3]int64{{0, 0, 0}, {3, 3, 4}, {1, 2, 3}} {
			d.Delete(ctx, v.objectKey(g))
			zero(v, g)
		}
		volumetest.Run(t, v, want, 0)
	})

	t.Run("sharded", func(t *testing.T) {
		want = bytes.Clone(src.Bytes())
		spec := sharding("identity", true)
		d, st, vs := writeOpen(t, src, WriteOptions{ChunkSize: testChunk, Sharding: spec})
		v := vs[0].(*scaleVolume)
		// Rebuild one shard without one of its chunks, and drop another shard.
		var keep []shardChunk
		var dropShard uint64 = 99
		var gone [3]int64
		forGrid(v, func(g [3]int64) error {
			id := compressedMorton(g, v.mbits)
			sh, mi := v.shards.locate(id)
			if sh != 0 {
				if dropShard == 99 && sh == 3 {
					dropShard = sh
				}
				if sh == dropShard {
					zero(v, g)
				}
				return nil
			}
			if id == 5 {
				gone = g
				zero(v, g)
				return nil
			}
			raw, shape, _ := readChunk(ctx, v, src, g)
			data, _ := v.lay.encode(raw, shape, 0)
			keep = append(keep, shardChunk{id: id, mini: mi, data: gzipBytes(data)})
			return nil
		})
		if dropShard == 99 {
			t.Fatal("no chunk falls in shard 3")
		}
		d.put(v.shards.shardKey(0), bytes.Join(buildShard(keep, *spec), nil))
		d.Delete(ctx, v.shards.shardKey(dropShard))
		t.Logf("chunk %v removed from shard 0, shard %d deleted", gone, dropShard)
		// Reopen so no cached minishard hides the change.
		vs2, err := Format{}.Open(ctx, st, "vol")
		if err != nil {
			t.Fatal(err)
		}
		volumetest.Run(t, vs2[0], want, 0)
	})
}

func TestGzipObjectsAndPaddedEdges(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []string{EncRaw, EncCSeg, EncPNG} {
		t.Run(enc, func(t *testing.T) {
			dt := volume.Uint8
			if enc == EncCSeg {
				dt = volume.Uint32
			}
			src := makeSource(t, dt, 1, false)
			d, st, _ := writeOpen(t, src, WriteOptions{Encoding: enc, ChunkSize: testChunk})
			// Store every other chunk gzip-compressed, as a server that keeps
			// Content-Encoding: gzip objects hands them to a ranged reader.
			n := 0
			for _, k := range d.keys("vol/1.0x1.0x1.0/") {
				if n++; n%2 == 0 {
					d.put(k, gzipBytes(d.get(k)))
				}
			}
			vs, err := Format{}.Open(ctx, st, "vol/info")
			if err != nil {
				t.Fatal(err)
			}
			volumetest.Run(t, vs[0], src.Bytes(), 0)
		})
	}
	t.Run("raw-padded-edge", func(t *testing.T) {
		src := makeSource(t, volume.Uint16, 1, false)
		d, st, vs := writeOpen(t, src, WriteOptions{ChunkSize: testChunk})
		v := vs[0].(*scaleVolume)
		g := [3]int64{3, 3, 4} // the far corner: 2×9×5 voxels of a 16×12×8 chunk
		lo, hi := v.chunkBox(g)
		part := d.get(v.objectKey(g))
		full := make([]byte, v.lay.fullBytes())
		w := (hi[0] - lo[0]) * 2
		i := int64(0)
		for z := int64(0); z < hi[2]-lo[2]; z++ {
			for y := int64(0); y < hi[1]-lo[1]; y++ {
				copy(full[(z*12+y)*16*2:], part[i:i+w])
				i += w
			}
		}
		d.put(v.objectKey(g), full)
		vs, err := Format{}.Open(ctx, st, "vol")
		if err != nil {
			t.Fatal(err)
		}
		volumetest.Run(t, vs[0], src.Bytes(), 0)
	})
}

// TestRequestCount counts the range reads of a cold and a warm read: each
// touched shard costs one shard-index read, each touched minishard one index
// read, and the chunk data of a shard one coalesced read, even when the
// chunks lie in different minishards (a box that straddles Morton groups).
func TestRequestCount(t *testing.T) {
	ctx := context.Background()
	info := volume.Info{Name: "src", Shape: []int64{128, 128, 128}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "z", Size: 128}, {Name: "y", Size: 128}, {Name: "x", Size: 128}}}
	b := make([]byte, 128*128*128)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	src, _ := volume.NewMem(info, b)
	// 4³ chunks of 32³; preshift 3 puts each 2³ Morton group in its own
	// minishard, two minishards per shard, four shards.
	spec := &Sharding{Hash: "identity", PreshiftBits: 3, MinishardBits: 1, ShardBits: 2, DataEncoding: "gzip", MinishardIndexEncoding: "gzip"}
	for _, c := range []struct {
		name                  string
		lo, hi                int64
		chunks, shards, minis int64
		wantFirst, wantRepeat int64
	}{
		// Chunks 0..7: one Morton group, one minishard of shard 0.
		{"aligned", 0, 64, 8, 1, 1, 3, 1},
		// Chunks 1..2 on each axis: eight Morton groups, all four shards.
		{"straddling", 32, 96, 8, 4, 8, 4 + 8 + 4, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, _, vs := writeOpen(t, src, WriteOptions{ChunkSize: [3]int64{32, 32, 32}, Sharding: spec})
			box := volume.NewBox([]int64{c.lo, c.lo, c.lo}, []int64{c.hi - c.lo, c.hi - c.lo, c.hi - c.lo})
			got := make([]byte, box.NumElements())
			d.resetCounts()
			if err := vs[0].ReadRegion(ctx, box, got); err != nil {
				t.Fatal(err)
			}
			first := d.reads.Load()
			want := make([]byte, len(got))
			volume.CopyBox(want, box, b, volume.Full(info.Shape), box, 1)
			if !bytes.Equal(got, want) {
				t.Fatal("data differs")
			}
			if limit := c.chunks + 2*c.shards; first > limit {
				t.Errorf("%d range reads for %d chunks in %d shards, over the limit %d", first, c.chunks, c.shards, limit)
			}
			if first != c.wantFirst {
				t.Errorf("%d range reads, want %d (%d shard indexes, %d minishard indexes, one data read per shard)",
					first, c.wantFirst, c.shards, c.minis)
			}
			if r := d.reads16.Load(); r != 0 {
				t.Errorf("%d 16-byte index-entry reads, want 0 (shard index read whole)", r)
			}
			d.resetCounts()
			if err := vs[0].ReadRegion(ctx, box, got); err != nil {
				t.Fatal(err)
			}
			if r := d.reads.Load(); r != c.wantRepeat {
				t.Errorf("repeat read: %d range reads, want %d (indexes cached, one data read per shard)", r, c.wantRepeat)
			}
		})
	}
}

// TestSharedIndexFetch: many concurrent readers of a cold volume, one chunk
// each, read each shard index and each minishard index once. Above the
// whole-index size limit the shard index is read entry by entry, once per
// minishard.
func TestSharedIndexFetch(t *testing.T) {
	ctx := context.Background()
	src := makeSource(t, volume.Uint8, 1, false)
	d, st, _ := writeOpen(t, src, WriteOptions{ChunkSize: testChunk, Sharding: sharding("identity", false)})
	for _, c := range []struct {
		name          string
		wholeIndexMax int64
	}{
		{"whole-index", maxShardIndexBytes},
		{"entry-by-entry", 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			vs, err := Format{}.Open(ctx, st, "vol")
			if err != nil {
				t.Fatal(err)
			}
			v := vs[0].(*scaleVolume)
			v.shards.wholeIndexMax = c.wholeIndexMax
			v.spare = nil // read-ahead off: one data read per chunk
			shards := map[uint64]bool{}
			minis := map[[2]uint64]bool{}
			var cells [][3]int64
			for z := int64(0); z < v.grid[2]; z++ {
				for y := int64(0); y < v.grid[1]; y++ {
					for x := int64(0); x < v.grid[0]; x++ {
						g := [3]int64{x, y, z}
						sh, mi := v.shards.locate(compressedMorton(g, v.mbits))
						shards[sh] = true
						minis[[2]uint64{sh, mi}] = true
						cells = append(cells, g)
					}
				}
			}
			if len(shards) < 2 || len(minis) <= len(shards) {
				t.Fatalf("test volume has %d shards and %d minishards; want several of each", len(shards), len(minis))
			}
			d.resetCounts()
			start := make(chan struct{})
			var wg sync.WaitGroup
			for _, g := range cells {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					lo, hi := v.chunkBox(g)
					box := volume.NewBox([]int64{lo[2], lo[1], lo[0]}, []int64{hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]})
					if err := v.ReadRegion(ctx, box, make([]byte, box.NumElements())); err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			n := int64(len(cells))
			whole := 0
			for sh := range shards {
				k := v.shards.shardKey(sh)
				r := d.rangeReads(k, 0, v.shards.indexEnd())
				whole += r
				if c.wholeIndexMax >= v.shards.indexEnd() && r != 1 {
					t.Errorf("shard %s: index read %d times, want 1", k, r)
				}
			}
			wantReads := n + int64(len(shards)) + int64(len(minis))
			want16 := int64(0)
			if c.wholeIndexMax < v.shards.indexEnd() {
				if whole != 0 {
					t.Errorf("%d whole shard-index reads above the size limit", whole)
				}
				wantReads = n + 2*int64(len(minis))
				want16 = int64(len(minis))
			}
			if r := d.reads16.Load(); r != want16 {
				t.Errorf("%d 16-byte index-entry reads, want %d", r, want16)
			}
			if r := d.reads.Load(); r != wantReads {
				t.Errorf("%d range reads for %d chunks in %d shards / %d minishards, want %d",
					r, n, len(shards), len(minis), wantReads)
			}
		})
	}
}

func TestCorruptShard(t *testing.T) {
	ctx := context.Background()
	src := makeSource(t, volume.Uint8, 1, false)
	spec := sharding("identity", false)
	for _, c := range []struct {
		name  string
		patch func(b []byte) []byte
		want  string
	}{
		{"index-start-after-end", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[0:], 1000)
			binary.LittleEndian.PutUint64(b[8:], 10)
			return b
		}, "corrupt shard index"},
		{"index-past-eof", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[0:], 1<<30)
			binary.LittleEndian.PutUint64(b[8:], 1<<30+48)
			return b
		}, "read minishard 0 index"},
		{"index-not-24", func(b []byte) []byte {
			end := binary.LittleEndian.Uint64(b[8:])
			binary.LittleEndian.PutUint64(b[8:], end-1)
			return b
		}, "not a multiple of 24"},
		{"chunk-offset-past-eof", func(b []byte) []byte {
			// First chunk's start delta (row 1) of minishard 0 jumps past the end.
			start := 64 + binary.LittleEndian.Uint64(b[0:])
			end := 64 + binary.LittleEndian.Uint64(b[8:])
			n := (end - start) / 24
			binary.LittleEndian.PutUint64(b[start+8*n:], 1<<20)
			return b
		}, "read chunk data"},
		{"truncated-index", func(b []byte) []byte { return b[:10] }, "read shard index"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, st, _ := writeOpen(t, src, WriteOptions{ChunkSize: testChunk, Sharding: spec})
			key := "vol/1.0x1.0x1.0/0.shard"
			d.put(key, c.patch(bytes.Clone(d.get(key))))
			vs, err := Format{}.Open(ctx, st, "vol")
			if err != nil {
				t.Fatal(err)
			}
			err = vs[0].ReadRegion(ctx, volume.Full(testShape), make([]byte, volume.Prod(testShape)))
			if !errors.Is(err, format.ErrCorrupt) {
				t.Fatalf("corrupt shard read: %v, want format.ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q should name %q and say %q", err, key, c.want)
			}
		})
	}
}

func TestWireSampleInfo(t *testing.T) {
	ctx := context.Background()
	b := readShared(t, "docs/wire-samples/janelia-jpeg-sharded-info.dvid-test-fixture.json")
	// The real hemibrain clahe_yz info carries no data_encoding: it defaults to raw.
	b = bytes.Replace(b, []byte(`"data_encoding": "gzip",`), nil, 1)
	d := newMem(t)
	d.put("em/info", b)
	st := store.New(d)
	if !(Format{}).Detect(ctx, st, "em", nil) {
		t.Fatal("prefix not detected")
	}
	vs, err := Format{}.Open(ctx, st, "em")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 8 {
		t.Fatalf("%d scales", len(vs))
	}
	in := vs[1].Info()
	if in.Name != "8_8_8" || fmt.Sprint(in.Shape) != "[4752 4643 5502]" || in.DType != volume.Uint8 {
		t.Errorf("scale 1: %s %v %s", in.Name, in.Shape, in.DType)
	}
	if in.Axes[2].Name != "x" || in.Axes[2].Scale != 8 || in.Axes[2].Unit != "nm" {
		t.Errorf("axes %+v", in.Axes)
	}
	sh := vs[0].Info().Metadata["sharding"].(map[string]any)
	if sh["data_encoding"] != "raw" || sh["preshift_bits"] != 9 || sh["shard_bits"] != 15 {
		t.Errorf("scale 0 sharding %v", sh)
	}
	if vs[0].Info().Compression != "jpeg" || vs[1].Info().Compression != "jpeg+gzip" {
		t.Errorf("compression %q / %q", vs[0].Info().Compression, vs[1].Info().Compression)
	}
	// No shard objects: everything reads as zeros, with one shard-index probe per shard.
	box := volume.NewBox([]int64{100, 100, 100}, []int64{70, 70, 70})
	buf := bytes.Repeat([]byte{7}, int(box.NumElements()))
	if err := vs[1].ReadRegion(ctx, box, buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(buf, []byte{0}) != len(buf) {
		t.Error("absent shards did not read as zeros")
	}
	if got := resKey([3]float64{8, 8, 8}); got != "8.0x8.0x8.0" {
		t.Errorf("resKey = %q", got)
	}
}

func TestDetect(t *testing.T) {
	ctx := context.Background()
	d := newMem(t)
	d.put("a/info", []byte(`{"type":"image","data_type":"uint8","num_channels":1,"scales":[]}`))
	d.put("b/info", []byte(`{"zarr_format":2}`))
	d.put("c/x.tif", []byte("II*\x00"))
	st := store.New(d)
	f := Format{}
	for _, c := range []struct {
		key  string
		head []byte
		want bool
	}{
		{"a", nil, true},
		{"a/", nil, true},
		{"a/info", []byte(" {\"type\""), true},
		{"b", nil, false},
		{"c", nil, false},
		{"c/x.tif", []byte("II*\x00"), false},
		{"nothing", nil, false},
	} {
		if got := f.Detect(ctx, st, c.key, c.head); got != c.want {
			t.Errorf("Detect(%q) = %v, want %v", c.key, got, c.want)
		}
	}
	// A scale key may climb with "..", but not out of the store.
	d.put("v/info", []byte(`{"type":"image","data_type":"uint8","num_channels":1,"scales":[{"key":"../../x","size":[1,1,1],"resolution":[1,1,1],"chunk_sizes":[[1,1,1]],"encoding":"raw"}]}`))
	if _, err := f.Open(ctx, st, "v"); err == nil || !strings.Contains(err.Error(), "../../x") {
		t.Errorf("escaping scale key: err = %v", err)
	}
	if got, err := scaleDir("v/w", "../s0"); err != nil || got != "v/s0" {
		t.Errorf("scaleDir = %q, %v", got, err)
	}
}

func TestNegativeOffsetKeys(t *testing.T) {
	src := makeSource(t, volume.Uint8, 1, false)
	d, _, vs := writeOpen(t, src, WriteOptions{ChunkSize: testChunk, VoxelOffset: [3]int64{-16, 0, 5}})
	if d.get("vol/1.0x1.0x1.0/-16-0_0-12_5-13") == nil {
		t.Errorf("chunk key with negative offset missing; have %v", d.keys("vol/1.0x1.0x1.0/-16")[:1])
	}
	volumetest.Run(t, vs[0], src.Bytes(), 0)
}

func TestWriteRejects(t *testing.T) {
	ctx := context.Background()
	st := store.New(newMem(t))
	u16 := makeSource(t, volume.Uint16, 1, false)
	u8 := makeSource(t, volume.Uint8, 1, false)
	for _, c := range []struct {
		src volume.Volume
		opt WriteOptions
	}{
		{u16, WriteOptions{Encoding: EncJPEG}},
		{u8, WriteOptions{Encoding: EncCSeg}},
		{u8, WriteOptions{Encoding: EncCompresso}},
		{u8, WriteOptions{Type: "mesh"}},
		{u8, WriteOptions{Sharding: &Sharding{Hash: "sha1"}}},
	} {
		if err := Write(ctx, st, "x", c.src, c.opt); err == nil {
			t.Errorf("Write(%+v) succeeded", c.opt)
		}
	}
}

func TestCancelledWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := makeSource(t, volume.Uint8, 1, false)
	err := Write(ctx, store.New(newMem(t)), "x", src, WriteOptions{ChunkSize: testChunk})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
