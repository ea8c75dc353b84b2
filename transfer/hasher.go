package transfer

import (
	"context"
	"hash"
	"io"
	"os"
	"sync/atomic"
)

// hasher computes the checksums of a part file while its ranges arrive: it
// reads back, in file order, the bytes below the frontier of the contiguous
// prefix already written, so that finishing a large file only hashes the part
// that arrived last instead of rereading the whole file. The reads hit the
// page cache the writes just filled.
//
// It keeps no state on disk: a resumed object is hashed again from offset 0.
type hasher struct {
	f        *os.File
	size     int64
	frontier atomic.Int64
	wake     chan struct{} // capacity 1: "the frontier moved"
	done     chan struct{} // closed when the fields below are final

	sum     string
	md, crc hash.Hash
	n       int64
	err     error
}

// startHasher starts hashing f, of size bytes, as advance allows. It stops
// when it reaches size, on a read error, or when ctx is cancelled.
func (r *run) startHasher(ctx context.Context, f *os.File, size int64, withMD5, withCRC bool) *hasher {
	h := &hasher{f: f, size: size, wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.hashers.Add(1)
	go func() {
		defer r.hashers.Done()
		defer close(h.done)
		h.run(ctx, r, withMD5, withCRC)
	}()
	return h
}

// advance tells the hasher that [0, to) is written. Only the dispatcher calls it.
func (h *hasher) advance(to int64) {
	if h == nil || to <= h.frontier.Load() {
		return
	}
	h.frontier.Store(min(to, h.size))
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hasher) run(ctx context.Context, r *run, withMD5, withCRC bool) {
	w := newSums(withMD5, withCRC)
	h.md, h.crc = w.md, w.crc
	for {
		if fr := h.frontier.Load(); h.n < fr {
			if err := h.catchUp(ctx, r, w, fr); err != nil {
				h.err = err
				return
			}
		}
		if h.n >= h.size {
			h.sum = w.sha256()
			return
		}
		select {
		case <-h.wake:
		case <-ctx.Done():
			h.err = ctx.Err()
			return
		}
	}
}

// catchUp hashes [h.n, to). The buffer is only held while reading, so idle
// hashers of many files cost no memory.
func (h *hasher) catchUp(ctx context.Context, r *run, w io.Writer, to int64) error {
	buf := r.getBuf()
	defer r.putBuf(buf)
	for h.n < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := h.f.ReadAt(buf[:min(int64(len(buf)), to-h.n)], h.n)
		if m > 0 {
			w.Write(buf[:m])
			h.n += int64(m)
		}
		if err != nil && !(err == io.EOF && h.n == to) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// wait returns the checksums of the whole file once the frontier has reached
// its size and the hasher has caught up.
func (h *hasher) wait(ctx context.Context) (sum string, md, crc hash.Hash, n int64, err error) {
	select {
	case <-h.done:
	case <-ctx.Done():
		return "", nil, nil, 0, ctx.Err()
	}
	if h.err != nil {
		return "", nil, nil, h.n, h.err
	}
	return h.sum, h.md, h.crc, h.n, nil
}
