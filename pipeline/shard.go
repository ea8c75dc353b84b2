package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/format/n5"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/shard"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/transfer"
	"github.com/imgdataset/imgdataset/volume"
)

// Task kinds of the records (shard.Record.Kind) and the units they split.
const (
	kindConvert = "convert"
	kindCrop    = "crop"
	unitConvert = "conversion regions"
	unitCrop    = "crop regions"
)

// taskRequest is what a convert or crop task records: all finalize needs to
// redo, from the same source, what depends on every task.
type taskRequest struct {
	Command string `json:"command"`
	// Source is the source as given on the command line: it is recorded in
	// the output's attributes, so it must be what a single process records.
	Source string `json:"source"`
	// Open is where finalize opens the source: an absolute path for a local
	// source, so finalize may run in another directory.
	Open string `json:"open"`
	// Out is the output as given: a crop records it in its attributes.
	Out    string           `json:"out"`
	Array  string           `json:"array,omitempty"`
	Crop   *manifest.Crop   `json:"crop,omitempty"`
	Output OutputOptions    `json:"output"`
	Chunk  int64            `json:"chunk"`
	Work   volume.WorkLimit `json:"work"`
}

// openPath is where a task or finalize opens src: an existing local path
// made absolute, anything else as given.
func openPath(src string) string {
	if strings.Contains(src, "://") {
		return src
	}
	if _, err := os.Stat(src); err != nil {
		return src
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return src
	}
	return abs
}

// checkSplittable refuses, before anything is read, an output that tasks
// cannot write in parts.
func (p *outputPlan) checkSplittable() error {
	switch p.kind {
	case outZarr, outN5:
		return nil
	case outTIFF:
		return usagef("%s: a TIFF cannot be split into tasks (one file: every task would write it); drop --shard or write .zarr, .ome.zarr or .n5", filepath.Base(p.name))
	case outDM3:
		return usagef("%s: a DM3 cannot be split into tasks (one file: every task would write it); drop --shard or write .zarr, .ome.zarr or .n5", filepath.Base(p.name))
	case outPrecomputed:
		return usagef("%s: --shard does not split .precomputed outputs yet (no per-region writer); drop --shard or write .zarr, .ome.zarr or .n5", filepath.Base(p.name))
	}
	return usagef("output %q: cannot be split into tasks", p.name)
}

// splitWriter is the part of a Zarr pyramid or N5 writer that tasks share:
// a grid of regions, each written whole by one task, and the rest written
// by finalize.
type splitWriter struct {
	shape []int64
	// grid is the level-0 region grid for a coarseness j (a power-of-two
	// multiple of the storage unit); levels is how many levels a region of
	// grid j computes itself.
	grid   func(j int) []int64
	levels func(j int) int
	part   func(ctx context.Context, box volume.Box, levels int) error
	finish func(ctx context.Context, from int) error
	close  func()
}

// newSplitWriter plans the output p names for v, writing nothing.
func (p *outputPlan) newSplitWriter(ctx context.Context, v volume.Volume, f volume.Frame, attrs map[string]any) (*splitWriter, error) {
	in := v.Info()
	all := p.attributes(f, in, attrs)
	switch p.kind {
	case outZarr:
		pyr, err := zarr.NewPyramid(ctx, p.st, p.key, v, p.zarrOptions(in, all))
		if err != nil {
			return nil, err
		}
		return &splitWriter{
			shape:  in.Shape,
			grid:   pyr.Grid,
			levels: func(j int) int { return min(j+1, pyr.Levels()) },
			part:   pyr.WritePart,
			finish: pyr.Finish,
			close:  pyr.Close,
		}, nil
	case outN5:
		w, err := n5.NewWriter(store.New(store.NewFile(p.dir)), "", v, p.n5Options(in, all))
		if err != nil {
			return nil, err
		}
		return &splitWriter{
			shape: in.Shape,
			grid: func(j int) []int64 {
				c := w.Cell()
				for i := range c {
					c[i] <<= j
				}
				return c
			},
			levels: func(int) int { return 1 },
			part:   func(ctx context.Context, box volume.Box, _ int) error { return w.WritePart(ctx, box) },
			finish: func(ctx context.Context, _ int) error { return w.Finish(ctx) },
			close:  w.Close,
		}, nil
	}
	return nil, p.checkSplittable()
}

// regions is the split of the output into tasks' regions: the coarsest
// power-of-two multiple of the storage unit that still gives each of count
// tasks a region, so that a task computes as many pyramid levels inside
// its own regions as it can. It depends only on the shape, the writer's
// grid and count, never on timing. cell is the regions' grid.
func (s *splitWriter) regions(count int) (boxes []volume.Box, cell []int64, levels int) {
	cells := func(j int) int64 {
		g := s.grid(j)
		n := int64(1)
		for i, d := range s.shape {
			n *= max((d+g[i]-1)/g[i], 1)
		}
		return n
	}
	// Coarser while every task still gets a region and the grid still
	// shrinks (it stops once every axis that grows is one region long;
	// axes that no level halves never grow).
	j := 0
	for j < 40 {
		n, next := cells(j), cells(j+1)
		if next == n || next < int64(count) {
			break
		}
		j++
	}
	g := s.grid(j)
	_ = volume.Grid(s.shape, g, volume.Full(s.shape), func(_ []int64, region volume.Box) error {
		boxes = append(boxes, volume.Box{Start: append([]int64(nil), region.Start...), Stop: append([]int64(nil), region.Stop...)})
		return nil
	})
	return boxes, g, s.levels(j)
}

// cover is the regions lo..hi-1 (C order) of the grid of cell over shape as
// the fewest boxes that C order allows, themselves in C order: a run of
// regions that makes up whole rows, planes or slabs of the grid becomes one
// box. A task writes each box with one call, so the source is read in
// stretches as long as one process reads it (a TIFF row of a whole z-slab
// once, not once per x-half of it), and since every box is still a whole
// number of regions, every chunk and level is computed exactly as before.
func cover(shape, cell []int64, lo, hi int) []volume.Box {
	if lo >= hi {
		return nil
	}
	n := make([]int64, len(shape))
	for i, d := range shape {
		if d <= 0 {
			return nil // no regions (volume.Grid yields none either)
		}
		n[i] = (d + cell[i] - 1) / cell[i]
	}
	var out []volume.Box
	at := make([]int64, 0, len(shape))
	// span appends the cells lo..hi-1 of the subgrid at index prefix at
	// (axes before axis fixed), in C order: the rest of a partial first
	// slice along axis, then the whole slices, then the start of a last one.
	var span func(axis int, lo, hi int64)
	span = func(axis int, lo, hi int64) {
		if lo >= hi {
			return
		}
		if axis == len(shape) {
			out = append(out, cellBox(shape, cell, at, axis, 0, 1))
			return
		}
		inner := int64(1)
		for _, c := range n[axis+1:] {
			inner *= c
		}
		a, b := lo/inner, hi/inner
		if a == b {
			at = append(at, a)
			span(axis+1, lo%inner, hi%inner)
			at = at[:axis]
			return
		}
		if lo%inner != 0 {
			at = append(at, a)
			span(axis+1, lo%inner, inner)
			at = at[:axis]
			a++
		}
		if a < b {
			out = append(out, cellBox(shape, cell, at, axis, a, b))
		}
		if hi%inner != 0 {
			at = append(at, b)
			span(axis+1, 0, hi%inner)
			at = at[:axis]
		}
	}
	span(0, int64(lo), int64(hi))
	return out
}

// cellBox is the voxel box of the grid cells at (one cell) on the axes
// before axis, a..b-1 on axis and all of them after it, clipped to shape.
func cellBox(shape, cell, at []int64, axis int, a, b int64) volume.Box {
	box := volume.Full(shape)
	for i := range shape {
		switch {
		case i < axis:
			box.Start[i], box.Stop[i] = at[i]*cell[i], (at[i]+1)*cell[i]
		case i == axis:
			box.Start[i], box.Stop[i] = a*cell[i], b*cell[i]
		default:
			continue
		}
		box.Stop[i] = min(box.Stop[i], shape[i])
	}
	return box
}

// describe names a region and the levels written in it, for the done record.
func describe(b volume.Box, levels int) string {
	parts := make([]string, len(b.Start))
	for i := range b.Start {
		parts[i] = fmt.Sprintf("%d:%d", b.Start[i], b.Stop[i])
	}
	return fmt.Sprintf("levels 0..%d of [%s]", levels-1, strings.Join(parts, ", "))
}

// writeTask writes this task's regions of the output (every level they
// hold whole), then its done record, last. A task already done is not
// redone; one that was killed is redone from the start, which is safe
// because every file is written atomically and only by this task.
func (p *outputPlan) writeTask(ctx context.Context, v volume.Volume, f volume.Frame, attrs map[string]any) error {
	task := p.task
	lock, err := transfer.LockTask(p.dir, fmt.Sprintf("%d-of-%d", task.Index, task.Count))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	defer lock.Close()
	tasks := shard.Open(p.dir)
	defer tasks.Close()
	if rec, err := joinTasks(ctx, tasks, p.name, task, p.reqKind, p.req); err != nil {
		return err
	} else if rec != nil {
		p.log("%s: shard %s already done (%d %s)", p.name, task, rec.Units, rec.Unit)
		return nil
	}
	sw, err := p.newSplitWriter(ctx, v, f, attrs)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	defer sw.close()
	boxes, cell, levels := sw.regions(task.Count)
	lo, hi := task.Range(len(boxes))
	rec := shard.Record{Kind: p.reqKind, Shard: task, Request: p.req, Unit: p.unit, Units: hi - lo, Total: len(boxes)}
	if err := tasks.Begin(ctx, rec); err != nil {
		return err
	}
	for _, b := range cover(sw.shape, cell, lo, hi) {
		if err := sw.part(ctx, b, levels); err != nil {
			return fmt.Errorf("write %s: %w", p.name, err)
		}
		rec.Wrote = append(rec.Wrote, describe(b, levels))
	}
	if err := tasks.Done(ctx, rec); err != nil {
		return err
	}
	p.log("%s: shard %s done: %d of %d %s", p.name, task, hi-lo, len(boxes), p.unit)
	return nil
}

// finishTasks writes what depends on every task: the levels whose storage
// units span several tasks' regions and every metadata document; then it
// removes what killed tasks left behind (temporary files) and the task
// records, so the output is the one a single process writes.
func (p *outputPlan) finishTasks(ctx context.Context, v volume.Volume, f volume.Frame, attrs map[string]any) error {
	sw, err := p.newSplitWriter(ctx, v, f, attrs)
	if err != nil {
		return fmt.Errorf("finalize %s: %w", p.name, err)
	}
	defer sw.close()
	_, _, levels := sw.regions(p.task.Count)
	if err := sw.finish(ctx, levels); err != nil {
		return fmt.Errorf("finalize %s: %w", p.name, err)
	}
	return nil
}

// removeTemps deletes the temporary files of atomic writes that a killed
// task left in the tree under dir (store.File names them .imgdataset-tmp-*).
func removeTemps(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".imgdataset-tmp-") {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove %s: %w", path, err)
			}
		}
		return nil
	})
}

// FinalizeResult says what finalize found and did.
type FinalizeResult struct {
	Output string `json:"output"`
	Kind   string `json:"kind"`
	Tasks  int    `json:"tasks"`
	Unit   string `json:"unit"`
	Units  int    `json:"units"`
	// Report is the run's report, for the tasks of a sharded run.
	Report *Report `json:"report,omitempty"`
}

// Finalize completes the output of a sharded run (OUT is its --out), convert
// or crop (OUT is the output given with -o) once every task is done: it refuses with a
// *shard.NotDoneError naming the tasks that are not, else writes what
// depends on all of them and leaves the output a single process writes.
// It holds the whole-output lock, so it fails while a task still runs.
func Finalize(ctx context.Context, out string, opt Options) (*FinalizeResult, error) {
	opt.Defaults()
	if _, err := os.Stat(out); err != nil {
		return nil, fmt.Errorf("finalize %s: %w", out, err)
	}
	tasks := shard.Open(out)
	defer tasks.Close()
	st, err := tasks.Load(ctx)
	if errors.Is(err, shard.ErrNoTasks) {
		return nil, fmt.Errorf("finalize %s: %w: it was finalized already or written by one process (no %s)", out, shard.ErrNoTasks, shard.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("finalize %s: %w", out, err)
	}
	if m := st.Missing(); len(m) > 0 {
		return nil, fmt.Errorf("finalize %s: %w", out, &shard.NotDoneError{Missing: m})
	}
	lock, err := transfer.LockOutput(out)
	if err != nil {
		return nil, fmt.Errorf("finalize %s: %w", out, err)
	}
	defer lock.Close()
	if st.Kind == kindRun {
		return finalizeRun(ctx, out, st, opt)
	}
	var req taskRequest
	if err := json.Unmarshal(st.Request, &req); err != nil {
		return nil, fmt.Errorf("finalize %s: task request: %w", out, err)
	}
	opt.Output, opt.ConvertChunk, opt.Work = req.Output, req.Chunk, req.Work
	opt.Shard, opt.finalize = shard.Spec{Index: 0, Count: st.Count}, true
	switch req.Command {
	case kindConvert:
		err = convert(ctx, req.Source, req.Open, req.Array, out, opt)
	case kindCrop:
		if req.Crop == nil {
			return nil, fmt.Errorf("finalize %s: the crop task records no crop", out)
		}
		opt.shownOut = req.Out
		_, err = crop(ctx, req.Source, req.Open, *req.Crop, out, opt)
	default:
		return nil, fmt.Errorf("finalize %s: tasks of %q: finalize completes convert and crop outputs", out, req.Command)
	}
	if err != nil {
		return nil, err
	}
	if err := removeTemps(out); err != nil {
		return nil, fmt.Errorf("finalize %s: %w", out, err)
	}
	// The records go last: a finalize killed before this point is simply
	// run again.
	if err := os.RemoveAll(filepath.Dir(filepath.Join(out, filepath.FromSlash(shard.Dir)))); err != nil {
		return nil, fmt.Errorf("finalize %s: %w", out, err)
	}
	return &FinalizeResult{Output: out, Kind: st.Kind, Tasks: st.Count, Unit: st.Unit, Units: st.Total}, nil
}

// StatusResult is what the task records of an output say.
type StatusResult struct {
	Output string `json:"output"`
	// Kinds holds one line per kind of task unit.
	Kinds []StatusKind `json:"kinds"`
	// Tasks lists every task: started, done.
	Tasks []shard.TaskState `json:"tasks"`
	// Finalized is set when the output holds no task records: finalized,
	// or written by one process.
	Finalized bool `json:"finalized"`
}

// StatusKind is done/total of one kind of unit (conversion regions, crop
// regions, download objects) and of the tasks holding them.
type StatusKind struct {
	Unit       string `json:"unit"`
	Done       int    `json:"done"`
	Total      int    `json:"total"`
	TasksDone  int    `json:"tasks_done"`
	TasksTotal int    `json:"tasks_total"`
}

// Status reads the task records of out.
func Status(ctx context.Context, out string) (*StatusResult, error) {
	if _, err := os.Stat(out); err != nil {
		return nil, fmt.Errorf("status %s: %w", out, err)
	}
	tasks := shard.Open(out)
	defer tasks.Close()
	st, err := tasks.Load(ctx)
	if errors.Is(err, shard.ErrNoTasks) {
		return &StatusResult{Output: out, Finalized: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", out, err)
	}
	k := StatusKind{Unit: st.Unit, Done: st.DoneUnits, Total: st.Total, TasksTotal: st.Count}
	for _, t := range st.Tasks {
		if t.Done {
			k.TasksDone++
		}
	}
	return &StatusResult{Output: out, Kinds: []StatusKind{k}, Tasks: st.Tasks}, nil
}

// isNoTasks reports an output without task records.
func isNoTasks(err error) bool { return errors.Is(err, shard.ErrNoTasks) }
