package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

// This file holds the object state machine: how task results move an object
// towards done, retry, restart or failure.

// maxRestarts bounds how often an object that keeps changing is restarted.
const maxRestarts = 3

type action int

const (
	actNone action = iota
	actRestart
	actFail
)

// object is one object of a job on its way to a verified local file. Its
// fields come in parts by who changes them and when.
type object struct {
	placement
	expectation
	assembly
	lifecycle

	haveBytes atomic.Int64 // bytes in place (workers add)
	fetched   atomic.Int64 // bytes downloaded this run (workers add)
	reported  int64        // haveBytes at the last progress event
	res       Result
}

// placement is where an object comes from and goes to; fixed at setup.
type placement struct {
	ds       *dsState
	idx      int
	src      source.Object
	path     string // cleaned, relative to the dataset directory
	final    string // absolute
	partPath string // part file (ranged) or temp file (small)
	key      string
	st       *store.Store
	host     *host
	lane     *lane
	// etagIsMD5: the store says a plain 32-hex ETag is the content's MD5.
	etagIsMD5 bool
}

// expectation is what the object's bytes must be; changed only while no task
// of the object runs.
type expectation struct {
	size int64
	hint int64 // approximate size when size < 0 (0: none)
	etag string
	// lastMod is the server's Last-Modified of the version expected, Unix
	// seconds (0: unknown): the validator of servers without ETags.
	lastMod int64
	md5     []byte
	crc     uint32
	hasCRC  bool
}

// assembly is the object's bytes on disk; changed only while no task of the
// object runs, except that workers write into file and partial.
type assembly struct {
	ranged  bool
	file    *os.File // ranged: the part file
	have    rangeSet
	hash    *hasher  // ranged: hashes the part file's contiguous prefix
	partial *partial // small: what earlier attempts received
	// answerLastMod is the Last-Modified of the answer a small object's bytes
	// came from (0: none); the worker of its only task writes it.
	answerLastMod int64
}

// lifecycle is the object's place in the state machine; only the dispatcher
// touches it.
type lifecycle struct {
	gen           int // bumped on restart; stale tasks are dropped
	ctx           context.Context
	cancel        context.CancelFunc
	queued        int
	inflight      int
	restarts      int
	verifyRetried bool
	action        action
	actErr        error
	changed       bool // the pending restart is because the object changed
	started       bool
	settled       bool
}

// name identifies the object in errors: dataset/path, or the raw path when it
// was rejected.
func (o *object) name() string {
	if o.path == "" {
		return fmt.Sprintf("%s/%q", o.ds.name, o.src.Path)
	}
	return o.ds.name + "/" + o.path
}

func (r *run) handle(res *taskResult, now time.Time) {
	t := res.t
	o := t.obj
	r.inflight--
	o.inflight--
	if !res.released {
		o.host.inflight--
	}
	if res.err == nil {
		o.host.succeeded(now)
	}
	if t.gen != o.gen || o.settled {
		return
	}
	if t.kind == kRange && res.done.hi > res.done.lo {
		r.addHave(o, res.done)
	}
	if o.action != actNone {
		r.act(o, now)
		return
	}
	if res.err == nil {
		r.succeeded(t, res, now)
	} else {
		r.failed(t, res, now)
	}
	r.act(o, now)
}

func (r *run) note(n note, now time.Time) {
	o := n.t.obj
	if n.started {
		o.host.succeeded(now)
	}
	if n.released {
		o.host.inflight--
	}
	if n.done.hi > n.done.lo && n.gen == o.gen && !o.settled && o.action == actNone {
		r.addHave(o, n.done)
	}
}

// addHave records journaled bytes of a ranged object and lets its hasher go on.
func (r *run) addHave(o *object, iv interval) {
	o.have.add(iv.lo, iv.hi)
	o.hash.advance(o.have.prefix())
}

func (r *run) succeeded(t *task, res *taskResult, now time.Time) {
	o := t.obj
	switch t.kind {
	case kStat:
		r.applyStat(o, res.info)
		r.plan(o, now)
	case kCheck:
		if r.changedFrom(o, res.info) {
			r.requestRestart(o, true)
		} else {
			r.requestFail(o, t.cause)
		}
	case kRange:
		if o.queued == 0 && o.inflight == 0 {
			if len(o.have.missing(o.size)) == 0 {
				r.enqueue(&task{obj: o, kind: kFinish}, now)
			} else {
				r.requestFail(o, fmt.Errorf("internal error: ranges missing after all parts finished"))
			}
		}
	case kSmall, kFinish:
		r.emit(Event{Type: EventDone, Dataset: o.ds.name, Path: o.path, Bytes: o.res.Size, Total: o.res.Size})
		r.settle(o)
	}
}

func (r *run) failed(t *task, res *taskResult, now time.Time) {
	o := t.obj
	err := res.err
	if t.kind == kSmall && errors.Is(err, errSplit) {
		r.applyStat(o, res.info)
		r.plan(o, now)
		return
	}
	switch c, after, throttle := classify(err); c {
	case errClassCanceled:
		// The run is stopping; the object stays unfinished.
	case errClassChanged:
		r.requestRestart(o, true)
	case errClassVerify:
		if o.verifyRetried {
			r.requestFail(o, err)
			return
		}
		o.verifyRetried = true
		r.requestRestart(o, false)
		r.emit(Event{Type: EventRetry, Dataset: o.ds.name, Path: o.path, Total: o.size, Err: err.Error()})
	case errClassRetry:
		if err = r.retry(t, res, after, throttle, now); err == nil {
			return
		}
		fallthrough
	default:
		switch {
		case t.kind == kRange:
			// A range that keeps failing (e.g. beyond the end) may mean the
			// object changed; a Stat tells.
			r.enqueue(&task{obj: o, kind: kCheck, cause: err}, now)
		case t.kind == kStat && o.size >= 0 && !errors.Is(err, store.ErrNotExist):
			// Some servers refuse HEAD; the listing's size will do.
			r.plan(o, now)
		case t.kind == kCheck:
			r.requestFail(o, t.cause)
		default:
			r.requestFail(o, err)
		}
	}
}

// retry queues a failed task again after its back-off, or returns why it may
// not. Every attempt counts, even one that made progress (the retry resumes
// after the bytes it got), so a server that always cuts the body off cannot
// keep a task alive forever. The Retry-After waits a task sits through, its
// own and its host's pauses, add up to at most MaxRetryAfter, so a server
// that keeps asking for more ends the task with an error naming the wait.
func (r *run) retry(t *task, res *taskResult, after time.Duration, throttle bool, now time.Time) error {
	o, err := t.obj, res.err
	h := o.host
	if res.progress >= minProgress {
		t.bo.Reset() // the transfer was moving: resume it soon
	}
	t.attempts++
	t.waited += h.pausedFor - t.pauseSeen
	left := r.opt.MaxRetryAfter - t.waited
	switch {
	case t.attempts > r.opt.Retries:
		return fmt.Errorf("giving up after %d attempts: %w", t.attempts, err)
	case after > 0 && left <= 0:
		return fmt.Errorf("giving up: the server asks to wait %s more after %s of Retry-After waits (the most MaxRetryAfter allows is %s): %w",
			after, t.waited, r.opt.MaxRetryAfter, err)
	}
	wait := max(min(after, left), 0)
	if throttle {
		h.throttled(now, wait)
	}
	t.waited += wait
	t.pauseSeen = h.pausedFor
	t.notBefore = now.Add(max(t.bo.NextBackOff(), wait))
	r.enqueue(t, now)
	r.emit(Event{Type: EventRetry, Dataset: o.ds.name, Path: o.path, Bytes: o.haveBytes.Load(), Total: o.size, Err: err.Error()})
	return nil
}

// applyStat adopts what a Stat says. A different size or ETag than the
// listing's means the object changed since it was listed; the listing's
// checksums then describe another version and are dropped.
func (r *run) applyStat(o *object, info store.ObjectInfo) {
	if r.changedFrom(o, info) {
		o.md5, o.crc, o.hasCRC = nil, 0, false
	}
	if info.Size >= 0 {
		o.size = info.Size
	}
	if e := store.CleanETag(info.ETag); e != "" {
		o.etag = e
	}
	if !info.ModTime.IsZero() {
		o.lastMod = info.ModTime.Unix()
	}
	if len(info.MD5) == 16 {
		o.md5 = info.MD5
	}
	if info.HasCRC {
		o.crc, o.hasCRC = info.CRC32C, true
	}
}

// changedFrom reports whether info describes another version than o expects.
func (r *run) changedFrom(o *object, info store.ObjectInfo) bool {
	if info.Size >= 0 && o.size >= 0 && info.Size != o.size {
		return true
	}
	e := store.CleanETag(info.ETag)
	return e != "" && o.etag != "" && e != o.etag
}

func (r *run) requestRestart(o *object, changed bool) {
	if o.action == actFail {
		return
	}
	o.action = actRestart
	o.changed = o.changed || changed
	o.cancel()
}

func (r *run) requestFail(o *object, err error) {
	if o.action == actFail {
		return
	}
	o.action, o.actErr = actFail, err
	o.cancel()
}

// act performs a pending restart or failure once no task of the object runs:
// a task still running could otherwise journal bytes of the old attempt after
// the reset record.
func (r *run) act(o *object, now time.Time) {
	if o.action == actNone || o.inflight > 0 || o.settled {
		return
	}
	a := o.action
	o.action = actNone
	if a == actFail {
		r.settleFailed(o, o.actErr)
		return
	}
	o.restarts++
	if o.restarts > maxRestarts {
		r.settleFailed(o, fmt.Errorf("restarted %d times (the object keeps changing or failing verification)", maxRestarts))
		return
	}
	if err := r.discard(o); err != nil {
		r.settleFailed(o, err)
		return
	}
	o.gen++
	o.queued = 0
	o.ctx, o.cancel = context.WithCancel(r.ctx)
	changed := o.changed
	o.changed = false
	if changed || o.ranged || o.size < 0 {
		if changed {
			// The listing described another version: learn the new one.
			o.md5, o.crc, o.hasCRC = nil, 0, false
		}
		r.enqueue(&task{obj: o, kind: kStat}, now)
		return
	}
	r.enqueue(&task{obj: o, kind: kSmall}, now)
}

// discard forgets the bytes of an object: part file and journal records.
func (r *run) discard(o *object) error {
	o.release()
	o.hash = nil // its context is cancelled: it stops
	os.Remove(o.partPath)
	o.have = nil
	o.haveBytes.Store(0)
	delete(r.j.entries, entryKey(o.ds.name, o.path))
	return r.j.append(record{T: recReset, Dataset: o.ds.name, Path: o.path})
}

func (r *run) settleFailed(o *object, err error) {
	if o.settled {
		return
	}
	o.release()
	if o.verifyRetried && o.path != "" && errors.Is(err, errVerify) {
		// Bad bytes must not be resumed from.
		_ = r.discard(o)
	}
	o.res.Err = fmt.Errorf("%s: %w", o.name(), err)
	r.emit(Event{Type: EventFailed, Dataset: o.ds.name, Path: o.path, Bytes: o.haveBytes.Load(), Total: o.size, Err: o.res.Err.Error()})
	o.ds.failed = true
	r.settle(o)
}

func (r *run) settle(o *object) {
	o.settled = true
	o.cancel()
	delete(r.active, o)
	o.ds.unsettled--
	if o.ds.unsettled == 0 {
		r.datasetDone(o.ds)
	}
}
