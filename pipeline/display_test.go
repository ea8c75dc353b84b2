package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/pipeline/pipelinetest"
	"github.com/imgdataset/imgdataset/sample"
)

// TestConvertCropPhases checks that convert and crop show one phase each,
// for every output format, that it reaches the whole array and ends once.
func TestConvertCropPhases(t *testing.T) {
	ctx := context.Background()
	b, err := sample.ImageJTIFF(ctx, [3]int64{4, 6, 8}, 1, 0.02) // uint8
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "a.tif")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{"o.zarr", "o.ome.zarr", "o.tif", "o.n5", "o.dm3", "o.precomputed"} {
		for _, c := range []struct {
			op    string
			total int64
			run   func(out string, opt pipeline.Options) error
		}{
			{"convert", 4 * 6 * 8, func(out string, opt pipeline.Options) error { return pipeline.Convert(ctx, src, "", out, opt) }},
			{"crop", 2 * 3 * 4, func(out string, opt pipeline.Options) error {
				_, err := pipeline.Crop(ctx, src, manifest.Crop{Origin: []int64{1, 1, 1}, Size: []int64{2, 3, 4}}, out, opt)
				return err
			}},
		} {
			t.Run(c.op+" "+out, func(t *testing.T) {
				d := &pipelinetest.Display{}
				if err := c.run(filepath.Join(t.TempDir(), out), pipeline.Options{Display: d}); err != nil {
					t.Fatal(err)
				}
				ps := d.Phases()
				if len(ps) != 1 {
					t.Fatalf("%d phases, want 1", len(ps))
				}
				if ps[0].Total() != c.total {
					t.Errorf("phase %q of %d bytes, want %d", ps[0].Name, ps[0].Total(), c.total)
				}
				if p := ps[0].Problem(); p != "" {
					t.Error(p)
				}
			})
		}
	}
}
