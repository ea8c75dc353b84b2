package precomputed

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// Read-ahead of sharded chunks. A range read brings in more chunks than the
// ReadRegion that issued it needs: the rest of each needed chunk's Morton
// group (read on purpose, because a neighbouring region will want it) and
// whatever lies in the gaps that coalescing bridged. Those "spare" chunks are
// kept, still encoded, in a bounded per-volume cache, so that the next region
// takes them instead of asking the server again. A region that streams a large
// window block by block (a crop) then reads every stored byte about once, with
// one request per group of blocks instead of one per block.
const (
	spareBudget = 64 << 20 // encoded bytes of spare chunks kept (and being fetched) per volume
	// groupBits selects the Morton group a miss pulls in: 2^groupBits
	// consecutive chunk ids, an aligned 2×2×2 block of chunks in 3-D.
	groupBits = 3
	// aheadMax bounds the bytes a miss pulls in beyond itself, by the same
	// reckoning as coalesceGap: a round trip costs more than reading 1 MiB
	// more, but a lone read of large chunks should not pay 7× for them.
	aheadMax = 1 << 20
	// spentIDs is how many chunk ids a volume remembers as already read, so
	// that read-ahead does not fetch them again for a neighbour.
	spentIDs = 1 << 14
)

// errSpareAbandoned resolves a spare chunk whose range read never ran (its
// ReadRegion failed or was cancelled first); whoever waits for it reads the
// chunk itself.
var errSpareAbandoned = errors.New("read-ahead abandoned")

// spareChunk is one read-ahead chunk: pending until the range read that
// carries it completes, then holding its encoded bytes (or the error).
type spareChunk struct {
	id   uint64
	size int64
	done chan struct{}
	// data and err are set before done is closed.
	data []byte
	err  error
	// Guarded by spareCache.mu.
	resolved bool
	el       *list.Element // position in the eviction queue; nil once taken
}

// wait returns the chunk's bytes once its range read is done.
func (c *spareChunk) wait(ctx context.Context) ([]byte, error) {
	select {
	case <-c.done:
		return c.data, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// spareCache holds a volume's spare chunks by chunk id, oldest first in the
// eviction queue. Every chunk is taken at most once: a streaming reader needs
// each chunk once, and a taken chunk makes room for the next ones. The ids of
// the last spentIDs chunks read (taken, or read for a region directly) are
// remembered and not read ahead again.
type spareCache struct {
	budget int64

	mu    sync.Mutex
	m     map[uint64]*spareChunk
	queue *list.List // of *spareChunk, oldest at the front
	bytes int64      // sizes of the chunks in m
	spent map[uint64]struct{}
	ring  []uint64 // spent ids in order, a ring once full
	next  int      // the ring's oldest entry once full
}

func newSpareCache(budget int64) *spareCache {
	return &spareCache{budget: budget, m: map[uint64]*spareChunk{}, queue: list.New(), spent: map[uint64]struct{}{}}
}

// take removes chunk id from the cache and returns it (ready or pending);
// either way id counts as read. A nil cache (read-ahead off) holds nothing.
func (s *spareCache) take(id uint64) *spareChunk {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spend(id)
	c, ok := s.m[id]
	if !ok {
		return nil
	}
	s.remove(c)
	return c
}

// spend remembers id as read; s.mu is held.
func (s *spareCache) spend(id uint64) {
	if _, ok := s.spent[id]; ok {
		return
	}
	if len(s.ring) < spentIDs {
		s.ring = append(s.ring, id)
	} else {
		delete(s.spent, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % len(s.ring)
	}
	s.spent[id] = struct{}{}
}

// remove drops c from the map and queue; s.mu is held.
func (s *spareCache) remove(c *spareChunk) {
	delete(s.m, c.id)
	s.queue.Remove(c.el)
	c.el = nil
	s.bytes -= c.size
}

// reserve registers chunk id, of size encoded bytes, as pending and returns
// it; the caller must resolve it with fill or fail. It returns nil when the
// chunk is already cached or read, or does not fit: with evict, by dropping the oldest
// ready chunks; without, only in free room (gap chunks are a bonus and must
// not push out chunks read on purpose).
func (s *spareCache) reserve(id uint64, size int64, evict bool) *spareChunk {
	if s == nil || size > s.budget {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return nil
	}
	if _, ok := s.spent[id]; ok {
		return nil
	}
	if s.bytes+size > s.budget {
		if !evict {
			return nil
		}
		for el := s.queue.Front(); el != nil && s.bytes+size > s.budget; {
			next := el.Next()
			if c := el.Value.(*spareChunk); c.resolved {
				s.remove(c)
			}
			el = next
		}
		if s.bytes+size > s.budget {
			return nil // the rest is still being fetched
		}
	}
	c := &spareChunk{id: id, size: size, done: make(chan struct{})}
	c.el = s.queue.PushBack(c)
	s.m[id] = c
	s.bytes += size
	return c
}

// fill resolves c with its bytes (which it keeps: pass a copy).
func (s *spareCache) fill(c *spareChunk, data []byte) {
	s.resolve(c, data, nil)
}

// fail resolves c with err and drops it, so that later readers fetch it.
func (s *spareCache) fail(c *spareChunk, err error) {
	s.resolve(c, nil, err)
}

func (s *spareCache) resolve(c *spareChunk, data []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.resolved {
		return
	}
	c.resolved = true
	c.data, c.err = data, err
	if err != nil && c.el != nil {
		s.remove(c)
	}
	close(c.done)
}
