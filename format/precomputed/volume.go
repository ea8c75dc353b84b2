package precomputed

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Tuning of ReadRegion.
const (
	ioConcurrency = 64        // fetches in flight per ReadRegion
	memBudget     = 256 << 20 // bytes of fetched + decoded chunks held per ReadRegion
	// coalesceGap merges shard ranges closer than this: a round trip costs more
	// than reading 1 MiB more. The chunks in the gap are kept as read-ahead
	// (spare.go), so a region that straddles Morton groups no longer throws
	// them away (it read 6× the needed bytes on a 1000³ crop at a 64-voxel
	// offset before; 1.46× now, the rest being whole groups at the edges).
	coalesceGap = 1 << 20
	coalesceMax = 32 << 20 // but never into one read larger than this
	batchChunks = 8192     // chunks planned at once (bounds planning memory)
)

// scaleVolume is one scale of a precomputed volume.
type scaleVolume struct {
	st     *store.Store
	dir    string // store key prefix of the scale ("" when the scale is the root)
	info   volume.Info
	lay    layout
	size   [3]int64 // x, y, z
	offset [3]int64 // voxel_offset, x, y, z
	grid   [3]int64
	mbits  [3]int
	shards *sharder    // nil when unsharded
	spare  *spareCache // read-ahead chunks (sharded only)
	// gap, maxRead and ahead are coalesceGap, coalesceMax and aheadMax
	// (tests change them).
	gap, maxRead, ahead int64
}

// newScaleVolume builds the volume of scale s of in; dir is the scale's key in st.
func newScaleVolume(st *store.Store, dir string, in *Info, idx int) *scaleVolume {
	s := &in.Scales[idx]
	v := &scaleVolume{st: st, dir: dir, gap: coalesceGap, maxRead: coalesceMax, ahead: aheadMax}
	v.lay = layout{enc: s.Encoding, nc: in.NumChannels, es: in.dtype().Size()}
	for d := 0; d < 3; d++ {
		v.lay.full[d] = s.ChunkSizes[0][d]
		v.size[d] = s.Size[d]
		v.offset[d] = s.VoxelOffset[d]
		if s.CSBlockSize != nil {
			v.lay.csBlock[d] = s.CSBlockSize[d]
		}
	}
	v.grid = gridSize(s)
	v.mbits = mortonBits(v.grid)
	if s.Sharding != nil {
		v.shards = newSharder(st, dir, *s.Sharding)
		v.spare = newSpareCache(spareBudget)
	}
	v.info = scaleInfo(in, idx)
	return v
}

// scaleInfo describes scale idx as a volume: C order (c,) z, y, x.
func scaleInfo(in *Info, idx int) volume.Info {
	s := &in.Scales[idx]
	vi := volume.Info{Name: s.Key, DType: in.dtype()}
	if in.NumChannels > 1 {
		n := int64(in.NumChannels)
		vi.Shape = append(vi.Shape, n)
		vi.Chunks = append(vi.Chunks, n)
		vi.Axes = append(vi.Axes, volume.Axis{Name: "c", Size: n, Scale: 1})
	}
	for _, d := range []int{2, 1, 0} {
		res := s.Resolution[d]
		vi.Shape = append(vi.Shape, s.Size[d])
		vi.Chunks = append(vi.Chunks, min(s.ChunkSizes[0][d], max(s.Size[d], 1)))
		vi.Axes = append(vi.Axes, volume.Axis{Name: "xyz"[d : d+1], Size: s.Size[d], Scale: res,
			Offset: float64(s.VoxelOffset[d]) * res, Unit: "nm", ScaleKnown: res > 0})
		if res <= 0 {
			vi.Axes[len(vi.Axes)-1].Scale = 1
		}
	}
	vi.Compression = s.Encoding
	if s.Encoding == EncRaw {
		vi.Compression = "none"
	}
	md := map[string]any{
		"type":         in.Type,
		"encoding":     s.Encoding,
		"num_channels": in.NumChannels,
		"scale_index":  idx,
		"scale_key":    s.Key,
		"resolution":   slices.Clone(s.Resolution),
		"voxel_offset": slices.Clone(s.VoxelOffset),
		"chunk_size":   slices.Clone(s.ChunkSizes[0]),
	}
	r0 := in.Scales[0].Resolution
	f := make([]float64, 3)
	for d := range f {
		if r0[d] != 0 {
			f[d] = s.Resolution[d] / r0[d]
		}
	}
	md["downsampling_factor"] = f
	if s.JPEGQuality != nil {
		md["jpeg_quality"] = *s.JPEGQuality
	}
	if s.CSBlockSize != nil {
		md["compressed_segmentation_block_size"] = slices.Clone(s.CSBlockSize)
	}
	if sh := s.Sharding; sh != nil {
		md["sharding"] = map[string]any{
			"@type": sh.Type, "hash": sh.Hash, "preshift_bits": sh.PreshiftBits,
			"minishard_bits": sh.MinishardBits, "shard_bits": sh.ShardBits,
			"minishard_index_encoding": sh.MinishardIndexEncoding, "data_encoding": sh.DataEncoding,
		}
		if sh.DataEncoding == "gzip" {
			if vi.Compression == "none" {
				vi.Compression = "gzip"
			} else {
				vi.Compression += "+gzip"
			}
		}
	}
	if in.Type == "segmentation" {
		md[volume.MetaIsLabel] = true
	}
	vi.Metadata = md
	return vi
}

// Info implements volume.Volume.
func (v *scaleVolume) Info() volume.Info { return v.info }

// chunkBox is the x, y, z extent of grid cell g in index space (no voxel_offset).
func (v *scaleVolume) chunkBox(g [3]int64) (lo, hi [3]int64) {
	for d := 0; d < 3; d++ {
		lo[d] = g[d] * v.lay.full[d]
		hi[d] = min(lo[d]+v.lay.full[d], v.size[d])
	}
	return lo, hi
}

// objectKey is the unsharded object name of grid cell g.
func (v *scaleVolume) objectKey(g [3]int64) string {
	lo, hi := v.chunkBox(g)
	o := v.offset
	n := fmt.Sprintf("%d-%d_%d-%d_%d-%d", o[0]+lo[0], o[0]+hi[0], o[1]+lo[1], o[1]+hi[1], o[2]+lo[2], o[2]+hi[2])
	if v.dir == "" {
		return n
	}
	return v.dir + "/" + n
}

// fetchTask is one read from the store and the chunks it carries.
type fetchTask struct {
	key      string
	off, n   int64 // byte range; whole object when whole is set
	whole    bool
	chunks   []taskChunk
	estBytes int64 // memory the task may hold
	// wait, when set, is a chunk that another range read brings (read-ahead):
	// the task waits for it instead of reading, and reads [off, off+n) itself
	// only if that read fails.
	wait *spareChunk
}

type taskChunk struct {
	g        [3]int64
	off, end int64 // range within the fetched bytes (sharded only)
	id       uint64
	// spare, when set, marks a chunk read ahead for a later region: it goes to
	// the spare cache, not into dst.
	spare *spareChunk
}

// ReadRegion implements volume.Volume.
func (v *scaleVolume) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(v.info, box, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if box.Empty() {
		return nil
	}
	// No clear(dst): every chunk the box touches is either placed or, when
	// absent, zero-filled, so dst is written exactly once.
	// Spatial part of the box in z, y, x.
	sp := volume.Box{Start: box.Start[len(box.Start)-3:], Stop: box.Stop[len(box.Stop)-3:]}
	chunkZYX := []int64{v.lay.full[2], v.lay.full[1], v.lay.full[0]}
	shapeZYX := []int64{v.size[2], v.size[1], v.size[0]}
	var batch [][3]int64
	flush := func() error {
		err := v.readChunks(ctx, batch, box, dst)
		batch = batch[:0]
		return err
	}
	err := volume.Grid(shapeZYX, chunkZYX, sp, func(idx []int64, _ volume.Box) error {
		batch = append(batch, [3]int64{idx[2], idx[1], idx[0]})
		if len(batch) >= batchChunks {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 {
		return flush()
	}
	return nil
}

// readChunks fetches, decodes and copies a batch of grid cells into dst.
func (v *scaleVolume) readChunks(ctx context.Context, cells [][3]int64, box volume.Box, dst []byte) error {
	var tasks []fetchTask
	if v.shards == nil {
		for _, g := range cells {
			tasks = append(tasks, fetchTask{key: v.objectKey(g), whole: true,
				chunks: []taskChunk{{g: g}}, estBytes: 2 * v.lay.fullBytes()})
		}
	} else {
		var absent [][3]int64
		var err error
		if tasks, absent, err = v.planSharded(ctx, cells); err != nil {
			return err
		}
		for _, g := range absent {
			v.zero(g, box, dst)
		}
	}
	// Read-ahead chunks of tasks that never ran (an error or cancellation
	// stopped the loop) must not keep other regions waiting.
	defer func() {
		for i := range tasks {
			v.abandon(&tasks[i], errSpareAbandoned)
		}
	}()

	// Tasks that read come before tasks that wait for read-ahead chunks
	// (planSharded orders them so): a read depends on nothing but this
	// call's own budget, so regions that wait on each other's reads always
	// make progress.
	g, gctx := errgroup.WithContext(ctx)
	ioSem := make(chan struct{}, ioConcurrency)
	cpuSem := make(chan struct{}, runtime.GOMAXPROCS(0))
	mem := semaphore.NewWeighted(memBudget)
	for i := range tasks {
		t := &tasks[i]
		w := min(t.estBytes, memBudget)
		if err := mem.Acquire(gctx, w); err != nil {
			break // the group's error (or ctx's) is reported by Wait
		}
		if t.wait == nil {
			select {
			case ioSem <- struct{}{}:
			case <-gctx.Done():
				mem.Release(w)
				continue
			}
		}
		g.Go(func() error {
			defer mem.Release(w)
			data, err := v.fetch(gctx, t)
			if t.wait == nil {
				<-ioSem
			}
			if err != nil {
				v.abandon(t, err)
				return err
			}
			var placed []taskChunk
			for _, c := range t.chunks {
				if c.spare != nil {
					v.spare.fill(c.spare, bytes.Clone(data[c.off:c.end]))
					continue
				}
				placed = append(placed, c)
			}
			if len(placed) == 1 {
				// One chunk (the common case of a wait task): decode it here.
				select {
				case cpuSem <- struct{}{}:
				case <-gctx.Done():
					return gctx.Err()
				}
				defer func() { <-cpuSem }()
				return v.place(placed[0], t.key, chunkBytes(t, placed[0], data), box, dst)
			}
			// Decode the chunks of this read in parallel, on all cores.
			dg, dctx := errgroup.WithContext(gctx)
			for _, c := range placed {
				dg.Go(func() error {
					select {
					case cpuSem <- struct{}{}:
					case <-dctx.Done():
						return dctx.Err()
					}
					defer func() { <-cpuSem }()
					return v.place(c, t.key, chunkBytes(t, c, data), box, dst)
				})
			}
			return dg.Wait()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// chunkBytes is the part of a task's data that holds chunk c.
func chunkBytes(t *fetchTask, c taskChunk, data []byte) []byte {
	if data == nil || t.whole {
		return data
	}
	return data[c.off:c.end]
}

// abandon resolves the read-ahead chunks of t that are still pending with err.
func (v *scaleVolume) abandon(t *fetchTask, err error) {
	for _, c := range t.chunks {
		if c.spare != nil {
			v.spare.fail(c.spare, err)
		}
	}
}

// fetch reads the bytes of a task; nil data means the unsharded object is absent.
func (v *scaleVolume) fetch(ctx context.Context, t *fetchTask) ([]byte, error) {
	if t.wait != nil {
		b, err := t.wait.wait(ctx)
		if err == nil && int64(len(b)) == t.n {
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The read that was to bring it failed or was abandoned (or, with the
		// store changing underneath, brought another size): read it here.
	}
	if t.whole {
		b, err := v.st.ReadAll(ctx, t.key, v.lay.encodedCap())
		if errors.Is(err, store.ErrNotExist) {
			// CloudVolume's file backend stores gzip-compressed chunks under a
			// ".gz" suffix.
			b, err = v.st.ReadAll(ctx, t.key+".gz", v.lay.encodedCap())
			if errors.Is(err, store.ErrNotExist) {
				return nil, nil
			}
		}
		if errors.Is(err, store.ErrTooLarge) {
			// Larger than any encoding of the chunk can be.
			err = fmt.Errorf("%w: %w", err, format.ErrCorrupt)
		}
		if err != nil {
			return nil, fmt.Errorf("precomputed chunk %q: %w", t.key, err)
		}
		return b, nil
	}
	b := make([]byte, t.n)
	if err := v.st.ReadAt(ctx, t.key, b, t.off); err != nil {
		return nil, fmt.Errorf("shard %q: read chunk data at [%d,%d) (chunk %d): %w", t.key, t.off, t.off+t.n, t.chunks[0].id,
			pastShardEnd(ctx, v.st, t.key, t.off, t.n, err))
	}
	return b, nil
}

// zero fills the overlap of grid cell g with box in dst with zeros: the cell's
// chunk is absent.
func (v *scaleVolume) zero(g [3]int64, box volume.Box, dst []byte) {
	cb := v.cellBox(g)
	if region, ok := cb.Intersect(box); ok {
		volume.FillBox(dst, box, region, make([]byte, v.lay.es))
	}
}

// cellBox is grid cell g as a box of the volume's index space ((c,) z, y, x).
func (v *scaleVolume) cellBox(g [3]int64) volume.Box {
	lo, hi := v.chunkBox(g)
	var cb volume.Box
	if v.lay.nc > 1 {
		cb.Start = append(cb.Start, 0)
		cb.Stop = append(cb.Stop, int64(v.lay.nc))
	}
	cb.Start = append(cb.Start, lo[2], lo[1], lo[0])
	cb.Stop = append(cb.Stop, hi[2], hi[1], hi[0])
	return cb
}

// place decodes one chunk and copies its overlap with box into dst; an absent
// or empty chunk reads as zeros.
func (v *scaleVolume) place(c taskChunk, key string, data []byte, box volume.Box, dst []byte) error {
	if len(data) == 0 {
		v.zero(c.g, box, dst)
		return nil
	}
	lo, hi := v.chunkBox(c.g)
	shape := [3]int64{hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]}
	if v.shards != nil && v.shards.spec.DataEncoding == "gzip" {
		var err error
		if data, err = gunzip(data, v.lay.encodedCap()); err != nil {
			return fmt.Errorf("shard %q: chunk %d %v: %w", key, c.id, c.g, undecodable(err))
		}
	}
	samples, err := v.lay.decode(data, shape)
	if err != nil {
		if v.shards != nil {
			return fmt.Errorf("shard %q: chunk %d at grid %v: %w", key, c.id, c.g, undecodable(err))
		}
		return fmt.Errorf("precomputed chunk %q: %w", key, undecodable(err))
	}
	cb := v.cellBox(c.g)
	region, ok := cb.Intersect(box)
	if !ok {
		return nil
	}
	volume.CopyBox(dst, box, samples, cb, region, v.lay.es)
	return nil
}

// planSharded resolves the minishard indexes a batch needs and groups the
// present chunks into range reads, merging neighbours within a shard. Chunks
// another read already brings (read-ahead) become wait tasks, which come
// last. Each missing chunk pulls in the rest of its Morton group, and chunks
// in the gaps a merged read bridges are kept too, as far as the spare cache
// has room. absent lists the cells with no stored chunk.
func (v *scaleVolume) planSharded(ctx context.Context, cells [][3]int64) (tasks []fetchTask, absent [][3]int64, err error) {
	type located struct {
		g           [3]int64
		id          uint64
		shard, mini uint64
	}
	locs := make([]located, len(cells))
	need := map[cacheKey]*minishard{}
	for i, g := range cells {
		id := compressedMorton(g, v.mbits)
		sh, mi := v.shards.locate(id)
		locs[i] = located{g: g, id: id, shard: sh, mini: mi}
		need[cacheKey{shard: sh, minishard: mi}] = nil
	}
	keys := make([]cacheKey, 0, len(need))
	for k := range need {
		keys = append(keys, k)
	}
	found := make([]*minishard, len(keys))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(ioConcurrency)
	for i, k := range keys {
		eg.Go(func() error {
			m, err := v.shards.get(ectx, k.shard, k.minishard)
			found[i] = m
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, nil, err
	}
	for i, k := range keys {
		need[k] = found[i]
	}

	type hit struct {
		shard uint64
		key   string
		e     shardEntry
		g     [3]int64
		spare *spareChunk
	}
	names := map[uint64]string{}
	name := func(shard uint64) string {
		n, ok := names[shard]
		if !ok {
			n = v.shards.shardKey(shard)
			names[shard] = n
		}
		return n
	}
	needed := make(map[uint64]bool, len(locs))
	for _, l := range locs {
		needed[l.id] = true
	}
	var hits []hit
	var waits []fetchTask
	limit := v.lay.encodedCap()
	full := v.lay.fullBytes()
	// Claimed read-ahead chunks must be resolved even when planning fails.
	defer func() {
		if err != nil {
			for _, h := range hits {
				if h.spare != nil {
					v.spare.fail(h.spare, errSpareAbandoned)
				}
			}
		}
	}()
	for _, l := range locs {
		ms := need[cacheKey{shard: l.shard, minishard: l.mini}]
		e, ok := ms.find(l.id)
		if !ok {
			absent = append(absent, l.g)
			continue
		}
		if e.end-e.start > limit {
			return nil, nil, fmt.Errorf("shard %q: chunk %d claims %d bytes, more than %d for a %v chunk: %w", v.shards.shardKey(l.shard), l.id, e.end-e.start, limit, v.lay.full, format.ErrCorrupt)
		}
		key := name(l.shard)
		if c := v.spare.take(l.id); c != nil {
			waits = append(waits, fetchTask{key: key, off: e.start, n: e.end - e.start, wait: c,
				chunks:   []taskChunk{{g: l.g, id: e.id, end: e.end - e.start}},
				estBytes: e.end - e.start + full})
			continue
		}
		hits = append(hits, hit{shard: l.shard, key: key, e: e, g: l.g})
		// Read ahead the rest of the chunk's Morton group that shares its
		// minishard (all of it under the identity hash with preshift ≥
		// groupBits): a neighbouring region will want it. Up to v.ahead
		// bytes, so that a lone read of large chunks does not pay for it.
		base := l.id &^ (1<<groupBits - 1)
		extra := int64(0)
		for sib := base; sib < base+1<<groupBits; sib++ {
			if needed[sib] {
				continue
			}
			if sh, mi := v.shards.locate(sib); sh != l.shard || mi != l.mini {
				continue
			}
			se, ok := ms.find(sib)
			if !ok || se.end == se.start || extra+se.end-se.start > v.ahead {
				continue
			}
			if c := v.spare.reserve(sib, se.end-se.start, true); c != nil {
				extra += se.end - se.start
				hits = append(hits, hit{shard: l.shard, key: key, e: se, spare: c})
			}
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(a.shard, b.shard); c != 0 {
			return c
		}
		return cmp.Compare(a.e.start, b.e.start)
	})
	placed := func(t *fetchTask) int64 {
		n := 0
		for _, c := range t.chunks {
			if c.spare == nil {
				n++
			}
		}
		return int64(min(n, runtime.GOMAXPROCS(0)))
	}
	shardOf := map[string]uint64{}
	for _, h := range hits {
		shardOf[h.key] = h.shard
		if n := len(tasks); n > 0 {
			t := &tasks[n-1]
			if t.key == h.key && h.e.start-(t.off+t.n) < v.gap &&
				max(t.off+t.n, h.e.end)-t.off <= v.maxRead {
				t.n = max(t.off+t.n, h.e.end) - t.off
				t.chunks = append(t.chunks, taskChunk{g: h.g, id: h.e.id, off: h.e.start - t.off, end: h.e.end - t.off, spare: h.spare})
				t.estBytes = t.n + placed(t)*full
				continue
			}
		}
		tasks = append(tasks, fetchTask{key: h.key, off: h.e.start, n: h.e.end - h.e.start,
			chunks:   []taskChunk{{g: h.g, id: h.e.id, off: 0, end: h.e.end - h.e.start, spare: h.spare}},
			estBytes: h.e.end - h.e.start + full})
	}
	// Keep the chunks that merged reads carry in their gaps, as far as the
	// loaded minishard indexes know them and there is free room.
	for i := range tasks {
		t := &tasks[i]
		if len(t.chunks) < 2 {
			continue
		}
		sh := shardOf[t.key]
		for k, ms := range need {
			if k.shard != sh || ms == nil {
				continue
			}
			for _, e := range ms.entries {
				if e.start < t.off || e.end > t.off+t.n || e.end == e.start || needed[e.id] {
					continue
				}
				if c := v.spare.reserve(e.id, e.end-e.start, false); c != nil {
					t.chunks = append(t.chunks, taskChunk{id: e.id, off: e.start - t.off, end: e.end - t.off, spare: c})
				}
			}
		}
	}
	return append(tasks, waits...), absent, nil
}
