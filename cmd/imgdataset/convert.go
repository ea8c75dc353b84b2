package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/volume"
)

func parseZYX(flag, v string, least int64) ([]int64, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return nil, usagef("--%s %q: want three integers z,y,x", flag, v)
	}
	out := make([]int64, 3)
	for i, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || n < least {
			return nil, usagef("--%s %q: want three integers z,y,x of at least %d", flag, v, least)
		}
		out[i] = n
	}
	return out, nil
}

func cropCmd() *cobra.Command {
	var size, origin, out string
	var seed int64
	var scale int
	var align, asJSON bool
	var of outputFlags
	var sf shardFlags
	c := &cobra.Command{
		Use:   "crop SRC --size Z,Y,X (--origin Z,Y,X | --seed N) -o OUT",
		Short: "Copy a region of any volume (local or remote) to OME-Zarr, N5, TIFF, DM3 or precomputed",
		Long: `crop reads only the chunks a region touches and streams them to OUT, in the
format OUT's name asks for:

` + pipeline.OutputNames() + `
Any other name is refused (exit status 2) before anything is read. The crop
sits where it came from: its translation is the origin × the voxel size (from
the run's catalog.json for a file inside a run's output, else from the file),
in one unit for all spatial axes (nm, or µm when the source is in µm or coarser).
The origin, seed, source and scale, and where the voxel size came from, are
recorded in the output's attributes where the format has room.

With --seed the origin is random but reproducible, and it is chosen inside the
tissue: origins are drawn from a PCG stream seeded by N (snapped to the chunk
grid with --align); for each draw the same region is read on the coarsest scale
whose axes are all at least 4 voxels, and the draw is kept when at least 50% of
those voxels are non-zero ("empty" means 0, the fill value of resin/background
and of missing chunks). After 32 draws the best one is used and the note says so.
` + shardHelp,
		Example: `  imgdataset crop gs://neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg --size 1000,1000,1000 --seed 42 --align -o crop.zarr
  imgdataset crop data/volumedata.tif --size 64,256,256 --origin 0,0,0 -o sub.tif`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sz, err := parseZYX("size", size, 1)
			if err != nil {
				return err
			}
			if sz == nil {
				return usagef("--size Z,Y,X is required")
			}
			o, err := parseZYX("origin", origin, 0)
			if err != nil {
				return err
			}
			switch {
			case o != nil && cmd.Flags().Changed("seed"):
				return usagef("--origin and --seed: give one (an origin, or a seed that draws one)")
			case o == nil && !cmd.Flags().Changed("seed"):
				return usagef("--origin Z,Y,X or --seed N is required")
			}
			spec := manifest.Crop{Size: sz, Origin: o, Scale: scale, AlignToChunks: align}
			if cmd.Flags().Changed("seed") {
				spec.Seed = &seed
			}
			opt, stop, err := of.pipelineOptions(cmd, out, &sf)
			if err != nil {
				return err
			}
			res, err := pipeline.Crop(cmd.Context(), args[0], spec, out, opt)
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s at origin %s of %s (scale %d) → %s\n  %s\n", res.Array, volume.ReadableShape(res.Size), volume.ReadablePoint(res.Origin), res.Source, res.Scale, res.Output, res.Note)
			return nil
		},
	}
	c.Flags().StringVar(&size, "size", "", "region size z,y,x in voxels (required)")
	c.Flags().StringVar(&origin, "origin", "", "region origin z,y,x in voxels")
	c.Flags().Int64Var(&seed, "seed", 0, "draw a reproducible random origin inside the tissue")
	c.Flags().IntVar(&scale, "scale", 0, "scale level (0 = full resolution)")
	c.Flags().BoolVar(&align, "align", false, "snap a random origin to the chunk grid (fewer chunks touched)")
	c.Flags().StringVarP(&out, "output", "o", "", "output: .zarr, .ome.zarr, .n5, .tif, .tiff, .dm3 or .precomputed")
	c.Flags().BoolVar(&asJSON, "json", false, "print what was cropped as JSON")
	of.add(c, false)
	sf.add(c)
	return c
}

// outputFlags are the flags of crop and convert that say how to write.
type outputFlags struct {
	chunks      int64
	levels      int
	zarrVersion int
	bigTIFF     bool
	downsample  string
	work        volume.WorkLimit
}

func (f *outputFlags) add(c *cobra.Command, levels bool) {
	addWorkFlags(c, &f.work)
	c.Flags().Int64Var(&f.chunks, "chunks", 128, "chunk (block) edge in voxels of .zarr, .n5 and .precomputed outputs")
	if levels {
		c.Flags().IntVar(&f.levels, "levels", 1, "multiscale levels of .zarr and .precomputed outputs (each halves the spatial axes)")
		c.Flags().StringVar(&f.downsample, "downsample", "auto", "how levels are reduced: mean, mode (labels), or auto (mode for label images)")
	}
	c.Flags().IntVar(&f.zarrVersion, "zarr-version", 0, "2 (NGFF 0.4) or 3 (NGFF 0.5, sharded) for .zarr outputs (default: 3 for .ome.zarr, 2 for .zarr)")
	c.Flags().BoolVar(&f.bigTIFF, "bigtiff", false, "write .tif outputs as BigTIFF even when classic TIFF would do (ImageJ 1 cannot open BigTIFF)")
}

// addWorkFlags binds the work limit of commands that read whole arrays or
// regions: a hostile header can declare an array that takes days to read.
func addWorkFlags(c *cobra.Command, w *volume.WorkLimit) {
	c.Flags().Int64Var(&w.Chunks, "max-chunks", volume.DefaultWorkChunks, "refuse to read more storage chunks than this (-1: no limit)")
	c.Flags().Int64Var(&w.Bytes, "max-bytes", volume.DefaultWorkBytes, "refuse to read more decoded bytes than this (-1: no limit)")
}

// validate checks the output flags' values before any work is done.
func (f *outputFlags) validate() error {
	if f.chunks < 1 {
		return usagef("--chunks %d: want a chunk edge of at least 1 voxel", f.chunks)
	}
	if f.levels < 0 {
		return usagef("--levels %d: want 1 or more", f.levels)
	}
	return nil
}

// pipelineOptions checks -o, the output and shard flags — all before any
// work — and returns the options of a convert or crop with the display
// started; stop ends the display.
func (f *outputFlags) pipelineOptions(cmd *cobra.Command, out string, sf *shardFlags) (opt pipeline.Options, stop func(), err error) {
	if out == "" {
		return opt, nil, &pipeline.UsageError{Err: errors.New("-o OUT is required")}
	}
	if err := f.validate(); err != nil {
		return opt, nil, err
	}
	task, err := sf.spec()
	if err != nil {
		return opt, nil, err
	}
	d, stop := display(cmd)
	return pipeline.Options{Display: d, Output: f.options(), Work: f.work, Shard: task}, stop, nil
}

func (f *outputFlags) options() pipeline.OutputOptions {
	return pipeline.OutputOptions{Chunk: f.chunks, Levels: f.levels, ZarrVersion: f.zarrVersion, BigTIFF: f.bigTIFF, Downsample: f.downsample}
}

func convertCmd() *cobra.Command {
	var out, array string
	var of outputFlags
	var sf shardFlags
	c := &cobra.Command{
		Use:   "convert SRC -o OUT",
		Short: "Convert any volume the tool reads to OME-Zarr, N5, TIFF, DM3 or precomputed",
		Long: `convert writes one array of SRC to OUT, in the format OUT's name asks for:

` + pipeline.OutputNames() + `
Any other name is refused (exit status 2) before anything is read. The output
has the voxel size the metadata table gives the array (a file inside a run's
output takes its row of catalog.json, so a size from the web page, API or
manifest is kept; any other source the size its file states), in one unit for
all spatial axes (nm, or µm when the source is in µm or coarser), and says
where that size came from in its attributes where the format has room.
` + shardHelp,
		Example: `  imgdataset convert volumedata.tif -o volumedata.zarr --levels 4
  imgdataset convert stack.zarr -o stack.tif                 # classic TIFF that ImageJ opens
  imgdataset convert volumedata.tif -o volumedata.ome.zarr   # NGFF 0.5, sharded
  imgdataset convert s3://janelia-cosem-datasets/jrc_mus-nacc-2/jrc_mus-nacc-2.zarr --array recon-2/em/fibsem-int16/s5 -o s5.n5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, stop, err := of.pipelineOptions(cmd, out, &sf)
			if err != nil {
				return err
			}
			task := opt.Shard
			err = pipeline.Convert(cmd.Context(), args[0], array, out, opt)
			stop()
			if err != nil {
				return err
			}
			if task.Sharded() {
				fmt.Fprintf(cmd.OutOrStdout(), "%s → %s (shard %s; then: imgdataset finalize %s)\n", args[0], out, task, out)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s → %s\n", args[0], out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output: .zarr, .ome.zarr, .n5, .tif, .tiff, .dm3 or .precomputed")
	c.Flags().StringVar(&array, "array", "", "which array of SRC (default: the first)")
	of.add(c, true)
	sf.add(c)
	return c
}
