package zarr

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
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
func WriteNGFF(ctx context.Context, st *store.Store, prefix string, src volume.Volume, opt WriteOptions) error {
	prefix = strings.Trim(prefix, "/")
	v3, err := zarrV3(opt)
	if err != nil {
		return fmt.Errorf("zarr write %s %q: %w", st, prefix, err)
	}
	in := src.Info()
	axes := in.Axes
	if opt.Axes != nil {
		axes = opt.Axes
	}
	// Viewers assume one unit for every spatial axis.
	axes = volume.OneUnit(axes)
	if len(axes) != len(in.Shape) {
		return fmt.Errorf("zarr write %q: %d axes for rank %d", prefix, len(axes), len(in.Shape))
	}
	name := opt.Name
	if name == "" {
		name = in.Name
	}
	levels := max(1, opt.Levels)
	// Resolved once from the source: the levels read back below carry no
	// NGFF metadata of their own.
	method := opt.Method.Resolve(in)
	if method != volume.Mean && method != volume.Mode {
		return fmt.Errorf("zarr write %q: downsampling method %q", prefix, opt.Method)
	}
	cs := codec.New()
	defer cs.Close()

	type level struct {
		path   string
		factor []int64
	}
	var done []level
	var cur volume.Volume = src
	factor := make([]int64, len(in.Shape))
	for i := range factor {
		factor[i] = 1
	}
	for k := 0; k < levels; k++ {
		if k > 0 {
			f := make([]int64, len(in.Shape))
			prev := cur.Info().Shape
			stop := false
			for i := range f {
				f[i] = 1
				if spatial(axes[i]) {
					f[i] = 2
					if prev[i] < 2 {
						stop = true
					}
				}
			}
			if stop {
				break
			}
			if cur, err = volume.Downsample(cur, f, method); err != nil {
				return fmt.Errorf("zarr write %q: %w", prefix, err)
			}
			for i := range factor {
				factor[i] *= f[i]
			}
		}
		p := join(prefix, "s"+strconv.Itoa(k))
		info := cur.Info()
		// The arrays carry the multiscale's axis names (v3 dimension_names).
		info.Axes = make([]volume.Axis, len(axes))
		for i, a := range axes {
			info.Axes[i] = volume.Axis{Name: a.Name, Size: info.Shape[i], Scale: 1}
		}
		var w levelWriter
		var fill func(context.Context, volume.Volume) error
		if v3 {
			aw, err := createArrayV3(ctx, st, cs, p, info, opt)
			if err != nil {
				return err
			}
			w, fill = aw, aw.writeFrom
		} else {
			aw, err := createArray(ctx, st, cs, p, info, opt)
			if err != nil {
				return err
			}
			w = aw
			fill = func(ctx context.Context, v volume.Volume) error {
				return volume.Copy(ctx, aw, v, volume.CopyOptions{})
			}
		}
		if err := fill(ctx, cur); err != nil {
			return fmt.Errorf("zarr write %q: %w", p, err)
		}
		if err := w.Close(ctx); err != nil {
			return err
		}
		r, err := w.reader()
		if err != nil {
			return err
		}
		cur = r
		done = append(done, level{path: "s" + strconv.Itoa(k), factor: append([]int64(nil), factor...)})
	}

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
	datasets := make([]map[string]any, len(done))
	for k, l := range done {
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
		"name":     name,
		"axes":     jaxes,
		"datasets": datasets,
		"type":     string(method),
		"metadata": map[string]any{"method": "imgdataset 2x " + string(method)},
	}
	top := map[string]any{}
	for k, v := range opt.Attributes {
		top[k] = v
	}
	var imageLabel map[string]any
	if method == volume.Mode && volume.IsLabel(in) {
		imageLabel = keptImageLabel(src, v3)
	}
	if v3 {
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
		if err := st.WriteAll(ctx, join(prefix, "zarr.json"), meta); err != nil {
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
	if err := st.WriteAll(ctx, join(prefix, ".zgroup"), []byte("{\n    \"zarr_format\": 2\n}")); err != nil {
		return fmt.Errorf("zarr write %q: %w", prefix, err)
	}
	// zarr-python 2 reads .zattrs as ASCII: a "µ" in a source path or name
	// would hide every attribute, multiscales included.
	if err := st.WriteAll(ctx, join(prefix, ".zattrs"), format.ASCIIJSON(attrs)); err != nil {
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
