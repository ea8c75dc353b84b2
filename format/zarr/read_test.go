package zarr

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

func TestContiguousRange(t *testing.T) {
	box := func(start, stop []int64) volume.Box { return volume.Box{Start: start, Stop: stop} }
	dst3 := box([]int64{0, 0, 0}, []int64{8, 4, 6})
	tests := []struct {
		name     string
		dst      volume.Box
		cell     volume.Box
		region   volume.Box
		ok       bool
		off, end int64 // byte range in dst, elem 2
	}{
		{"slab spans the trailing axes", dst3, box([]int64{2, 0, 0}, []int64{4, 4, 6}), box([]int64{2, 0, 0}, []int64{4, 4, 6}), true, 2 * 24 * 2, 4 * 24 * 2},
		{"cell cut by the region", dst3, box([]int64{6, 0, 0}, []int64{10, 4, 6}), box([]int64{6, 0, 0}, []int64{8, 4, 6}), false, 0, 0},
		{"cube inside a wider box", dst3, box([]int64{0, 0, 0}, []int64{2, 2, 2}), box([]int64{0, 0, 0}, []int64{2, 2, 2}), false, 0, 0},
		{"one row", dst3, box([]int64{3, 1, 0}, []int64{4, 2, 6}), box([]int64{3, 1, 0}, []int64{4, 2, 6}), true, (3*24 + 6) * 2, (3*24 + 12) * 2},
		{"part of one row", dst3, box([]int64{3, 1, 2}, []int64{4, 2, 4}), box([]int64{3, 1, 2}, []int64{4, 2, 4}), true, (3*24 + 8) * 2, (3*24 + 10) * 2},
		{"rows of one plane", dst3, box([]int64{5, 1, 0}, []int64{6, 3, 6}), box([]int64{5, 1, 0}, []int64{6, 3, 6}), true, (5*24 + 6) * 2, (5*24 + 18) * 2},
		{"planes, partial rows", dst3, box([]int64{5, 0, 0}, []int64{7, 4, 3}), box([]int64{5, 0, 0}, []int64{7, 4, 3}), false, 0, 0},
		{"offset box", box([]int64{10, 4, 6}, []int64{12, 8, 12}), box([]int64{11, 4, 6}, []int64{12, 8, 12}), box([]int64{11, 4, 6}, []int64{12, 8, 12}), true, 24 * 2, 48 * 2},
		{"1-D", box([]int64{3}, []int64{20}), box([]int64{8}, []int64{12}), box([]int64{8}, []int64{12}), true, 10, 18},
		{"0-D", volume.Box{}, volume.Box{}, volume.Box{}, true, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, max(tc.dst.NumElements(), 1)*2)
			got, ok := contiguousRange(dst, tc.dst, tc.cell, tc.region, 2)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if len(got) != int(tc.end-tc.off) || cap(got) != len(got) || &got[0] != &dst[tc.off] {
				t.Errorf("range len %d cap %d, want [%d,%d) with capacity cut", len(got), cap(got), tc.off, tc.end)
			}
		})
	}
}

// Chunks that span the faster axes are decoded straight into the caller's
// buffer; the result must be the same as through the pooled buffers, for
// every codec, byte order, memory order and absent chunk.
func TestReadSlabChunks(t *testing.T) {
	shape := []int64{7, 4, 5}
	specs := []v2Spec{
		{name: "zstd", comp: "zstd", zdtype: "<u2", vt: volume.Uint16, order: "C"},
		{name: "raw", zdtype: "<u2", vt: volume.Uint16, order: "C"},
		{name: "gzip-be", comp: "gzip", zdtype: ">u2", vt: volume.Uint16, order: "C"},
		{name: "lz4-F", comp: "lz4", zdtype: "<u2", vt: volume.Uint16, order: "F"},
		{name: "zlib-missing", comp: "zlib", zdtype: "<u2", vt: volume.Uint16, order: "C", skip: func(idx []int64) bool { return idx[0] == 1 }},
	}
	for _, s := range specs {
		for _, chunks := range [][]int64{{2, 4, 5}, {1, 2, 5}, {3, 4, 5}} {
			s := s
			s.name = fmt.Sprintf("%s-%v", s.name, chunks)
			s.shape, s.chunks, s.sep, s.fill, s.fillLE = shape, chunks, "/", "3", []byte{3, 0}
			t.Run(s.name, func(t *testing.T) {
				dir := t.TempDir()
				want := writeV2(t, dir, s, pattern(volume.Prod(shape), s.vt))
				v := openOne(t, store.New(store.NewFile(dir)), s.name)
				boxes := []volume.Box{
					volume.Full(shape),
					{Start: []int64{2, 0, 0}, Stop: []int64{6, 4, 5}},
					{Start: []int64{1, 0, 0}, Stop: []int64{7, 4, 5}},
					{Start: []int64{2, 2, 0}, Stop: []int64{3, 4, 5}},
					{Start: []int64{0, 1, 1}, Stop: []int64{7, 3, 4}},
				}
				for _, b := range boxes {
					got := bytes.Repeat([]byte{0xee}, int(b.NumElements())*2)
					if err := v.ReadRegion(context.Background(), b, got); err != nil {
						t.Fatalf("ReadRegion(%v): %v", b, err)
					}
					ref := make([]byte, len(got))
					volume.CopyBox(ref, b, want, volume.Full(shape), b, 2)
					if !bytes.Equal(got, ref) {
						t.Errorf("ReadRegion(%v) differs", b)
					}
				}
			})
		}
	}
}

// streamDriver serves a driver's objects as plain streams, without the
// Size method local files and store.MemDriver objects have, like an HTTP
// response of unknown length.
type streamDriver struct{ store.Driver }

func (d streamDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := d.Driver.ReadRange(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{iotestHalf{rc}, rc}, nil
}

// iotestHalf returns at most 1000 bytes per Read, so the growth loop turns.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:min(len(p), 1000)]) }

func TestReadChunk(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789"), 10000)
	if err := os.WriteFile(filepath.Join(dir, "c"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		st   *store.Store
	}{
		{"sized", store.New(store.NewFile(dir))},
		{"stream", store.New(streamDriver{store.NewFile(dir)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A reused buffer with stale, longer content.
			stale := bytes.Repeat([]byte{0xee}, 200000)
			buf := &stale
			got, err := readChunk(ctx, tc.st, "c", int64(len(big)), buf)
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("read: %v (equal %v)", err, bytes.Equal(got, big))
			}
			var empty []byte
			got, err = readChunk(ctx, tc.st, "c", int64(len(big)), &empty)
			if err != nil || !bytes.Equal(got, big) || cap(empty) < len(big) {
				t.Fatalf("read into a nil buffer: %v, kept capacity %d", err, cap(empty))
			}
			if _, err := readChunk(ctx, tc.st, "c", int64(len(big))-1, buf); !errors.Is(err, store.ErrTooLarge) {
				t.Errorf("over the limit: got %v, want ErrTooLarge", err)
			}
			if b, err := readChunk(ctx, tc.st, "absent", 100, buf); b != nil || err != nil {
				t.Errorf("absent chunk: %v %v, want nil nil", b, err)
			}
		})
	}
}

// v3 chains with more than one bytes→bytes codec: intermediate codecs decode
// into new memory, and a checksum inside the compression makes the last
// decode 4 bytes longer than the chunk; the result must still land in the
// caller's buffer correctly.
func TestReadV3Chains(t *testing.T) {
	ctx := context.Background()
	cs := codec.New()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	shape, ch := []int64{5, 6}, []int64{2, 6}
	data := pattern(30, volume.Int16)
	for _, tc := range []struct {
		name   string
		codecs string
		encode func(chunk []byte) []byte
	}{
		{"gzip-then-zstd", `{"name":"bytes","configuration":{"endian":"little"}},{"name":"gzip","configuration":{"level":1}},{"name":"zstd","configuration":{"level":1}}`,
			func(b []byte) []byte {
				g, _ := cs.Encode("gzip", 1, b)
				z, _ := cs.Encode("zstd", 1, g)
				return z
			}},
		{"crc32c-inside-zstd", `{"name":"bytes","configuration":{"endian":"little"}},"crc32c",{"name":"zstd","configuration":{"level":1}}`,
			func(b []byte) []byte {
				b = binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
				z, _ := cs.Encode("zstd", 1, b)
				return z
			}},
		{"raw-crc32c", `{"name":"bytes","configuration":{"endian":"little"}},"crc32c"`,
			func(b []byte) []byte {
				return binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			meta := `{"zarr_format":3,"node_type":"array","shape":[5,6],"data_type":"int16",
				"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,6]}},"fill_value":0,
				"codecs":[` + tc.codecs + `]}`
			if err := st.WriteAll(ctx, "a/zarr.json", []byte(meta)); err != nil {
				t.Fatal(err)
			}
			full := volume.Full(shape)
			volume.Grid(shape, ch, full, func(idx []int64, r volume.Box) error {
				cell := volume.Box{Start: []int64{idx[0] * 2, 0}, Stop: []int64{idx[0]*2 + 2, 6}}
				buf := make([]byte, 24)
				volume.CopyBox(buf, cell, data, full, r, 2)
				return st.WriteAll(ctx, fmt.Sprintf("a/c/%d/%d", idx[0], idx[1]), tc.encode(buf))
			})
			volumetest.Run(t, openOne(t, st, "a"), data, 0)
		})
	}
}

// FuzzChunk feeds hostile chunk bytes through ReadRegion for each codec
// chain, on a box the chunk fills (decoded straight into the destination)
// and on one it overlaps (decoded into a pooled buffer). Nothing may panic,
// and a successful read must agree between the two.
func FuzzChunk(f *testing.F) {
	cs := codec.New()
	chunk := pattern(2*3*4, volume.Uint16)
	for _, id := range []string{"zstd", "gzip", "zlib", "lz4", "raw"} {
		if enc, err := cs.Encode(id, 1, chunk); err == nil {
			f.Add(enc)
		}
	}
	if enc, err := cs.EncodeBlosc(chunk, codec.BloscOptions{CName: "lz4", CLevel: 5, Shuffle: codec.BloscShuffle, TypeSize: 2}); err == nil {
		f.Add(enc)
	}
	f.Add([]byte{})
	metas := map[string]string{}
	for _, comp := range []string{`{"id":"zstd"}`, `{"id":"gzip"}`, `{"id":"zlib"}`, `{"id":"lz4"}`, `{"id":"blosc"}`, `null`} {
		for _, order := range []string{"C", "F"} {
			metas[fmt.Sprintf("v2-%s-%s", comp, order)] = fmt.Sprintf(`{"zarr_format":2,"shape":[4,3,4],"chunks":[2,3,4],"dtype":">u2","compressor":%s,"fill_value":0,"order":%q,"filters":null,"dimension_separator":"/"}`, comp, order)
		}
	}
	for i, filters := range []string{
		`[{"id":"delta","dtype":">u2","astype":"|u1"}]`,
		`[{"id":"fixedscaleoffset","offset":3,"scale":0.5,"dtype":">u2","astype":"<f8"},{"id":"astype","encode_dtype":"<f4","decode_dtype":"<f8"}]`,
	} {
		metas[fmt.Sprintf("v2-filters%d", i)] = fmt.Sprintf(`{"zarr_format":2,"shape":[4,3,4],"chunks":[2,3,4],"dtype":">u2","compressor":{"id":"zlib"},"fill_value":0,"order":"F","filters":%s,"dimension_separator":"/"}`, filters)
	}
	metas["v3-crc"] = `{"zarr_format":3,"node_type":"array","shape":[4,3,4],"data_type":"uint16","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,3,4]}},"fill_value":0,"codecs":[{"name":"bytes","configuration":{"endian":"little"}},"crc32c",{"name":"zstd","configuration":{"level":1}}]}`
	metas["v3-transpose"] = `{"zarr_format":3,"node_type":"array","shape":[4,3,4],"data_type":"uint16","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,3,4]}},"fill_value":0,"codecs":[{"name":"transpose","configuration":{"order":[2,0,1]}},{"name":"bytes","configuration":{"endian":"big"}},{"name":"gzip","configuration":{"level":1}}]}`
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, meta := range metas {
			m := store.NewMem()
			meta0, key0 := "a/.zarray", "a/0/0/0"
			if name[:2] == "v3" {
				meta0, key0 = "a/zarr.json", "a/c/0/0/0"
			}
			if err := errors.Join(m.Put(meta0, []byte(meta)), m.Put(key0, data)); err != nil {
				t.Fatal(err)
			}
			vs, err := Format{}.Open(ctx, store.New(streamDriver{m}), "a")
			if err != nil || len(vs) != 1 {
				t.Fatalf("%s: open: %v", name, err)
			}
			v := vs[0]
			whole := volume.Box{Start: []int64{0, 0, 0}, Stop: []int64{2, 3, 4}}
			part := volume.Box{Start: []int64{1, 0, 1}, Stop: []int64{3, 3, 3}}
			a := make([]byte, 2*whole.NumElements())
			errA := v.ReadRegion(ctx, whole, a)
			b := make([]byte, 2*part.NumElements())
			errB := v.ReadRegion(ctx, part, b)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("%s: whole-chunk read error %v, partial read error %v", name, errA, errB)
			}
			if errA != nil {
				continue
			}
			// The partial box's first plane comes from chunk 0/0/0.
			ref := make([]byte, len(b))
			r := volume.Box{Start: []int64{1, 0, 1}, Stop: []int64{2, 3, 3}}
			volume.CopyBox(ref, part, a, whole, r, 2)
			got := make([]byte, len(b))
			volume.CopyBox(got, part, b, part, r, 2)
			if !bytes.Equal(got, ref) {
				t.Fatalf("%s: whole and partial reads of the chunk differ", name)
			}
		}
	})
}
