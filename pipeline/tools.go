package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// CropResult says what a crop took and where it went.
type CropResult struct {
	Source string  `json:"source"`
	Array  string  `json:"array"`
	Scale  int     `json:"scale"`
	Origin []int64 `json:"origin_zyx"`
	Size   []int64 `json:"size_zyx"`
	Seed   *int64  `json:"seed,omitempty"`
	Note   string  `json:"note"`
	Output string  `json:"output"`
}

// openVolumes opens every array of a path or URL.
func openVolumes(ctx context.Context, target string, opt *Options) ([]volume.Volume, error) {
	st, key, err := splitTarget(ctx, opt.Env.Stores, target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	_, vols, err := opt.Formats.Open(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	return vols, nil
}

// outputStore splits an output path into a writable local store and a key.
func outputStore(out string) (*store.Store, string, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(abs); err == nil {
		return nil, "", fmt.Errorf("output %s already exists; choose a new name", out)
	}
	return store.New(store.NewFile(filepath.Dir(abs))), filepath.Base(abs), nil
}

// Crop reads a region of any volume the tool reads (local or remote) and writes
// it to OUT: OME-Zarr (NGFF 0.4, translation = origin × voxel size) unless OUT
// ends in .tif/.tiff (BigTIFF). Only the chunks the region touches are read,
// and the copy streams through a bounded window.
func Crop(ctx context.Context, src string, c manifest.Crop, out string, opt Options) (*CropResult, error) {
	opt.Defaults()
	vols, err := openVolumes(ctx, src, &opt)
	if err != nil {
		return nil, err
	}
	win, in, origin, note, err := cropWindow(ctx, &c, vols, opt.ConvertChunk)
	if err != nil {
		return nil, fmt.Errorf("crop %s: %w", src, err)
	}
	res := &CropResult{Source: src, Array: in.Name, Scale: c.Scale, Origin: origin, Size: c.Size, Seed: c.Seed, Note: note, Output: out}
	if err := writeVolume(ctx, win, out, opt.ConvertChunk, 1, volume.Auto, map[string]any{"imgdataset_crop": res}); err != nil {
		return nil, err
	}
	return res, nil
}

// Convert writes one array of SRC (by name or the first) to OUT as OME-Zarr
// with a multiscale pyramid of levels levels, or as BigTIFF for .tif outputs.
// method reduces each level from the one before (volume.Downsample);
// volume.Auto takes mode for label images and mean otherwise.
func Convert(ctx context.Context, src, array, out string, chunk int64, levels int, method volume.Method, opt Options) error {
	opt.Defaults()
	vols, err := openVolumes(ctx, src, &opt)
	if err != nil {
		return err
	}
	v := vols[0]
	if array != "" {
		v = nil
		for _, c := range vols {
			if n := c.Info().Name; n == array || strings.HasSuffix(n, "/"+array) {
				v = c
				break
			}
		}
		if v == nil {
			var names []string
			for _, c := range vols {
				names = append(names, c.Info().Name)
			}
			return fmt.Errorf("convert %s: no array %q (it has %s)", src, array, strings.Join(names, ", "))
		}
	}
	if chunk <= 0 {
		chunk = opt.ConvertChunk
	}
	return writeVolume(ctx, v, out, chunk, levels, method, map[string]any{"imgdataset_source": map[string]any{"url": src, "array": v.Info().Name}})
}

func writeVolume(ctx context.Context, v volume.Volume, out string, chunk int64, levels int, method volume.Method, attrs map[string]any) error {
	st, key, err := outputStore(out)
	if err != nil {
		return err
	}
	l := strings.ToLower(out)
	if strings.HasSuffix(l, ".tif") || strings.HasSuffix(l, ".tiff") {
		w, err := st.NewWriter(ctx, key)
		if err != nil {
			return err
		}
		defer w.Abort()
		if err := tiff.Write(ctx, w, v, tiffOptions(v.Info())); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		return w.Close()
	}
	in := v.Info()
	if err := zarr.WriteNGFF(ctx, st, key, v, zarr.WriteOptions{Chunks: cube(chunk, len(in.Shape)), Levels: levels, Method: method, Name: in.Name, Attributes: attrs}); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// tiffOptions writes the voxel size as ImageJ calibration when the axes carry one.
func tiffOptions(in volume.Info) tiff.WriteOptions {
	o := tiff.WriteOptions{BigTIFF: true}
	n := len(in.Axes)
	if n < 2 {
		return o
	}
	x, y := in.Axes[n-1], in.Axes[n-2]
	if !x.ScaleKnown || !y.ScaleKnown {
		return o
	}
	o.ImageJ, o.Unit, o.PixelWidth, o.PixelHeight = true, x.Unit, x.Scale, y.Scale
	if n >= 3 && in.Axes[n-3].ScaleKnown {
		o.Spacing = in.Axes[n-3].Scale
	}
	return o
}
