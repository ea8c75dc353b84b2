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
	return nil, fmt.Errorf("%s %q: %w", st, key, ErrUnknown)
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
