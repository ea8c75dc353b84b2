package serve

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/imgdataset/imgdataset/volume"
)

// decodeInFlight is how many storage chunks one ReadRegion may hold decoded
// at once: format/zarr decodes up to 32 concurrently, the other readers fewer.
const decodeInFlight = 32

// slabShare is the fraction of Options.Memory one request holds at a time
// (1/slabShare): several clients that stop reading cannot hold all of it
// before their write deadlines free it.
const slabShare = 8

// chunkLimit is the largest zarr view chunk: within MaxBytes, and small enough
// that a chunk, its padded edge copy and its decoding fit a request's share.
func (s *Server) chunkLimit() int64 {
	return max(16, min(s.opt.MaxBytes, s.opt.Memory/(2*slabShare)))
}

// plan is how one read of a box is done within a request's share of Memory:
// straight into the output buffer when the storage chunks it decodes fit,
// otherwise in tiles of at most tileChunks chunks (each read into a tile
// buffer and copied into place), so that a reader decoding many chunks at
// once (format/zarr: up to decodeInFlight) never holds more than that many.
type plan struct {
	reserve    int64 // bytes to reserve while reading: output, tile and decoding
	tileChunks int64 // chunks per tile along the last axis; 0 = no tiling
}

// chunkBytes is the size of one storage chunk of e, 0 when e has no chunk
// grid (the readers of unchunked files read a box straight from the file).
func chunkBytes(e *entry) int64 {
	c := e.in.Chunks
	if len(c) != len(e.in.Shape) || len(c) == 0 {
		return 0
	}
	b := int64(e.in.DType.Size())
	for _, v := range c {
		if v <= 0 {
			return 0
		}
		b = min(b*v, 1<<50)
	}
	return b
}

// touched is the number of storage chunks box meets.
func touched(box volume.Box, chunks []int64) int64 {
	t := int64(1)
	for i := range box.Start {
		if box.Stop[i] <= box.Start[i] {
			return 0
		}
		t = min(t*((box.Stop[i]-1)/chunks[i]-box.Start[i]/chunks[i]+1), 1<<50)
	}
	return t
}

// planRead decides how to read box of e into a buffer of out bytes. A decoded
// chunk is counted twice (compressed and decoded bytes), a tiled read also
// holds its tile buffer. The reservation is capped at the request's share:
// a volume whose single chunk does not fit it is under-counted (noted in
// docs/benchmarks.md) rather than left waiting for the whole budget, which
// would stall every request queued behind it.
func (s *Server) planRead(e *entry, box volume.Box, out int64) plan {
	share := s.opt.Memory / slabShare
	cb := chunkBytes(e)
	if cb == 0 {
		return plan{reserve: min(2*out, share)}
	}
	n := min(touched(box, e.in.Chunks), decodeInFlight)
	if out+2*n*cb <= share {
		return plan{reserve: out + 2*n*cb}
	}
	k := max(1, min(decodeInFlight, (share-out)/(3*cb)))
	return plan{reserve: min(out+3*k*cb, share), tileChunks: k}
}

// readBox reads box of e into dst as p says.
func readBox(ctx context.Context, e *entry, box volume.Box, dst []byte, p plan) error {
	if p.tileChunks == 0 {
		return e.vol.ReadRegion(ctx, box, dst)
	}
	c := e.in.Chunks
	n := len(box.Start)
	elem := e.in.DType.Size()
	// first/last chunk index of box along each axis; idx walks the grid
	// like an odometer, the last axis in steps of tileChunks.
	first, last := make([]int64, n), make([]int64, n)
	for i := range n {
		first[i], last[i] = box.Start[i]/c[i], (box.Stop[i]-1)/c[i]
	}
	idx := append([]int64(nil), first...)
	var tbuf []byte
	for {
		tile := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
		for i := range n {
			hi := idx[i] + 1
			if i == n-1 {
				hi = min(idx[i]+p.tileChunks, last[i]+1)
			}
			tile.Start[i] = max(box.Start[i], idx[i]*c[i])
			tile.Stop[i] = min(box.Stop[i], hi*c[i])
		}
		tb := tile.NumElements() * int64(elem)
		if int64(cap(tbuf)) < tb {
			tbuf = make([]byte, tb)
		}
		if err := e.vol.ReadRegion(ctx, tile, tbuf[:tb]); err != nil {
			return err
		}
		volume.CopyBox(dst, box, tbuf[:tb], tile, tile, elem)
		// Advance: the last axis by tileChunks, carrying leftwards.
		i := n - 1
		idx[i] += p.tileChunks
		for idx[i] > last[i] {
			if i == 0 {
				return nil
			}
			idx[i] = first[i]
			i--
			idx[i]++
		}
	}
}

// slabElems is the number of elements of one slab of a block: half a
// request's share of Memory, the other half being for its decoding.
func (s *Server) slabElems(e *entry) int64 {
	return max(1, s.opt.Memory/slabShare/2/int64(e.in.DType.Size()))
}

// forEachSlab calls fn with consecutive sub-boxes of box that together cover
// it in C order, each contiguous in the C-order output and of at most
// maxElems elements (at least one element, or one row when a row is less).
// Along the axis it splits, boundaries fall on the storage chunk grid when a
// whole chunk fits, so a chunk is decoded once per slab rather than once per
// plane.
func forEachSlab(box volume.Box, chunks []int64, maxElems int64, fn func(volume.Box) error) error {
	return slabsFrom(box, 0, chunks, max(maxElems, 1), fn)
}

func slabsFrom(box volume.Box, axis int, chunks []int64, maxElems int64, fn func(volume.Box) error) error {
	n := len(box.Start)
	if axis >= n || box.NumElements() <= maxElems {
		return fn(box)
	}
	// inner is the size of one step along axis (every later axis whole).
	inner := int64(1)
	for i := axis + 1; i < n; i++ {
		inner *= box.Stop[i] - box.Start[i]
	}
	if inner > maxElems {
		// One step is too big: split each step along the next axis.
		for k := box.Start[axis]; k < box.Stop[axis]; k++ {
			sub := cloneBox(box)
			sub.Start[axis], sub.Stop[axis] = k, k+1
			if err := slabsFrom(sub, axis+1, chunks, maxElems, fn); err != nil {
				return err
			}
		}
		return nil
	}
	step := maxElems / inner
	c := int64(0)
	if axis < len(chunks) {
		c = chunks[axis]
	}
	for k := box.Start[axis]; k < box.Stop[axis]; {
		end := min(k+step, box.Stop[axis])
		if c > 0 && step >= c {
			// Snap to the chunk grid where a whole chunk fits.
			if g := end / c * c; g > k && end < box.Stop[axis] {
				end = g
			}
		}
		sub := cloneBox(box)
		sub.Start[axis], sub.Stop[axis] = k, end
		if err := fn(sub); err != nil {
			return err
		}
		k = end
	}
	return nil
}

func cloneBox(b volume.Box) volume.Box {
	return volume.Box{Start: append([]int64(nil), b.Start...), Stop: append([]int64(nil), b.Stop...)}
}

// reservation is a part of the memory budget held by one request.
type reservation struct {
	s    *Server
	held int64
}

// retryAfter is the Retry-After of a request turned away because the queue
// for memory is full: requests are answered in milliseconds to seconds.
const retryAfter = "1"

// reserve waits for n bytes of the memory budget. A request's first
// reservation (first) is refused with 503 when Options.MaxQueue requests
// already wait; a later one (the next slab of a block being sent) waits.
func (s *Server) reserve(ctx context.Context, n int64, first bool) (*reservation, error) {
	if !s.mem.TryAcquire(n) {
		if first {
			if s.waiting.Add(1) > int64(s.opt.MaxQueue) {
				s.waiting.Add(-1)
				return nil, &httpError{code: http.StatusServiceUnavailable, retryAfter: retryAfter,
					msg: fmt.Sprintf("busy: %d requests already wait for memory; retry later", s.opt.MaxQueue)}
			}
			defer s.waiting.Add(-1)
		}
		if err := s.mem.Acquire(ctx, n); err != nil {
			return nil, err // the client went away while waiting for memory
		}
	}
	return &reservation{s: s, held: n}, nil
}

// keep gives back all but n bytes: once a read is done its decoding is
// garbage, and only the buffer being written is still held, so a client
// that reads slowly holds no more than that.
func (r *reservation) keep(n int64) {
	if n < r.held {
		r.s.mem.Release(r.held - n)
		r.held = n
	}
}

// release gives back the rest.
func (r *reservation) release() { r.keep(0) }

// writeTimed writes b under a deadline of WriteTimeout, so that a client that
// stops reading loses its connection (and with it the memory b holds) instead
// of keeping it for ever.
func (s *Server) writeTimed(w http.ResponseWriter, b []byte) error {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout)); err != nil && err != http.ErrNotSupported {
		return fmt.Errorf("set write deadline: %w", err)
	}
	s.writing.Add(1)
	_, err := w.Write(b)
	s.writing.Add(-1)
	if err == nil {
		// Flush while the deadline still holds: buffered bytes would
		// otherwise be written later without one.
		if ferr := rc.Flush(); ferr != nil && ferr != http.ErrNotSupported {
			err = ferr
		}
	}
	if err == nil {
		// The deadline belongs to the connection, not the request: left
		// set, it would cut a later keep-alive request written without one.
		if derr := rc.SetWriteDeadline(time.Time{}); derr != nil && derr != http.ErrNotSupported {
			err = fmt.Errorf("clear write deadline: %w", derr)
		}
	}
	return err
}
