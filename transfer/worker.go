package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
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
		if res.err == nil {
			res.err = r.checkSize(o, res.info.Size)
		}
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
	g := newStallGuard(ctx, r.opt.StallTimeout, r.opt.MinRate)
	info, err := o.st.Stat(g.ctx, o.key)
	return info, g.stop(err)
}

// stallGuard cancels a request that delivers fewer than rate bytes per
// second over a window of d. A minimum rate, rather than "any byte resets the
// clock", is what bounds a server that trickles a byte every few seconds.
// The first window includes the wait for the answer's headers.
type stallGuard struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
	min    int64        // bytes a window must bring
	n      atomic.Int64 // bytes of the current window
}

func newStallGuard(ctx context.Context, d time.Duration, rate int64) *stallGuard {
	g := &stallGuard{d: d, min: max(1, int64(float64(rate)*d.Seconds()))}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	g.timer = time.AfterFunc(d, g.check)
	return g
}

// check ends a window: too few bytes cut the request, else a new window starts.
func (g *stallGuard) check() {
	if g.n.Swap(0) < g.min {
		g.cancel(errStalled)
		return
	}
	g.timer.Reset(g.d)
}

// got counts n bytes received.
func (g *stallGuard) got(n int) { g.n.Add(int64(n)) }

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

// sizeLimit is the most bytes o may have. An exact size is enforced by the
// ranged reads themselves; a listed size is a rounded hint ("3.0M"), so it
// allows hintMargin more; no size at all allows MaxUnknownSize.
func (r *run) sizeLimit(o *object) int64 {
	switch {
	case o.size >= 0:
		return o.size
	case o.hint > 0:
		return hintLimit(o.hint)
	}
	return r.opt.MaxUnknownSize
}

// hintLimit allows for a listed size's rounding: listings print two or three
// significant digits (a step of at most 10%) and may mean 1000 or 1024 per
// unit (up to 10% apart at T), so 25% plus 64 KiB covers every honest file
// and still stops a body that never ends.
func hintLimit(hint int64) int64 {
	if hint > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return hint + hint/4 + 64<<10
}

// checkSize fails an object whose announced size exceeds its limit, before
// any byte of it is fetched.
func (r *run) checkSize(o *object, size int64) error {
	if lim := r.sizeLimit(o); o.size < 0 && size > lim {
		return fmt.Errorf("%s: server announces %d bytes, more than the %d allowed (%s): %w", o.name(), size, lim, r.limitReason(o), errTooLarge)
	}
	return nil
}

// limitReason says where an unsized object's limit comes from.
func (r *run) limitReason(o *object) string {
	if o.hint > 0 {
		return fmt.Sprintf("listed as about %d bytes", o.hint)
	}
	return "size unknown; transfer.Options.MaxUnknownSize"
}

// fetchSmall downloads a whole object in one request into a temp file,
// hashing as it writes, then verifies and commits it. A retry continues after
// the bytes earlier attempts left (see partial). The host's slot is freed as
// soon as the body is in: the fsync, rename and journal record that follow
// must not keep a connection idle.
func (r *run) fetchSmall(ctx context.Context, t *task, res *taskResult) error {
	o := t.obj
	wantMD5 := r.wantMD5(o)
	p := o.partial
	if p == nil {
		var err error
		if p, err = newPartial(o.partPath, wantMD5 != nil, o.hasCRC && !r.opt.NoVerify); err != nil {
			return local(err)
		}
		o.partial = p
	}
	info, err := r.receive(ctx, t, p, res)
	if err != nil {
		if errors.Is(err, errSplit) {
			res.info = info
			o.release() // ranges take over the part file's name
		}
		return err // the bytes in place stay for the retry
	}
	etag := o.etag
	if etag == "" {
		// Unknown until now (a listing without validators): the answer's
		// ETag lets the next run tell whether the object changed.
		etag = p.etag
	}
	r.notes <- note{t: t, released: true}
	res.released = true
	if o.size >= 0 && p.n != o.size {
		err = fmt.Errorf("%w: got %d bytes, want %d", errVerify, p.n, o.size)
	} else {
		err = r.verifySums(o, p.sums.md, p.sums.crc, wantMD5)
	}
	if err != nil {
		o.release() // bad bytes are not resumed from
		return err
	}
	select {
	case r.commits <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.commits }()
	o.partial = nil
	return r.commit(o, p.f, p.n, p.sums.sha256(), etag)
}

// receive copies the rest of t's object into p (see openRest). It returns
// what the response said of the object, when the store tells.
func (r *run) receive(ctx context.Context, t *task, p *partial, res *taskResult) (store.ObjectInfo, error) {
	o := t.obj
	buf := r.getBuf()
	defer r.putBuf(buf)
	g := newStallGuard(ctx, r.opt.StallTimeout, r.opt.MinRate)
	rc, info, err := r.openRest(g.ctx, o, p)
	if err != nil {
		return info, g.stop(err)
	}
	defer rc.Close()
	if err := r.checkSize(o, info.Size); err != nil {
		return info, g.stop(err)
	}
	limit := r.sizeLimit(o)
	o.haveBytes.Store(p.n)
	if o.size < 0 && p.n == 0 && info.Size > r.ckpt {
		// Sized by nothing but this answer, and too big for one stream: the
		// headers were the Stat; ranges over several connections follow.
		return info, g.stop(errSplit)
	}
	r.notes <- note{t: t, started: true}
	start := p.n
	for {
		m, rerr := rc.Read(buf)
		if m > 0 {
			if p.n+int64(m) > limit {
				// Not retried: the same answer would come again.
				return info, g.stop(fmt.Errorf("%s: body goes on past %d bytes (%s): %w", o.name(), limit, r.limitReason(o), errTooLarge))
			}
			if werr := p.write(buf[:m]); werr != nil {
				return info, g.stop(local(werr))
			}
			res.progress = p.n - start
			r.fetched.Add(int64(m))
			o.fetched.Add(int64(m))
			o.haveBytes.Add(int64(m))
			g.got(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return info, g.stop(rerr)
		}
	}
	return info, g.stop(nil)
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
		rec := record{T: recPart, Dataset: o.ds.name, Path: o.path, Off: ck, Len: pos - ck, Size: o.size, ETag: o.etag, LastMod: o.lastMod}
		if err := r.j.append(rec); err != nil {
			return local(err)
		}
		r.notes <- note{t: t, done: interval{ck, pos}, gen: t.gen}
		ck = pos
		res.done.hi = pos
		t.off = pos
		return nil
	}
	g := newStallGuard(ctx, r.opt.StallTimeout, r.opt.MinRate)
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
			g.got(m)
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
