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

// footprint is the memory reserved for reading box of e into a buffer of
// out bytes: the buffer, plus the storage chunks the read decodes (each
// decoded whole, with its compressed bytes: twice its size), at most
// decodeInFlight of them at a time; an unchunked volume is assumed to need a
// second copy of the box. It never exceeds Memory, which would wait forever.
func (s *Server) footprint(e *entry, box volume.Box, out int64) int64 {
	elem := int64(e.in.DType.Size())
	dec := box.NumElements() * elem
	if c := e.in.Chunks; len(c) == len(box.Start) {
		touched, chunk := int64(1), elem
		for i := range c {
			if c[i] <= 0 {
				touched, chunk = 0, 0
				break
			}
			touched = min(touched*((box.Stop[i]-1)/c[i]-box.Start[i]/c[i]+1), decodeInFlight)
			chunk = min(chunk*c[i], s.opt.Memory)
		}
		dec = min(touched*chunk*2, s.opt.Memory)
	}
	return min(out+dec, s.opt.Memory)
}

// slabElems is the number of elements of one slab of box: a request's share
// of Memory less what decoding one layer of storage chunks of box costs, so
// that a slab and its decoding together stay within the share.
func (s *Server) slabElems(e *entry, box volume.Box) int64 {
	share := s.opt.Memory / slabShare
	layer := cloneBox(box)
	if len(layer.Start) > 0 && len(e.in.Chunks) == len(layer.Start) && e.in.Chunks[0] > 0 {
		layer.Stop[0] = min(layer.Stop[0], layer.Start[0]+e.in.Chunks[0])
	}
	dec := s.footprint(e, layer, 0)
	return max(1, max(share-dec, share/2)/int64(e.in.DType.Size()))
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

// reserve waits for n bytes of the memory budget; the returned func gives
// them back.
func (s *Server) reserve(ctx context.Context, n int64) (func(), error) {
	if err := s.mem.Acquire(ctx, n); err != nil {
		return nil, err // the client went away while waiting for memory
	}
	return func() { s.mem.Release(n) }, nil
}

// writeTimed writes b under a deadline of WriteTimeout, so that a client that
// stops reading loses its connection (and with it the memory b holds) instead
// of keeping it for ever.
func (s *Server) writeTimed(w http.ResponseWriter, b []byte) error {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout)); err != nil && err != http.ErrNotSupported {
		return fmt.Errorf("set write deadline: %w", err)
	}
	_, err := w.Write(b)
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
