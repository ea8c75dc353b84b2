package pipeline

import (
	"context"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/volume"
)

// frameOf is the physical frame a table row gives its array: the voxel
// sizes resolved from the file, else the page or API, else the manifest,
// with their source.
func frameOf(rec catalog.Record) volume.Frame {
	f := volume.Frame{Source: rec.VoxelSource}
	for i, v := range []*float64{rec.VoxelZ, rec.VoxelY, rec.VoxelX} {
		if v != nil && *v > 0 {
			f.VoxelNM[i] = *v
		}
	}
	return f
}

// resolveFrame resolves the frame of v the way its table row is built
// (catalog.FromVolume, without sampling values), so an output and the table
// can never disagree. It does no I/O.
func resolveFrame(ctx context.Context, v volume.Volume, h catalog.Hints) volume.Frame {
	var rec catalog.Record
	catalog.FromVolume(ctx, &rec, v, h, 0)
	return frameOf(rec)
}

// frameAttrs is what an output records about its frame, under "imgdataset"
// in its attributes: where the voxel size came from and the size in nm
// (z, y, x; null where nothing gives one), for readers of formats without
// a unit.
func frameAttrs(f volume.Frame) map[string]any {
	if !f.Known() {
		return map[string]any{"voxel_size_source": nil, "voxel_size_nm": nil}
	}
	nm := make([]any, 3)
	for i, v := range f.VoxelNM {
		if v > 0 {
			nm[i] = v
		}
	}
	return map[string]any{"voxel_size_source": f.Source, "voxel_size_nm": nm}
}

// catalogOutput fills rec from an output written in frame f. The output's
// file now states the voxel size, but the table keeps saying where it came
// from: a size from the web page is still "web page", not "file".
func catalogOutput(ctx context.Context, rec *catalog.Record, v volume.Volume, h catalog.Hints, f volume.Frame, budget int64) {
	catalog.FromVolume(ctx, rec, v, h, budget)
	if f.Known() {
		rec.VoxelSource = f.Source
	}
}
