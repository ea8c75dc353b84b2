package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Example_trainingBlocks converts a TIFF stack to an OME-Zarr pyramid (what
// `imgdataset convert stack.tif stack.zarr --levels 2` does), opens the copy
// the way any reader of the tool does, and reads random 128³ training blocks
// from its finest level. The generator is seeded, so every run reads the same
// blocks; each is compared with the same box of the original.
func Example_trainingBlocks() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "imgdataset-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A generated EM-like uint8 stack with an 8 nm voxel, as an ImageJ TIFF.
	tif, err := sample.ImageJTIFF(ctx, [3]int64{136, 144, 160}, 1, 0.008)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stack.tif"), tif, 0o644); err != nil {
		log.Fatal(err)
	}
	err = pipeline.Convert(ctx, filepath.Join(dir, "stack.tif"), "", filepath.Join(dir, "stack.zarr"),
		pipeline.Options{Output: pipeline.OutputOptions{Levels: 2}})
	if err != nil {
		log.Fatal(err)
	}

	st := store.New(store.NewFile(dir))
	defer st.Close()
	reg := all.Registry()
	_, levels, err := reg.Open(ctx, st, "stack.zarr")
	if err != nil {
		log.Fatal(err)
	}
	_, orig, err := reg.Open(ctx, st, "stack.tif")
	if err != nil {
		log.Fatal(err)
	}
	for _, lv := range levels {
		in := lv.Info()
		fmt.Printf("level %s: %v %s, chunks %v, voxel %g %s\n", in.Name, in.Shape, in.DType, in.Chunks, in.Axes[0].Scale, in.Axes[0].Unit)
	}

	v := levels[0]
	in := v.Info()
	const edge = 128
	rng := rand.New(rand.NewPCG(2026, 128))
	sum := sha256.New()
	block := make([]byte, edge*edge*edge*in.DType.Size())
	want := make([]byte, len(block))
	same := true
	for range 8 {
		origin := make([]int64, len(in.Shape))
		for a, n := range in.Shape {
			origin[a] = rng.Int64N(n - edge + 1)
		}
		box := volume.NewBox(origin, []int64{edge, edge, edge})
		if err := v.ReadRegion(ctx, box, block); err != nil {
			log.Fatal(err)
		}
		if err := orig[0].ReadRegion(ctx, box, want); err != nil {
			log.Fatal(err)
		}
		same = same && bytes.Equal(block, want)
		sum.Write(block)
	}
	fmt.Printf("8 random %d³ blocks, sha256 %x, equal to the original: %v\n", edge, sum.Sum(nil)[:8], same)
	// Output:
	// level stack.zarr/s0: [136 144 160] uint8, chunks [128 128 128], voxel 0.008 micrometer
	// level stack.zarr/s1: [68 72 80] uint8, chunks [68 72 80], voxel 0.016 micrometer
	// 8 random 128³ blocks, sha256 c7c680556bba54ba, equal to the original: true
}
