package zarr

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// zarrJSON is a Zarr v3 node (zarr.json), array or group.
type zarrJSON struct {
	ZarrFormat          json.RawMessage   `json:"zarr_format"`
	NodeType            string            `json:"node_type"`
	Shape               []int64           `json:"shape"`
	DataType            json.RawMessage   `json:"data_type"`
	ChunkGrid           json.RawMessage   `json:"chunk_grid"`
	ChunkKeyEncoding    json.RawMessage   `json:"chunk_key_encoding"`
	FillValue           json.RawMessage   `json:"fill_value"`
	Codecs              []json.RawMessage `json:"codecs"`
	Attributes          json.RawMessage   `json:"attributes"`
	DimensionNames      []*string         `json:"dimension_names"`
	StorageTransformers []json.RawMessage `json:"storage_transformers"`
}

func parseZarrJSON(b []byte) (*zarrJSON, error) {
	var z zarrJSON
	if err := json.Unmarshal(b, &z); err != nil {
		return nil, fmt.Errorf("zarr.json: %w", err)
	}
	if string(bytes.TrimSpace(z.ZarrFormat)) != "3" {
		return nil, fmt.Errorf("zarr.json: zarr_format %s (only the Zarr v3 1.0 layout is read): %w", compact(z.ZarrFormat), format.ErrNotSupported)
	}
	switch z.NodeType {
	case "array", "group":
	default:
		return nil, fmt.Errorf("zarr.json: node_type %q", z.NodeType)
	}
	return &z, nil
}

// pipeline is a decoded v3 codec chain.
type pipeline struct {
	transposes [][]int // array→array, in encode order
	bigEndian  bool    // bytes codec endian
	shard      *shardSpec
	bb         []string // bytes→bytes codec names, in encode order ("crc32c" included)
	names      []string
}

type shardSpec struct {
	inner     []int64
	perShard  []int64
	inside    *pipeline
	indexCRC  bool
	indexEnd  bool
	indexSize int64
}

func parsePipeline(raws []json.RawMessage, chunk []int64, elem int, depth int) (*pipeline, error) {
	p := &pipeline{}
	seenAB := false
	for _, raw := range raws {
		name, conf, err := extName(raw)
		if err != nil {
			return nil, err
		}
		p.names = append(p.names, name)
		switch name {
		case "transpose":
			if seenAB {
				return nil, fmt.Errorf("codec transpose after the array→bytes codec")
			}
			var c struct {
				Order json.RawMessage `json:"order"`
			}
			json.Unmarshal(conf, &c)
			perm, err := parsePerm(c.Order, len(chunk))
			if err != nil {
				return nil, err
			}
			p.transposes = append(p.transposes, perm)
		case "bytes", "endian":
			if seenAB {
				return nil, fmt.Errorf("two array→bytes codecs")
			}
			seenAB = true
			var c struct {
				Endian string `json:"endian"`
			}
			json.Unmarshal(conf, &c)
			switch c.Endian {
			case "", "little":
			case "big":
				p.bigEndian = true
			default:
				return nil, fmt.Errorf("bytes codec: endian %q", c.Endian)
			}
		case "sharding_indexed":
			if seenAB {
				return nil, fmt.Errorf("two array→bytes codecs")
			}
			seenAB = true
			if depth > 0 {
				return nil, fmt.Errorf("nested sharding_indexed: %w", format.ErrNotSupported)
			}
			s, err := parseShard(conf, chunk, elem)
			if err != nil {
				return nil, err
			}
			p.shard = s
		case "gzip", "zstd", "crc32c", "blosc":
			if !seenAB {
				return nil, fmt.Errorf("codec %s before the array→bytes codec", name)
			}
			p.bb = append(p.bb, name)
		default:
			return nil, fmt.Errorf("codec %q: %w", name, format.ErrNotSupported)
		}
	}
	if !seenAB {
		return nil, fmt.Errorf("codecs %v: no array→bytes codec", p.names)
	}
	return p, nil
}

// parsePerm reads a transpose order: a permutation list, or the legacy "C"/"F".
func parsePerm(raw json.RawMessage, n int) ([]int, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "C":
			p := make([]int, n)
			for i := range p {
				p[i] = i
			}
			return p, nil
		case "F":
			return reversed(n), nil
		}
		return nil, fmt.Errorf("transpose order %q", s)
	}
	var p []int
	if err := json.Unmarshal(raw, &p); err != nil || len(p) != n {
		return nil, fmt.Errorf("transpose order %s for rank %d", compact(raw), n)
	}
	seen := make([]bool, n)
	for _, v := range p {
		if v < 0 || v >= n || seen[v] {
			return nil, fmt.Errorf("transpose order %v is not a permutation", p)
		}
		seen[v] = true
	}
	return p, nil
}

const maxShardIndexEntries = 1 << 22

func parseShard(conf json.RawMessage, shard []int64, elem int) (*shardSpec, error) {
	var c struct {
		ChunkShape    []int64           `json:"chunk_shape"`
		Codecs        []json.RawMessage `json:"codecs"`
		IndexCodecs   []json.RawMessage `json:"index_codecs"`
		IndexLocation string            `json:"index_location"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, fmt.Errorf("sharding_indexed: %w", err)
	}
	if err := checkGrid(shard, c.ChunkShape); err != nil {
		return nil, fmt.Errorf("sharding_indexed: %w", err)
	}
	s := &shardSpec{inner: c.ChunkShape, perShard: make([]int64, len(shard)), indexEnd: c.IndexLocation != "start"}
	n := int64(1)
	for i := range shard {
		if shard[i]%c.ChunkShape[i] != 0 {
			return nil, fmt.Errorf("sharding_indexed: inner chunk %v does not divide shard %v", c.ChunkShape, shard)
		}
		s.perShard[i] = shard[i] / c.ChunkShape[i]
		n *= s.perShard[i]
		if n > maxShardIndexEntries {
			return nil, fmt.Errorf("sharding_indexed: more than %d inner chunks per shard", maxShardIndexEntries)
		}
	}
	switch c.IndexLocation {
	case "", "start", "end":
	default:
		return nil, fmt.Errorf("sharding_indexed: index_location %q", c.IndexLocation)
	}
	inside, err := parsePipeline(c.Codecs, c.ChunkShape, elem, 1)
	if err != nil {
		return nil, fmt.Errorf("sharding_indexed: %w", err)
	}
	s.inside = inside
	idx, err := parsePipeline(c.IndexCodecs, nil, 8, 1)
	if err != nil {
		return nil, fmt.Errorf("sharding_indexed index_codecs: %w", err)
	}
	if idx.bigEndian || len(idx.transposes) > 0 || len(idx.bb) > 1 || (len(idx.bb) == 1 && idx.bb[0] != "crc32c") {
		return nil, fmt.Errorf("sharding_indexed index_codecs %v: %w", idx.names, format.ErrNotSupported)
	}
	s.indexCRC = len(idx.bb) == 1
	s.indexSize = 16 * n
	if s.indexCRC {
		s.indexSize += 4
	}
	return s, nil
}

// decode turns one stored chunk (or inner chunk) into C-order little-endian
// bytes of shape chunk. The last bytes→bytes codec decodes into out (whose
// capacity is at least the chunk's bytes), and an uncompressed chunk is
// copied there, so the result is out[:size] unless a transpose moves it.
func (p *pipeline) decode(cs *codec.Codecs, key string, raw []byte, chunk []int64, d dtype, out []byte) ([]byte, error) {
	want := cellBytes(chunk, d.size())
	// final is the codec applied last when decoding; checksums that follow it
	// make its output 4 bytes longer each.
	final, extra := -1, 0
	for i, id := range p.bb {
		if id != "crc32c" {
			final = i
			break
		}
		extra += 4
	}
	b := raw
	for i := len(p.bb) - 1; i >= 0; i-- {
		switch id := p.bb[i]; id {
		case "crc32c":
			if len(b) < 4 {
				return nil, fmt.Errorf("chunk %q: %d bytes, too short for its crc32c: %w", key, len(b), format.ErrCorrupt)
			}
			body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
			if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != sum {
				return nil, fmt.Errorf("chunk %q: crc32c mismatch: %w", key, format.ErrCorrupt)
			}
			b = body
		default:
			var err error
			switch {
			case i == final && extra == 0:
				b, err = cs.DecodeInto(id, out, b)
				if err != nil {
					err = codecError(key, err)
				}
			case i == final:
				b, err = runCodec(cs, id, key, b, want+extra)
			default:
				b, err = runCodec(cs, id, key, b, int(storedLimit(want)))
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if len(b) != want {
		return nil, wrongSize(key, len(b), want)
	}
	if want > 0 && &b[0] != &out[:1][0] {
		b = append(out[:0], b...)
	}
	if p.bigEndian {
		codec.SwapBytes(b, d.swapLen)
	}
	// Shapes after each transpose, forward; undo them backwards.
	shapes := [][]int64{chunk}
	for _, perm := range p.transposes {
		prev := shapes[len(shapes)-1]
		s := make([]int64, len(perm))
		for i, v := range perm {
			s[i] = prev[v]
		}
		shapes = append(shapes, s)
	}
	for k := len(p.transposes) - 1; k >= 0; k-- {
		perm := p.transposes[k]
		inv := make([]int, len(perm))
		for i, v := range perm {
			inv[v] = i
		}
		b = transpose(b, shapes[k+1], inv, d.size())
	}
	return b, nil
}

// openV3 builds the volume of the v3 array at prefix.
func openV3(st *store.Store, cs *codec.Codecs, prefix string, z *zarrJSON) (*array, error) {
	fail := func(err error) (*array, error) {
		return nil, fmt.Errorf("zarr %s %q: zarr.json: %w", st, prefix, malformed(err))
	}
	if len(z.StorageTransformers) > 0 {
		return fail(fmt.Errorf("storage_transformers: %w", format.ErrNotSupported))
	}
	d, err := parseV3DType(z.DataType)
	if err != nil {
		return fail(err)
	}
	gname, gconf, err := extName(z.ChunkGrid)
	if err != nil {
		return fail(fmt.Errorf("chunk_grid: %w", err))
	}
	var grid struct {
		ChunkShape []int64 `json:"chunk_shape"`
	}
	if gname != "regular" || json.Unmarshal(gconf, &grid) != nil {
		return fail(fmt.Errorf("chunk_grid %q: %w", gname, format.ErrNotSupported))
	}
	if err := checkGrid(z.Shape, grid.ChunkShape); err != nil {
		return fail(err)
	}
	elem := d.size()
	if d.object {
		elem = 4 // each element stores at least its length
	}
	if err := checkSizes(z.Shape, grid.ChunkShape, elem); err != nil {
		return fail(err)
	}
	sep, prefixC := "/", true
	if len(z.ChunkKeyEncoding) > 0 {
		kname, kconf, err := extName(z.ChunkKeyEncoding)
		if err != nil {
			return fail(err)
		}
		var kc struct {
			Separator string `json:"separator"`
		}
		json.Unmarshal(kconf, &kc)
		switch kname {
		case "default":
		case "v2":
			sep, prefixC = ".", false
		default:
			return fail(fmt.Errorf("chunk_key_encoding %q: %w", kname, format.ErrNotSupported))
		}
		switch kc.Separator {
		case "":
		case "/", ".":
			sep = kc.Separator
		default:
			return fail(fmt.Errorf("chunk_key_encoding separator %q", kc.Separator))
		}
	}
	keyOf := func(idx []int64) string {
		if prefixC {
			if len(idx) == 0 {
				return join(prefix, "c")
			}
			return join(prefix, "c"+sep+chunkName(idx, sep))
		}
		return join(prefix, chunkName(idx, sep))
	}
	var names []string
	for _, n := range z.DimensionNames {
		s := ""
		if n != nil {
			s = *n
		}
		names = append(names, s)
	}
	info := volume.Info{
		Name:   arrayName(st, prefix),
		Shape:  z.Shape,
		DType:  d.vt,
		Axes:   defaultAxes(z.Shape, names),
		Chunks: grid.ChunkShape,
		Metadata: map[string]any{
			"zarr_format": 3,
			"zarr_dtype":  d.zarr,
			"fill_value":  fillJSON(z.FillValue),
		},
	}
	if d.object {
		want, _ := parseV3ObjectDType(d.zarr)
		a := &array{st: st, codecs: cs, dt: d, grid: grid.ChunkShape, info: info}
		if err := setupV3Object(a, z, want, keyOf); err != nil {
			return fail(err)
		}
		return a, nil
	}
	fill, err := parseFill(z.FillValue, d)
	if err != nil {
		return fail(err)
	}
	p, err := parsePipeline(z.Codecs, grid.ChunkShape, d.size(), 0)
	if err != nil {
		return fail(err)
	}
	a := &array{st: st, codecs: cs, dt: d, fill: fill, grid: grid.ChunkShape, info: info}
	a.info.Metadata["codecs"] = p.names
	bb := p.bb
	if p.shard != nil {
		bb = p.shard.inside.bb
		a.grid = p.shard.inner
		a.info.Chunks = p.shard.inner
		a.info.Metadata["shard_shape"] = grid.ChunkShape
		a.info.Metadata["inner_codecs"] = p.shard.inside.names
	}
	a.info.Compression = "none"
	for _, id := range bb {
		if id != "crc32c" {
			a.info.Compression = id
			break
		}
	}
	if p.shard == nil {
		want := cellBytes(grid.ChunkShape, d.size())
		a.fetch = func(ctx context.Context, idx []int64, out []byte) ([]byte, error) {
			key := keyOf(idx)
			bp := a.rawBuf()
			defer a.raws.Put(bp)
			raw, err := readChunk(ctx, st, key, storedLimit(want), bp)
			if raw == nil || err != nil {
				return nil, err
			}
			return p.decode(cs, key, raw, grid.ChunkShape, d, out)
		}
		return a, nil
	}
	sh := &shardReader{st: st, spec: p.shard, shard: grid.ChunkShape, keyOf: keyOf, idx: map[string]*shardIndex{}}
	a.fetch = func(ctx context.Context, idx []int64, out []byte) ([]byte, error) {
		bp := a.rawBuf()
		defer a.raws.Put(bp)
		return sh.read(ctx, cs, idx, d, out, bp)
	}
	return a, nil
}

// shardReader reads inner chunks of sharded arrays, caching shard indexes.
type shardReader struct {
	st    *store.Store
	spec  *shardSpec
	shard []int64
	keyOf func([]int64) string

	mu  sync.Mutex
	idx map[string]*shardIndex
}

type shardIndex struct {
	once    sync.Once
	absent  bool
	size    int64
	entries []byte // 16 bytes per inner chunk, little-endian (offset, nbytes)
	err     error
}

const maxCachedShards = 4096

func (r *shardReader) index(ctx context.Context, key string) (*shardIndex, error) {
	r.mu.Lock()
	e := r.idx[key]
	if e == nil {
		if len(r.idx) >= maxCachedShards {
			clear(r.idx)
		}
		e = &shardIndex{}
		r.idx[key] = e
	}
	r.mu.Unlock()
	e.once.Do(func() { e.err = r.load(ctx, key, e) })
	if e.err != nil {
		r.mu.Lock()
		if r.idx[key] == e {
			delete(r.idx, key)
		}
		r.mu.Unlock()
		return nil, e.err
	}
	return e, nil
}

func (r *shardReader) load(ctx context.Context, key string, e *shardIndex) error {
	info, err := r.st.Stat(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		e.absent = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("shard %q: %w", key, err)
	}
	n := r.spec.indexSize
	if info.Size < 0 {
		return fmt.Errorf("shard %q: size unknown, so its index cannot be located: %w", key, format.ErrNotSupported)
	}
	if info.Size < n {
		return fmt.Errorf("shard %q: %d bytes, smaller than its %d-byte index: %w", key, info.Size, n, format.ErrCorrupt)
	}
	off := int64(0)
	if r.spec.indexEnd {
		off = info.Size - n
	}
	buf := make([]byte, n)
	if err := r.st.ReadAt(ctx, key, buf, off); err != nil {
		return fmt.Errorf("shard %q index: %w", key, err)
	}
	if r.spec.indexCRC {
		body := buf[:n-4]
		if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(buf[n-4:]) {
			return fmt.Errorf("shard %q: index crc32c mismatch: %w", key, format.ErrCorrupt)
		}
		buf = body
	}
	e.size, e.entries = info.Size, buf
	return nil
}

// read decodes inner chunk idx into out (see pipeline.decode), reading its
// encoded bytes into *buf.
func (r *shardReader) read(ctx context.Context, cs *codec.Codecs, idx []int64, d dtype, out []byte, buf *[]byte) ([]byte, error) {
	n := len(idx)
	sidx := make([]int64, n)
	var lin int64
	for i := 0; i < n; i++ {
		sidx[i] = idx[i] / r.spec.perShard[i]
		lin = lin*r.spec.perShard[i] + idx[i]%r.spec.perShard[i]
	}
	key := r.keyOf(sidx)
	e, err := r.index(ctx, key)
	if err != nil || e.absent {
		return nil, err
	}
	off := binary.LittleEndian.Uint64(e.entries[16*lin:])
	nb := binary.LittleEndian.Uint64(e.entries[16*lin+8:])
	if off == math.MaxUint64 && nb == math.MaxUint64 {
		return nil, nil
	}
	want := cellBytes(r.spec.inner, d.size())
	if off > uint64(e.size) || nb > uint64(e.size)-off {
		return nil, fmt.Errorf("shard %q: inner chunk %d at offset %d+%d lies past end of the shard (%d bytes): %w", key, lin, off, nb, e.size, format.ErrCorrupt)
	}
	if nb > uint64(storedLimit(want)) {
		return nil, fmt.Errorf("shard %q: inner chunk %d claims %d bytes, more than any encoding of its %d: %w", key, lin, nb, want, format.ErrCorrupt)
	}
	if uint64(cap(*buf)) < nb {
		*buf = make([]byte, nb)
	}
	raw := (*buf)[:nb]
	if err := r.st.ReadAt(ctx, key, raw, int64(off)); err != nil {
		return nil, fmt.Errorf("shard %q: inner chunk %d: %w", key, lin, err)
	}
	name := fmt.Sprintf("%s[inner %d]", key, lin)
	return r.spec.inside.decode(cs, name, raw, r.spec.inner, d, out)
}
