package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemDriver keeps objects in memory, in the manner of go-cloud's memblob: a
// store for tests and for short-lived data that never touches a disk. It
// has the optional capabilities of the file driver (WriterDriver,
// DeleterDriver; readers that know their size), refuses the keys the file
// driver refuses, and is safe for concurrent use.
//
// An object's bytes are never modified once stored: a write replaces the
// object whole when its writer is closed, so a reader opened before keeps
// seeing the old content, as a reader of a replaced local file does.
type MemDriver struct {
	mu   sync.RWMutex
	objs map[string]*memObject
	gen  int64 // the last generation handed out
}

var (
	_ WriterDriver  = (*MemDriver)(nil)
	_ DeleterDriver = (*MemDriver)(nil)
)

// memObject is one stored object; it is immutable once in the map.
type memObject struct {
	data []byte
	md5  [md5.Size]byte
	mod  time.Time
	gen  int64
}

// NewMem returns an empty in-memory driver.
func NewMem() *MemDriver {
	return &MemDriver{objs: map[string]*memObject{}}
}

// String names the driver in error messages.
func (d *MemDriver) String() string { return "mem" }

// memKey checks that key is one the file driver would accept as it is
// given: Store hands drivers clean keys, and a decorator calling the driver
// directly must not store a key that no Store could name.
func (d *MemDriver) memKey(op, key string) error {
	c, err := CleanKey(key)
	if err != nil {
		return fmt.Errorf("mem: %s: %w", op, err)
	}
	if c != key {
		return fmt.Errorf("mem: %s %q: %w: not in canonical form %q", op, key, ErrBadKey, c)
	}
	return nil
}

// Put stores a copy of data under key, replacing any object there, as a
// writer that wrote data and was closed would. It is the quick way to fill
// a driver; the empty key is refused with ErrBadKey.
func (d *MemDriver) Put(key string, data []byte) error {
	if err := d.memKey("put", key); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("mem: put: empty key: %w", ErrBadKey)
	}
	d.commit(key, bytes.Clone(data))
	return nil
}

// commit makes data, which the caller no longer modifies, the object at key.
func (d *MemDriver) commit(key string, data []byte) {
	if data == nil {
		data = []byte{}
	}
	o := &memObject{data: data, md5: md5.Sum(data), mod: time.Now()}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	o.gen = d.gen
	d.objs[key] = o
}

// lookup returns the object at key or an error wrapping ErrNotExist.
func (d *MemDriver) lookup(ctx context.Context, op, key string) (*memObject, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.memKey(op, key); err != nil {
		return nil, err
	}
	d.mu.RLock()
	o, ok := d.objs[key]
	d.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("mem: %s %q: %w", op, key, ErrNotExist)
	}
	return o, nil
}

func (o *memObject) info(key string) ObjectInfo {
	return ObjectInfo{
		Key:     key,
		Size:    int64(len(o.data)),
		ETag:    hex.EncodeToString(o.md5[:]),
		MD5:     bytes.Clone(o.md5[:]),
		ModTime: o.mod,
		Version: strconv.FormatInt(o.gen, 10),
	}
}

// Stat implements Driver.
func (d *MemDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	o, err := d.lookup(ctx, "stat", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return o.info(key), nil
}

// List implements Driver. It lists a snapshot taken when it is called, so
// fn may write to or delete from the driver.
func (d *MemDriver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var infos []ObjectInfo
	seen := map[string]bool{}
	d.mu.RLock()
	for k, o := range d.objs {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				dk := k[:len(prefix)+i+len(delim)]
				if !seen[dk] {
					seen[dk] = true
					infos = append(infos, ObjectInfo{Key: dk, Size: -1, IsDir: true})
				}
				continue
			}
		}
		infos = append(infos, o.info(k))
	}
	d.mu.RUnlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, oi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

// ReadRange implements Driver. The reader has the Size method local file
// readers have, and fails once ctx is canceled, as a network body would.
func (d *MemDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	o, err := d.lookup(ctx, "read", key)
	if err != nil {
		return nil, err
	}
	size := int64(len(o.data))
	if off < 0 || off > size {
		return nil, fmt.Errorf("mem: read %q: range start %d outside size %d: %w", key, off, size, io.ErrUnexpectedEOF)
	}
	if n < 0 {
		n = size - off
	} else if n > size-off {
		return nil, fmt.Errorf("mem: read %q: range [%d,+%d) beyond size %d: %w", key, off, n, size, io.ErrUnexpectedEOF)
	}
	return &memReader{SectionReader: io.NewSectionReader(bytes.NewReader(o.data), off, n), ctx: ctx}, nil
}

// memReader is a section of an object that stops at a canceled context.
type memReader struct {
	*io.SectionReader
	ctx context.Context
}

func (r *memReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.SectionReader.Read(p)
}

func (r *memReader) ReadAt(p []byte, off int64) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.SectionReader.ReadAt(p, off)
}

func (r *memReader) Close() error { return nil }

// NewWriter implements WriterDriver: the bytes are buffered and become the
// object when the writer is closed.
func (d *MemDriver) NewWriter(ctx context.Context, key string) (AtomicWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.memKey("write", key); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("mem: write: empty key: %w", ErrBadKey)
	}
	return &memWriter{d: d, ctx: ctx, key: key}, nil
}

type memWriter struct {
	d    *MemDriver
	ctx  context.Context
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("mem: write %q: writer already closed", w.key)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("mem: write %q: %w", w.key, err)
	}
	return w.buf.Write(p)
}

// Close commits the object, unless the writer's context was canceled, in
// which case nothing is stored (as when a local temporary file is not
// renamed).
func (w *memWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("mem: write %q: %w", w.key, err)
	}
	w.d.commit(w.key, w.buf.Bytes())
	return nil
}

func (w *memWriter) Abort() error {
	if !w.done {
		w.done = true
		w.buf = bytes.Buffer{}
	}
	return nil
}

// Delete implements DeleterDriver; a missing key is an error wrapping
// ErrNotExist, as it is for local files.
func (d *MemDriver) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.memKey("delete", key); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.objs[key]; !ok {
		return fmt.Errorf("mem: delete %q: %w", key, ErrNotExist)
	}
	delete(d.objs, key)
	return nil
}
