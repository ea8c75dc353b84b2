package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/store"
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

// withDecoder adds to an output's imgdataset attributes the JPEG decoder
// that produced the values of in, a JPEG-compressed source, so that a copy
// says which decoder its voxels come from (decoders differ by ±1).
func withDecoder(attrs map[string]any, in volume.Info) map[string]any {
	if dec, ok := in.Metadata[volume.MetaJPEGDecoder]; ok {
		attrs[volume.MetaJPEGDecoder] = dec
	}
	return attrs
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

// sourceFrame resolves the frame of v, an array of target, for convert and
// crop. A local source inside the output of a run is placed as the run's
// table row places it, so a voxel size the run took from the web page, the
// API or the manifest reaches the output too; anything else gets the frame
// its file gives. A table that cannot be read is reported in the log and
// the file's frame is used.
func sourceFrame(ctx context.Context, opt *Options, target string, v volume.Volume) volume.Frame {
	f, err := tableFrame(ctx, target, v.Info().Name)
	if err != nil {
		opt.logf("%s: %v; using the voxel size the file gives", target, err)
	}
	if f.Known() {
		return f
	}
	return resolveFrame(ctx, v, catalog.Hints{})
}

// tableFrame finds the catalog.json of the run output a local target lies
// in (the nearest in an ancestor directory) and returns the frame of the
// row of target's array. It returns the zero Frame for remote targets and
// targets no table lists.
func tableFrame(ctx context.Context, target, array string) (volume.Frame, error) {
	if strings.Contains(target, "://") {
		return volume.Frame{}, nil
	}
	abs, err := filepath.Abs(strings.TrimRight(target, `/\`))
	if err != nil {
		return volume.Frame{}, nil
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, scan.CatalogFile)); err == nil {
			rel, err := filepath.Rel(dir, abs)
			if err != nil {
				return volume.Frame{}, nil
			}
			return rowFrame(ctx, dir, filepath.ToSlash(rel), array)
		}
		if filepath.Dir(dir) == dir {
			return volume.Frame{}, nil
		}
	}
}

// rowFrame reads dir/catalog.json and returns the frame of the row of array
// in the file or store at rel: the row whose array name array ends with, or
// the only row of rel.
func rowFrame(ctx context.Context, dir, rel, array string) (volume.Frame, error) {
	st := store.New(store.NewFile(dir))
	defer st.Close()
	doc, _, err := scan.RunCatalog(ctx, st)
	if err != nil {
		return volume.Frame{}, fmt.Errorf("read %s: %w", filepath.Join(dir, scan.CatalogFile), err)
	}
	if doc == nil {
		return volume.Frame{}, nil
	}
	var rows []catalog.Record
	for _, r := range doc.Records {
		if r.LocalPath == rel && r.Status == catalog.StatusOK {
			rows = append(rows, r)
		}
	}
	for _, r := range rows {
		if r.Array != "" && (array == r.Array || strings.HasSuffix(array, "/"+r.Array)) {
			return frameOf(r), nil
		}
	}
	if len(rows) == 1 {
		return frameOf(rows[0]), nil
	}
	return volume.Frame{}, nil
}
