// Package format connects file and store formats to the volume seam: it detects
// what an object is and opens it as arrays. Each format lives in its own
// subpackage (format/tiff, format/dm, format/zarr, format/n5, format/precomputed)
// and reads bytes only through a store.Store; this package names none of them
// (the registry of all formats is assembled in format/all).
package format

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// ErrNotSupported is wrapped when a format (or a feature of one) is recognised
// but cannot be read yet; the catalog reports it as "not yet supported".
var ErrNotSupported = errors.New("not yet supported")

// ErrCorrupt is wrapped by every format when an object's bytes contradict its
// format: a truncated file, an offset or chunk past the end, a malformed header.
// It is store.ErrCorrupt, so every retry layer classifies it as permanent and the
// catalog reports the array as corrupt rather than as a transport failure.
var ErrCorrupt = store.ErrCorrupt

// ErrUnknown is wrapped when no format recognises an object.
var ErrUnknown = errors.New("unknown format")

// HeadSize is how many leading bytes Detect is given.
const HeadSize = 512

// Format is implemented by each format subpackage.
type Format interface {
	// Name is the short name reported in the catalog ("tiff", "dm", "zarr", ...).
	Name() string
	// Detect reports whether key is this format. head holds up to HeadSize leading
	// bytes of the object, or is nil when key is not a readable object (a
	// directory-like prefix of a chunked store); such formats may Stat their
	// marker objects (".zarray", "zarr.json", "attributes.json", "info") through st.
	Detect(ctx context.Context, st *store.Store, key string, head []byte) bool
	// Open reads the metadata of key and returns every real array in it, lazily:
	// pixel data is read only by ReadRegion.
	Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error)
}

// StoreLayout is implemented by formats whose data is a directory-like store
// (many objects under one prefix) rather than one object. The registry finds
// it by type assertion, so that "is this a store?" has one answer, made of
// what each format knows of itself, while this package names no format.
type StoreLayout interface {
	// StoreSuffixes lists lower-case directory-name suffixes that name a
	// store root by convention (".zarr"), with or without its metadata.
	StoreSuffixes() []string
	// StoreMarkers lists the base names of the metadata objects a directory
	// of this format's store holds (".zarray", "attributes.json", "info").
	// A marker only nominates a directory: Detect confirms it, since some
	// names ("info") are common words.
	StoreMarkers() []string
}

// Registry holds the formats the tool knows, in detection order.
type Registry struct {
	formats []Format
}

// NewRegistry builds a registry; earlier formats win detection ties.
func NewRegistry(fs ...Format) *Registry { return &Registry{formats: fs} }

// Formats lists the registered formats.
func (r *Registry) Formats() []Format { return r.formats }

// Detect finds the format of key.
func (r *Registry) Detect(ctx context.Context, st *store.Store, key string) (Format, error) {
	head, err := readHead(ctx, st, key)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}
	if looksLikeHTML(head) {
		// A web server answers a directory prefix with an index page: that is
		// not an object, so let the chunked-store formats probe their markers.
		head = nil
	}
	for _, f := range r.formats {
		if f.Detect(ctx, st, key, head) {
			return f, nil
		}
	}
	return nil, r.unknown(ctx, st, key, head, err)
}

// unknown says why nothing recognised key, naming the cause a person can act
// on: no such object (the server's own answer, e.g. an HTTP 404 and its URL),
// an empty file, an empty folder, or content no format reads. The error
// wraps ErrUnknown, and store.ErrNotExist when the object does not exist.
func (r *Registry) unknown(ctx context.Context, st *store.Store, key string, head []byte, statErr error) error {
	switch {
	case statErr == nil && len(head) == 0:
		return fmt.Errorf("%s %q: empty file (0 bytes): %w", st, key, ErrUnknown)
	case statErr == nil:
		return fmt.Errorf("%s %q: %w", st, key, ErrUnknown)
	}
	prefix := strings.TrimSuffix(key, "/")
	if prefix != "" {
		prefix += "/"
	}
	found := false
	stop := errors.New("found")
	if err := st.List(ctx, prefix, "", func(store.ObjectInfo) error { found = true; return stop }); err != nil && !errors.Is(err, stop) {
		found = false
	}
	switch {
	case found:
		return fmt.Errorf("%s %q: a folder no format recognises: %w", st, key, ErrUnknown)
	case key == "" || strings.HasSuffix(key, "/"):
		return fmt.Errorf("%s %q: empty folder, nothing to read: %w", st, key, ErrUnknown)
	}
	return fmt.Errorf("%w (%w)", statErr, ErrUnknown)
}

// IsStoreMarker reports whether name (a base name) is the metadata object of a
// store format, the kind of object a download filter must never drop: a store
// without its metadata is unreadable.
func (r *Registry) IsStoreMarker(name string) bool {
	for _, f := range r.formats {
		if l, ok := f.(StoreLayout); ok && matchName(l.StoreMarkers(), name, false) {
			return true
		}
	}
	return false
}

// HasStoreName reports whether the last segment of key names a store root by
// a store format's suffix (".zarr", ".n5"), which needs no I/O: the answer for
// a URL that cannot be listed.
func (r *Registry) HasStoreName(key string) bool {
	name := strings.ToLower(path.Base(strings.TrimSuffix(key, "/")))
	for _, f := range r.formats {
		if l, ok := f.(StoreLayout); ok && matchName(l.StoreSuffixes(), name, true) {
			return true
		}
	}
	return false
}

// IsStore reports whether key, a directory-like prefix of st, is a store that
// a format opens as one unit: its name has a store suffix, or it holds a store
// format's marker object and that format's Detect confirms it. Only a cancelled
// ctx makes the answer unreliable; other read errors mean "not a store".
func (r *Registry) IsStore(ctx context.Context, st *store.Store, key string) bool {
	key = strings.Trim(key, "/")
	if key != "" && r.HasStoreName(key) {
		return true
	}
	for _, f := range r.formats {
		l, ok := f.(StoreLayout)
		if !ok {
			continue
		}
		for _, m := range l.StoreMarkers() {
			if _, err := st.Stat(ctx, path.Join(key, m)); err == nil {
				if f.Detect(ctx, st, key, nil) {
					return true
				}
				break // the other markers nominate the same format
			}
		}
	}
	return false
}

// StoreRoot returns the outermost directory above key (its parent or higher,
// never the root of st itself) that IsStore, and "" when key is a plain object
// outside any store. known caches answers per directory across calls; a caller
// placing many keys of one tree passes the same map (nil: no cache).
func (r *Registry) StoreRoot(ctx context.Context, st *store.Store, key string, known map[string]bool) string {
	segs := strings.Split(strings.Trim(key, "/"), "/")
	for i := 1; i < len(segs); i++ {
		dir := strings.Join(segs[:i], "/")
		is, seen := known[dir]
		if !seen {
			is = r.IsStore(ctx, st, dir)
			if known != nil {
				known[dir] = is
			}
		}
		if is {
			return dir
		}
	}
	return ""
}

// matchName reports whether name equals one of list or, with suffix, ends in
// one of them. Markers are compared as given (object names are case-sensitive);
// HasStoreName lowers a directory name before comparing it to suffixes.
func matchName(list []string, name string, suffix bool) bool {
	for _, s := range list {
		if name == s || suffix && strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// Open detects and opens key.
func (r *Registry) Open(ctx context.Context, st *store.Store, key string) (Format, []volume.Volume, error) {
	f, err := r.Detect(ctx, st, key)
	if err != nil {
		return nil, nil, err
	}
	vs, err := f.Open(ctx, st, key)
	return f, vs, err
}

func readHead(ctx context.Context, st *store.Store, key string) ([]byte, error) {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	n := int64(HeadSize)
	if info.Size >= 0 && info.Size < n {
		n = info.Size
	}
	if n == 0 {
		return []byte{}, nil
	}
	rc, err := st.ReadRange(ctx, key, 0, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// looksLikeHTML reports whether head is an HTML page (no image format starts with "<").
func looksLikeHTML(head []byte) bool {
	h := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")
	if len(h) == 0 || h[0] != '<' {
		return false
	}
	l := bytes.ToLower(h[:min(len(h), 64)])
	return bytes.HasPrefix(l, []byte("<!doctype html")) || bytes.HasPrefix(l, []byte("<html")) || bytes.HasPrefix(l, []byte("<head")) || bytes.HasPrefix(l, []byte("<pre"))
}
