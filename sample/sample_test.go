package sample_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// open writes b to a temp file and opens it with the project's readers.
func open(t *testing.T, name string, b []byte) []volume.Volume {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, vols, err := all.Registry().Open(context.Background(), store.New(store.NewFile(dir)), name)
	if err != nil {
		t.Fatal(err)
	}
	return vols
}

func TestGeneratorsWriteWhatTheySay(t *testing.T) {
	ctx := context.Background()

	t.Run("imagej", func(t *testing.T) {
		b, err := sample.ImageJTIFF(ctx, [3]int64{5, 6, 7}, 1, 0.02)
		if err != nil {
			t.Fatal(err)
		}
		in := open(t, "a.tif", b)[0].Info()
		if in.Axes[0].Scale != 0.02 || in.Axes[2].Scale != 0.02 || !in.Axes[2].ScaleKnown || in.Shape[0] != 5 {
			t.Fatalf("ImageJ stack reads back as %+v", in.Axes)
		}
	})

	t.Run("bigtiff", func(t *testing.T) {
		b, err := sample.PlainTIFF(ctx, [3]int64{3, 8, 9}, 2, true)
		if err != nil {
			t.Fatal(err)
		}
		if binary.LittleEndian.Uint16(b[2:]) != 43 && binary.BigEndian.Uint16(b[2:]) != 43 {
			t.Fatalf("not a BigTIFF: version %x", b[2:4])
		}
		in := open(t, "b.tif", b)[0].Info()
		if in.Shape[0] != 3 || in.Axes[2].ScaleKnown {
			t.Fatalf("plain stack reads back as %v %+v (must be uncalibrated)", in.Shape, in.Axes)
		}
	})

	t.Run("dm3", func(t *testing.T) {
		b, err := sample.DM3Section([2]int64{10, 12}, 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		vols := open(t, "s.dm3", b)
		if len(vols) != 1 {
			t.Fatalf("%d datasets; the thumbnail must be skipped", len(vols))
		}
		in := vols[0].Info()
		nm, _ := volume.ToNanometres(in.Axes[1].Scale, in.Axes[1].Unit)
		zs, _ := in.Metadata["z_spacing"].(map[string]any)
		if in.Shape[0] != 10 || nm < 7.99 || nm > 8.0 || zs["value"] != sample.EMPIARZSpacingNM {
			t.Fatalf("DM3 section reads back as %v %+v z=%v", in.Shape, in.Axes, zs)
		}
	})

	t.Run("demo-content", func(t *testing.T) {
		c, err := sample.Content(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if len(c.IDR) != 2 || len(c.EPFLFiles) != 6 {
			t.Fatalf("%d IDR images, %d EPFL files", len(c.IDR), len(c.EPFLFiles))
		}
		var dm3, shards, zarrays int
		for k := range c.EMPIARFiles {
			if strings.HasSuffix(k, ".dm3") {
				dm3++
			}
		}
		for k := range c.GCS {
			if strings.HasSuffix(k, ".shard") {
				shards++
			}
		}
		for k, v := range c.S3 {
			if strings.HasSuffix(k, ".zarray") {
				zarrays++
				if !bytes.Contains(v, []byte(`"zstd"`)) {
					t.Errorf("%s is not zstd-compressed: %s", k, v)
				}
			}
		}
		if dm3 != sample.EMPIARSections || shards < 2 || zarrays != sample.CosemLevels+2 {
			t.Fatalf("%d DM3 sections, %d shards, %d zarr arrays", dm3, shards, zarrays)
		}
	})
}
