package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/volume"
)

// TestHostileDeclaredSizes: a metadata file of about 100 bytes declaring an
// enormous array in tiny chunks fails checksum, convert and crop at once,
// before any chunk is read (issue #17 item 5); a small crop of it does not.
func TestHostileDeclaredSizes(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"zarr 1e15 of chunk 1", map[string]string{
			"a.zarr/.zarray": `{"zarr_format":2,"shape":[1000000000000000],"chunks":[1],"dtype":"|u1","compressor":null,"fill_value":0,"order":"C","filters":null}`,
		}},
		{"n5 2^31 of block 1", map[string]string{
			"a.n5/attributes.json": `{"dimensions":[2147483648],"blockSize":[1],"dataType":"uint8","compression":{"type":"raw"}}`,
		}},
		{"precomputed 1e6^3 of chunk 1", map[string]string{
			"a.precomputed/info": `{"@type":"neuroglancer_multiscale_volume","type":"image","data_type":"uint8","num_channels":1,"scales":[{"key":"s0","size":[1000000,1000000,1000000],"resolution":[1,1,1],"voxel_offset":[0,0,0],"chunk_sizes":[[1,1,1]],"encoding":"raw"}]}`,
		}},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var root string
			for name, body := range tc.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				root = filepath.Dir(p)
			}
			if _, err := Inspect(ctx, root, true, Options{}); !errors.Is(err, volume.ErrTooMuchWork) {
				t.Errorf("inspect --checksum: %v; want ErrTooMuchWork", err)
			}
			out := filepath.Join(dir, "out.zarr")
			if err := Convert(ctx, root, "", out, Options{}); !errors.Is(err, volume.ErrTooMuchWork) {
				t.Errorf("convert: %v; want ErrTooMuchWork", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("convert left output behind: %v", err)
			}
			res, err := Inspect(ctx, root, false, Options{})
			if err != nil || len(res.Arrays) == 0 {
				t.Fatalf("inspect without checksum: %v", err)
			}
			if n := len(res.Arrays[0].Shape); n == 3 {
				// A crop of the whole declared extent is refused too, while
				// a small one stays allowed.
				c := manifest.Crop{Size: []int64{1e6, 1e6, 1e6}, Origin: []int64{0, 0, 0}}
				if _, err := Crop(ctx, root, c, filepath.Join(dir, "crop.zarr"), Options{}); !errors.Is(err, volume.ErrTooMuchWork) {
					t.Errorf("crop of the whole extent: %v; want ErrTooMuchWork", err)
				}
				c.Size = []int64{2, 2, 2}
				if _, err := Crop(ctx, root, c, filepath.Join(dir, "small.zarr"), Options{}); errors.Is(err, volume.ErrTooMuchWork) {
					t.Errorf("small crop: %v", err)
				}
			}
		})
	}
}
