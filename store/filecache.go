package store

import (
	"container/list"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// fileHandleCacheSize bounds the idle read-only handles one FileDriver keeps
// open. Handles in use by readers are never closed early, so the number of
// open descriptors can exceed it by the number of readers in flight.
const fileHandleCacheSize = 64

// fileHandleIdle is how long an unused handle stays open. The cache exists for
// bursts of reads (a header parse, a slab of strips), which re-use a handle
// within microseconds; closing soon after bounds the descriptors held by
// drivers that are dropped without Close, however rarely the GC runs, and a
// re-open after a pause costs three system calls.
const fileHandleIdle = 250 * time.Millisecond

// fileHandles caches open read-only files by path, so that the many small
// range reads of a header parse cost one stat and one pread each instead of
// open, fstat, pread and close.
//
// A cached handle is used only while the path still names the file it was
// opened on: every acquire stats the path and compares device and inode with
// the handle's (os.SameFile). That check is exact, because the open handle
// keeps its inode alive, so the inode number cannot be reused by another file
// while the handle is cached. A file replaced by rename (as FileDriver's own
// writers do) or deleted and re-created is therefore always re-opened; a file
// rewritten in place keeps its inode, and the shared handle reads its current
// bytes just as a fresh open would. The size used for range checks always
// comes from the fresh stat, never from the cache.
type fileHandles struct {
	mu     sync.Mutex
	max    int
	idle   time.Duration
	byPath map[string]*fileHandle
	lru    list.List   // of *fileHandle, most recently used first
	closed bool        // after Close nothing more is cached
	timer  *time.Timer // runs sweep; it refers to the cache, not the driver
	armed  bool        // timer pending
	// verify, when set, vets every newly opened file before it is used or
	// cached (FileDriver refuses files whose real path leaves its root).
	// A cached handle needs no new check: acquire re-opens whenever the path
	// no longer names the handle's file.
	verify func(f *os.File, path string) error
}

// fileHandle is one open file, shared by every reader of its path.
type fileHandle struct {
	f    *os.File
	fi   os.FileInfo // at open: the identity compared by os.SameFile
	path string
	refs int           // readers holding f
	used time.Time     // last acquire or release
	gone bool          // out of the cache: close f when refs reaches 0
	el   *list.Element // in lru while cached
}

func newFileHandles(max int, idle time.Duration) *fileHandles {
	return &fileHandles{max: max, idle: idle, byPath: map[string]*fileHandle{}}
}

// acquire returns a handle on path with one reference taken, and the path's
// current FileInfo. For a directory it returns a nil handle (nothing is kept
// open) and the directory's FileInfo. c may be nil: the handle is then private
// and closed by its release.
func (c *fileHandles) acquire(path string) (*fileHandle, os.FileInfo, error) {
	if c != nil {
		c.mu.Lock()
		h := c.byPath[path]
		if h != nil {
			h.refs++
			h.used = time.Now()
			c.lru.MoveToFront(h.el)
		}
		c.mu.Unlock()
		if h != nil {
			fi, err := os.Stat(path)
			if err == nil && os.SameFile(fi, h.fi) {
				return h, fi, nil
			}
			// Replaced or removed since it was opened: never serve it again.
			c.forget(h)
			c.release(h)
			if err != nil {
				return nil, nil, err
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, fi, nil
	}
	if c != nil && c.verify != nil {
		if err := c.verify(f, path); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	h := &fileHandle{f: f, fi: fi, path: path, refs: 1, gone: true}
	if c == nil {
		return h, fi, nil
	}
	var stale []*os.File
	c.mu.Lock()
	if !c.closed {
		if old := c.byPath[path]; old != nil {
			// A concurrent miss opened it too; the newer handle wins.
			stale = c.removeLocked(old, stale)
		}
		h.gone = false
		h.used = time.Now()
		h.el = c.lru.PushFront(h)
		c.byPath[path] = h
		for c.lru.Len() > c.max {
			stale = c.removeLocked(c.lru.Back().Value.(*fileHandle), stale)
		}
		c.armLocked()
	}
	c.mu.Unlock()
	closeAll(stale)
	return h, fi, nil
}

// release drops one reference, closing the file if it has left the cache.
func (c *fileHandles) release(h *fileHandle) {
	if c == nil {
		h.f.Close()
		return
	}
	c.mu.Lock()
	h.refs--
	h.used = time.Now()
	last := h.refs == 0 && h.gone
	c.mu.Unlock()
	if last {
		h.f.Close()
	}
}

// forget removes h from the cache if it is still the entry for its path.
func (c *fileHandles) forget(h *fileHandle) {
	c.mu.Lock()
	var stale []*os.File
	if c.byPath[h.path] == h {
		stale = c.removeLocked(h, nil)
	}
	c.mu.Unlock()
	closeAll(stale)
}

// invalidate closes (or, when in use, marks for closing) the handle of path,
// after the driver itself replaced or removed the file.
func (c *fileHandles) invalidate(path string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	var stale []*os.File
	if h := c.byPath[path]; h != nil {
		stale = c.removeLocked(h, nil)
	}
	c.mu.Unlock()
	closeAll(stale)
}

// armLocked schedules a sweep unless one is pending. c.mu must be held.
func (c *fileHandles) armLocked() {
	if c.armed || c.closed {
		return
	}
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(c.idle, c.sweep)
	} else {
		c.timer.Reset(c.idle)
	}
}

// sweep closes handles unused for c.idle, and re-arms while any stay cached.
func (c *fileHandles) sweep() {
	c.mu.Lock()
	c.armed = false
	now := time.Now()
	var stale []*os.File
	for e := c.lru.Back(); e != nil; {
		prev := e.Prev()
		if h := e.Value.(*fileHandle); h.refs == 0 && now.Sub(h.used) >= c.idle {
			stale = c.removeLocked(h, stale)
		}
		e = prev
	}
	if c.lru.Len() > 0 {
		c.armLocked()
	}
	c.mu.Unlock()
	closeAll(stale)
}

// close empties the cache for good; handles in use close on their release.
func (c *fileHandles) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	var stale []*os.File
	for c.lru.Len() > 0 {
		stale = c.removeLocked(c.lru.Front().Value.(*fileHandle), stale)
	}
	c.mu.Unlock()
	return closeAll(stale)
}

// removeLocked takes h out of the cache and appends its file to stale when no
// reader holds it. c.mu must be held.
func (c *fileHandles) removeLocked(h *fileHandle, stale []*os.File) []*os.File {
	delete(c.byPath, h.path)
	c.lru.Remove(h.el)
	h.el = nil
	h.gone = true
	if h.refs == 0 {
		stale = append(stale, h.f)
	}
	return stale
}

// size reports how many handles are cached, for tests.
func (c *fileHandles) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func closeAll(fs []*os.File) error {
	var errs []error
	for _, f := range fs {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handleSection is the reader ReadRange returns: a section of a shared handle.
// ReadAt on an *os.File is pread, so readers of one handle do not interfere.
type handleSection struct {
	*io.SectionReader
	c *fileHandles
	h *fileHandle
}

// Close releases the handle; a second Close is a no-op.
func (s *handleSection) Close() error {
	if s.h != nil {
		s.c.release(s.h)
		s.h = nil
	}
	return nil
}
