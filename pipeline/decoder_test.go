package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TestJPEGDecoderRecorded converts and crops a JPEG precomputed volume with
// each decoder and checks that the outputs' attributes and the source's
// catalog row name the decoder that produced the voxels.
func TestJPEGDecoderRecorded(t *testing.T) {
	ctx := context.Background()
	shape := [3]int64{40, 48, 56}
	src, err := sample.Mem("em", volume.Uint8, sample.ZYX(shape, [3]float64{8, 8, 8}, "nanometer"), sample.EM(shape, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := precomputed.Write(ctx, store.New(store.NewFile(dir)), "vol", src, precomputed.WriteOptions{
		Encoding: precomputed.EncJPEG, JPEGQuality: 75, Resolution: [3]float64{8, 8, 8}, ChunkSize: [3]int64{32, 32, 32},
	}); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(dir, "vol")
	for _, impl := range []string{jpeg.ImplGo, jpeg.ImplTurbo} {
		t.Run(impl, func(t *testing.T) {
			t.Setenv(jpeg.EnvVar, impl)
			want := jpeg.Default().Name()
			if impl == jpeg.ImplTurbo && want == jpeg.GoName {
				t.Skipf("libjpeg-turbo unavailable: %s", jpeg.Default().Fallback())
			}
			out := t.TempDir()
			conv, crop := filepath.Join(out, "conv.zarr"), filepath.Join(out, "crop.zarr")
			if err := Convert(ctx, vol, "", conv, Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := Crop(ctx, vol, manifest.Crop{Origin: []int64{3, 4, 5}, Size: []int64{20, 20, 20}}, crop, Options{}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{conv, crop} {
				b, err := os.ReadFile(filepath.Join(p, ".zattrs"))
				if err != nil {
					t.Fatal(err)
				}
				var attrs struct {
					Imgdataset map[string]any `json:"imgdataset"`
				}
				if err := json.Unmarshal(b, &attrs); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if got := attrs.Imgdataset[volume.MetaJPEGDecoder]; got != want {
					t.Errorf("%s: imgdataset.%s = %v, want %q", filepath.Base(p), volume.MetaJPEGDecoder, got, want)
				}
			}
			st := store.New(store.NewFile(dir))
			_, vols, err := all.Registry().Open(ctx, st, "vol")
			if err != nil {
				t.Fatal(err)
			}
			var rec catalog.Record
			catalog.FromVolume(ctx, &rec, vols[0], catalog.Hints{}, 0)
			if !slices.Contains(rec.Notes, "jpeg decoder: "+want) {
				t.Errorf("catalog notes %q do not name the decoder %q", rec.Notes, want)
			}
		})
	}
}
