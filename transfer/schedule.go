package transfer

import (
	"container/heap"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds the fair scheduler: tasks, the per-dataset per-host lanes
// they wait in, and the dispatch of the next task to a free slot.

// minProgress is the progress after which a retry starts its back-off over
// (it still counts as an attempt); also the least a task weighs on its
// dataset's fairness clock.
const minProgress = 64 << 10

// lane holds the ready tasks of one dataset on one host.
type lane struct {
	ds   *dsState
	host *host
	q    taskHeap
}

type taskKind int

// Task kinds in priority order within a lane.
const (
	kFinish taskKind = iota // verify + commit a ranged object
	kCheck                  // Stat after a failure: did the object change?
	kStat                   // learn size/ETag before planning
	kSmall                  // one request for a whole object
	kRange                  // one range of a ranged object
)

type task struct {
	obj       *object
	kind      taskKind
	gen       int
	off, end  int64 // kRange: the remaining range
	attempts  int   // failed attempts so far
	bo        *backoff.ExponentialBackOff
	notBefore time.Time
	cause     error // kCheck: the failure being checked
	// waited is the Retry-After time the task has sat through: its own waits
	// and its host's pauses up to pauseSeen (host.pausedFor when it was last
	// queued). It may not exceed Options.MaxRetryAfter.
	waited    time.Duration
	pauseSeen time.Duration
}

func (t *task) bytes() int64 {
	switch t.kind {
	case kRange:
		return t.end - t.off
	case kSmall:
		return max(t.obj.size, 0)
	}
	return 0
}

type taskHeap []*task

func (h taskHeap) Len() int { return len(h) }

func (h taskHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.kind != b.kind && (a.kind < kSmall || b.kind < kSmall) {
		return a.kind < b.kind
	}
	// Small objects first, so that a huge file never starves them; the parts
	// of one object in order, so that objects complete one after another.
	if a.obj.size != b.obj.size {
		return a.obj.size < b.obj.size
	}
	if a.obj.idx != b.obj.idx {
		return a.obj.idx < b.obj.idx
	}
	return a.off < b.off
}

func (h taskHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *taskHeap) Push(x any) { *h = append(*h, x.(*task)) }

func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

type taskResult struct {
	t        *task
	err      error
	info     store.ObjectInfo // kStat, kCheck
	done     interval         // kRange: bytes written and journaled
	progress int64            // bytes moved by this attempt
	released bool             // the host slot was already freed by a note
}

func (r *run) enqueue(t *task, now time.Time) {
	o := t.obj
	t.gen = o.gen
	if t.bo == nil {
		t.bo = &backoff.ExponentialBackOff{
			InitialInterval:     r.opt.RetryDelay,
			RandomizationFactor: backoff.DefaultRandomizationFactor,
			Multiplier:          2,
			MaxInterval:         backoff.DefaultMaxInterval,
		}
		t.bo.Reset()
		t.pauseSeen = o.host.pausedFor
	}
	o.queued++
	if t.notBefore.After(now) {
		r.delayed = append(r.delayed, t)
		return
	}
	heap.Push(&o.lane.q, t)
}

// promote moves delayed tasks whose time has come into their lanes.
func (r *run) promote(now time.Time) {
	keep := r.delayed[:0]
	for _, t := range r.delayed {
		if t.notBefore.After(now) {
			keep = append(keep, t)
		} else {
			heap.Push(&t.obj.lane.q, t)
		}
	}
	clear(r.delayed[len(keep):])
	r.delayed = keep
}

// nextWake is the earliest time a delayed task or a paused host becomes
// ready, or a busy host may be raised.
func (r *run) nextWake() (time.Time, bool) {
	var next time.Time
	for _, t := range r.delayed {
		if next.IsZero() || t.notBefore.Before(next) {
			next = t.notBefore
		}
	}
	for _, l := range r.lanes {
		if l.q.Len() == 0 {
			continue
		}
		if !l.host.pausedUntil.IsZero() && (next.IsZero() || l.host.pausedUntil.Before(next)) {
			next = l.host.pausedUntil
		}
		if due, ok := l.host.raiseDue(); ok && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next, !next.IsZero()
}

// dispatch starts tasks while there is room: among lanes whose host has a free
// slot, the dataset that has been given the fewest bytes goes first, so small
// datasets finish early and a huge file gets its share without starving others.
func (r *run) dispatch(now time.Time) {
	for r.inflight < r.opt.Total {
		var best *lane
		for _, l := range r.lanes {
			if l.q.Len() == 0 || !l.host.ready(now) {
				continue
			}
			if best == nil || l.ds.dispatched < best.ds.dispatched ||
				(l.ds.dispatched == best.ds.dispatched && l.ds.idx < best.ds.idx) {
				best = l
			}
		}
		if best == nil {
			return
		}
		t := heap.Pop(&best.q).(*task)
		o := t.obj
		if t.gen != o.gen || o.settled {
			continue // stale: the object restarted or failed since
		}
		o.queued--
		if o.action != actNone {
			r.act(o, now)
			continue
		}
		r.start(t)
	}
}

func (r *run) start(t *task) {
	o := t.obj
	r.inflight++
	o.inflight++
	o.host.inflight++
	o.ds.dispatched += max(t.bytes(), minProgress)
	if !o.started {
		o.started = true
		r.active[o] = true
		r.emit(Event{Type: EventStart, Dataset: o.ds.name, Path: o.path, Bytes: o.haveBytes.Load(), Total: o.size})
	}
	ctx := o.ctx
	go func() { r.results <- r.work(ctx, t) }()
}

// idle is true when no task is queued or delayed.
func (r *run) idle() bool {
	if len(r.delayed) > 0 {
		return false
	}
	for _, l := range r.lanes {
		if l.q.Len() > 0 {
			return false
		}
	}
	return true
}

// note is news a worker sends before its request ends.
type note struct {
	t *task
	// started: the response arrived, which counts for the ramp-up.
	started bool
	// released: the network part is over; the host's slot is free while the
	// worker still writes to disk.
	released bool
	// done: bytes of a range are written and journaled (t.gen guards it).
	done interval
	gen  int
}
