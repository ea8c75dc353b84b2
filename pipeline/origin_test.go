package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/source"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/volume"
)

func TestChooseOriginSeededAlignedInTissue(t *testing.T) {
	shape := [3]int64{96, 512, 512}
	in := volume.Info{Name: "v", Shape: shape[:], DType: volume.Uint8, Axes: sample.ZYX(shape, [3]float64{8, 8, 8}, "nm"), Chunks: []int64{32, 64, 64}}
	// Tissue only in the central ellipsoid: corners are 0.
	full, err := volume.NewMem(in, sample.EM(shape, 1, 0.8))
	if err != nil {
		t.Fatal(err)
	}
	cs := [3]int64{shape[0] / 4, shape[1] / 4, shape[2] / 4}
	cin := volume.Info{Name: "c", Shape: cs[:], DType: volume.Uint8, Axes: sample.ZYX(cs, [3]float64{32, 32, 32}, "nm")}
	coarse, _ := volume.NewMem(cin, sample.EM(cs, 1, 0.8))
	seed := int64(7)
	c := &manifest.Crop{Size: []int64{32, 128, 128}, Seed: &seed, AlignToChunks: true}
	o1, note, err := chooseOrigin(context.Background(), c, []volume.Volume{full, coarse}, 0, 128)
	if err != nil {
		t.Fatal(err)
	}
	o2, _, _ := chooseOrigin(context.Background(), c, []volume.Volume{full, coarse}, 0, 128)
	if o1[0] != o2[0] || o1[1] != o2[1] || o1[2] != o2[2] {
		t.Fatalf("same seed, different origins: %v vs %v", o1, o2)
	}
	if o1[1]%128 != 0 || o1[2]%128 != 0 || o1[0]%32 != 0 {
		t.Fatalf("origin %v not aligned to lcm(chunk, output chunk) (z %%32 — the volume is too small for 128 — y,x %%128)", o1)
	}
	frac, err := nonZeroFraction(context.Background(), coarse, o1, c.Size, []float64{4, 4, 4})
	if err != nil || frac < TissueFraction {
		t.Fatalf("origin %v has %.2f tissue (%s)", o1, frac, note)
	}
	c.Origin = []int64{90, 0, 0}
	if _, _, err := chooseOrigin(context.Background(), c, []volume.Volume{full}, 0, 128); err == nil {
		t.Fatal("origin past the end accepted")
	}
}

func TestPageShapeConflict(t *testing.T) {
	r := &source.Resolved{Facts: source.Facts{"page_volume_size": "1065x2048x1536"}}
	rec := catalog.Record{ShapeZ: 1065, ShapeY: 1536, ShapeX: 2048}
	pageShapeConflict(&rec, r)
	if len(rec.Conflicts) != 1 || !strings.Contains(rec.Conflicts[0], "another order") {
		t.Fatalf("EPFL x/y swap not flagged: %v", rec.Conflicts)
	}
	other := catalog.Record{ShapeZ: 165, ShapeY: 768, ShapeX: 1024}
	pageShapeConflict(&other, r)
	same := catalog.Record{ShapeZ: 1065, ShapeY: 2048, ShapeX: 1536}
	pageShapeConflict(&same, r)
	if len(other.Conflicts)+len(same.Conflicts) != 0 {
		t.Fatalf("false conflicts: %v %v", other.Conflicts, same.Conflicts)
	}
}
