package dm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/imgdataset/imgdataset/store"
)

// Window sizes of the tag-tree reader: small first (a tiny file costs one small
// request), doubling while the walk stays sequential.
const (
	minWindow = 64 << 10
	maxWindow = 1 << 20
)

// rangeReader reads a store object front to back through one window of
// buffered bytes. Skipping (over pixel data) only moves the position, so the
// skipped bytes are never fetched; the next read fetches a new window there.
type rangeReader struct {
	ctx      context.Context
	st       *store.Store
	key      string
	size     int64 // -1 when unknown
	pos      int64
	buf      []byte // bytes [bufStart, bufStart+len(buf))
	bufStart int64
	window   int
	requests int
}

func newRangeReader(ctx context.Context, st *store.Store, key string, size int64) *rangeReader {
	return &rangeReader{ctx: ctx, st: st, key: key, size: size, window: minWindow}
}

// Close releases the buffer.
func (r *rangeReader) Close() { r.buf = nil }

// fits checks that n more bytes exist after the position.
func (r *rangeReader) fits(n uint64) error {
	limit := uint64(math.MaxInt64 - r.pos)
	if r.size >= 0 {
		limit = uint64(max(r.size-r.pos, 0))
	}
	if n > limit {
		return fmt.Errorf("%w: %d bytes declared at offset %d, %d left: %w", ErrFormat, n, r.pos, limit, io.ErrUnexpectedEOF)
	}
	return nil
}

// skip moves past n bytes without reading them.
func (r *rangeReader) skip(n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: negative skip", ErrFormat)
	}
	if err := r.fits(uint64(n)); err != nil {
		return err
	}
	r.pos += n
	return nil
}

// seek moves to an absolute offset.
func (r *rangeReader) seek(off int64) error {
	if off < 0 || (r.size >= 0 && off > r.size) {
		return fmt.Errorf("%w: offset %d outside the object", ErrFormat, off)
	}
	r.pos = off
	return nil
}

// read returns the next n bytes; the slice is valid until the next call.
func (r *rangeReader) read(n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: negative read", ErrFormat)
	}
	if err := r.fits(uint64(n)); err != nil {
		return nil, err
	}
	end := r.pos + int64(n)
	if r.pos < r.bufStart || end > r.bufStart+int64(len(r.buf)) {
		if err := r.load(n); err != nil {
			return nil, err
		}
	}
	i := r.pos - r.bufStart
	r.pos = end
	return r.buf[i : i+int64(n)], nil
}

// load refills the window so that it starts at pos and holds at least n bytes,
// keeping bytes already buffered past pos.
func (r *rangeReader) load(n int) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	var keep []byte
	if bufEnd := r.bufStart + int64(len(r.buf)); r.requests > 0 && r.pos >= r.bufStart && r.pos <= bufEnd {
		keep = r.buf[r.pos-r.bufStart:]
		r.window = min(r.window*2, maxWindow)
	} else if r.requests > 0 {
		r.window = minWindow // a jump: the next region may be small
	}
	want := int64(max(n, r.window))
	from := r.pos + int64(len(keep))
	get := want - int64(len(keep))
	if r.size >= 0 {
		get = min(get, r.size-from)
	}
	nb := make([]byte, len(keep), int64(len(keep))+max(get, 0))
	copy(nb, keep)
	if get > 0 {
		r.requests++
		got, err := r.fetch(from, get)
		if err != nil {
			return err
		}
		nb = append(nb, got...)
	}
	r.buf, r.bufStart = nb, r.pos
	if len(r.buf) < n {
		return fmt.Errorf("%w: %q ends at %d, wanted %d bytes at %d: %w", ErrFormat, r.key, r.bufStart+int64(len(r.buf)), n, r.pos, io.ErrUnexpectedEOF)
	}
	return nil
}

// fetch reads up to n bytes at off. With an unknown object size a short
// result at the end of the object is not an error.
func (r *rangeReader) fetch(off, n int64) ([]byte, error) {
	if r.size >= 0 {
		b := make([]byte, n)
		if err := r.st.ReadAt(r.ctx, r.key, b, off); err != nil {
			return nil, err
		}
		return b, nil
	}
	rc, err := r.st.ReadRange(r.ctx, r.key, off, -1)
	if err != nil {
		var he *store.HTTPError
		if errors.As(err, &he) && he.Status == http.StatusRequestedRangeNotSatisfiable {
			// The server says the object ends before off: a skip over
			// pixel data went past the end of a cut file.
			return nil, fmt.Errorf("%w: %q ends before offset %d: %w", ErrFormat, r.key, off, err)
		}
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, n))
	if err != nil {
		return nil, fmt.Errorf("read %q at %d: %w", r.key, off, err)
	}
	return b, nil
}
