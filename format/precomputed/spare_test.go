package precomputed

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func TestSpareCache(t *testing.T) {
	s := newSpareCache(100)
	a := s.reserve(1, 60, true)
	if a == nil {
		t.Fatal("reserve 1: nil")
	}
	if s.reserve(1, 60, true) != nil {
		t.Error("chunk 1 reserved twice")
	}
	// Pending chunks are never evicted, with or without evict.
	if s.reserve(2, 50, true) != nil {
		t.Error("reserve 2 evicted a pending chunk")
	}
	s.fill(a, []byte("a"))
	if s.reserve(2, 50, false) != nil {
		t.Error("reserve 2 without evict made room")
	}
	b := s.reserve(2, 50, true)
	if b == nil {
		t.Fatal("reserve 2 with evict: nil")
	}
	if s.take(1) != nil {
		t.Error("evicted chunk 1 still taken")
	}
	if s.reserve(3, 101, true) != nil {
		t.Error("chunk over the budget reserved")
	}
	if got := s.take(2); got != b {
		t.Fatalf("take 2 = %v, want the pending chunk", got)
	}
	if s.take(2) != nil {
		t.Error("chunk 2 taken twice")
	}
	if s.bytes != 0 {
		t.Errorf("%d bytes accounted after take, want 0", s.bytes)
	}
	// A failed chunk leaves the cache and wakes its waiter with the error.
	c := s.reserve(4, 10, true)
	s.fail(c, errSpareAbandoned)
	s.fill(c, []byte("late")) // a second resolution is ignored
	if _, err := c.wait(context.Background()); !errors.Is(err, errSpareAbandoned) {
		t.Errorf("wait after fail: %v", err)
	}
	if s.take(4) != nil || s.bytes != 0 {
		t.Errorf("failed chunk still cached (%d bytes)", s.bytes)
	}
	// Taken chunks count as read: not read ahead again, until forgotten.
	if s.reserve(2, 1, true) != nil || s.reserve(7, 1, true) == nil {
		t.Error("read-ahead of a chunk already read, or not of a new one")
	}
	s.take(100)
	for id := uint64(1000); id < 1000+spentIDs; id++ {
		s.take(id)
	}
	if len(s.spent) != spentIDs {
		t.Errorf("%d spent ids remembered, want %d", len(s.spent), spentIDs)
	}
	if s.reserve(100, 1, true) == nil {
		t.Error("oldest spent id not forgotten")
	}
	var nilCache *spareCache
	if nilCache.take(1) != nil || nilCache.reserve(1, 1, true) != nil {
		t.Error("nil cache holds chunks")
	}
}

// streamVolume writes a 96³ uint8 volume of 16³ raw chunks (6³ grid), sharded
// with the identity hash so that each minishard holds whole Morton groups,
// and returns it with merging of reads limited to touching ranges.
func streamVolume(t *testing.T) (*memDriver, *scaleVolume, []byte) {
	t.Helper()
	const n = 96
	info := volume.Info{Name: "src", Shape: []int64{n, n, n}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "z", Size: n}, {Name: "y", Size: n}, {Name: "x", Size: n}}}
	b := make([]byte, n*n*n)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	src, err := volume.NewMem(info, b)
	if err != nil {
		t.Fatal(err)
	}
	spec := &Sharding{Type: ShardingType, Hash: "identity", PreshiftBits: 6, MinishardBits: 1, ShardBits: 1,
		MinishardIndexEncoding: "gzip", DataEncoding: "raw"}
	d, _, vs := writeOpen(t, src, WriteOptions{ChunkSize: [3]int64{16, 16, 16}, Sharding: spec})
	v := vs[0].(*scaleVolume)
	v.gap = 1 // merge only touching ranges, as a large volume's distant groups would be
	return d, v, b
}

// blocks lists the 32³ blocks of the 64³ window at 16 in C order: each
// straddles eight Morton groups of 2³ chunks, as a crop at an offset does.
func blocks() []volume.Box {
	var bs []volume.Box
	for z := int64(16); z < 80; z += 32 {
		for y := int64(16); y < 80; y += 32 {
			for x := int64(16); x < 80; x += 32 {
				bs = append(bs, volume.NewBox([]int64{z, y, x}, []int64{32, 32, 32}))
			}
		}
	}
	return bs
}

func checkBox(t *testing.T, b []byte, box volume.Box, got []byte) {
	t.Helper()
	want := make([]byte, box.NumElements())
	volume.CopyBox(want, box, b, volume.Full([]int64{96, 96, 96}), box, 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("box %v: data differs", box)
	}
}

// chunkReads counts, for every stored chunk of the window's cells, the data
// reads that covered it.
func chunkReads(t *testing.T, d *memDriver, v *scaleVolume) map[uint64]int {
	t.Helper()
	ctx := context.Background()
	cover := map[uint64]int{}
	for z := int64(1); z < 5; z++ {
		for y := int64(1); y < 5; y++ {
			for x := int64(1); x < 5; x++ {
				id := compressedMorton([3]int64{x, y, z}, v.mbits)
				sh, mi := v.shards.locate(id)
				ms, err := v.shards.get(ctx, sh, mi)
				if err != nil {
					t.Fatal(err)
				}
				e, ok := ms.find(id)
				if !ok {
					t.Fatalf("chunk %d not stored", id)
				}
				cover[id] += 0
				for _, r := range d.dataReads(v.shards.shardKey(sh), v.shards.indexEnd()) {
					if r.off <= e.start && e.end <= r.off+r.n {
						cover[id]++
					}
				}
			}
		}
	}
	return cover
}

// TestReadAheadStreaming reads a window block by block, each block straddling
// Morton groups: with read-ahead every chunk's bytes are read once, in one
// request per group at most; without, blocks read their chunks one by one.
func TestReadAheadStreaming(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		readAhead bool
		ahead     int64 // bytes a miss may pull in
	}{
		{"read-ahead", true, aheadMax},
		{"off", false, aheadMax},
		// Seven 4 KiB siblings do not fit in 20 KiB: groups are read in
		// part, so more requests, but still every chunk once.
		{"bounded", true, 20 << 10},
		{"no room", true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, v, b := streamVolume(t)
			// Warm the indexes so that only data reads are counted (a read of
			// everything leaves nothing to read ahead).
			if err := v.ReadRegion(ctx, volume.Full(v.info.Shape), make([]byte, 96*96*96)); err != nil {
				t.Fatal(err)
			}
			d.resetCounts()
			v.spare = nil
			if c.readAhead {
				v.spare = newSpareCache(spareBudget) // forget the warm-up's chunks
			}
			v.ahead = c.ahead
			for _, box := range blocks() {
				got := make([]byte, box.NumElements())
				if err := v.ReadRegion(ctx, box, got); err != nil {
					t.Fatal(err)
				}
				checkBox(t, b, box, got)
			}
			reads := d.reads.Load()
			for id, n := range chunkReads(t, d, v) {
				if n != 1 {
					t.Errorf("chunk %d read %d times, want 1", id, n)
				}
			}
			// 64 chunks in 27 groups (the window's 4 cells per axis span 3
			// groups); without read-ahead each block reads its 8 chunks alone.
			switch {
			case c.readAhead && c.ahead >= 7*16*16*16:
				if reads > 27 {
					t.Errorf("%d data reads with read-ahead, want at most 27 (one per Morton group)", reads)
				}
			case c.readAhead && c.ahead > 0:
				if reads <= 27 || reads >= 64 {
					t.Errorf("%d data reads with bounded read-ahead, want between 27 and 64", reads)
				}
			default:
				if reads != 64 {
					t.Errorf("%d data reads without read-ahead, want 64", reads)
				}
			}
		})
	}
}

// TestReadAheadConcurrent reads the blocks as volume.Copy does, several at
// once: regions wait for each other's reads and the data stays exact.
func TestReadAheadConcurrent(t *testing.T) {
	ctx := context.Background()
	d, v, b := streamVolume(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, box := range blocks() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got := make([]byte, box.NumElements())
			if err := v.ReadRegion(ctx, box, got); err != nil {
				t.Error(err)
				return
			}
			checkBox(t, b, box, got)
		}()
	}
	wg.Wait()
	for id, n := range chunkReads(t, d, v) {
		if n < 1 || n > 2 {
			t.Errorf("chunk %d read %d times, want 1 (2 when two regions race for it)", id, n)
		}
	}
}

// TestReadAheadFailures: a read that fails takes its read-ahead chunks with
// it, and a region waiting for a chunk another read was to bring reads it
// itself when that read fails, or gives up when its own context ends.
func TestReadAheadFailures(t *testing.T) {
	ctx := context.Background()
	bs := blocks()
	errBoom := errors.New("boom")

	t.Run("failed read", func(t *testing.T) {
		d, v, b := streamVolume(t)
		d.setFail(func(key string, off, n int64) error {
			if n >= 16*16*16 { // a chunk data read, not an index
				return errBoom
			}
			return nil
		})
		if err := v.ReadRegion(ctx, bs[0], make([]byte, bs[0].NumElements())); !errors.Is(err, errBoom) {
			t.Fatalf("read with failing store: %v, want %v", err, errBoom)
		}
		if v.spare.bytes != 0 || len(v.spare.m) != 0 {
			t.Fatalf("%d read-ahead chunks (%d bytes) left after the failed read", len(v.spare.m), v.spare.bytes)
		}
		d.setFail(nil)
		for _, box := range bs {
			got := make([]byte, box.NumElements())
			if err := v.ReadRegion(ctx, box, got); err != nil {
				t.Fatal(err)
			}
			checkBox(t, b, box, got)
		}
	})

	// pending claims the first chunk of block 0 as if another region's read
	// were bringing it, and starts reading block 0 with ctx.
	pending := func(t *testing.T, ctx context.Context, v *scaleVolume) (*spareChunk, chan error, []byte) {
		id := compressedMorton([3]int64{1, 1, 1}, v.mbits)
		c := v.spare.reserve(id, 1, true)
		if c == nil {
			t.Fatal("reserve: nil")
		}
		got := make([]byte, bs[0].NumElements())
		done := make(chan error, 1)
		go func() { done <- v.ReadRegion(ctx, bs[0], got) }()
		// Wait until the region has taken the chunk (it then waits for it).
		for {
			v.spare.mu.Lock()
			_, there := v.spare.m[id]
			v.spare.mu.Unlock()
			if !there {
				break
			}
			runtime.Gosched()
		}
		return c, done, got
	}

	t.Run("owner fails", func(t *testing.T) {
		_, v, b := streamVolume(t)
		c, done, got := pending(t, ctx, v)
		v.spare.fail(c, errBoom)
		if err := <-done; err != nil {
			t.Fatalf("waiter did not fall back to reading the chunk: %v", err)
		}
		checkBox(t, b, bs[0], got)
	})

	t.Run("waiter cancelled", func(t *testing.T) {
		_, v, _ := streamVolume(t)
		cctx, cancel := context.WithCancel(ctx)
		c, done, _ := pending(t, cctx, v)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
		}
		v.spare.fill(c, nil)
	})
}

// FuzzShardRead serves the fuzz input as the one shard of a 12³ raw volume of
// 4³ chunks and reads it block by block, straddling Morton groups (the
// read-ahead path), and whole without read-ahead: neither may panic, and
// where both succeed they agree.
func FuzzShardRead(f *testing.F) {
	ctx := context.Background()
	const n = 12
	info := volume.Info{Name: "src", Shape: []int64{n, n, n}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "z", Size: n}, {Name: "y", Size: n}, {Name: "x", Size: n}}}
	b := make([]byte, n*n*n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	src, err := volume.NewMem(info, b)
	if err != nil {
		f.Fatal(err)
	}
	d := newMem(f)
	for _, gz := range []bool{false, true} {
		spec := &Sharding{Type: ShardingType, Hash: "identity", PreshiftBits: 3, MinishardBits: 1, ShardBits: 0,
			MinishardIndexEncoding: "raw", DataEncoding: "raw"}
		if gz {
			spec.MinishardIndexEncoding, spec.DataEncoding = "gzip", "gzip"
		}
		key := map[bool]string{false: "raw", true: "gz"}[gz]
		if err := Write(ctx, store.New(d), key, src, WriteOptions{ChunkSize: [3]int64{4, 4, 4}, Sharding: spec}); err != nil {
			f.Fatal(err)
		}
		shards := d.keys(key + "/")
		var shard []byte
		for _, k := range shards {
			if strings.HasSuffix(k, ".shard") {
				shard = d.get(k)
			}
		}
		if shard == nil {
			f.Fatalf("no shard written under %q (%v)", key, shards)
		}
		f.Add(shard, gz)
		f.Add(shard[:len(shard)/2], gz)
	}
	f.Add([]byte{}, false)
	infos := map[bool][]byte{false: d.get("raw/info"), true: d.get("gz/info")}
	shardKeys := map[bool]string{}
	for _, gz := range []bool{false, true} {
		for _, k := range d.keys(map[bool]string{false: "raw/", true: "gz/"}[gz]) {
			if strings.HasSuffix(k, ".shard") {
				shardKeys[gz] = strings.TrimPrefix(strings.TrimPrefix(k, "raw/"), "gz/")
			}
		}
	}
	f.Fuzz(func(t *testing.T, shard []byte, gz bool) {
		m := newMem(t)
		m.put("v/info", infos[gz])
		m.put("v/"+shardKeys[gz], shard)
		open := func() *scaleVolume {
			vs, err := Format{}.Open(ctx, store.New(m), "v")
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return vs[0].(*scaleVolume)
		}
		whole := make([]byte, n*n*n)
		plain := open()
		plain.spare = nil
		werr := plain.ReadRegion(ctx, volume.Full(info.Shape), whole)
		v := open()
		for z := int64(2); z < n; z += 4 {
			for y := int64(2); y < n; y += 4 {
				for x := int64(2); x < n; x += 4 {
					box := volume.NewBox([]int64{z, y, x}, []int64{min(4, n-z), min(4, n-y), min(4, n-x)})
					got := make([]byte, box.NumElements())
					if err := v.ReadRegion(ctx, box, got); err != nil || werr != nil {
						continue
					}
					want := make([]byte, len(got))
					volume.CopyBox(want, box, whole, volume.Full(info.Shape), box, 1)
					if !bytes.Equal(got, want) {
						t.Fatalf("box %v: read-ahead read differs from a whole read", box)
					}
				}
			}
		}
	})
}
