package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TissueFraction is the share of non-zero voxels a randomly placed crop must
// have (measured on a coarse scale) to count as "inside the tissue".
const TissueFraction = 0.5

// maxDraws bounds the random origins tried before settling for the best one.
const maxDraws = 32

func findFormat(reg *format.Registry, name string) format.Format {
	for _, f := range reg.Formats() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// cropVolume reads a region of a remote volume into an OME-Zarr under the
// dataset directory and returns its catalog row.
func cropVolume(ctx context.Context, opt *Options, out *store.Store, r *source.Resolved, ref source.VolumeRef, dr *DatasetReport, rep *Report) ([]catalog.Record, error) {
	c := r.Dataset.Take.Crop
	if c == nil {
		return nil, fmt.Errorf("%s is a volume to read in place, but the manifest gives no crop", ref.StoreURL)
	}
	st, err := opt.Env.Stores.Open(ctx, ref.StoreURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var vols []volume.Volume
	var fname string
	if f := findFormat(opt.Formats, ref.Format); f != nil {
		fname = f.Name()
		vols, err = f.Open(ctx, st, ref.Key)
	} else {
		var f format.Format
		f, vols, err = opt.Formats.Open(ctx, st, ref.Key)
		if f != nil {
			fname = f.Name()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ref.StoreURL, err)
	}
	win, in, origin, note, err := cropWindow(ctx, c, vols, opt.ConvertChunk, opt.Work)
	if err != nil {
		return nil, fmt.Errorf("crop %s: %w", ref.StoreURL, err)
	}
	name := ref.Path
	if name == "" {
		name = "crop.zarr"
	}
	key := path.Join(r.Dataset.Name, name)
	opt.logf("  %s: cropping %s at origin %s (scale %d) of %s → %s", r.Dataset.Name, volume.ReadableShape(c.Size), volume.ReadablePoint(origin), c.Scale, ref.StoreURL, key)
	// The crop sits in the source's frame as its row reports it: a voxel
	// size from the page or API places it too.
	h := hints(r, unit{})
	fr := resolveFrame(ctx, vols[c.Scale], h)
	attrs := map[string]any{"imgdataset_crop": map[string]any{
		"source_url": ref.StoreURL, "source_format": fname, "scale": c.Scale, "scale_name": in.Name,
		"origin_zyx": origin, "size_zyx": c.Size, "seed": c.Seed, "aligned_to_chunks": c.AlignToChunks, "note": note,
	}, "imgdataset": withDecoder(frameAttrs(fr), in)}
	win = volume.Reframe(win, fr)
	// Blosc-lz4: a crop is bound by decoding the source, and EM texture
	// decoded from JPEG barely compresses (ratio 1.00-1.05 with zstd), so
	// the output codec is the one that writes fastest: 1.6-2.2 GB per
	// CPU-second against zstd level 3's 0.34-0.54 (docs/benchmarks.md).
	wopt := zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, len(win.Info().Shape)), Name: name, Attributes: attrs, Compressor: cropCompressor}
	if err := writeShown(ctx, opt, out, key, win, wopt, fmt.Sprintf("%s: cropping %s", r.Dataset.Name, volume.ReadableShape(c.Size))); err != nil {
		return nil, fmt.Errorf("write crop %s: %w", key, err)
	}
	dr.Outputs = append(dr.Outputs, key)
	// Catalog the crop from what was written: the table describes the output.
	f, cvols, err := opt.Formats.Open(ctx, out, key)
	if err != nil {
		return nil, fmt.Errorf("reopen crop %s: %w", key, err)
	}
	var recs []catalog.Record
	for _, v := range cvols[:1] {
		rec := catalog.Record{Dataset: r.Dataset.Name, LocalPath: key, SourceURL: ref.StoreURL, Format: f.Name(), Status: "ok",
			MetadataSource: r.FactsSource, CropOrigin: origin, CropSeed: c.Seed}
		catalogOutput(ctx, &rec, v, h, fr, opt.SampleBudget)
		// Named by where it is (s0 of the crop's store), like every array of
		// the table; the source scale's own name is in .zattrs (scale_name).
		rec.Array = scan.ArrayName(key, v.Info().Name)
		rec.ScaleLevel = ptr(c.Scale)
		if note != "" {
			rec.Notes = append(rec.Notes, note)
		}
		if dn := catalog.DecoderNote(in); dn != "" {
			rec.Notes = append(rec.Notes, dn) // the row describes the copy; its values came through the decoder
		}
		applyFacts(&rec, r, unit{})
		recs = append(recs, rec)
		rep.keep(rec, v)
	}
	return recs, nil
}

// cropCompressor is the OME-Zarr compressor of crops (see cropVolume).
const cropCompressor = "blosc-lz4"

func cube(edge int64, n int) []int64 {
	c := make([]int64, n)
	for i := range c {
		c[i] = edge
	}
	return c
}

// cropWindow picks the scale, validates the request, chooses the origin and
// returns the region as a lazy view of the source (the one path shared by the
// manifest's crops and the crop command).
func cropWindow(ctx context.Context, c *manifest.Crop, vols []volume.Volume, outChunk int64, work volume.WorkLimit) (volume.Volume, volume.Info, []int64, string, error) {
	if c.Scale < 0 || c.Scale >= len(vols) {
		return nil, volume.Info{}, nil, "", fmt.Errorf("scale %d, but it has %d arrays/scales", c.Scale, len(vols))
	}
	if len(c.Size) != 3 {
		return nil, volume.Info{}, nil, "", fmt.Errorf("size needs z,y,x, got %v", c.Size)
	}
	if len(c.Origin) == 0 && c.Seed == nil {
		return nil, volume.Info{}, nil, "", fmt.Errorf("give an origin or a seed")
	}
	src := vols[c.Scale]
	in := src.Info()
	lead := len(in.Shape) - 3
	if lead < 0 {
		return nil, in, nil, "", fmt.Errorf("array %q has %d dimensions; a crop needs z, y, x", in.Name, len(in.Shape))
	}
	origin, note, err := chooseOrigin(ctx, c, vols, c.Scale, outChunk)
	if err != nil {
		return nil, in, nil, "", err
	}
	win, err := volume.Window(src, append(make([]int64, lead), origin...), append(append([]int64(nil), in.Shape[:lead]...), c.Size...))
	if err != nil {
		return nil, in, nil, "", fmt.Errorf("%v at %v of %v: %w", c.Size, origin, in.Shape, err)
	}
	box := volume.Box{Start: append(make([]int64, lead), origin...), Stop: append(append([]int64(nil), in.Shape[:lead]...), c.Size...)}
	for i := lead; i < len(box.Stop); i++ {
		box.Stop[i] += box.Start[i]
	}
	if err := work.Check(in, box); err != nil {
		return nil, in, nil, "", err
	}
	return win, in, origin, note, nil
}

// chooseOrigin returns the crop origin (z, y, x) at the chosen scale. An explicit
// origin is used as given; otherwise origins are drawn from a PCG stream seeded
// by the manifest seed (reproducible), optionally snapped to the chunk grid, and
// kept when a coarse scale shows at least TissueFraction non-zero voxels there.
//
// Aligned origins snap to the least common multiple of the source chunk and the
// output chunk: then every output chunk covers whole source chunks that sit
// together (a Morton group in a sharded volume), so each is one range read.
func chooseOrigin(ctx context.Context, c *manifest.Crop, vols []volume.Volume, scale int, outChunk int64) ([]int64, string, error) {
	in := vols[scale].Info()
	shape := in.Shape[len(in.Shape)-3:]
	for i := range c.Size {
		if c.Size[i] > shape[i] {
			return nil, "", fmt.Errorf("crop size %v does not fit in volume %v (z,y,x)", c.Size, shape)
		}
	}
	if len(c.Origin) == 3 {
		for i := range c.Origin {
			if c.Origin[i] < 0 || c.Origin[i]+c.Size[i] > shape[i] {
				return nil, "", fmt.Errorf("crop origin %v + size %v exceeds volume %v (z,y,x)", c.Origin, c.Size, shape)
			}
		}
		return append([]int64(nil), c.Origin...), "origin given", nil
	}
	rng := rand.New(rand.NewPCG(uint64(*c.Seed), 0x696d6764))
	var chunks []int64
	if in.Chunks != nil {
		chunks = in.Chunks[len(in.Chunks)-3:]
	}
	coarse, factor := coarseScale(vols, scale)
	var best []int64
	bestFrac := -1.0
	for draw := 1; draw <= maxDraws; draw++ {
		o := make([]int64, 3)
		for i := range o {
			o[i] = rng.Int64N(shape[i] - c.Size[i] + 1)
			if c.AlignToChunks && chunks != nil && chunks[i] > 0 {
				step := lcm(chunks[i], max(outChunk, 1))
				if step > shape[i]-c.Size[i] {
					step = chunks[i] // the volume is too small for the coarser grid
				}
				o[i] -= o[i] % step
			}
		}
		if coarse == nil {
			return o, fmt.Sprintf("random origin (seed %d, draw 1); no coarse scale to check for tissue", *c.Seed), nil
		}
		frac, err := nonZeroFraction(ctx, coarse, o, c.Size, factor)
		if err != nil {
			return nil, "", fmt.Errorf("tissue check on %s: %w", coarse.Info().Name, err)
		}
		if frac > bestFrac {
			best, bestFrac = o, frac
		}
		if frac >= TissueFraction {
			return o, fmt.Sprintf("random origin (seed %d, draw %d); %.0f%% non-zero on coarse scale %s", *c.Seed, draw, 100*frac, coarse.Info().Name), nil
		}
	}
	return best, fmt.Sprintf("random origin (seed %d): no draw of %d reached %.0f%% tissue; best had %.0f%%", *c.Seed, maxDraws, 100*TissueFraction, 100*bestFrac), nil
}

// coarseScale picks the coarsest scale whose spatial axes are still ≥ 4 voxels,
// and its downsampling factor relative to scale.
func coarseScale(vols []volume.Volume, scale int) (volume.Volume, []float64) {
	base := vols[scale].Info().Shape
	base = base[len(base)-3:]
	for i := len(vols) - 1; i > scale; i-- {
		s := vols[i].Info().Shape
		if len(s) < 3 {
			continue
		}
		s = s[len(s)-3:]
		if s[0] >= 4 && s[1] >= 4 && s[2] >= 4 {
			f := make([]float64, 3)
			for j := range f {
				f[j] = float64(base[j]) / float64(s[j])
			}
			return vols[i], f
		}
	}
	return nil, nil
}

func nonZeroFraction(ctx context.Context, v volume.Volume, origin, size []int64, factor []float64) (float64, error) {
	in := v.Info()
	lead := len(in.Shape) - 3
	b := volume.Box{Start: make([]int64, len(in.Shape)), Stop: append([]int64(nil), in.Shape...)}
	for i := 0; i < 3; i++ {
		s := int64(float64(origin[i]) / factor[i])
		e := int64(float64(origin[i]+size[i])/factor[i] + 0.999)
		b.Start[lead+i] = min(s, in.Shape[lead+i]-1)
		b.Stop[lead+i] = max(b.Start[lead+i]+1, min(e, in.Shape[lead+i]))
	}
	for i := 0; i < lead; i++ {
		b.Stop[i] = 1
	}
	elem := in.DType.Size()
	buf := make([]byte, b.NumElements()*int64(elem))
	if err := v.ReadRegion(ctx, b, buf); err != nil {
		return 0, err
	}
	nz := 0
	for off := 0; off < len(buf); off += elem {
		for _, x := range buf[off : off+elem] {
			if x != 0 {
				nz++
				break
			}
		}
	}
	return float64(nz) / float64(len(buf)/elem), nil
}

func lcm(a, b int64) int64 {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}
