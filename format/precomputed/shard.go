package precomputed

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
)

// Limits on sharding metadata read from a possibly hostile store.
const (
	maxMinishardBytes  = 64 << 20 // a minishard index, as stored and decoded
	maxShardIndexBytes = 16 << 20 // shard indexes up to this size are read whole (minishard_bits ≤ 20)
	cacheItems         = 4096     // shard and decoded minishard indexes kept per volume
	cacheBytes         = 64 << 20 // and their total size
)

// shardEntry locates one chunk inside a shard file: [start, end) are absolute
// byte offsets in the file.
type shardEntry struct {
	id         uint64
	start, end int64
}

// minishard is a decoded minishard index, sorted by chunk id. A nil *minishard
// means the minishard is empty (or its shard does not exist).
type minishard struct {
	entries []shardEntry
}

// find returns the entry of chunk id.
func (m *minishard) find(id uint64) (shardEntry, bool) {
	if m == nil {
		return shardEntry{}, false
	}
	i, ok := slices.BinarySearchFunc(m.entries, id, func(e shardEntry, id uint64) int {
		switch {
		case e.id < id:
			return -1
		case e.id > id:
			return 1
		}
		return 0
	})
	if !ok {
		return shardEntry{}, false
	}
	return m.entries[i], true
}

// sharder maps chunk ids to shards and reads their indexes. Whole shard
// indexes (when small enough) and decoded minishard indexes share one LRU per
// volume, and concurrent fetches of the same item share one request.
type sharder struct {
	spec Sharding
	st   *store.Store
	dir  string // the scale's key prefix ("" for the root)
	// wholeIndexMax is the largest shard index read whole (maxShardIndexBytes;
	// tests lower it to reach the entry-by-entry path).
	wholeIndexMax int64
	// indexMem bounds the bytes of whole shard indexes being read at once:
	// many concurrent minishard lookups in different shards must not each
	// hold a large index buffer.
	indexMem *semaphore.Weighted

	mu       sync.Mutex
	lru      *list.List // of *cacheItem, most recent first
	items    map[cacheKey]*list.Element
	bytes    int64
	inflight map[cacheKey]*flight
}

// cacheKey names a cached item: the index of a shard (whole set) or the
// decoded index of one of its minishards.
type cacheKey struct {
	shard, minishard uint64
	whole            bool
}

// cached is what the LRU holds: *minishard or *shardIndex. Both are valid as
// nil pointers (empty minishard, absent shard).
type cached interface{ size() int64 }

type cacheItem struct {
	key cacheKey
	val cached
}

type flight struct {
	done chan struct{}
	val  cached
	err  error
}

// shardIndex is the raw shard index of an existing shard: 16 bytes per
// minishard. A nil *shardIndex means the shard does not exist.
type shardIndex struct {
	raw []byte
}

func (x *shardIndex) size() int64 {
	if x == nil {
		return 16
	}
	return 16 + int64(len(x.raw))
}

func newSharder(st *store.Store, dir string, spec Sharding) *sharder {
	return &sharder{spec: spec, st: st, dir: dir, wholeIndexMax: maxShardIndexBytes,
		indexMem: semaphore.NewWeighted(2 * maxShardIndexBytes), lru: list.New(),
		items: map[cacheKey]*list.Element{}, inflight: map[cacheKey]*flight{}}
}

// locate returns the shard and minishard holding chunk id.
func (s *sharder) locate(id uint64) (shard, mini uint64) {
	h := shiftRight(id, s.spec.PreshiftBits)
	if s.spec.Hash == "murmurhash3_x86_128" {
		h = murmurHash64(h)
	}
	mini = h & lowMask(s.spec.MinishardBits)
	shard = shiftRight(h, s.spec.MinishardBits) & lowMask(s.spec.ShardBits)
	return shard, mini
}

// shardName is the object name of a shard: lowercase hex, zero-padded to
// ceil(shard_bits/4) digits.
func shardName(shard uint64, shardBits int) string {
	return fmt.Sprintf("%0*x.shard", (shardBits+3)/4, shard)
}

// shardKey is the store key of a shard.
func (s *sharder) shardKey(shard uint64) string {
	n := shardName(shard, s.spec.ShardBits)
	if s.dir == "" {
		return n
	}
	return s.dir + "/" + n
}

// indexEnd is the size of the shard index, where offsets are counted from.
func (s *sharder) indexEnd() int64 { return int64(16) << uint(s.spec.MinishardBits) }

// get returns the decoded minishard index (nil when empty), from the cache or
// by reading it; concurrent callers for the same minishard share one fetch.
func (s *sharder) get(ctx context.Context, shard, mini uint64) (*minishard, error) {
	v, err := s.load(ctx, cacheKey{shard: shard, minishard: mini}, func(ctx context.Context) (cached, error) {
		return s.fetch(ctx, shard, mini)
	})
	if err != nil {
		return nil, err
	}
	return v.(*minishard), nil
}

// load returns the cached item k or fetches it, once for all concurrent callers.
func (s *sharder) load(ctx context.Context, k cacheKey, fetch func(context.Context) (cached, error)) (cached, error) {
	for {
		s.mu.Lock()
		if el, ok := s.items[k]; ok {
			s.lru.MoveToFront(el)
			s.mu.Unlock()
			return el.Value.(*cacheItem).val, nil
		}
		if f, ok := s.inflight[k]; ok {
			s.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.err == nil {
				return f.val, nil
			}
			// The leader's own context ended; this caller may still go on.
			if (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) && ctx.Err() == nil {
				continue
			}
			return nil, f.err
		}
		f := &flight{done: make(chan struct{})}
		s.inflight[k] = f
		s.mu.Unlock()

		f.val, f.err = fetch(ctx)

		s.mu.Lock()
		delete(s.inflight, k)
		if f.err == nil {
			s.add(k, f.val)
		}
		s.mu.Unlock()
		close(f.done)
		return f.val, f.err
	}
}

// add caches v; s.mu is held.
func (s *sharder) add(k cacheKey, v cached) {
	s.items[k] = s.lru.PushFront(&cacheItem{key: k, val: v})
	s.bytes += v.size()
	for s.lru.Len() > cacheItems || (s.bytes > cacheBytes && s.lru.Len() > 1) {
		el := s.lru.Back()
		it := el.Value.(*cacheItem)
		s.lru.Remove(el)
		delete(s.items, it.key)
		s.bytes -= it.val.size()
	}
}

func (m *minishard) size() int64 {
	if m == nil {
		return 16
	}
	return 16 + 24*int64(len(m.entries))
}

// indexEntry returns the [start, end) range of minishard mini's index,
// relative to the end of the shard index; ok is false when the shard does not
// exist. Small shard indexes are read whole, once per shard, so that every
// further minishard costs one request; larger ones entry by entry.
func (s *sharder) indexEntry(ctx context.Context, shard, mini uint64) (start, end uint64, ok bool, err error) {
	key := s.shardKey(shard)
	if n := s.indexEnd(); n <= s.wholeIndexMax {
		v, err := s.load(ctx, cacheKey{shard: shard, whole: true}, func(ctx context.Context) (cached, error) {
			if err := s.indexMem.Acquire(ctx, n); err != nil {
				return nil, err
			}
			defer s.indexMem.Release(n)
			raw := make([]byte, n)
			if err := s.st.ReadAt(ctx, key, raw, 0); err != nil {
				if errors.Is(err, store.ErrNotExist) {
					return (*shardIndex)(nil), nil // no shard: every chunk in it is absent
				}
				return nil, fmt.Errorf("shard %q: read shard index (%d bytes): %w", key, n, pastShardEnd(ctx, s.st, key, 0, n, err))
			}
			return &shardIndex{raw: raw}, nil
		})
		if err != nil {
			return 0, 0, false, err
		}
		x := v.(*shardIndex)
		if x == nil {
			return 0, 0, false, nil
		}
		ent := x.raw[16*mini:]
		return binary.LittleEndian.Uint64(ent[0:]), binary.LittleEndian.Uint64(ent[8:]), true, nil
	}
	var ent [16]byte
	if err := s.st.ReadAt(ctx, key, ent[:], int64(16*mini)); err != nil {
		if errors.Is(err, store.ErrNotExist) {
			return 0, 0, false, nil
		}
		return 0, 0, false, fmt.Errorf("shard %q: read index entry of minishard %d: %w", key, mini, pastShardEnd(ctx, s.st, key, int64(16*mini), 16, err))
	}
	return binary.LittleEndian.Uint64(ent[0:]), binary.LittleEndian.Uint64(ent[8:]), true, nil
}

// pastShardEnd tells a shard cut short from a failing store after a read of
// [off, off+n) of key failed with err: when the shard is known to end before
// off+n, its index points past its end, which is corrupt data. It costs a
// Stat, on the error path only.
func pastShardEnd(ctx context.Context, st *store.Store, key string, off, n int64, err error) error {
	if errors.Is(err, store.ErrNotExist) || ctx.Err() != nil {
		return err
	}
	if oi, serr := st.Stat(ctx, key); serr == nil && oi.Size >= 0 && n > oi.Size-off {
		return fmt.Errorf("%w: offset %d+%d lies past end of the shard (%d bytes): %w", err, off, n, oi.Size, format.ErrCorrupt)
	}
	return err
}

// fetch locates a minishard index through the shard index, then reads and decodes it.
func (s *sharder) fetch(ctx context.Context, shard, mini uint64) (*minishard, error) {
	key := s.shardKey(shard)
	start, end, ok, err := s.indexEntry(ctx, shard, mini)
	if err != nil || !ok || start == end {
		return nil, err
	}
	idxEnd := uint64(s.indexEnd())
	if end < start || end-start > maxMinishardBytes || end > 1<<62-idxEnd {
		return nil, fmt.Errorf("shard %q: corrupt shard index: minishard %d at [%d,%d): %w", key, mini, start, end, format.ErrCorrupt)
	}
	raw := make([]byte, end-start)
	if err := s.st.ReadAt(ctx, key, raw, int64(idxEnd+start)); err != nil {
		return nil, fmt.Errorf("shard %q: read minishard %d index at [%d,%d): %w", key, mini, idxEnd+start, idxEnd+end,
			pastShardEnd(ctx, s.st, key, int64(idxEnd+start), int64(end-start), err))
	}
	if s.spec.MinishardIndexEncoding == "gzip" {
		var err error
		if raw, err = gunzip(raw, maxMinishardBytes); err != nil {
			return nil, fmt.Errorf("shard %q: minishard %d index: %w", key, mini, undecodable(err))
		}
	}
	m, err := decodeMinishard(raw, int64(idxEnd))
	if err != nil {
		return nil, fmt.Errorf("shard %q: minishard %d: %w: %w", key, mini, err, format.ErrCorrupt)
	}
	return m, nil
}

// decodeMinishard decodes a minishard index: a C-order [3][n] array of u64 LE
// with delta-coded chunk ids, delta-coded start offsets (relative to the end of
// the previous chunk, the first relative to idxEnd) and sizes.
func decodeMinishard(b []byte, idxEnd int64) (*minishard, error) {
	if len(b)%24 != 0 {
		return nil, fmt.Errorf("corrupt minishard index: %d bytes is not a multiple of 24", len(b))
	}
	n := len(b) / 24
	m := &minishard{entries: make([]shardEntry, n)}
	var id uint64
	pos := uint64(idxEnd)
	const limit = uint64(1) << 62
	for i := 0; i < n; i++ {
		did := binary.LittleEndian.Uint64(b[8*i:])
		doff := binary.LittleEndian.Uint64(b[8*(n+i):])
		size := binary.LittleEndian.Uint64(b[8*(2*n+i):])
		var c uint64
		id, c = bits.Add64(id, did, 0)
		if c != 0 {
			return nil, fmt.Errorf("corrupt minishard index: chunk id overflows at entry %d", i)
		}
		start := pos + doff
		end := start + size
		if doff > limit || size > limit || start > limit || end > limit {
			return nil, fmt.Errorf("corrupt minishard index: entry %d (chunk %d) offset %d size %d out of range", i, id, doff, size)
		}
		m.entries[i] = shardEntry{id: id, start: int64(start), end: int64(end)}
		pos = end
	}
	slices.SortFunc(m.entries, func(a, b shardEntry) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	for i := 1; i < n; i++ {
		if m.entries[i].id == m.entries[i-1].id {
			return nil, fmt.Errorf("corrupt minishard index: chunk id %d appears twice", m.entries[i].id)
		}
	}
	return m, nil
}
