package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/imgdataset/imgdataset/format/dm"
	"github.com/imgdataset/imgdataset/format/n5"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/shard"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// UsageError is a request that cannot be carried out as asked (an output
// name no writer takes, options that do not fit the format). It is found
// before any work is done; the command line exits with status 2.
type UsageError struct{ Err error }

// Error says what was asked that cannot be done.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// OutputOptions say how Crop and Convert write; the format comes from the
// output's name.
type OutputOptions struct {
	// Chunk is the chunk or block edge in voxels; 0 means ConvertChunk.
	Chunk int64
	// Levels is the number of multiscale levels (Zarr, precomputed), each
	// halving the spatial axes; 0 means 1.
	Levels int
	// ZarrVersion is 2 (NGFF 0.4) or 3 (NGFF 0.5, sharded) for Zarr
	// outputs; 0 goes by the name: .ome.zarr is 3, .zarr is 2.
	ZarrVersion int
	// BigTIFF forces BigTIFF for TIFF outputs; otherwise they are classic
	// TIFF (what ImageJ opens) unless the data passes 4 GiB.
	BigTIFF bool
	// Downsample is how each level is reduced from the one before: "mean",
	// "mode" (labels), or "auto"/"" — mode for a label image, else mean
	// (volume.Downsample).
	Downsample string
}

type outputKind int

const (
	outZarr outputKind = iota
	outN5
	outTIFF
	outDM3
	outPrecomputed
)

// outputName is an output name ending and the writer it selects.
type outputName struct {
	ext  string
	kind outputKind
	what string
}

// outputNames lists the output name endings, longest first.
func outputNames() []outputName {
	return []outputName{
		{".ome.zarr", outZarr, "OME-Zarr: NGFF 0.5 (Zarr v3, sharded)"},
		{".zarr", outZarr, "OME-Zarr: NGFF 0.4 (Zarr v2), or 0.5 with --zarr-version 3"},
		{".n5", outN5, "N5 (gzip)"},
		{".tif", outTIFF, "TIFF with ImageJ calibration (classic unless > 4 GiB or --bigtiff)"},
		{".tiff", outTIFF, "TIFF, as .tif"},
		{".dm3", outDM3, "Gatan DM3 (arrays up to 1 GiB)"},
		{".precomputed", outPrecomputed, "Neuroglancer precomputed (raw chunks)"},
	}
}

// OutputNames describes the output name endings Crop and Convert accept,
// one per line, for help texts.
func OutputNames() string {
	var b strings.Builder
	for _, n := range outputNames() {
		fmt.Fprintf(&b, "  %-13s %s\n", n.ext, n.what)
	}
	return b.String()
}

// outputPlan is a checked output: where and how to write.
type outputPlan struct {
	name   string // as given
	kind   outputKind
	v3     bool
	chunk  int64
	method volume.Method // how pyramid levels are reduced
	o      OutputOptions
	st     *store.Store
	key    string
	dir    string // the output's absolute path, removed again if writing fails
	// compressor of a Zarr output; "" is the writer's default (zstd).
	// Crops set cropCompressor.
	compressor string

	// task is set for one task of a sharded write (Options.Shard); with
	// finalize, the write completes the tasks' output instead.
	task     shard.Spec
	finalize bool
	req      json.RawMessage // the task request (taskRequest)
	reqKind  string          // kindConvert or kindCrop
	unit     string          // what the tasks split: unitConvert or unitCrop
	log      func(format string, args ...any)
}

// planOutput checks an output name and the options against the format it
// names, before any work is done.
func planOutput(out string, o OutputOptions, defChunk int64) (*outputPlan, error) {
	if out == "" {
		return nil, usagef("no output given")
	}
	p := &outputPlan{name: out, o: o, chunk: o.Chunk}
	if p.chunk <= 0 {
		p.chunk = defChunk
	}
	// The name, not the directory, must say the kind, and say more than it.
	l := strings.ToLower(filepath.Base(strings.TrimRight(out, `/\`)))
	found := false
	var exts []string
	for _, n := range outputNames() {
		exts = append(exts, n.ext)
		if !found && strings.HasSuffix(l, n.ext) && len(l) > len(n.ext) {
			p.kind, found = n.kind, true
			p.v3 = n.ext == ".ome.zarr"
		}
	}
	if !found {
		return nil, usagef("output %q: unknown kind; name it with one of %s", out, strings.Join(exts, ", "))
	}
	switch o.ZarrVersion {
	case 0:
	case 2, 3:
		if p.kind != outZarr {
			return nil, usagef("output %q: --zarr-version applies to .zarr outputs", out)
		}
		p.v3 = o.ZarrVersion == 3
	default:
		return nil, usagef("--zarr-version %d: want 2 or 3", o.ZarrVersion)
	}
	if o.BigTIFF && p.kind != outTIFF {
		return nil, usagef("output %q: --bigtiff applies to .tif outputs", out)
	}
	if o.Levels > 1 && p.kind != outZarr && p.kind != outPrecomputed {
		return nil, usagef("output %q: only .zarr and .precomputed outputs hold multiscale levels, --levels %d asked", out, o.Levels)
	}
	switch volume.Method(o.Downsample) {
	case "", "auto":
		p.method = volume.Auto
	case volume.Mean, volume.Mode:
		p.method = volume.Method(o.Downsample)
	default:
		return nil, usagef("--downsample %q: want auto, mean or mode", o.Downsample)
	}
	if o.Levels < 0 || o.Chunk < 0 {
		return nil, usagef("--levels %d, --chunks %d: want positive numbers", o.Levels, o.Chunk)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", out, err)
	}
	p.st, p.key, p.dir = store.New(store.NewFile(filepath.Dir(abs))), filepath.Base(abs), abs
	return p, nil
}

// checkNew refuses an output that exists, unless it is the output of the
// tasks of a sharded write (they create it together, and finalize
// completes it).
func (p *outputPlan) checkNew() error {
	if _, err := os.Stat(p.dir); err != nil {
		if p.finalize {
			return fmt.Errorf("output %s: %w", p.name, err)
		}
		return nil
	}
	if p.task.Sharded() {
		if _, err := os.Stat(filepath.Join(p.dir, filepath.FromSlash(shard.Dir))); err == nil {
			return nil
		}
		if ents, err := os.ReadDir(p.dir); err == nil && len(ents) == 0 {
			return nil
		}
		return fmt.Errorf("output %s already exists and holds no sharded tasks (finalized, or written by one process); choose a new name", p.name)
	}
	return fmt.Errorf("output %s already exists; choose a new name", p.name)
}

// attributes are the output's attributes: the frame's and, for a JPEG
// source (in), the decoder that produced its values; then attrs.
func (p *outputPlan) attributes(f volume.Frame, in volume.Info, attrs map[string]any) map[string]any {
	all := map[string]any{"imgdataset": withDecoder(frameAttrs(f), in)}
	for k, a := range attrs {
		all[k] = a
	}
	return all
}

// zarrOptions are the Zarr writer's options for a volume of info in.
func (p *outputPlan) zarrOptions(in volume.Info, all map[string]any) zarr.WriteOptions {
	opt := zarr.WriteOptions{Chunks: cube(p.chunk, len(in.Shape)), Levels: p.o.Levels, Method: p.method, Name: in.Name, Attributes: all, Compressor: p.compressor}
	if p.v3 {
		// Shards of 4 chunks a side: few files, and a reader still
		// fetches single chunks by range.
		opt.Version, opt.ShardShape = "0.5", cube(4*p.chunk, len(in.Shape))
	}
	return opt
}

// n5Options are the N5 writer's options for a volume of info in.
func (p *outputPlan) n5Options(in volume.Info, all map[string]any) n5.WriteOptions {
	return n5.WriteOptions{BlockSize: cube(p.chunk, len(in.Shape)), Attributes: all}
}

// write writes v, placed in frame f, with attrs as extra attributes where
// the format has room for them, showing how far it got on ph. A failed
// write leaves nothing behind.
func (p *outputPlan) write(ctx context.Context, v volume.Volume, f volume.Frame, attrs map[string]any, ph Phase) error {
	switch {
	case p.finalize:
		return p.finishTasks(ctx, v, f, attrs)
	case p.task.Sharded():
		return p.writeTask(ctx, v, f, attrs)
	}
	if p.kind != outZarr {
		// The other writers have no progress hook of their own; each reads
		// its source once, so the bytes read tell how far they are.
		v = &counted{Volume: v, ph: ph, total: v.Info().NumBytes()}
	}
	in := v.Info()
	all := p.attributes(f, in, attrs)
	fa := all["imgdataset"].(map[string]any)
	var err error
	switch p.kind {
	case outZarr:
		opt := p.zarrOptions(in, all)
		opt.Progress = ph.Update
		err = zarr.WriteNGFF(ctx, p.st, p.key, v, opt)
	case outN5:
		// The output is an N5 container of its own with the dataset at its
		// root, not a dataset inside the directory it is written to.
		root := store.New(store.NewFile(p.dir))
		err = n5.Write(ctx, root, "", v, p.n5Options(in, all))
	case outPrecomputed:
		opt := precomputed.WriteOptions{Scales: p.o.Levels, Attributes: all}
		switch p.method {
		case volume.Mode:
			opt.Type = "segmentation"
		case volume.Mean:
			opt.Type = "image"
		}
		for d := range opt.ChunkSize {
			opt.ChunkSize[d] = p.chunk
			if n := len(in.Shape); n >= 3 {
				opt.ChunkSize[d] = min(p.chunk, in.Shape[n-1-d])
			}
		}
		if off, whole := opt.Calibrate(in); !whole {
			// Precomputed places volumes on whole voxels only.
			fa["offset_nm_xyz"] = off
		}
		err = precomputed.Write(ctx, p.st, p.key, v, opt)
	case outTIFF:
		opt := tiff.WriteOptions{BigTIFF: p.o.BigTIFF}
		if opt.Calibrate(in) && f.Known() {
			opt.Properties = map[string]string{"imgdataset_voxel_size_source": f.Source}
		}
		err = p.writeFile(ctx, func(w store.AtomicWriter) error { return tiff.Write(ctx, w, v, opt) })
	case outDM3:
		var tags map[string]any
		if f.Known() {
			tags = map[string]any{"imgdataset.voxel_size_source": f.Source}
		}
		err = p.writeFile(ctx, func(w store.AtomicWriter) error { return dm.WriteVolume(ctx, w, v, tags) })
	}
	if err != nil {
		if p.kind != outTIFF && p.kind != outDM3 {
			if rerr := os.RemoveAll(p.dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove partial output: %w", rerr))
			}
		}
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	return nil
}

// counted is a view of a volume that reports the bytes read from it to a
// phase: the progress of a writer that reads its source once.
type counted struct {
	volume.Volume
	ph    Phase
	total int64
	done  atomic.Int64
}

// Unwrap lets volume.As see through the count (an NGFF label image stays one).
func (c *counted) Unwrap() volume.Volume { return c.Volume }

func (c *counted) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := c.Volume.ReadRegion(ctx, box, dst); err != nil {
		return err
	}
	c.ph.Update(min(c.done.Add(int64(len(dst))), c.total), c.total)
	return nil
}

// writeFile writes a single-file output atomically: nothing sits under its
// name unless fill succeeded.
func (p *outputPlan) writeFile(ctx context.Context, fill func(store.AtomicWriter) error) error {
	w, err := p.st.NewWriter(ctx, p.key)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := fill(w); err != nil {
		return err
	}
	return w.Close()
}
