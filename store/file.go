package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// ErrOutsideRoot says a key names a file whose real path, symlinks resolved,
// is not inside the driver's root. It is a permission error: the file exists
// but this driver will not show it.
var ErrOutsideRoot = fmt.Errorf("resolves outside the root: %w", fs.ErrPermission)

// FileDriver serves a local directory (or a single file when the root is a file).
// It is the only built-in driver that can write, because outputs are always local.
//
// Symlinks below the root are followed only while they stay inside it: a
// read (Stat, ReadRange) of a key whose real path leaves the root's real path
// fails with ErrOutsideRoot, so `leak.zarr/0 -> /etc/passwd` is never read. A
// link from one place in the tree to another is followed, because datasets use
// such links to share files between versions. List reports regular files
// only, never links.
//
// Reads share a small cache of open read-only handles (at most 64), so that
// the many small range reads of a header parse do not each open the file.
// Drivers may be long-lived (one per output directory or catalog run): a
// handle unused for 250 ms is closed, so a driver holds descriptors only
// while it is being read, and Close releases them at once. Whoever is done
// with a driver should still call Close.
type FileDriver struct {
	root    string
	handles *fileHandles
	// rootReal caches the root's real path after the first read resolved
	// it: resolving it again for every chunk of an array cost one lstat per
	// path component per read. Re-pointing a link in the root's own path
	// while the driver is open makes later reads fail as outside the root
	// (their real paths lead elsewhere); it never lets them escape.
	rootReal atomic.Pointer[string]
}

// NewFile returns a driver rooted at dir (or a single file). The root need not exist
// yet when the driver is used for writing.
func NewFile(root string) *FileDriver {
	// The containment checks compare with the absolute paths the kernel
	// reports for open files: a relative root would refuse every file.
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	d := &FileDriver{root: filepath.Clean(root), handles: newFileHandles(fileHandleCacheSize, fileHandleIdle)}
	d.handles.verify = d.openedInside
	return d
}

// Close closes the cached read handles. Readers still open keep working and
// close their handle when they are closed. The driver stays usable after Close,
// but reads then open and close the file each time. Close is idempotent.
func (d *FileDriver) Close() error { return d.handles.close() }

// String returns the root path.
func (d *FileDriver) String() string { return d.root }

// Root returns the local root path.
func (d *FileDriver) Root() string { return d.root }

// path joins key to the root; CleanKey has already rejected escapes, and
// inside (reads) and checkInside (writes) refuse symlinks that point out of
// the root.
func (d *FileDriver) path(key string) string {
	if key == "" {
		return d.root
	}
	return filepath.Join(d.root, filepath.FromSlash(key))
}

func (d *FileDriver) wrapNotExist(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file %s: %q: %w", d.root, key, ErrNotExist)
	}
	return fmt.Errorf("file %s: %q: %w", d.root, key, err)
}

// inside returns ErrOutsideRoot when real, a path with every symlink
// resolved, is not the root's real path or below it. Its errors do not name
// the root or key: the caller wraps them once (wrapNotExist).
func (d *FileDriver) inside(real string) error {
	rootReal, err := d.realRoot()
	if err != nil {
		return err
	}
	// NewFile made the root absolute; real may still be relative when it
	// comes from a caller's path rather than the kernel.
	if real, err = filepath.Abs(real); err != nil {
		return err
	}
	rel, err := filepath.Rel(rootReal, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return ErrOutsideRoot
	}
	return nil
}

// realRoot is the root with every symlink resolved (see rootReal).
func (d *FileDriver) realRoot() (string, error) {
	if p := d.rootReal.Load(); p != nil {
		return *p, nil
	}
	r, err := filepath.EvalSymlinks(d.root)
	if err != nil {
		// Not cached: a root that does not exist yet may be created.
		return "", err
	}
	// Absolute once, so that inside's filepath.Abs costs no getwd per read.
	if r, err = filepath.Abs(r); err != nil {
		return "", err
	}
	d.rootReal.Store(&r)
	return r, nil
}

// openedInside is the handle cache's check of a newly opened file. On Linux
// it asks the kernel which file the descriptor really is, so a link swapped
// between resolving and opening cannot slip through; elsewhere it resolves
// the path again. ReadRange names the root and key in its errors.
func (d *FileDriver) openedInside(f *os.File, p string) error {
	if runtime.GOOS == "linux" {
		if real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); err == nil && filepath.IsAbs(real) {
			return d.inside(real)
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	return d.inside(real)
}

// Stat implements Driver.
func (d *FileDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	p := d.path(key)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ObjectInfo{}, d.wrapNotExist(key, err)
	}
	if err := d.inside(real); err != nil {
		return ObjectInfo{}, d.wrapNotExist(key, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return ObjectInfo{}, d.wrapNotExist(key, err)
	}
	if fi.IsDir() {
		return ObjectInfo{}, fmt.Errorf("file %s: %q is a directory: %w", d.root, key, ErrNotExist)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List implements Driver. Keys are reported in lexical order of their slash form.
func (d *FileDriver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	// Walk only the deepest directory fully named by the prefix.
	dir := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = prefix[:i]
	}
	base := d.path(dir)
	var infos []ObjectInfo
	seen := map[string]bool{}
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == base {
				return fs.SkipAll
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || strings.HasPrefix(filepath.Base(p), ".imgdataset-tmp-") {
			return nil
		}
		if delim != "" {
			rest := key[len(prefix):]
			if i := strings.Index(rest, delim); i >= 0 {
				dk := prefix + rest[:i+len(delim)]
				if !seen[dk] {
					seen[dk] = true
					infos = append(infos, ObjectInfo{Key: dk, Size: -1, IsDir: true})
				}
				return nil
			}
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		infos = append(infos, ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("file %s: list %q: %w", d.root, prefix, err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, oi := range infos {
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

// ReadRange implements Driver. The reader shares a cached handle of the file
// (see fileHandles for why a replaced file is never served); closing it
// releases the handle.
func (d *FileDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, fi, err := d.handles.acquire(d.path(key))
	if err != nil {
		return nil, d.wrapNotExist(key, err)
	}
	if h == nil {
		return nil, fmt.Errorf("file %s: %q is a directory: %w", d.root, key, ErrNotExist)
	}
	size := fi.Size()
	if off > size {
		d.handles.release(h)
		return nil, fmt.Errorf("file %s: %q: range start %d beyond size %d", d.root, key, off, size)
	}
	if n < 0 {
		n = size - off
	} else if off+n > size {
		d.handles.release(h)
		return nil, fmt.Errorf("file %s: %q: range [%d,+%d) beyond size %d: %w", d.root, key, off, n, size, io.ErrUnexpectedEOF)
	}
	return &handleSection{SectionReader: io.NewSectionReader(h.f, off, n), c: d.handles, h: h}, nil
}

// NewWriter implements WriterDriver: a temp file in the target directory, fsynced
// and renamed on Close.
func (d *FileDriver) NewWriter(ctx context.Context, key string) (AtomicWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("file %s: write: empty key: %w", d.root, ErrBadKey)
	}
	final := d.path(key)
	if err := d.checkInside(final); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("file %s: write %q: %w", d.root, key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".imgdataset-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("file %s: write %q: %w", d.root, key, err)
	}
	return &fileWriter{f: tmp, final: final, handles: d.handles}, nil
}

// checkInside refuses to write through a symlinked directory that leads out of the root.
func (d *FileDriver) checkInside(final string) error {
	rootReal, err := filepath.EvalSymlinks(d.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // root will be created; nothing can be linked yet
		}
		return err
	}
	// Resolve the deepest existing ancestor.
	p := filepath.Dir(final)
	for {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(rootReal, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("file %s: %q resolves outside the root: %w", d.root, final, ErrBadKey)
	}
	if fi, err := os.Lstat(final); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("file %s: %q is a symlink: %w", d.root, final, ErrBadKey)
	}
	return nil
}

type fileWriter struct {
	f       *os.File
	final   string
	done    bool
	handles *fileHandles // the driver's read handles, one of which may hold the replaced file
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *fileWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	name := w.f.Name()
	// CreateTemp makes 0600 files; outputs are ordinary shared data files.
	if err := w.f.Chmod(0o644); err != nil {
		w.f.Close()
		os.Remove(name)
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		os.Remove(name)
		return err
	}
	if err := w.f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, w.final); err != nil {
		os.Remove(name)
		return err
	}
	// Readers would notice the new inode anyway; this frees the old file now.
	w.handles.invalidate(w.final)
	return nil
}

func (w *fileWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// Delete implements DeleterDriver.
func (d *FileDriver) Delete(ctx context.Context, key string) error {
	p := d.path(key)
	err := os.Remove(p)
	// Close a cached handle even when Remove failed: the file may be gone anyway.
	d.handles.invalidate(p)
	if err != nil {
		return d.wrapNotExist(key, err)
	}
	return nil
}
