package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/imgdataset/imgdataset/manifest"
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
	st, key, err := splitTarget(ctx, opt.Env.Stores, opt.Formats, target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	_, vols, err := opt.Formats.Open(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	return vols, nil
}

// Crop reads a region of any volume the tool reads (local or remote) and writes
// it to OUT in the format its name asks for (see OutputNames), placed where
// it came from: the translation is the origin × the resolved voxel size (see
// Convert for where that comes from). The
// name and options are checked before anything is read. Only the chunks the
// region touches are read, and the copy streams through a bounded window.
//
// With opt.Shard the crop is one task of several writing OUT together (see
// Finalize): the output must be one tasks can split (.zarr, .ome.zarr,
// .n5), else the error is a *UsageError saying why.
func Crop(ctx context.Context, src string, c manifest.Crop, out string, opt Options) (*CropResult, error) {
	return crop(ctx, src, src, c, out, opt)
}

// crop is Crop of src, opened at open (finalize opens where the tasks
// recorded it).
func crop(ctx context.Context, src, open string, c manifest.Crop, out string, opt Options) (*CropResult, error) {
	opt.Defaults()
	plan, err := planTask(out, &opt, taskRequest{Command: kindCrop, Source: src, Open: open, Out: out, Crop: &c})
	if err != nil {
		return nil, err
	}
	plan.compressor = cropCompressor
	vols, err := openVolumes(ctx, open, &opt)
	if err != nil {
		return nil, err
	}
	win, in, origin, note, err := cropWindow(ctx, &c, vols, plan.chunk, opt.Work)
	if err != nil {
		return nil, fmt.Errorf("crop %s: %w", src, err)
	}
	fr := sourceFrame(ctx, &opt, open, vols[c.Scale])
	res := &CropResult{Source: src, Array: in.Name, Scale: c.Scale, Origin: origin, Size: c.Size, Seed: c.Seed, Note: note, Output: out}
	if opt.shownOut != "" {
		res.Output = opt.shownOut
	}
	ph := opt.display().Phase(fmt.Sprintf("cropping %s of %s", volume.ReadableShape(c.Size), in.Name), win.Info().NumBytes())
	err = plan.write(ctx, volume.Reframe(win, fr), fr, map[string]any{"imgdataset_crop": res}, ph)
	ph.End(err)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Convert writes one array of SRC (by name or the first) to OUT in the
// format its name asks for (see OutputNames). A local SRC inside the output
// of a run (a catalog.json above it) is placed in the frame of its table row,
// so a voxel size from the page, API or manifest reaches the output; any
// other SRC in the frame its file gives. The name and options are checked
// before anything is read.
//
// With opt.Shard the conversion is one task of several writing OUT
// together: each task writes the output regions (aligned to the storage
// grid and to the pyramid) of its own part, and Finalize, once all are
// done, the rest. The output must be one tasks can split (.zarr,
// .ome.zarr, .n5), else the error is a *UsageError saying why.
func Convert(ctx context.Context, src, array, out string, opt Options) error {
	return convert(ctx, src, src, array, out, opt)
}

// convert is Convert of src, opened at open (finalize opens where the
// tasks recorded it).
func convert(ctx context.Context, src, open, array, out string, opt Options) error {
	opt.Defaults()
	plan, err := planTask(out, &opt, taskRequest{Command: kindConvert, Source: src, Open: open, Out: out, Array: array})
	if err != nil {
		return err
	}
	vols, err := openVolumes(ctx, open, &opt)
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
	if err := opt.Work.Check(v.Info(), volume.Full(v.Info().Shape)); err != nil {
		return fmt.Errorf("convert %s: %w", src, err)
	}
	fr := sourceFrame(ctx, &opt, open, v)
	ph := opt.display().Phase("converting "+v.Info().Name, v.Info().NumBytes())
	err = plan.write(ctx, volume.Reframe(v, fr), fr, map[string]any{"imgdataset_source": map[string]any{"url": src, "array": v.Info().Name}}, ph)
	ph.End(err)
	return err
}

// planTask checks the output and, for a task or finalize, that it can be
// split, and records the request the tasks share.
func planTask(out string, opt *Options, req taskRequest) (*outputPlan, error) {
	plan, err := planOutput(out, opt.Output, opt.ConvertChunk)
	if err != nil {
		return nil, err
	}
	plan.task, plan.finalize, plan.log = opt.Shard, opt.finalize, opt.logf
	if plan.task.Sharded() {
		if err := plan.checkSplittable(); err != nil {
			return nil, err
		}
		req.Open, req.Output, req.Chunk, req.Work = openPath(req.Open), opt.Output, opt.ConvertChunk, opt.Work
		if plan.req, err = json.Marshal(req); err != nil {
			return nil, err
		}
		plan.reqKind, plan.unit = kindConvert, unitConvert
		if req.Command == kindCrop {
			plan.reqKind, plan.unit = kindCrop, unitCrop
		}
	}
	if err := plan.checkNew(); err != nil {
		return nil, err
	}
	return plan, nil
}
