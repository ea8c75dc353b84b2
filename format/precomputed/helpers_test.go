package precomputed

import (
	"context"
	"errors"
	"io"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

// memDriver is a store.MemDriver that counts its reads and can be made to
// fail them, for hermetic tests.
type memDriver struct {
	*store.MemDriver
	t  testing.TB // reports a failed put
	mu sync.Mutex
	// reads counts ReadRange calls; reads16 those of exactly 16 bytes (shard
	// index entries).
	reads, reads16 atomic.Int64
	// ranges counts ReadRange calls per key and range.
	ranges map[readRange]int
	// fail, when set, is asked before every ReadRange; a non-nil error is
	// returned instead of the data.
	fail func(key string, off, n int64) error
}

type readRange struct {
	key    string
	off, n int64
}

// rangeReads returns how often key was read at [off, off+n).
func (d *memDriver) rangeReads(key string, off, n int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ranges[readRange{key, off, n}]
}

// setFail installs (or, with nil, removes) the fault hook.
func (d *memDriver) setFail(f func(key string, off, n int64) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = f
}

// dataReads returns the ranges read from key at or after off, sorted.
func (d *memDriver) dataReads(key string, off int64) []readRange {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rs []readRange
	for r, n := range d.ranges {
		for i := 0; i < n && r.key == key && r.off >= off; i++ {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].off < rs[j].off })
	return rs
}

// resetCounts forgets all counted reads.
func (d *memDriver) resetCounts() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads.Store(0)
	d.reads16.Store(0)
	clear(d.ranges)
}

func newMem(t testing.TB) *memDriver {
	return &memDriver{MemDriver: store.NewMem(), t: t, ranges: map[readRange]int{}}
}

func (d *memDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.reads.Add(1)
	if n == 16 {
		d.reads16.Add(1)
	}
	d.mu.Lock()
	d.ranges[readRange{key, off, n}]++
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		if err := fail(key, off, n); err != nil {
			return nil, err
		}
	}
	return d.MemDriver.ReadRange(ctx, key, off, n)
}

// get returns the object at key, nil when there is none.
func (d *memDriver) get(key string) []byte {
	b, err := store.New(d.MemDriver).ReadAll(context.Background(), key, math.MaxInt64)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		d.t.Errorf("get %q: %v", key, err)
	}
	return b
}

// put stores b at key.
func (d *memDriver) put(key string, b []byte) {
	if err := d.Put(key, b); err != nil {
		d.t.Errorf("put %q: %v", key, err)
	}
}

// keys lists the keys under prefix.
func (d *memDriver) keys(prefix string) []string {
	var out []string
	err := d.List(context.Background(), prefix, "", func(oi store.ObjectInfo) error {
		out = append(out, oi.Key)
		return nil
	})
	if err != nil {
		d.t.Errorf("list %q: %v", prefix, err)
	}
	return out
}
