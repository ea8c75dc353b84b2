package precomputed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/imgdataset/imgdataset/store"
)

// memDriver is an in-memory store.Driver with writing, for hermetic tests.
type memDriver struct {
	mu    sync.Mutex
	files map[string][]byte
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

func newMem() *memDriver {
	return &memDriver{files: map[string][]byte{}, ranges: map[readRange]int{}}
}

func (d *memDriver) String() string { return "mem:" }

func (d *memDriver) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.files[key]
	if !ok {
		return store.ObjectInfo{}, fmt.Errorf("mem %q: %w", key, store.ErrNotExist)
	}
	return store.ObjectInfo{Key: key, Size: int64(len(b))}, nil
}

func (d *memDriver) List(ctx context.Context, prefix, delim string, fn func(store.ObjectInfo) error) error {
	d.mu.Lock()
	var keys []string
	for k := range d.files {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	d.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(store.ObjectInfo{Key: k}); err != nil {
			return err
		}
	}
	return nil
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
	b, ok := d.files[key]
	d.ranges[readRange{key, off, n}]++
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		if err := fail(key, off, n); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, fmt.Errorf("mem %q: %w", key, store.ErrNotExist)
	}
	if off > int64(len(b)) {
		return nil, fmt.Errorf("mem %q: offset %d past end %d: %w", key, off, len(b), io.ErrUnexpectedEOF)
	}
	end := int64(len(b))
	if n >= 0 {
		if off+n > end {
			return nil, fmt.Errorf("mem %q: range [%d,%d) past end %d: %w", key, off, off+n, end, io.ErrUnexpectedEOF)
		}
		end = off + n
	}
	return io.NopCloser(bytes.NewReader(b[off:end])), nil
}

func (d *memDriver) NewWriter(ctx context.Context, key string) (store.AtomicWriter, error) {
	return &memWriter{d: d, key: key}, nil
}

func (d *memDriver) Delete(ctx context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.files, key)
	return nil
}

func (d *memDriver) get(key string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.files[key]
}

func (d *memDriver) put(key string, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files[key] = b
}

func (d *memDriver) keys(prefix string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for k := range d.files {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

type memWriter struct {
	d    *memDriver
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *memWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.d.put(w.key, bytes.Clone(w.buf.Bytes()))
	return nil
}

func (w *memWriter) Abort() error { w.done = true; return nil }
