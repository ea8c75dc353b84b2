package zarr

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// v2Spec describes a synthetic array written by writeV2, independently of the
// package's writer, so the reader is checked against a second implementation.
type v2Spec struct {
	name     string
	shape    []int64
	chunks   []int64
	zdtype   string // e.g. ">i2"
	vt       volume.DType
	order    string
	sep      string
	comp     string // codec id or "" for null
	fill     string // JSON fill_value
	fillLE   []byte // the fill element, little-endian
	skip     func(idx []int64) bool
	wrongLen bool // write one chunk with a bad decoded size
}

func pattern(n int64, vt volume.DType) []byte {
	b := make([]byte, n*int64(vt.Size()))
	for i := int64(0); i < n; i++ {
		e := b[i*int64(vt.Size()):]
		switch vt {
		case volume.Float32:
			binary.LittleEndian.PutUint32(e, math.Float32bits(float32(i)*0.5-3))
		case volume.Float64:
			binary.LittleEndian.PutUint64(e, math.Float64bits(float64(i)*0.25-7))
		case volume.Bool:
			e[0] = byte(i % 3 % 2)
		default:
			for k := 0; k < vt.Size(); k++ {
				e[k] = byte((i*7 + int64(k)*31 + i/5) % 251)
			}
		}
	}
	return b
}

// writeV2 stores data (C order, LE) as a v2 array and returns the expected
// read-back (skipped chunks replaced by fill).
func writeV2(t *testing.T, root string, s v2Spec, data []byte) []byte {
	t.Helper()
	cs := codec.New()
	st := store.New(store.NewFile(root))
	ctx := context.Background()
	comp := "null"
	if s.comp != "" {
		comp = fmt.Sprintf(`{"id":%q,"level":1}`, s.comp)
	}
	sep := ""
	if s.sep != "" {
		sep = fmt.Sprintf(`,"dimension_separator":%q`, s.sep)
	}
	shapeJ, _ := json.Marshal(s.shape)
	chunksJ, _ := json.Marshal(s.chunks)
	meta := fmt.Sprintf(`{"zarr_format":2,"shape":%s,"chunks":%s,"dtype":%q,"compressor":%s,"fill_value":%s,"order":%q,"filters":null%s}`,
		shapeJ, chunksJ, s.zdtype, comp, s.fill, s.order, sep)
	if err := st.WriteAll(ctx, join(s.name, ".zarray"), []byte(meta)); err != nil {
		t.Fatal(err)
	}
	elem := s.vt.Size()
	want := append([]byte(nil), data...)
	full := volume.Full(s.shape)
	first := true
	err := volume.Grid(s.shape, s.chunks, full, func(idx []int64, region volume.Box) error {
		if s.skip != nil && s.skip(idx) {
			volume.FillBox(want, full, region, s.fillLE)
			return nil
		}
		cell := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
		for i := range idx {
			cell.Start[i] = idx[i] * s.chunks[i]
			cell.Stop[i] = cell.Start[i] + s.chunks[i]
		}
		buf := make([]byte, volume.Prod(s.chunks)*int64(elem))
		for i := 0; i < len(buf); i += elem {
			copy(buf[i:], s.fillLE)
		}
		volume.CopyBox(buf, cell, data, full, region, elem)
		if s.order == "F" {
			buf = transpose(buf, s.chunks, reversed(len(s.chunks)), elem)
		}
		if strings.HasPrefix(s.zdtype, ">") {
			unit := elem
			if strings.Contains(s.zdtype, "c") {
				unit /= 2
			}
			codec.SwapBytes(buf, unit)
		}
		if s.wrongLen && first {
			buf = buf[:len(buf)-elem]
			first = false
		}
		id := s.comp
		if id == "" {
			id = "raw"
		}
		enc, err := cs.Encode(id, 1, buf)
		if err != nil {
			return err
		}
		sepc := s.sep
		if sepc == "" {
			sepc = "."
		}
		return st.WriteAll(ctx, join(s.name, chunkName(idx, sepc)), enc)
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func openOne(t *testing.T, st *store.Store, key string) volume.Volume {
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

func TestReadV2(t *testing.T) {
	le16 := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	nan32 := binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.NaN())))
	cases := []v2Spec{
		{name: "u1-zstd", shape: []int64{9, 10, 11}, chunks: []int64{4, 4, 4}, zdtype: "|u1", vt: volume.Uint8, order: "C", sep: "/", comp: "zstd", fill: "0", fillLE: []byte{0}},
		{name: "i2-le-gzip", shape: []int64{5, 17}, chunks: []int64{2, 8}, zdtype: "<i2", vt: volume.Int16, order: "C", comp: "gzip", fill: "null", fillLE: le16(0)},
		{name: "i2-be-raw", shape: []int64{6, 7, 5}, chunks: []int64{4, 3, 5}, zdtype: ">i2", vt: volume.Int16, order: "C", sep: ".", fill: "0", fillLE: le16(0)},
		{name: "u2-be-F-zlib", shape: []int64{7, 6, 5}, chunks: []int64{3, 4, 2}, zdtype: ">u2", vt: volume.Uint16, order: "F", sep: "/", comp: "zlib", fill: "0", fillLE: le16(0)},
		{name: "f4-lz4-F", shape: []int64{13, 9}, chunks: []int64{5, 4}, zdtype: "<f4", vt: volume.Float32, order: "F", comp: "lz4", fill: `"NaN"`, fillLE: nan32},
		{name: "f8-be", shape: []int64{10}, chunks: []int64{3}, zdtype: ">f8", vt: volume.Float64, order: "C", comp: "zstd", fill: "0.0", fillLE: make([]byte, 8)},
		{name: "b1", shape: []int64{4, 5}, chunks: []int64{3, 3}, zdtype: "|b1", vt: volume.Bool, order: "C", fill: "false", fillLE: []byte{0}},
		{name: "missing-fill7", shape: []int64{8, 9, 10}, chunks: []int64{4, 4, 4}, zdtype: "<u2", vt: volume.Uint16, order: "C", sep: "/", comp: "zstd", fill: "7", fillLE: le16(7),
			skip: func(idx []int64) bool { return (idx[0]+idx[1]+idx[2])%2 == 1 }},
		{name: "i8-dot", shape: []int64{3, 4, 5, 6}, chunks: []int64{2, 3, 4, 5}, zdtype: "<i8", vt: volume.Int64, order: "C", sep: ".", comp: "gzip", fill: "-1", fillLE: []byte{255, 255, 255, 255, 255, 255, 255, 255},
			skip: func(idx []int64) bool { return idx[3] == 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			want := writeV2(t, dir, c, pattern(volume.Prod(c.shape), c.vt))
			st := store.New(store.NewFile(dir))
			v := openOne(t, st, c.name)
			in := v.Info()
			if in.Name != c.name || in.DType != c.vt || fmt.Sprint(in.Chunks) != fmt.Sprint(c.chunks) {
				t.Errorf("Info = %q %s chunks %v", in.Name, in.DType, in.Chunks)
			}
			if ax := in.Axes[len(in.Axes)-1]; ax.Name != "x" || ax.ScaleKnown {
				t.Errorf("last axis %+v, want x without calibration", ax)
			}
			volumetest.Run(t, v, want, 0)
		})
	}
}

func TestWrongChunkSize(t *testing.T) {
	dir := t.TempDir()
	s := v2Spec{name: "bad", shape: []int64{4, 4}, chunks: []int64{2, 2}, zdtype: "<u2", vt: volume.Uint16, order: "C", comp: "zstd", fill: "0", fillLE: []byte{0, 0}, wrongLen: true}
	writeV2(t, dir, s, pattern(16, volume.Uint16))
	v := openOne(t, store.New(store.NewFile(dir)), "bad")
	err := v.ReadRegion(context.Background(), volume.Full([]int64{4, 4}), make([]byte, 32))
	if err == nil || !strings.Contains(err.Error(), `"bad/0.0"`) {
		t.Fatalf("got %v, want an error naming chunk bad/0.0", err)
	}
}

func TestUnsupported(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	st.WriteAll(ctx, "blosc/.zarray", []byte(`{"zarr_format":2,"shape":[4],"chunks":[4],"dtype":"<i2","compressor":{"id":"blosc","cname":"lz4"},"fill_value":0,"order":"C","filters":null}`))
	// A Blosc2 chunk (format version 3): recognised, not readable by a Blosc1 decoder.
	st.WriteAll(ctx, "blosc/0", []byte{3, 1, 0, 2, 8, 0, 0, 0, 8, 0, 0, 0, 17, 0, 0, 0, 0})
	st.WriteAll(ctx, "shuffle/.zarray", []byte(`{"zarr_format":2,"shape":[4],"chunks":[4],"dtype":"<i2","compressor":null,"fill_value":0,"order":"C","filters":[{"id":"shuffle","elementsize":2}]}`))
	st.WriteAll(ctx, "str/.zarray", []byte(`{"zarr_format":2,"shape":[4],"chunks":[4],"dtype":"|O","compressor":null,"fill_value":0,"order":"C","filters":[{"id":"vlen-utf8"}]}`))
	for _, k := range []string{"blosc", "shuffle"} {
		v := openOne(t, st, k)
		err := v.ReadRegion(ctx, volume.Full([]int64{4}), make([]byte, 8))
		if !errors.Is(err, format.ErrNotSupported) {
			t.Errorf("%s: got %v, want ErrNotSupported", k, err)
		}
		if k == "blosc" && !errors.Is(err, codec.ErrUnsupported) {
			t.Errorf("blosc: %v does not wrap codec.ErrUnsupported", err)
		}
	}
	// Object arrays open (so a store holding one lists its other arrays) but
	// are not numeric.
	v := openOne(t, st, "str")
	if err := v.ReadRegion(ctx, volume.Full([]int64{4}), []byte{}); !errors.Is(err, ErrObjectArray) || !errors.Is(err, format.ErrNotSupported) {
		t.Errorf("|O: got %v, want ErrObjectArray", err)
	}
}

// noList hides the driver's listing, as an HTTP store does.
type noList struct{ store.Driver }

func (noList) List(context.Context, string, string, func(store.ObjectInfo) error) error {
	return store.ErrNotSupported
}

func TestNGFFWithoutListing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "..", "shared", "docs", "wire-samples", "openorganelle-fibsem-int16.zattrs.json")
	attrs, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("wire sample missing: %v", err)
	}
	st := store.New(store.NewFile(dir))
	st.WriteAll(ctx, "recon-2/em/fibsem-int16/.zattrs", attrs)
	st.WriteAll(ctx, "recon-2/em/fibsem-int16/.zgroup", []byte(`{"zarr_format":2}`))
	shapes := [][]int64{{564, 2520, 2596}, {282, 1260, 1298}, {141, 630, 649}, {70, 315, 324}, {35, 157, 162}, {17, 78, 81}, {8, 39, 40}, {4, 19, 20}, {2, 9, 10}}
	for i, s := range shapes {
		meta := fmt.Sprintf(`{"chunks":[64,64,64],"compressor":{"id":"zstd","level":1},"dimension_separator":"/","dtype":"<i2","fill_value":0,"filters":null,"order":"C","shape":[%d,%d,%d],"zarr_format":2}`, s[0], s[1], s[2])
		st.WriteAll(ctx, fmt.Sprintf("recon-2/em/fibsem-int16/s%d/.zarray", i), []byte(meta))
	}
	hidden := store.New(noList{store.NewFile(dir)})
	if !(Format{}).Detect(ctx, hidden, "recon-2/em/fibsem-int16", nil) {
		t.Fatal("Detect: NGFF group not detected")
	}
	vs, err := Format{}.Open(ctx, hidden, "recon-2/em/fibsem-int16")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 9 {
		t.Fatalf("%d volumes, want 9", len(vs))
	}
	in := vs[1].Info()
	if in.Name != "recon-2/em/fibsem-int16/s1" {
		t.Errorf("name %q", in.Name)
	}
	wantScale, wantOff := []float64{5.92, 8, 8}, []float64{1.48, 2, 2}
	for i, ax := range in.Axes {
		if !ax.ScaleKnown || ax.Unit != "nanometer" || math.Abs(ax.Scale-wantScale[i]) > 1e-9 || math.Abs(ax.Offset-wantOff[i]) > 1e-9 {
			t.Errorf("axis %d = %+v, want scale %v offset %v nanometer", i, ax, wantScale[i], wantOff[i])
		}
	}
	if in.Metadata["level"] != 1 || in.Metadata["ngff_version"] != "0.4" || fmt.Sprint(in.Metadata["downsampling"]) != "[2 2 2]" {
		t.Errorf("metadata %v", in.Metadata)
	}
	if in.Compression != "zstd" || in.Metadata["compression_level"] != 1 {
		t.Errorf("compression %q %v", in.Compression, in.Metadata["compression_level"])
	}
	// Missing chunks read as fill, with no listing needed.
	buf := make([]byte, 2*2*2*2)
	if err := vs[8].ReadRegion(ctx, volume.NewBox([]int64{0, 0, 0}, []int64{2, 2, 2}), buf); err != nil || !bytes.Equal(buf, make([]byte, 16)) {
		t.Errorf("read of absent chunks: %v %v", err, buf)
	}
	// A plain group cannot be walked without listing: the error says why.
	if _, err := (Format{}).Open(ctx, hidden, "recon-2"); !errors.Is(err, store.ErrNotSupported) {
		t.Errorf("group walk without listing: %v", err)
	}
	// With listing, the root walk finds all nine arrays and still attaches NGFF.
	vs, err = Format{}.Open(ctx, st, "")
	if err != nil || len(vs) != 9 || !vs[3].Info().Axes[0].ScaleKnown {
		t.Fatalf("walk: %d volumes, %v", len(vs), err)
	}
}

func TestDetect(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	st.WriteAll(ctx, "a/.zarray", []byte(`{}`))
	st.WriteAll(ctx, "g/.zgroup", []byte(`{"zarr_format":2}`))
	st.WriteAll(ctx, "v3/zarr.json", []byte(`{}`))
	st.WriteAll(ctx, "plain/.zattrs", []byte(`{"foo":1}`))
	st.WriteAll(ctx, "file.tif", []byte(`II*`))
	for key, want := range map[string]bool{"a": true, "g": true, "v3": true, "plain": false, "x.zarr": true, "a/.zarray": true, "none": false} {
		if got := (Format{}).Detect(ctx, st, key, nil); got != want {
			t.Errorf("Detect(%q) = %v, want %v", key, got, want)
		}
	}
	if (Format{}).Detect(ctx, st, "file.tif", []byte("II*")) {
		t.Errorf("Detect(file.tif) = true")
	}
}

func FuzzZarray(f *testing.F) {
	f.Add([]byte(`{"zarr_format":2,"shape":[10,10],"chunks":[5,5],"dtype":"<u2","compressor":{"id":"zstd","level":1},"fill_value":null,"order":"C","filters":null,"dimension_separator":"/"}`))
	f.Add([]byte(`{"zarr_format":2,"shape":[],"chunks":[],"dtype":">f4","compressor":null,"fill_value":"NaN","order":"F","filters":null}`))
	f.Add([]byte(`{"zarr_format":2,"shape":[1e18,1e18],"chunks":[1,1],"dtype":"|b1","fill_value":"AA==","order":"C"}`))
	f.Add([]byte(`{"zarr_format":3,"node_type":"array","shape":[4,4],"data_type":"int16","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,2]}},"chunk_key_encoding":{"name":"default"},"fill_value":"0x0000","codecs":[{"name":"transpose","configuration":{"order":[1,0]}},{"name":"sharding_indexed","configuration":{"chunk_shape":[1,1],"codecs":["bytes","gzip"],"index_codecs":["bytes","crc32c"]}}]}`))
	f.Add([]byte(`{"multiscales":[{"version":"0.4","axes":["y",{"name":"x","unit":"nanometer"}],"datasets":[{"path":"0","coordinateTransformations":[{"type":"scale","scale":[1,2]}]}]}]}`))
	// .zarray documents that also carry NGFF multiscales for dataset "k", so
	// the fuzzer reaches the transformation resolver through apply.
	f.Add([]byte(`{"zarr_format":2,"shape":[4,4],"chunks":[2,2],"dtype":"<u2","compressor":null,"fill_value":0,"order":"C","filters":null,` +
		`"multiscales":[{"coordinateSystems":[{"name":"p","axes":[{"name":"y","unit":"nanometer"},{"name":"x"}]}],"datasets":[{"path":"k","coordinateTransformations":[` +
		`{"type":"sequence","input":"k","output":"p","transformations":[{"type":"scale","scale":[2,3]},{"type":"sequence","transformations":[{"type":"translation","translation":[1,1]}]}]}]}],` +
		`"coordinateTransformations":[{"type":"affine","input":"p","output":"w","affine":[[1,0,0],[0,1,0]]}]}],"image-label":{"colors":[{"label-value":1}]}}`))
	f.Add([]byte(`{"zarr_format":2,"shape":[4,4],"chunks":[2,2],"dtype":"|u1","compressor":null,"fill_value":0,"order":"C","filters":null,` +
		`"multiscales":[{"version":"0.4","axes":["y","x"],"datasets":[{"path":"k","coordinateTransformations":[{"type":"scale","path":"s"},{"type":"rotation","rotation":[[0,1],[1,0]]}]}],` +
		`"coordinateTransformations":[{"type":"scale","scale":[1e308,1]},{"type":"scale","scale":[1e308,0]}]}]}`))
	f.Add([]byte(`{"zarr_format":2,"shape":[3,2],"chunks":[2,2],"dtype":">U5","compressor":null,"fill_value":"ab","order":"F","filters":null}`))
	f.Add([]byte(`{"zarr_format":2,"shape":[3],"chunks":[2],"dtype":"|S3","compressor":null,"fill_value":"MA==","order":"C","filters":null}`))
	f.Add([]byte(`{"zarr_format":2,"shape":[3],"chunks":[2],"dtype":"<f8","compressor":null,"fill_value":0,"order":"C","filters":[{"id":"quantize","digits":2,"dtype":"<f8","astype":"<f4"},{"id":"fixedscaleoffset","offset":1,"scale":10,"dtype":"<f4","astype":"<i4"},{"id":"delta","dtype":"<i4","astype":"<i2"}]}`))
	if dir, err := filepath.Glob(filepath.Join("..", "..", "..", "shared", "testdata", "zarr", "*", "*", "*", ".zarray")); err == nil {
		for _, p := range dir {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	cs := codec.New()
	st := store.New(store.NewFile(f.TempDir()))
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		var a *array
		if x, err := openV2(st, cs, "k", b); err == nil {
			a = x
		}
		if z, err := parseZarrJSON(b); err == nil && z.NodeType == "array" {
			if x, err := openV3(st, cs, "k", z); err == nil {
				a = x
			}
		}
		if g, ok, _ := parseNGFF(b); ok && a != nil {
			if l := g.levelFor("k"); l != nil {
				l.apply(a)
			}
		}
		if a == nil {
			return
		}
		if err := a.info.Validate(); err != nil {
			t.Fatalf("opened array with invalid info: %v", err)
		}
		// A small read of absent chunks must not panic or allocate the array.
		box := volume.Full(a.info.Shape)
		for i := range box.Stop {
			box.Stop[i] = min(box.Stop[i], 2)
		}
		if box.NumElements() < 1<<12 {
			a.ReadRegion(ctx, box, make([]byte, box.NumElements()*int64(a.dt.size())))
		}
	})
}

func TestReadV3(t *testing.T) {
	ctx := context.Background()
	cs := codec.New()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	cell := func(idx, ch []int64) volume.Box {
		b := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
		for i := range idx {
			b.Start[i], b.Stop[i] = idx[i]*ch[i], (idx[i]+1)*ch[i]
		}
		return b
	}
	// chunkOf cuts one full-size chunk (padded with fill) out of data.
	chunkOf := func(data []byte, shape, ch, idx []int64, elem int, fill byte) []byte {
		fe := []byte{fill, 0}[:elem] // one little-endian element of a small fill
		buf := bytes.Repeat(fe, int(volume.Prod(ch)))
		c := cell(idx, ch)
		r, _ := c.Intersect(volume.Full(shape))
		volume.CopyBox(buf, c, data, volume.Full(shape), r, elem)
		return buf
	}

	t.Run("transpose-bigendian-zstd-crc32c", func(t *testing.T) {
		dir := t.TempDir()
		st := store.New(store.NewFile(dir))
		shape, ch := []int64{5, 6}, []int64{4, 4}
		data := pattern(30, volume.Int16)
		meta := `{"zarr_format":3,"node_type":"array","shape":[5,6],"data_type":"int16",
			"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4,4]}},
			"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":9,
			"codecs":[{"name":"transpose","configuration":{"order":[1,0]}},{"name":"bytes","configuration":{"endian":"big"}},
			{"name":"zstd","configuration":{"level":1}},"crc32c"],"dimension_names":["y","x"]}`
		st.WriteAll(ctx, "a/zarr.json", []byte(meta))
		want := append([]byte(nil), data...)
		volume.Grid(shape, ch, volume.Full(shape), func(idx []int64, r volume.Box) error {
			if idx[0] == 1 && idx[1] == 1 {
				volume.FillBox(want, volume.Full(shape), r, []byte{9, 0})
				return nil
			}
			buf := transpose(chunkOf(data, shape, ch, idx, 2, 9), ch, []int{1, 0}, 2)
			codec.SwapBytes(buf, 2)
			enc, _ := cs.Encode("zstd", 1, buf)
			enc = binary.LittleEndian.AppendUint32(enc, crc32.Checksum(enc, castagnoli))
			return st.WriteAll(ctx, fmt.Sprintf("a/c/%d/%d", idx[0], idx[1]), enc)
		})
		v := openOne(t, st, "a")
		if in := v.Info(); in.Axes[0].Name != "y" || in.Compression != "zstd" {
			t.Errorf("info %+v", in)
		}
		volumetest.Run(t, v, want, 0)
		// A corrupted checksum is an error naming the chunk.
		b, _ := st.ReadAll(ctx, "a/c/0/0", 1<<20)
		b[len(b)-1] ^= 1
		st.WriteAll(ctx, "a/c/0/0", b)
		err := v.ReadRegion(ctx, volume.Full(shape), make([]byte, 60))
		if err == nil || !strings.Contains(err.Error(), "a/c/0/0") {
			t.Errorf("bad crc32c: %v", err)
		}
	})

	t.Run("sharded-index-start", func(t *testing.T) {
		dir := t.TempDir()
		st := store.New(store.NewFile(dir))
		shape, shard, inner := []int64{6, 8}, []int64{4, 4}, []int64{2, 2}
		data := pattern(48, volume.Uint8)
		meta := `{"zarr_format":3,"node_type":"array","shape":[6,8],"data_type":"uint8",
			"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4,4]}},
			"chunk_key_encoding":{"name":"v2"},"fill_value":5,
			"codecs":[{"name":"sharding_indexed","configuration":{"chunk_shape":[2,2],
			"codecs":[{"name":"bytes"},{"name":"gzip","configuration":{"level":1}}],
			"index_codecs":[{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}],"index_location":"start"}}]}`
		st.WriteAll(ctx, "s/zarr.json", []byte(meta))
		want := append([]byte(nil), data...)
		volume.Grid(shape, shard, volume.Full(shape), func(sidx []int64, sr volume.Box) error {
			if sidx[0] == 1 && sidx[1] == 1 {
				volume.FillBox(want, volume.Full(shape), sr, []byte{5})
				return nil
			}
			index := make([]byte, 16*4)
			var body []byte
			const indexLen = 16*4 + 4
			for k := range 4 {
				iidx := []int64{sidx[0]*2 + int64(k/2), sidx[1]*2 + int64(k%2)}
				ic := cell(iidx, inner)
				r, ok := ic.Intersect(volume.Full(shape))
				if k == 3 || !ok {
					// An empty inner chunk reads as fill.
					binary.LittleEndian.PutUint64(index[16*k:], math.MaxUint64)
					binary.LittleEndian.PutUint64(index[16*k+8:], math.MaxUint64)
					if ok {
						volume.FillBox(want, volume.Full(shape), r, []byte{5})
					}
					continue
				}
				enc, _ := cs.Encode("gzip", 1, chunkOf(data, shape, inner, iidx, 1, 5))
				binary.LittleEndian.PutUint64(index[16*k:], uint64(indexLen+len(body)))
				binary.LittleEndian.PutUint64(index[16*k+8:], uint64(len(enc)))
				body = append(body, enc...)
			}
			obj := binary.LittleEndian.AppendUint32(index, crc32.Checksum(index, castagnoli))
			obj = append(obj, body...)
			return st.WriteAll(ctx, fmt.Sprintf("s/%d.%d", sidx[0], sidx[1]), obj)
		})
		v := openOne(t, st, "s")
		if in := v.Info(); fmt.Sprint(in.Chunks) != "[2 2]" || in.Compression != "gzip" {
			t.Errorf("info chunks %v compression %q", in.Chunks, in.Compression)
		}
		volumetest.Run(t, v, want, 0)
	})
}
