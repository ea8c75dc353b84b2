package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
)

// TestOutputNamesRefused checks that an output name no writer takes, or an
// option that does not fit it, is a UsageError found before the source is
// even opened, and that nothing is written.
func TestOutputNamesRefused(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-source.tif")
	for _, c := range []struct {
		out string
		opt OutputOptions
	}{
		{"x.txt", OutputOptions{}},
		{"x.dm4", OutputOptions{}},
		{"x", OutputOptions{}},
		{".zarr", OutputOptions{}},
		{"x.n5", OutputOptions{ZarrVersion: 3}},
		{"x.zarr", OutputOptions{ZarrVersion: 4}},
		{"x.zarr", OutputOptions{BigTIFF: true}},
		{"x.tif", OutputOptions{Levels: 3}},
	} {
		out := filepath.Join(dir, c.out)
		var ue *UsageError
		err := Convert(context.Background(), missing, "", out, Options{Output: c.opt})
		if !errors.As(err, &ue) {
			t.Errorf("convert -o %s %+v: %v, want a UsageError", c.out, c.opt, err)
		}
		_, err = Crop(context.Background(), missing, manifest.Crop{Size: []int64{1, 1, 1}, Origin: []int64{0, 0, 0}}, out, Options{Output: c.opt})
		if !errors.As(err, &ue) {
			t.Errorf("crop -o %s %+v: %v, want a UsageError", c.out, c.opt, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused outputs left %v", ents)
	}
	var ue *UsageError
	if err := Convert(context.Background(), missing, "", filepath.Join(dir, "ok.zarr"), Options{}); err == nil || errors.As(err, &ue) {
		t.Errorf("a good name with a missing source: %v, want an error that is not about usage", err)
	}
}
