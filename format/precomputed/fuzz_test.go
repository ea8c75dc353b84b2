package precomputed

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// corpusSeeds adds the corpus info files (when the corpus is present) to f.
func corpusSeeds(f *testing.F) {
	root, err := corpus.RepoRoot()
	if err != nil {
		return
	}
	base := filepath.Join(root, "..", "shared")
	paths, _ := filepath.Glob(filepath.Join(base, "testdata/precomputed/*/*/info"))
	paths = append(paths, filepath.Join(base, "docs/wire-samples/janelia-jpeg-sharded-info.dvid-test-fixture.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzInfo(f *testing.F) {
	corpusSeeds(f)
	f.Add([]byte(`{"type":"image","data_type":"uint8","num_channels":1,"scales":[{"key":"s0","size":[10,10,10],"resolution":[1,1,1],"chunk_sizes":[[4,4,4]],"encoding":"raw"}]}`))
	f.Add([]byte(`{"type":"segmentation","data_type":"UINT64","num_channels":1,"scales":[{"key":"../s0","size":[1,1,1],"resolution":[1,1,1],"voxel_offset":[-5,0,0],"chunk_sizes":[[1,1,1]],"encoding":"compressed_segmentation","compressed_segmentation_block_size":[8,8,8],"sharding":{"@type":"neuroglancer_uint64_sharded_v1","hash":"murmurhash3_x86_128","preshift_bits":64,"minishard_bits":0,"shard_bits":64}}]}`))
	f.Add([]byte(`{"data_type":"uint8","num_channels":3,"scales":[{"key":"k","size":[1099511627776,1,1],"resolution":[0,0,0],"chunk_sizes":[[1,1,1]],"encoding":"jpeg","sharding":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInfo(b)
		if err != nil {
			return
		}
		st := store.New(newMem(t))
		for i := range in.Scales {
			v := newScaleVolume(st, "v", in, i)
			if err := v.Info().Validate(); err != nil {
				t.Fatalf("scale %d: parsed info gives an invalid volume: %v", i, err)
			}
			if v.lay.fullBytes() > maxChunkBytes || v.lay.fullBytes() <= 0 {
				t.Fatalf("scale %d: chunk of %d bytes passed validation", i, v.lay.fullBytes())
			}
			// Reading a tiny corner of an empty store must be safe.
			box := volume.Full(v.Info().Shape)
			for d := range box.Stop {
				box.Stop[d] = min(box.Stop[d], 2)
			}
			dst := make([]byte, box.NumElements()*int64(v.Info().DType.Size()))
			_ = v.ReadRegion(context.Background(), box, dst)
		}
	})
}

// FuzzShardIndex serves the fuzz input as a shard file and looks up a chunk,
// reading the shard index whole or (entryWise) entry by entry.
func FuzzShardIndex(f *testing.F) {
	idx := make([]byte, 64+48)
	binary.LittleEndian.PutUint64(idx[0:], 0)
	binary.LittleEndian.PutUint64(idx[8:], 24)
	binary.LittleEndian.PutUint64(idx[64:], 3) // id 3
	binary.LittleEndian.PutUint64(idx[72:], 24)
	binary.LittleEndian.PutUint64(idx[80:], 8)
	f.Add(idx, uint64(3), false, false)
	f.Add(idx, uint64(3), false, true)
	f.Add(append(idx[:64:64], gzipBytes(idx[64:88])...), uint64(3), true, false)
	f.Add(idx[:40], uint64(3), false, true)
	f.Add([]byte{}, uint64(0), false, false)
	f.Fuzz(func(t *testing.T, shard []byte, id uint64, gz, entryWise bool) {
		d := newMem(t)
		spec := Sharding{Hash: "identity", MinishardBits: 2, ShardBits: 0, MinishardIndexEncoding: "raw", DataEncoding: "raw"}
		if gz {
			spec.MinishardIndexEncoding = "gzip"
		}
		d.put("s/0.shard", shard)
		s := newSharder(store.New(d), "s", spec)
		if entryWise {
			s.wholeIndexMax = 0
		}
		sh, mi := s.locate(id)
		m, err := s.get(context.Background(), sh, mi)
		if err != nil {
			return
		}
		if e, ok := m.find(id); ok && (e.start < s.indexEnd() || e.end < e.start) {
			t.Fatalf("entry %+v escapes the data area", e)
		}
	})
}

func FuzzMinishard(f *testing.F) {
	f.Add(make([]byte, 24))
	b := make([]byte, 48)
	binary.LittleEndian.PutUint64(b[0:], 5)
	binary.LittleEndian.PutUint64(b[8:], 1)
	binary.LittleEndian.PutUint64(b[32:], 100)
	binary.LittleEndian.PutUint64(b[40:], 100)
	f.Add(b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMinishard(b, 64)
		if err != nil {
			return
		}
		for i, e := range m.entries {
			if e.start < 64 || e.end < e.start {
				t.Fatalf("entry %d %+v out of order", i, e)
			}
			if i > 0 && m.entries[i-1].id >= e.id {
				t.Fatalf("entries not sorted/unique at %d", i)
			}
			if got, ok := m.find(e.id); !ok || got != e {
				t.Fatalf("find(%d) = %+v %v", e.id, got, ok)
			}
		}
	})
}

func FuzzCompressedSegmentation(f *testing.F) {
	// A valid encoding of a small labelled block as seed, plus noise.
	vals := make([]byte, 5*6*7*8)
	for i := 0; i < len(vals)/8; i++ {
		binary.LittleEndian.PutUint64(vals[8*i:], uint64(i/17))
	}
	enc, err := encodeCSeg(vals, [3]int64{5, 6, 7}, [3]int64{4, 4, 4}, 1, 8)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc, uint8(5), uint8(6), uint8(7), uint8(4), uint8(4), uint8(4), uint8(1), true)
	f.Add([]byte{1, 0, 0, 0}, uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), false)
	f.Fuzz(func(t *testing.T, data []byte, sx, sy, sz, bx, by, bz, nc uint8, u64 bool) {
		// Keep shapes small: the decoder's work is proportional to them.
		shape := [3]int64{int64(sx % 40), int64(sy % 40), int64(sz % 40)}
		block := [3]int64{int64(bx%16) + 1, int64(by%16) + 1, int64(bz%16) + 1}
		n := int(nc%4) + 1
		es := 4
		if u64 {
			es = 8
		}
		out := make([]byte, shape[0]*shape[1]*shape[2]*int64(n)*int64(es))
		if err := decodeCSeg(data, shape, block, n, es, out); err != nil {
			return
		}
		// Whatever decodes must survive a re-encode/decode unchanged.
		re, err := encodeCSeg(out, shape, block, n, es)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(out))
		if err := decodeCSeg(re, shape, block, n, es, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(out) {
			t.Fatal("re-encoded chunk decodes differently")
		}
	})
}
