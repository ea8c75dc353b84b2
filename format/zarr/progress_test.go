package zarr

import (
	"context"
	"fmt"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TestWriteNGFFProgress checks that Progress hears the full-resolution level
// grow monotonically to its whole size, for every way WriteNGFF writes.
func TestWriteNGFFProgress(t *testing.T) {
	shape := []int64{20, 33, 18}
	want := volume.Prod(shape) * 2 // int16
	cases := []struct {
		name string
		opt  WriteOptions
	}{
		{"v2", WriteOptions{Chunks: []int64{8, 8, 8}, Levels: 2}},
		{"v3", WriteOptions{Chunks: []int64{8, 8, 8}, Version: "0.5"}},
		{"v3 sharded", WriteOptions{Chunks: []int64{8, 8, 8}, Version: "0.5", ShardShape: []int64{16, 16, 16}, Levels: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			src := memVolume(t, "em", shape, volume.Int16, nil)
			var calls []string
			var last int64
			c.opt.Progress = func(done, total int64) {
				if total != want {
					calls = append(calls, fmt.Sprintf("total %d, want %d", total, want))
				}
				if done < last || done > total {
					calls = append(calls, fmt.Sprintf("done %d after %d of %d", done, last, total))
				}
				last = done
			}
			if err := WriteNGFF(context.Background(), st, "img.zarr", src, c.opt); err != nil {
				t.Fatal(err)
			}
			if len(calls) > 0 {
				t.Errorf("bad progress calls: %v", calls)
			}
			if last != want {
				t.Errorf("progress ended at %d bytes, want %d", last, want)
			}
		})
	}
}
