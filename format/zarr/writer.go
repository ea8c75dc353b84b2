package zarr

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// WriteOptions control CreateArray and WriteNGFF.
type WriteOptions struct {
	// Chunks is the chunk shape; nil means 128 on every axis. Each entry is
	// clipped to the array shape.
	Chunks []int64
	// Compressor is "zstd" (default), "gzip", "zlib", "lz4", "blosc" (Blosc
	// with zstd and byte shuffle; "blosc-zstd" is the same), "blosc-lz4"
	// (Blosc with lz4 and byte shuffle) or "none". Zarr
	// v3 (Version "0.5") has no zlib or lz4 codec.
	Compressor string
	// Level is the compression level; 0 means the codec default (zstd 3,
	// gzip 6, blosc 5).
	Level int
	// Version is the OME-NGFF version: "0.4" (default; Zarr v2) or "0.5"
	// (Zarr v3). It selects the Zarr format for CreateArray too.
	Version string
	// ShardShape, with Version "0.5", stores the array as sharding_indexed
	// shards of this shape in elements, each a multiple of Chunks (the inner
	// chunks) except where it reaches past the array edge, e.g. 512 on every
	// axis for 128³ chunks. nil means no sharding.
	ShardShape []int64
	// Levels is the number of multiscale levels WriteNGFF writes (level 0
	// included); each further level halves the spatial axes. 0 means 1.
	Levels int
	// Method is how each level is reduced from the one before (see
	// volume.Downsample): volume.Mode (most frequent value, so label ids are
	// never averaged into ids that do not exist), volume.Mean, or
	// volume.Auto (the default), which is Mode for a label image
	// (volume.IsLabel) and Mean otherwise.
	Method volume.Method
	// Axes overrides the source's axes (names, units, scale, offset). Either
	// way the calibrated spatial axes are written in one unit (volume.OneUnit).
	Axes []volume.Axis
	// Name is the multiscale name; default the source's name.
	Name string
	// DimensionSeparator is "/" (default, as NGFF 0.4 requires) or ".".
	DimensionSeparator string
	// Attributes are extra top-level group attributes written next to
	// "multiscales" (0.4) or "ome" (0.5) (provenance such as a crop's
	// origin, seed and source); they may not replace those.
	Attributes map[string]any
	// Progress, when set, is called as WriteNGFF writes the full-resolution
	// level (s0, nearly all of the work: the further levels read it back at
	// an eighth of the size each), with the bytes of s0 done so far and in
	// all; one call at a time. It is how a display shows a long conversion.
	// WritePart reports the bytes of its part of s0.
	Progress func(done, total int64)
}

// v2DType is the little-endian NumPy typestr of a volume dtype.
func v2DType(d volume.DType) (string, error) {
	switch d {
	case volume.Bool:
		return "|b1", nil
	case volume.Int8:
		return "|i1", nil
	case volume.Uint8:
		return "|u1", nil
	case volume.RGBA8, "":
		return "", fmt.Errorf("dtype %q: %w in zarr", d, format.ErrNotSupported)
	}
	s := string(d)
	for _, k := range []struct{ prefix, kind string }{{"uint", "u"}, {"int", "i"}, {"float", "f"}, {"complex", "c"}} {
		if strings.HasPrefix(s, k.prefix) {
			bits, err := strconv.Atoi(strings.TrimPrefix(s, k.prefix))
			if err != nil || d.Size() == 0 {
				break
			}
			return "<" + k.kind + strconv.Itoa(bits/8), nil
		}
	}
	return "", fmt.Errorf("dtype %q: %w in zarr", d, format.ErrNotSupported)
}

// chunkShape resolves WriteOptions.Chunks for shape: 128 on every axis by
// default, each entry clipped to the array.
func chunkShape(shape, want []int64) ([]int64, error) {
	n := len(shape)
	if want != nil && len(want) != n {
		return nil, fmt.Errorf("chunks %v for rank %d", want, n)
	}
	chunks := make([]int64, n)
	for i := range chunks {
		c := int64(128)
		if want != nil {
			c = want[i]
		}
		if c <= 0 {
			return nil, fmt.Errorf("chunk size %d", c)
		}
		chunks[i] = max(1, min(c, shape[i]))
	}
	return chunks, nil
}

// arrayWriter writes one Zarr v2 array chunk by chunk.
type arrayWriter struct {
	st   *store.Store
	cs   *codec.Codecs
	key  string
	info volume.Info
	comp compSpec
	sep  string
	meta []byte
}

// CreateArray starts a Zarr v2 array at key with the shape and dtype of info.
// Regions passed to WriteRegion must be unions of whole chunks (volume.Copy
// sends exactly that); each chunk is encoded and written atomically. The
// .zarray is written by Close, so an interrupted write leaves no readable array.
//
// With opt.Version "0.5" the array is Zarr v3 (zarr.json, written by Close),
// sharded when opt.ShardShape is set; Info().Chunks is then the shard shape,
// so that volume.Copy hands over whole shards.
func CreateArray(ctx context.Context, st *store.Store, key string, info volume.Info, opt WriteOptions) (volume.Writer, error) {
	v3, err := zarrV3(opt)
	if err != nil {
		return nil, fmt.Errorf("zarr write %s %q: %w", st, key, err)
	}
	if v3 {
		return createArrayV3(ctx, st, codec.New(), key, info, opt)
	}
	return createArray(ctx, st, codec.New(), key, info, opt)
}

// zarrV3 reports whether opt asks for Zarr v3 (NGFF 0.5).
func zarrV3(opt WriteOptions) (bool, error) {
	switch opt.Version {
	case "", "0.4":
		if opt.ShardShape != nil {
			return false, fmt.Errorf("sharding needs Zarr v3 (NGFF version 0.5): %w", format.ErrNotSupported)
		}
		return false, nil
	case "0.5":
		return true, nil
	}
	return false, fmt.Errorf("NGFF version %q (want 0.4 or 0.5): %w", opt.Version, format.ErrNotSupported)
}

func createArray(ctx context.Context, st *store.Store, cs *codec.Codecs, key string, info volume.Info, opt WriteOptions) (*arrayWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key = strings.Trim(key, "/")
	fail := func(err error) (*arrayWriter, error) {
		return nil, fmt.Errorf("zarr write %s %q: %w", st, key, err)
	}
	if len(info.Axes) != len(info.Shape) {
		info.Axes = defaultAxes(info.Shape, nil)
	}
	if err := info.Validate(); err != nil {
		return fail(err)
	}
	dt, err := v2DType(info.DType)
	if err != nil {
		return fail(err)
	}
	chunks, err := chunkShape(info.Shape, opt.Chunks)
	if err != nil {
		return fail(err)
	}
	if err := checkSizes(info.Shape, chunks, info.DType.Size()); err != nil {
		return fail(err)
	}
	comp, err := compressorSpec(cs, opt, info.DType.Size())
	if err != nil {
		return fail(err)
	}
	sep := opt.DimensionSeparator
	switch sep {
	case "":
		sep = "/"
	case "/", ".":
	default:
		return fail(fmt.Errorf("dimension separator %q", sep))
	}
	fill := any(0)
	if info.DType == volume.Bool {
		fill = false
	}
	meta, err := json.MarshalIndent(map[string]any{
		"zarr_format":         2,
		"shape":               info.Shape,
		"chunks":              chunks,
		"dtype":               dt,
		"compressor":          comp.v2,
		"fill_value":          fill,
		"order":               "C",
		"filters":             nil,
		"dimension_separator": sep,
	}, "", "    ")
	if err != nil {
		return fail(err)
	}
	info.Chunks = chunks
	info.Name = key
	info.Compression = codecName(comp.id)
	return &arrayWriter{st: st, cs: cs, key: key, info: info, comp: comp, sep: sep, meta: meta}, nil
}

// Info implements volume.Writer.
func (w *arrayWriter) Info() volume.Info { return w.info }

// WriteRegion implements volume.Writer. box must start on a chunk boundary and
// end on one or at the array edge on every axis.
func (w *arrayWriter) WriteRegion(ctx context.Context, box volume.Box, src []byte) error {
	elem := w.info.DType.Size()
	ch := w.info.Chunks
	return writeAligned(ctx, w.key, w.info, box, src, func(ctx context.Context, idx []int64, region volume.Box) error {
		// A chunk whose bytes are one run of src (the box is the chunk, or a
		// slab spanning the faster axes) is encoded from src itself: the
		// copy cost a crop ~4% of its CPU. Edge chunks are stored
		// full-size, padded with the fill value 0.
		cell := cellBox(idx, ch)
		buf, whole := contiguousRange(src, box, cell, region, elem)
		if !whole {
			buf = make([]byte, cellBytes(ch, elem))
			volume.CopyBox(buf, cell, src, box, region, elem)
		}
		enc, err := w.comp.encode(w.cs, buf)
		if err != nil {
			return fmt.Errorf("zarr write %q: %w", w.key, err)
		}
		key := join(w.key, chunkName(idx, w.sep))
		if err := w.st.WriteAll(ctx, key, enc); err != nil {
			return fmt.Errorf("zarr write chunk %q: %w", key, err)
		}
		return nil
	})
}

// writeAligned checks the arguments of a WriteRegion whose box must start on
// a boundary of info.Chunks and end on one or at the array edge, then calls
// put for every chunk the box covers, GOMAXPROCS at a time.
func writeAligned(ctx context.Context, key string, info volume.Info, box volume.Box, src []byte, put func(ctx context.Context, idx []int64, region volume.Box) error) error {
	if err := volume.CheckRead(info, box, src); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := info.Chunks
	for i := range box.Start {
		if box.Start[i]%ch[i] != 0 || (box.Stop[i]%ch[i] != 0 && box.Stop[i] != info.Shape[i]) {
			return fmt.Errorf("zarr write %q: box %v is not aligned to chunks %v", key, box, ch)
		}
	}
	if box.Empty() && len(box.Start) > 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	err := volume.Grid(info.Shape, ch, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error { return put(gctx, idx, region) })
		return nil
	})
	// The group's first error explains a cancellation seen by Grid.
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return err
}

// Close implements volume.Writer: it writes .zarray, which makes the array
// visible to readers.
func (w *arrayWriter) Close(ctx context.Context) error {
	return commitMeta(ctx, w.st, w.key, ".zarray", w.meta)
}

// commitMeta writes an array's metadata document last, which makes the
// array visible to readers.
func commitMeta(ctx context.Context, st *store.Store, key, name string, meta []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := st.WriteAll(ctx, join(key, name), meta); err != nil {
		return fmt.Errorf("zarr write %q: %w", key, err)
	}
	return nil
}

// reader opens the written array for reading (after Close).
func (w *arrayWriter) reader() (*array, error) { return openV2(w.st, w.cs, w.key, w.meta) }

// udunits maps the unit spellings volume readers report to the UDUNITS-2
// names NGFF requires; unknown units pass through unchanged.
func udunits(u string) string {
	switch f, ok := volume.NanometresPer(u); {
	case ok && f == 1e-3:
		return "picometer"
	case ok && f == 0.1:
		return "angstrom"
	case ok && f == 1:
		return "nanometer"
	case ok && f == 1e3:
		return "micrometer"
	case ok && f == 1e6:
		return "millimeter"
	case ok && f == 1e7:
		return "centimeter"
	case ok && f == 1e9:
		return "meter"
	}
	switch u {
	case "s", "sec":
		return "second"
	case "ms":
		return "millisecond"
	case "us", "µs":
		return "microsecond"
	case "min":
		return "minute"
	case "h":
		return "hour"
	}
	return u
}

// spatial reports whether an axis is downsampled in a pyramid.
func spatial(a volume.Axis) bool {
	switch a.Name {
	case "z", "y", "x", "Z", "Y", "X":
		return true
	case "c", "t", "C", "T":
		return false
	}
	_, ok := volume.NanometresPer(a.Unit)
	return ok
}

func axisType(a volume.Axis) string {
	switch {
	case spatial(a):
		return "space"
	case a.Name == "c" || a.Name == "C":
		return "channel"
	case a.Name == "t" || a.Name == "T":
		return "time"
	}
	return ""
}

// levelWriter is one multiscale level being written, Zarr v2 or v3.
type levelWriter interface {
	volume.Writer
	reader() (*array, error)
}

// WriteNGFF writes src as an OME-NGFF multiscale image under prefix: arrays
// s0, s1, … (each level is volume.Downsample of the level before by 2 on the
// spatial axes, ceil(n/2) long, with opt.Method), then the group metadata,
// last, so a reader never sees metadata for missing levels. A label image
// (volume.IsLabel) reduced by mode stays one: its group gets "image-label",
// the source's own when src is an NGFF label array of this package.
// Version "0.4" (default) writes Zarr v2 with .zgroup and the .zattrs
// multiscales; "0.5" writes Zarr v3 with the multiscales under
// attributes.ome of the group's zarr.json and the axis names as every array's
// dimension_names, sharded when opt.ShardShape is set (shards are written in
// parallel, one shard row of data in flight per worker). Memory is bounded
// by the copy budget, not by the array size.
//
// WriteNGFF is NewPyramid, WritePart of the whole array and every level,
// then Finish: tasks that split one output call the two parts themselves.
func WriteNGFF(ctx context.Context, st *store.Store, prefix string, src volume.Volume, opt WriteOptions) error {
	p, err := NewPyramid(ctx, st, prefix, src, opt)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.WritePart(ctx, volume.Full(src.Info().Shape), p.Levels()); err != nil {
		return err
	}
	return p.Finish(ctx, p.Levels())
}

// Pyramid is the plan of one OME-NGFF multiscale image: its levels' arrays,
// axes and reduction, resolved from the source before anything is written.
// Its data can be written in parts (WritePart, one per task, on boxes of
// the grid Cell gives) and its metadata once all parts are there (Finish);
// the files are the same, byte for byte, however the work was split.
type Pyramid struct {
	st     *store.Store
	cs     *codec.Codecs
	prefix string
	v3     bool
	src    volume.Volume
	opt    WriteOptions
	axes   []volume.Axis
	name   string
	method volume.Method
	levels []pyramidLevel
}

// pyramidLevel is one level: its array's writer and its factor from level 0.
type pyramidLevel struct {
	path   string
	factor []int64 // per axis, from level 0
	step   []int64 // per axis, from the level before (1 or 2)
	w      levelWriter
}

// NewPyramid plans the multiscale image WriteNGFF writes for src under
// prefix: the level count (at most opt.Levels; no level halves a spatial
// axis shorter than 2), each level's array, the axes and the reduction
// method. It writes nothing.
func NewPyramid(ctx context.Context, st *store.Store, prefix string, src volume.Volume, opt WriteOptions) (*Pyramid, error) {
	prefix = strings.Trim(prefix, "/")
	v3, err := zarrV3(opt)
	if err != nil {
		return nil, fmt.Errorf("zarr write %s %q: %w", st, prefix, err)
	}
	in := src.Info()
	axes := in.Axes
	if opt.Axes != nil {
		axes = opt.Axes
	}
	// Viewers assume one unit for every spatial axis.
	axes = volume.OneUnit(axes)
	if len(axes) != len(in.Shape) {
		return nil, fmt.Errorf("zarr write %q: %d axes for rank %d", prefix, len(axes), len(in.Shape))
	}
	name := opt.Name
	if name == "" {
		name = in.Name
	}
	// Resolved once from the source: the levels read back carry no NGFF
	// metadata of their own.
	method := opt.Method.Resolve(in)
	if method != volume.Mean && method != volume.Mode {
		return nil, fmt.Errorf("zarr write %q: downsampling method %q", prefix, opt.Method)
	}
	p := &Pyramid{st: st, cs: codec.New(), prefix: prefix, v3: v3, src: src, opt: opt, axes: axes, name: name, method: method}
	shape := append([]int64(nil), in.Shape...)
	factor := make([]int64, len(in.Shape))
	for i := range factor {
		factor[i] = 1
	}
	for k := 0; k < max(1, opt.Levels); k++ {
		step := make([]int64, len(in.Shape))
		for i := range step {
			step[i] = 1
		}
		if k > 0 {
			stop := false
			for i := range step {
				if spatial(axes[i]) {
					step[i] = 2
					if shape[i] < 2 {
						stop = true
					}
				}
			}
			if stop {
				break
			}
			for i := range shape {
				shape[i] = (shape[i] + step[i] - 1) / step[i]
				factor[i] *= step[i]
			}
		}
		path := join(prefix, "s"+strconv.Itoa(k))
		info := in
		info.Shape = append([]int64(nil), shape...)
		info.Chunks = nil
		// The arrays carry the multiscale's axis names (v3 dimension_names).
		info.Axes = make([]volume.Axis, len(axes))
		for i, a := range axes {
			info.Axes[i] = volume.Axis{Name: a.Name, Size: info.Shape[i], Scale: 1}
		}
		var w levelWriter
		if v3 {
			w, err = createArrayV3(ctx, st, p.cs, path, info, opt)
		} else {
			w, err = createArray(ctx, st, p.cs, path, info, opt)
		}
		if err != nil {
			p.Close()
			return nil, err
		}
		p.levels = append(p.levels, pyramidLevel{path: "s" + strconv.Itoa(k), factor: append([]int64(nil), factor...), step: step, w: w})
	}
	return p, nil
}

// Close releases the codecs.
func (p *Pyramid) Close() { p.cs.Close() }

// Levels is the number of levels written (at most WriteOptions.Levels).
func (p *Pyramid) Levels() int { return len(p.levels) }

// Cell is the level-0 grid that WritePart's boxes must follow when they
// write levels 0..upTo−1: the level-0 storage unit (the shard when
// sharded, else the chunk) times 2^(upTo−1) on the spatial axes. A box of
// this grid covers whole storage units of every level it writes, and every
// level it writes is computed from the level before inside the box, so
// parts never share a file and never need each other's data.
func (p *Pyramid) Cell(upTo int) []int64 {
	unit := p.levels[0].w.Info().Chunks
	cell := make([]int64, len(unit))
	for i, u := range unit {
		cell[i] = u
		if upTo > 1 && p.levels[min(upTo, len(p.levels))-1].factor[i] > 1 {
			cell[i] = u * p.levels[min(upTo, len(p.levels))-1].factor[i]
		}
	}
	return cell
}

// Grid is the level-0 storage unit (the shard when sharded, else the chunk)
// times 2^j on the spatial axes: for j ≥ upTo−1 a grid that WritePart's
// boxes may follow when they write upTo levels.
func (p *Pyramid) Grid(j int) []int64 {
	unit := p.levels[0].w.Info().Chunks
	cell := make([]int64, len(unit))
	for i, u := range unit {
		cell[i] = u
		if spatial(p.axes[i]) {
			cell[i] = u << j
		}
	}
	return cell
}

// WritePart writes the storage units (chunk or shard files) of levels
// 0..upTo−1 that lie inside box, a level-0 region that starts on the grid
// of Cell(upTo) and ends on it or at the array edge; level k's part is box
// divided by the level's factor, rounded up. It writes no metadata: the
// arrays stay invisible to readers until Finish. Each file is written
// atomically, so a part that is interrupted can simply be written again.
func (p *Pyramid) WritePart(ctx context.Context, box volume.Box, upTo int) error {
	upTo = min(upTo, len(p.levels))
	cell := p.Cell(upTo)
	shape := p.src.Info().Shape
	for i := range box.Start {
		if box.Start[i]%cell[i] != 0 || (box.Stop[i]%cell[i] != 0 && box.Stop[i] != shape[i]) || box.Stop[i] > shape[i] {
			return fmt.Errorf("zarr write %q: part %v is not on the grid %v of %d levels", p.prefix, box, cell, upTo)
		}
	}
	for k := 0; k < upTo; k++ {
		l := p.levels[k]
		src, err := p.levelSource(k)
		if err != nil {
			return err
		}
		lb := volume.Box{Start: make([]int64, len(box.Start)), Stop: make([]int64, len(box.Stop))}
		for i := range box.Start {
			lb.Start[i] = box.Start[i] / l.factor[i]
			lb.Stop[i] = (box.Stop[i] + l.factor[i] - 1) / l.factor[i]
		}
		var progress func(done, total int64)
		if k == 0 {
			progress = p.opt.Progress
		}
		if err := p.fill(ctx, l.w, src, lb, progress); err != nil {
			return fmt.Errorf("zarr write %q: %w", join(p.prefix, l.path), err)
		}
	}
	return nil
}

// levelSource is what level k is written from: the source for level 0,
// else the level before, read back from the store and reduced.
func (p *Pyramid) levelSource(k int) (volume.Volume, error) {
	if k == 0 {
		return p.src, nil
	}
	r, err := p.levels[k-1].w.reader()
	if err != nil {
		return nil, err
	}
	v, err := volume.Downsample(r, p.levels[k].step, p.method)
	if err != nil {
		return nil, fmt.Errorf("zarr write %q: %w", p.prefix, err)
	}
	return v, nil
}

// fill writes the part box of one level from src; progress, when set,
// hears the bytes of the part done (as volume.CopyOptions.Progress).
func (p *Pyramid) fill(ctx context.Context, w levelWriter, src volume.Volume, box volume.Box, progress func(done, total int64)) error {
	if box.Empty() && len(box.Start) > 0 {
		return nil
	}
	if aw, ok := w.(*arrayWriterV3); ok && aw.shard {
		return aw.writeFrom(ctx, src, box, progress)
	}
	if slices.Equal(box.Start, make([]int64, len(box.Start))) && slices.Equal(box.Stop, w.Info().Shape) {
		return volume.Copy(ctx, w, src, volume.CopyOptions{Progress: progress})
	}
	return volume.Copy(ctx, partWriter{w, box}, src, volume.CopyOptions{Origin: box.Start, Progress: progress})
}

// partWriter is the region box of a writer, as a writer of box's shape.
type partWriter struct {
	w   volume.Writer
	box volume.Box
}

// Info is the writer's, with the part's shape.
func (pw partWriter) Info() volume.Info {
	in := pw.w.Info()
	in.Shape = pw.box.Shape()
	return in
}

// WriteRegion writes b, relative to the part, at its place in the writer.
func (pw partWriter) WriteRegion(ctx context.Context, b volume.Box, src []byte) error {
	abs := volume.Box{Start: make([]int64, len(b.Start)), Stop: make([]int64, len(b.Stop))}
	for i := range b.Start {
		abs.Start[i] = b.Start[i] + pw.box.Start[i]
		abs.Stop[i] = b.Stop[i] + pw.box.Start[i]
	}
	return pw.w.WriteRegion(ctx, abs, src)
}

// Close is done by the Pyramid, not by the part.
func (pw partWriter) Close(context.Context) error { return nil }

// Finish writes levels from..Levels()−1 whole (each from the level before,
// which must be complete), then every level's array metadata and the
// group metadata, last. After WritePart has covered the whole array for
// levels 0..from−1, the result is the one WriteNGFF writes.
func (p *Pyramid) Finish(ctx context.Context, from int) error {
	for k := max(from, 0); k < len(p.levels); k++ {
		l := p.levels[k]
		src, err := p.levelSource(k)
		if err != nil {
			return err
		}
		if err := p.fill(ctx, l.w, src, volume.Full(l.w.Info().Shape), nil); err != nil {
			return fmt.Errorf("zarr write %q: %w", join(p.prefix, l.path), err)
		}
	}
	for _, l := range p.levels {
		if err := l.w.Close(ctx); err != nil {
			return err
		}
	}
	return p.writeGroup(ctx)
}

// writeGroup writes the group metadata: the multiscales of every level.
func (p *Pyramid) writeGroup(ctx context.Context) error {
	axes, prefix := p.axes, p.prefix
	jaxes := make([]map[string]any, len(axes))
	for i, a := range axes {
		m := map[string]any{"name": a.Name}
		if t := axisType(a); t != "" {
			m["type"] = t
		}
		if a.Unit != "" && a.ScaleKnown {
			m["unit"] = udunits(a.Unit)
		}
		jaxes[i] = m
	}
	datasets := make([]map[string]any, len(p.levels))
	for k, l := range p.levels {
		scale := make([]float64, len(axes))
		trans := make([]float64, len(axes))
		for i, a := range axes {
			s0, off := 1.0, 0.0
			if a.ScaleKnown {
				s0, off = a.Scale, a.Offset
			}
			f := float64(l.factor[i])
			scale[i] = s0 * f
			// A downsampled voxel's centre sits half a (level-0) voxel per
			// extra factor further in, as OpenOrganelle writes it.
			trans[i] = off + (f-1)/2*s0
		}
		datasets[k] = map[string]any{
			"path": l.path,
			"coordinateTransformations": []map[string]any{
				{"type": "scale", "scale": scale},
				{"type": "translation", "translation": trans},
			},
		}
	}
	ms := map[string]any{
		"name":     p.name,
		"axes":     jaxes,
		"datasets": datasets,
		"type":     string(p.method),
		"metadata": map[string]any{"method": "imgdataset 2x " + string(p.method)},
	}
	top := map[string]any{}
	for k, v := range p.opt.Attributes {
		top[k] = v
	}
	var imageLabel map[string]any
	if p.method == volume.Mode && volume.IsLabel(p.src.Info()) {
		imageLabel = keptImageLabel(p.src, p.v3)
	}
	if p.v3 {
		ome := map[string]any{"version": "0.5", "multiscales": []map[string]any{ms}}
		if imageLabel != nil {
			ome["image-label"] = imageLabel
		}
		top["ome"] = ome
		meta, err := json.MarshalIndent(map[string]any{
			"zarr_format": 3,
			"node_type":   "group",
			"attributes":  top,
		}, "", "    ")
		if err != nil {
			return err
		}
		if err := p.st.WriteAll(ctx, join(prefix, "zarr.json"), meta); err != nil {
			return fmt.Errorf("zarr write %q: %w", prefix, err)
		}
		return nil
	}
	ms["version"] = "0.4"
	top["multiscales"] = []map[string]any{ms}
	if imageLabel != nil {
		top["image-label"] = imageLabel
	}
	attrs, err := json.MarshalIndent(top, "", "    ")
	if err != nil {
		return err
	}
	if err := p.st.WriteAll(ctx, join(prefix, ".zgroup"), []byte("{\n    \"zarr_format\": 2\n}")); err != nil {
		return fmt.Errorf("zarr write %q: %w", prefix, err)
	}
	// zarr-python 2 reads .zattrs as ASCII: a "µ" in a source path or name
	// would hide every attribute, multiscales included.
	if err := p.st.WriteAll(ctx, join(prefix, ".zattrs"), format.ASCIIJSON(attrs)); err != nil {
		return fmt.Errorf("zarr write %q: %w", prefix, err)
	}
	return nil
}

// keptImageLabel is the "image-label" object of a label image copied from
// src: the source's own object when src is (a view of) an NGFF label array
// read by this package (colors, properties and source link as they were), else an empty
// one; "version" is set for NGFF 0.4, or removed for 0.5, which states it
// once under "ome".
func keptImageLabel(src volume.Volume, v3 bool) map[string]any {
	il := map[string]any{}
	if a, ok := volume.As[*array](src); ok && a.imageLabel != nil {
		var m map[string]any
		if json.Unmarshal(a.imageLabel, &m) == nil && m != nil {
			il = m
		}
	}
	if v3 {
		delete(il, "version")
	} else {
		il["version"] = "0.4"
	}
	return il
}
