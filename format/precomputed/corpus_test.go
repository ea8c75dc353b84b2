package precomputed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// readShared reads a file of the shared tree (docs or testdata) next to the repo.
func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	root, err := corpus.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "..", "shared", rel))
	if err != nil {
		t.Skipf("shared file %s not available: %v", rel, err)
	}
	return b
}

func TestCorpusInfos(t *testing.T) {
	ctx := context.Background()
	dir, rows := corpus.Category(t, "precomputed")
	n := 0
	for _, r := range rows {
		if r.Kind != "info" {
			continue
		}
		n++
		t.Run(r.Path, func(t *testing.T) {
			st := store.New(store.NewFile(filepath.Join(dir, filepath.Dir(r.Path))))
			if !(Format{}).Detect(ctx, st, "", nil) {
				t.Fatal("not detected")
			}
			vs, err := Format{}.Open(ctx, st, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				if err := v.Info().Validate(); err != nil {
					t.Error(err)
				}
			}
			switch {
			case r.HasFeature("5-scales"):
				if len(vs) != 5 || vs[0].Info().DType != volume.Uint32 || vs[0].Info().Metadata["compressed_segmentation_block_size"] == nil {
					t.Errorf("test_cv: %d scales", len(vs))
				}
			case r.HasFeature("uint16"):
				in := vs[0].Info()
				if len(vs) != 3 || in.DType != volume.Uint16 || in.Shape[0] != 30 || in.Shape[2] != 10 || in.Axes[0].Scale != 5 {
					t.Errorf("one_channel: %v %s %+v", in.Shape, in.DType, in.Axes)
				}
			}
		})
	}
	if n < 3 {
		t.Errorf("only %d info rows in the corpus", n)
	}
}

// TestCorpusCompresso: a real CloudVolume compresso chunk, stored gzip'ed
// under a ".gz" suffix, is found, gunzipped and reported as not supported.
func TestCorpusCompresso(t *testing.T) {
	ctx := context.Background()
	dir, rows := corpus.Category(t, "precomputed")
	for _, r := range rows {
		if !r.HasFeature("compresso") || r.Kind != "chunk" {
			continue
		}
		st := store.New(store.NewFile(filepath.Join(dir, "precomputed/cloud-volume/test_seg_unsharded")))
		vs, err := Format{}.Open(ctx, st, "")
		if err != nil {
			t.Fatal(err)
		}
		v := vs[2] // 32_32_40, the scale of the corpus chunk 0-256_0-256_64-128
		box := volume.NewBox([]int64{64, 0, 0}, []int64{2, 2, 2})
		err = v.ReadRegion(ctx, box, make([]byte, 8*4))
		if !errors.Is(err, format.ErrNotSupported) {
			t.Fatalf("err = %v, want ErrNotSupported", err)
		}
		t.Logf("as expected: %v", err)
		// A box with no chunk files reads as zeros, without touching the decoder.
		if err := v.ReadRegion(ctx, volume.NewBox([]int64{0, 0, 0}, []int64{1, 1, 1}), make([]byte, 4)); err != nil {
			t.Errorf("absent chunk: %v", err)
		}
		return
	}
	t.Fatal("no compresso chunk row in the corpus manifest")
}

// TestCorpusCompressedSegmentation round-trips neuroglancer's 64³ uint64 label
// cube through the encoder and decoder, directly and as a written volume.
func TestCorpusCompressedSegmentation(t *testing.T) {
	ctx := context.Background()
	dir, rows := corpus.Category(t, "precomputed")
	var row *corpus.Entry
	for i := range rows {
		if rows[i].HasFeature("for-cseg-roundtrip") {
			row = &rows[i]
		}
	}
	if row == nil {
		t.Fatal("no for-cseg-roundtrip row in MANIFEST.tsv")
	}
	raw, err := os.ReadFile(filepath.Join(dir, row.Path, "64x64x64-raw-uint64-segmentation.dat"))
	if err != nil {
		t.Fatal(err)
	}
	shape := [3]int64{64, 64, 64}
	for _, blk := range [][3]int64{{8, 8, 8}, {16, 16, 16}, {7, 5, 3}} {
		enc, err := encodeCSeg(raw, shape, blk, 1, 8)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(raw))
		if err := decodeCSeg(enc, shape, blk, 1, 8, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(raw) {
			t.Fatalf("block %v: round trip differs", blk)
		}
		t.Logf("block %v: %d bytes → %d", blk, len(raw), len(enc))
	}
	// The file is [x,y,z] Fortran order, i.e. C order z, y, x.
	info := volume.Info{Name: "fib25", Shape: []int64{64, 64, 64}, DType: volume.Uint64,
		Axes: []volume.Axis{{Name: "z", Size: 64}, {Name: "y", Size: 64}, {Name: "x", Size: 64}}}
	src, err := volume.NewMem(info, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range []*Sharding{nil, sharding("murmurhash3_x86_128", true)} {
		_, _, vs := writeOpen(t, src, WriteOptions{Encoding: EncCSeg, Type: "segmentation", ChunkSize: [3]int64{32, 32, 24}, Sharding: sh})
		volumetest.Run(t, vs[0], raw, 0)
		sum, err := volume.Checksum16(ctx, vs[0], 0)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := row.Expected["sha256_16_of_raw"].(string); sum != want {
			t.Errorf("checksum %s, manifest says %s", sum, want)
		}
	}
}
