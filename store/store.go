// Package store gives every part of imgdataset one way to reach bytes, wherever they live:
// a local directory, an HTTP(S) server, an S3 bucket or a GCS bucket.
//
// A Store is a small portable type over a Driver. Drivers implement only the narrow
// required interface (Stat, List, ReadRange); extras such as writing are optional
// interfaces discovered by type assertion, in the style of rclone. Keys are always
// slash-separated and relative to the store's root; they never start with "/" and
// never contain "." or ".." segments, so a hostile listing cannot name an object
// outside the root.
//
// The store layer knows nothing of formats or arrays: it moves bytes.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// ErrNotExist is wrapped by every driver error that means "no such object".
var ErrNotExist = errors.New("object does not exist")

// ErrNotSupported is returned when a driver lacks an optional capability.
var ErrNotSupported = errors.New("operation not supported by this store")

// ErrTooLarge is returned by ReadAll when an object exceeds the caller's limit.
var ErrTooLarge = errors.New("object larger than allowed")

// ErrCorrupt is wrapped when bytes contradict what they claim to be: a checksum
// mismatch, an object shorter than its header says, a structure that points past
// the end. It is permanent: a retry would read the same bytes.
var ErrCorrupt = errors.New("corrupt data")

// ObjectInfo describes one object. Zero values mean "the server did not say".
type ObjectInfo struct {
	Key     string    // relative to the store root
	Size    int64     // -1 when unknown
	ETag    string    // opaque, quotes stripped
	MD5     []byte    // raw 16 bytes when the server gave a content MD5
	CRC32C  uint32    // valid only when HasCRC32C
	HasCRC  bool      // true when CRC32C is set
	ModTime time.Time // zero when unknown
	// ContentEncoding is the stored encoding (e.g. "gzip" for GCS objects uploaded
	// pre-compressed); readers of such objects must be ready to see either form.
	ContentEncoding string
	// Version is a generation or version id that changes when the object does.
	Version string
	IsDir   bool // a common prefix in a delimited listing
}

// Driver is the minimal contract every backend implements.
type Driver interface {
	// Stat returns the object's metadata or an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for every object whose key starts with prefix, in lexical
	// order. When delim is non-empty, keys are grouped at the first delim after
	// the prefix and each group is reported once with IsDir set.
	List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error
	// ReadRange opens the byte range [off, off+n) of key; n < 0 means to the end.
	// The reader must deliver exactly the requested bytes or fail: a short body
	// is an error (io.ErrUnexpectedEOF), never silent truncation.
	ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// String names the root, for error messages.
	String() string
}

// WriterDriver is an optional interface for stores that can hold outputs
// (the local file driver). Writers are atomic: nothing appears under key until
// Close succeeds, and an aborted writer leaves nothing behind.
type WriterDriver interface {
	NewWriter(ctx context.Context, key string) (AtomicWriter, error)
}

// DeleterDriver is an optional interface for removing objects.
type DeleterDriver interface {
	Delete(ctx context.Context, key string) error
}

// InfoReader is implemented by readers that ReadRange returns when the answer
// itself described the object (HTTP, S3 and GCS responses carry its size, ETag
// and hashes). A whole-object download then needs no Stat beforehand: the
// metadata arrives with the bytes, from the same response.
type InfoReader interface {
	// ObjectInfo is the object as the response described it; Key is empty and
	// Size is the whole object's size (-1 when the response did not say).
	ObjectInfo() ObjectInfo
}

// URLDriver is an optional interface for drivers that can tell the public URL of a key.
type URLDriver interface {
	URL(key string) string
}

// HostInfo is an optional interface for drivers whose objects live on a
// network server: it tells whoever schedules requests (the transfer engine)
// what the server is, so that nobody has to guess it from URLs.
type HostInfo interface {
	Host() Host
}

// Host describes the server behind a store.
type Host struct {
	// Name identifies the server: the lower-case host[:port] requests go to.
	// Stores with the same Name share one per-host limit.
	Name string
	// ObjectStore is set for cloud object stores (S3, GCS and compatible
	// servers), which are built for many parallel requests.
	ObjectStore bool
	// Parallel is how many requests to keep in flight to the server unless
	// the user says otherwise.
	Parallel int
	// ETagIsMD5 is set when a plain 32-hex ETag is the MD5 of the content
	// (S3: single-part uploads; a multipart ETag has a "-N" suffix).
	ETagIsMD5 bool
}

// Default requests in flight per server (Host.Parallel).
const (
	// ParallelWeb suits plain web servers and local disks.
	ParallelWeb = 16
	// ParallelObjectStore suits S3 and GCS: a zarr store's small chunks need
	// many requests in flight to hide the latency.
	ParallelObjectStore = 64
)

// Unwrapper is implemented by driver decorators (retries, fault injection):
// Unwrap returns the driver they decorate. A decorator implements only the
// Driver methods and the optional interfaces whose meaning it changes; As
// finds the others further down the chain, so a decorator never claims a
// capability the driver under it lacks.
type Unwrapper interface {
	Unwrap() Driver
}

// As finds the first driver of d's decorator chain (d, then what each Unwrap
// returns) that implements T, in the style of errors.As. Callers reach the
// optional interfaces (WriterDriver, URLDriver, HostInfo, io.Closer) through
// it, never by a type assertion on the outermost driver.
func As[T any](d Driver) (T, bool) {
	for d != nil {
		if t, ok := d.(T); ok {
			return t, true
		}
		u, ok := d.(Unwrapper)
		if !ok {
			break
		}
		d = u.Unwrap()
	}
	var zero T
	return zero, false
}

// AtomicWriter receives an object's bytes. Close commits (fsync + rename);
// Abort discards. Calling Abort after Close is a no-op, so `defer w.Abort()` is safe.
type AtomicWriter interface {
	io.Writer
	Close() error
	Abort() error
}

// Store is the portable handle every other package uses.
type Store struct {
	d Driver
}

// New wraps a driver.
func New(d Driver) *Store { return &Store{d: d} }

// Driver returns the outermost driver; its optional interfaces are reached
// with As, which looks through decorators.
func (s *Store) Driver() Driver { return s.d }

// String names the store root.
func (s *Store) String() string { return s.d.String() }

// Host describes the server behind the store (see HostInfo). Drivers that do
// not say (local files, archives) count as one local server with the web
// default.
func (s *Store) Host() Host {
	if h, ok := As[HostInfo](s.d); ok {
		return h.Host()
	}
	return Host{Name: "local", Parallel: ParallelWeb}
}

// Close releases what the driver holds: the file driver's cache of open
// handles, the idle keep-alive connections of a remote driver's HTTP client.
// Whoever opened the store closes it, once nothing reads from it any more.
func (s *Store) Close() error {
	if c, ok := As[io.Closer](s.d); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("store %s: close: %w", s.d, err)
		}
	}
	return nil
}

// Stat returns metadata of key.
func (s *Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	k, err := CleanKey(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return s.d.Stat(ctx, k)
}

// List walks objects under prefix (see Driver.List).
func (s *Store) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	p := prefix
	if p != "" {
		trail := strings.HasSuffix(p, "/")
		k, err := CleanKey(p)
		if err != nil {
			return err
		}
		p = k
		if trail {
			p += "/"
		}
	}
	return s.d.List(ctx, p, delim, fn)
}

// ReadRange opens [off, off+n) of key; n < 0 reads to the end.
func (s *Store) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	k, err := CleanKey(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("store %s: read %q: negative offset %d", s.d, key, off)
	}
	if n == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return s.d.ReadRange(ctx, k, off, n)
}

// ReadAt reads exactly len(p) bytes at off.
func (s *Store) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	rc, err := s.ReadRange(ctx, key, off, int64(len(p)))
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, p); err != nil {
		return fmt.Errorf("store %s: read %q [%d,+%d): %w", s.d, key, off, len(p), err)
	}
	return nil
}

// ReadAll reads a whole object, refusing objects larger than limit bytes so that
// a lying server or a hostile file cannot exhaust memory.
func (s *Store) ReadAll(ctx context.Context, key string, limit int64) ([]byte, error) {
	return s.ReadAllInto(ctx, key, limit, nil)
}

// ReadAllInto is ReadAll reusing buf's capacity (a pooled chunk buffer): the
// result shares buf's memory when it fits and is newly allocated otherwise.
// A known size (local files) is read into one exact buffer; a streamed body
// grows the buffer as it comes, never past limit+1 bytes.
func (s *Store) ReadAllInto(ctx context.Context, key string, limit int64, buf []byte) ([]byte, error) {
	rc, err := s.ReadRange(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tooLarge := func() error {
		return fmt.Errorf("store %s: read %q: %w (limit %d bytes)", s.d, key, ErrTooLarge, limit)
	}
	b := buf[:0]
	if sz, ok := rc.(interface{ Size() int64 }); ok && sz.Size() >= 0 {
		n := sz.Size()
		if n > limit {
			return nil, tooLarge()
		}
		if int64(cap(b)) < n {
			b = make([]byte, n)
		}
		b = b[:n]
		if _, err := io.ReadFull(rc, b); err != nil {
			return nil, fmt.Errorf("store %s: read %q: %w", s.d, key, err)
		}
		return b, nil
	}
	for int64(len(b)) <= limit {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), int(min(limit+1, int64(max(2*cap(b), 32<<10)))))
			copy(nb, b)
			b = nb
		}
		m, err := rc.Read(b[len(b):min(cap(b), int(limit)+1)])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("store %s: read %q: %w", s.d, key, err)
		}
	}
	if int64(len(b)) > limit {
		return nil, tooLarge()
	}
	return b, nil
}

// NewWriter opens an atomic writer when the driver supports writing.
func (s *Store) NewWriter(ctx context.Context, key string) (AtomicWriter, error) {
	k, err := CleanKey(key)
	if err != nil {
		return nil, err
	}
	w, ok := As[WriterDriver](s.d)
	if !ok {
		return nil, fmt.Errorf("store %s: write %q: %w", s.d, key, ErrNotSupported)
	}
	return w.NewWriter(ctx, k)
}

// WriteAll writes b to key atomically.
func (s *Store) WriteAll(ctx context.Context, key string, b []byte) error {
	w, err := s.NewWriter(ctx, key)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Close()
}

// Delete removes key when the driver supports it.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := CleanKey(key)
	if err != nil {
		return err
	}
	d, ok := As[DeleterDriver](s.d)
	if !ok {
		return fmt.Errorf("store %s: delete %q: %w", s.d, key, ErrNotSupported)
	}
	return d.Delete(ctx, k)
}

// ErrBadKey is wrapped when a key is unsafe (absolute, "..", empty segment tricks).
var ErrBadKey = errors.New("unsafe object key")

// CleanKey validates and normalises a key: backslashes are separators, a leading
// "./" is dropped, and absolute keys or keys with ".." segments are rejected,
// because a key is later joined to an output directory.
func CleanKey(key string) (string, error) {
	k := strings.ReplaceAll(key, "\\", "/")
	if strings.HasPrefix(k, "/") || (len(k) >= 2 && k[1] == ':') {
		return "", fmt.Errorf("%w: %q is absolute", ErrBadKey, key)
	}
	if strings.ContainsRune(k, 0) {
		return "", fmt.Errorf("%w: %q contains NUL", ErrBadKey, key)
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: %q escapes its root", ErrBadKey, key)
		}
	}
	c := path.Clean(k)
	if c == "." {
		c = ""
	}
	return c, nil
}
