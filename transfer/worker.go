package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds what a worker does for one task: the requests and the
// writing of their bytes.

// work runs one task in a worker goroutine. It touches only the task, the
// object's file and store, and the atomic counters.
func (r *run) work(ctx context.Context, t *task) *taskResult {
	res := &taskResult{t: t}
	o := t.obj
	switch t.kind {
	case kStat, kCheck:
		res.info, res.err = r.stat(ctx, o)
	case kSmall:
		res.err = r.fetchSmall(ctx, t, res)
	case kRange:
		res.err = r.fetchRange(ctx, t, res)
	case kFinish:
		res.err = r.finish(ctx, o)
	}
	return res
}

// stat asks for the object's metadata, giving up after StallTimeout.
func (r *run) stat(ctx context.Context, o *object) (store.ObjectInfo, error) {
	g := newStallGuard(ctx, r.opt.StallTimeout)
	info, err := o.st.Stat(g.ctx, o.key)
	return info, g.stop(err)
}

// stallGuard cancels a request that stops delivering bytes.
type stallGuard struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

func newStallGuard(ctx context.Context, d time.Duration) *stallGuard {
	g := &stallGuard{d: d}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	g.timer = time.AfterFunc(d, func() { g.cancel(errStalled) })
	return g
}

func (g *stallGuard) alive() { g.timer.Reset(g.d) }

// stop releases the guard and turns a stall-caused error into errStalled.
func (g *stallGuard) stop(err error) error {
	g.timer.Stop()
	stalled := errors.Is(context.Cause(g.ctx), errStalled)
	g.cancel(nil)
	if err != nil && stalled {
		return fmt.Errorf("%w: %w", errStalled, err)
	}
	return err
}

// fetchSmall downloads a whole object in one request into a temp file,
// hashing as it writes, then verifies and commits it. The host's slot is
// freed as soon as the body is in: the fsync, rename and journal record that
// follow must not keep a connection idle.
func (r *run) fetchSmall(ctx context.Context, t *task, res *taskResult) (err error) {
	o := t.obj
	o.haveBytes.Store(0)
	f, err := os.OpenFile(o.partPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return local(err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(o.partPath)
		}
	}()
	wantMD5 := r.wantMD5(o)
	hs := newSums(wantMD5 != nil, o.hasCRC && !r.opt.NoVerify)
	written, info, err := r.receive(ctx, t, f, hs, res)
	if err != nil {
		if errors.Is(err, errSplit) {
			res.info = info
		}
		return err
	}
	etag := o.etag
	if etag == "" {
		// Unknown until now (a listing without validators): the answer's
		// ETag lets the next run tell whether the object changed.
		etag = cleanETag(info.ETag)
	}
	r.notes <- note{t: t, released: true}
	res.released = true
	if o.size >= 0 && written != o.size {
		return fmt.Errorf("%w: got %d bytes, want %d", errVerify, written, o.size)
	}
	if err := r.verifySums(o, hs.md, hs.crc, wantMD5); err != nil {
		return err
	}
	select {
	case r.commits <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.commits }()
	committed = true
	return r.commit(o, f, written, hs.sha256(), etag)
}

// receive copies the whole body of t's object into f and through hs. It also
// returns what the response said of the object, when the store tells.
func (r *run) receive(ctx context.Context, t *task, f *os.File, hs io.Writer, res *taskResult) (int64, store.ObjectInfo, error) {
	o := t.obj
	buf := r.getBuf()
	defer r.putBuf(buf)
	g := newStallGuard(ctx, r.opt.StallTimeout)
	n := o.size // ≥ 0 asks a ranged read, which keeps the bytes as stored
	info := store.ObjectInfo{Size: -1}
	rc, err := o.st.ReadRange(g.ctx, o.key, 0, n)
	if err != nil {
		return 0, info, g.stop(err)
	}
	defer rc.Close()
	if ir, ok := rc.(store.InfoReader); ok {
		info = ir.ObjectInfo()
	}
	if o.size < 0 && info.Size > r.ckpt {
		// Sized by nothing but this answer, and too big for one stream: the
		// headers were the Stat; ranges over several connections follow.
		return 0, info, errSplit
	}
	r.notes <- note{t: t, started: true}
	var written int64
	for {
		m, rerr := rc.Read(buf)
		if m > 0 {
			if _, werr := f.Write(buf[:m]); werr != nil {
				return written, info, g.stop(local(werr))
			}
			hs.Write(buf[:m])
			written += int64(m)
			res.progress = written
			r.fetched.Add(int64(m))
			o.fetched.Add(int64(m))
			o.haveBytes.Add(int64(m))
			g.alive()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return written, info, g.stop(rerr)
		}
	}
	return written, info, g.stop(nil)
}

// fetchRange downloads [t.off, t.end) into the part file, journaling every
// r.ckpt bytes so that a crash loses at most that much per request. On error,
// t.off is advanced past what is safely written, and the retry continues there.
func (r *run) fetchRange(ctx context.Context, t *task, res *taskResult) error {
	o := t.obj
	buf := r.getBuf()
	defer r.putBuf(buf)
	start := t.off
	pos, ck := start, start
	res.done = interval{start, start}
	checkpoint := func() error {
		if pos == ck {
			return nil
		}
		if err := o.file.Sync(); err != nil {
			return local(err)
		}
		rec := record{T: recPart, Dataset: o.ds.name, Path: o.path, Off: ck, Len: pos - ck, Size: o.size, ETag: o.etag}
		if err := r.j.append(rec); err != nil {
			return local(err)
		}
		r.notes <- note{t: t, done: interval{ck, pos}, gen: t.gen}
		ck = pos
		res.done.hi = pos
		t.off = pos
		return nil
	}
	g := newStallGuard(ctx, r.opt.StallTimeout)
	rc, err := o.st.ReadRange(g.ctx, o.key, start, t.end-start)
	if err != nil {
		return g.stop(err)
	}
	defer rc.Close()
	r.notes <- note{t: t, started: true}
	for pos < t.end && err == nil {
		m, rerr := rc.Read(buf[:min(int64(len(buf)), t.end-pos)])
		if m > 0 {
			if _, werr := o.file.WriteAt(buf[:m], pos); werr != nil {
				err = local(werr)
				break
			}
			pos += int64(m)
			res.progress = pos - start
			r.fetched.Add(int64(m))
			o.fetched.Add(int64(m))
			o.haveBytes.Add(int64(m))
			g.alive()
			if pos-ck >= r.ckpt {
				err = checkpoint()
			}
		}
		switch {
		case rerr == io.EOF && pos < t.end:
			err = fmt.Errorf("range [%d,%d) ended at %d: %w", start, t.end, pos, io.ErrUnexpectedEOF)
		case rerr != nil && rerr != io.EOF:
			err = rerr
		case rerr == io.EOF:
			pos = max(pos, t.end) // loop ends
		}
	}
	err = g.stop(err)
	// Keep whatever arrived intact, even on failure: the retry (or the next
	// run) continues from there.
	if cerr := checkpoint(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		o.haveBytes.Add(-(pos - ck)) // written but not journaled: will be fetched again
	}
	return err
}
