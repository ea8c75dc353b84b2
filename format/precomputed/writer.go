package precomputed

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// WriteOptions describe the precomputed volume Write produces. Vectors are in
// x, y, z order, as in the info file.
type WriteOptions struct {
	// Encoding is "raw" (default), "jpeg", "png" or "compressed_segmentation".
	Encoding string
	// JPEGQuality is 1..100; default 75 (tensorstore's default).
	JPEGQuality int
	// ChunkSize defaults to 64³.
	ChunkSize [3]int64
	// Sharding, when set, writes neuroglancer_uint64_sharded_v1 shards;
	// nil writes one object per chunk.
	Sharding *Sharding
	// Resolution of scale 0 in nanometres; default 1 nm.
	Resolution [3]float64
	// VoxelOffset of scale 0.
	VoxelOffset [3]int64
	// Scales is the number of levels, each volume.Downsample of the one
	// before by 2 along x, y and z (ceil(n/2) long): by mean for images, by
	// mode (most frequent label) for segmentation; default 1.
	Scales int
	// Type is "image" or "segmentation"; the default is "segmentation" for a
	// label volume (volume.IsLabel) and "image" otherwise.
	Type string
	// CSBlockSize is the compressed_segmentation block; default 8³.
	CSBlockSize [3]int64
	// Attributes are extra top-level keys of the info file (provenance such
	// as the voxel size's source; Neuroglancer ignores keys it does not
	// know). They may not replace the keys of the format.
	Attributes map[string]any
}

// Write stores src (C order z, y, x, or c, z, y, x) as a precomputed volume
// under prefix: every scale, then the info, so a volume with an info is complete.
// Memory is bounded by one chunk per worker when unsharded and by the encoded
// size of one shard when sharded. Scales after the first are computed by
// reading back the scale just written, so their cost does not grow with depth
// (for jpeg that compounds the loss, as a pyramid built from stored data does).
func Write(ctx context.Context, st *store.Store, prefix string, src volume.Volume, opt WriteOptions) error {
	si := src.Info()
	in, err := writeInfo(si, &opt)
	if err == nil {
		err = checkAttributes(opt.Attributes)
	}
	if err != nil {
		return fmt.Errorf("precomputed write %q: %w", prefix, err)
	}
	dir, err := store.CleanKey(prefix)
	if err != nil {
		return err
	}
	method := volume.Mean
	if in.Type == "segmentation" {
		method = volume.Mode
	}
	factors := make([]int64, len(si.Shape))
	for d := range factors {
		factors[d] = 1
		if d >= len(factors)-3 {
			factors[d] = 2
		}
	}
	var prev *scaleVolume
	// Levels past the first are made from the level before, read back.
	dec := jpeg.Default()
	for level := range in.Scales {
		key := in.Scales[level].Key
		sdir := key
		if dir != "" {
			sdir = dir + "/" + key
		}
		sv := newScaleVolume(st, sdir, in, level).withJPEG(dec)
		var lsrc volume.Volume = src
		if level > 0 {
			if lsrc, err = volume.Downsample(prev, factors, method); err != nil {
				return fmt.Errorf("precomputed write %q scale %q: %w", prefix, key, err)
			}
		}
		if sv.shards == nil {
			err = writeUnsharded(ctx, st, sv, lsrc, opt.JPEGQuality)
		} else {
			err = writeSharded(ctx, st, sv, lsrc, opt.JPEGQuality)
		}
		if err != nil {
			return fmt.Errorf("precomputed write %q scale %q: %w", prefix, key, err)
		}
		prev = sv
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	if b, err = withAttributes(b, opt.Attributes); err != nil {
		return fmt.Errorf("precomputed write %q: %w", prefix, err)
	}
	infoKey := "info"
	if dir != "" {
		infoKey = dir + "/info"
	}
	return st.WriteAll(ctx, infoKey, b)
}

// writeInfo validates the options against src and builds the info.
func writeInfo(si volume.Info, opt *WriteOptions) (*Info, error) {
	nc := 1
	switch len(si.Shape) {
	case 3:
	case 4:
		nc = int(si.Shape[0])
	default:
		return nil, fmt.Errorf("source %q has rank %d, want z,y,x or c,z,y,x", si.Name, len(si.Shape))
	}
	if opt.Encoding == "" {
		opt.Encoding = EncRaw
	}
	if opt.JPEGQuality == 0 {
		opt.JPEGQuality = 75
	}
	if opt.JPEGQuality < 1 || opt.JPEGQuality > 100 {
		return nil, fmt.Errorf("jpeg quality %d", opt.JPEGQuality)
	}
	if opt.ChunkSize == [3]int64{} {
		opt.ChunkSize = [3]int64{64, 64, 64}
	}
	if opt.Resolution == [3]float64{} {
		opt.Resolution = [3]float64{1, 1, 1}
	}
	if opt.Scales <= 0 {
		opt.Scales = 1
	}
	if opt.Scales > 32 {
		return nil, fmt.Errorf("%d scales", opt.Scales)
	}
	if opt.Type == "" {
		opt.Type = "image"
		if volume.IsLabel(si) {
			opt.Type = "segmentation"
		}
	}
	if opt.Type != "image" && opt.Type != "segmentation" {
		return nil, fmt.Errorf("type %q", opt.Type)
	}
	if opt.CSBlockSize == [3]int64{} {
		opt.CSBlockSize = [3]int64{8, 8, 8}
	}
	dt := si.DType
	switch opt.Encoding {
	case EncRaw:
	case EncJPEG:
		if dt != volume.Uint8 || (nc != 1 && nc != 3) {
			return nil, fmt.Errorf("jpeg needs uint8 with 1 or 3 channels, source is %s×%d", dt, nc)
		}
	case EncPNG:
		if !(nc == 1 && (dt == volume.Uint8 || dt == volume.Uint16)) && !((nc == 3 || nc == 4) && dt == volume.Uint8) {
			return nil, fmt.Errorf("png needs uint8/uint16 gray or uint8 RGB(A), source is %s×%d", dt, nc)
		}
	case EncCSeg:
		if dt != volume.Uint32 && dt != volume.Uint64 {
			return nil, fmt.Errorf("compressed_segmentation needs uint32 or uint64, source is %s", dt)
		}
	default:
		return nil, fmt.Errorf("cannot write encoding %q", opt.Encoding)
	}
	if sh := opt.Sharding; sh != nil && sh.MinishardBits > 32 {
		return nil, fmt.Errorf("minishard_bits %d: shard index too large to write", sh.MinishardBits)
	}
	in := &Info{AtType: "neuroglancer_multiscale_volume", Type: opt.Type, DataType: string(dt), NumChannels: nc}
	size := [3]int64{si.Shape[len(si.Shape)-1], si.Shape[len(si.Shape)-2], si.Shape[len(si.Shape)-3]}
	res, off := opt.Resolution, opt.VoxelOffset
	for level := 0; level < opt.Scales; level++ {
		if level > 0 {
			for d := 0; d < 3; d++ {
				size[d] = (size[d] + 1) / 2
				res[d] *= 2
				off[d] = floorDiv2(off[d])
			}
		}
		s := Scale{
			Key:         resKey(res),
			Size:        slices.Clone(size[:]),
			Resolution:  slices.Clone(res[:]),
			VoxelOffset: slices.Clone(off[:]),
			ChunkSizes:  [][]int64{slices.Clone(opt.ChunkSize[:])},
			Encoding:    opt.Encoding,
		}
		if opt.Encoding == EncJPEG {
			q := opt.JPEGQuality
			s.JPEGQuality = &q
		}
		if opt.Encoding == EncCSeg {
			s.CSBlockSize = slices.Clone(opt.CSBlockSize[:])
		}
		if opt.Sharding != nil {
			sh := *opt.Sharding
			s.Sharding = &sh
		}
		in.Scales = append(in.Scales, s)
	}
	if err := in.normalize(); err != nil {
		return nil, err
	}
	return in, nil
}

func floorDiv2(v int64) int64 {
	if v < 0 {
		return -((-v + 1) / 2)
	}
	return v / 2
}

// resKey names a scale by its resolution the way Janelia does ("8.0x8.0x8.0").
func resKey(r [3]float64) string {
	f := func(v float64) string {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !containsDot(s) {
			s += ".0"
		}
		return s
	}
	return f(r[0]) + "x" + f(r[1]) + "x" + f(r[2])
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' || s[i] == 'e' {
			return true
		}
	}
	return false
}

// readChunk reads grid cell g of sv's geometry from src as C order (c,) z, y, x.
func readChunk(ctx context.Context, sv *scaleVolume, src volume.Volume, g [3]int64) ([]byte, [3]int64, error) {
	lo, hi := sv.chunkBox(g)
	var b volume.Box
	if sv.lay.nc > 1 {
		b.Start = append(b.Start, 0)
		b.Stop = append(b.Stop, int64(sv.lay.nc))
	}
	b.Start = append(b.Start, lo[2], lo[1], lo[0])
	b.Stop = append(b.Stop, hi[2], hi[1], hi[0])
	buf := make([]byte, b.NumElements()*int64(sv.lay.es))
	if err := src.ReadRegion(ctx, b, buf); err != nil {
		return nil, [3]int64{}, fmt.Errorf("read %v: %w", b, err)
	}
	return buf, [3]int64{hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]}, nil
}

// forGrid calls fn for every grid cell of sv in z, y, x order.
func forGrid(sv *scaleVolume, fn func(g [3]int64) error) error {
	for z := int64(0); z < sv.grid[2]; z++ {
		for y := int64(0); y < sv.grid[1]; y++ {
			for x := int64(0); x < sv.grid[0]; x++ {
				if err := fn([3]int64{x, y, z}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func writeUnsharded(ctx context.Context, st *store.Store, sv *scaleVolume, src volume.Volume, quality int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) * 2)
	err := forGrid(sv, func(c [3]int64) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			raw, shape, err := readChunk(gctx, sv, src, c)
			if err != nil {
				return err
			}
			enc, err := sv.lay.encode(raw, shape, quality)
			if err != nil {
				return fmt.Errorf("chunk %v: %w", c, err)
			}
			return st.WriteAll(gctx, sv.objectKey(c), enc)
		})
		return nil
	})
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return err
}

// writeSharded writes the shards one at a time: chunks grouped by minishard,
// sorted by chunk id, each minishard's data followed by its index.
func writeSharded(ctx context.Context, st *store.Store, sv *scaleVolume, src volume.Volume, quality int) error {
	type cell struct {
		g    [3]int64
		id   uint64
		mini uint64
	}
	shards := map[uint64][]cell{}
	forGrid(sv, func(g [3]int64) error {
		id := compressedMorton(g, sv.mbits)
		sh, mi := sv.shards.locate(id)
		shards[sh] = append(shards[sh], cell{g: g, id: id, mini: mi})
		return nil
	})
	order := make([]uint64, 0, len(shards))
	for sh := range shards {
		order = append(order, sh)
	}
	slices.Sort(order)
	spec := sv.shards.spec
	for _, sh := range order {
		cells := shards[sh]
		slices.SortFunc(cells, func(a, b cell) int {
			if c := cmp.Compare(a.mini, b.mini); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		data := make([][]byte, len(cells))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(runtime.GOMAXPROCS(0) * 2)
		for i, c := range cells {
			g.Go(func() error {
				raw, shape, err := readChunk(gctx, sv, src, c.g)
				if err != nil {
					return err
				}
				enc, err := sv.lay.encode(raw, shape, quality)
				if err != nil {
					return fmt.Errorf("chunk %v: %w", c.g, err)
				}
				if spec.DataEncoding == "gzip" {
					enc = gzipBytes(enc)
				}
				data[i] = enc
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		sc := make([]shardChunk, len(cells))
		for i, c := range cells {
			sc[i] = shardChunk{id: c.id, mini: c.mini, data: data[i]}
		}
		pieces := buildShard(sc, spec)
		w, err := st.NewWriter(ctx, sv.shards.shardKey(sh))
		if err != nil {
			return err
		}
		for _, p := range pieces {
			if _, err := w.Write(p); err != nil {
				w.Abort()
				return fmt.Errorf("shard %q: %w", sv.shards.shardKey(sh), err)
			}
		}
		if err := w.Close(); err != nil {
			w.Abort()
			return fmt.Errorf("shard %q: %w", sv.shards.shardKey(sh), err)
		}
	}
	return nil
}

// shardChunk is one stored chunk (already data-encoded) of a shard being built.
type shardChunk struct {
	id, mini uint64
	data     []byte
}

// buildShard lays out a shard file and returns its pieces in file order: the
// shard index, then per minishard its chunks sorted by id followed by its
// minishard index (the layout tensorstore writes). chunks is sorted in place.
func buildShard(chunks []shardChunk, spec Sharding) [][]byte {
	slices.SortFunc(chunks, func(a, b shardChunk) int {
		if c := cmp.Compare(a.mini, b.mini); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	index := make([]byte, 16<<uint(spec.MinishardBits))
	pieces := [][]byte{index}
	pos := uint64(0) // relative to the end of the shard index
	for i := 0; i < len(chunks); {
		j := i
		for j < len(chunks) && chunks[j].mini == chunks[i].mini {
			j++
		}
		n := j - i
		mi := make([]byte, 24*n)
		prevID, prevEnd := uint64(0), uint64(0) // the first start is relative to the end of the shard index
		for k := i; k < j; k++ {
			binary.LittleEndian.PutUint64(mi[8*(k-i):], chunks[k].id-prevID)
			binary.LittleEndian.PutUint64(mi[8*(n+k-i):], pos-prevEnd)
			binary.LittleEndian.PutUint64(mi[8*(2*n+k-i):], uint64(len(chunks[k].data)))
			prevID = chunks[k].id
			pos += uint64(len(chunks[k].data))
			prevEnd = pos
			pieces = append(pieces, chunks[k].data)
		}
		if spec.MinishardIndexEncoding == "gzip" {
			mi = gzipBytes(mi)
		}
		m := chunks[i].mini
		binary.LittleEndian.PutUint64(index[16*m:], pos)
		binary.LittleEndian.PutUint64(index[16*m+8:], pos+uint64(len(mi)))
		pos += uint64(len(mi))
		pieces = append(pieces, mi)
		i = j
	}
	return pieces
}
