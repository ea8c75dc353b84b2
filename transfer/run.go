package transfer

import (
	"container/heap"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

const (
	// bufSize is the copy buffer of one request; memory is Total × bufSize.
	bufSize = 128 << 10
	// minProgress is the progress an attempt must make not to count as a retry.
	minProgress = 64 << 10
	// maxRestarts bounds how often an object that keeps changing is restarted.
	maxRestarts = 3
	// maxRetryAfter caps how long one Retry-After may stall a host.
	maxRetryAfter = 10 * time.Minute
	// progressEvery is the period of progress events.
	progressEvery = 250 * time.Millisecond
	// initialPerHost is where the per-host ramp-up starts.
	initialPerHost = 4
	// rampEvery is the shortest time between two doublings of a host's limit.
	// A request counts as a success once its response starts, so the ramp
	// follows the server's answers, not the length of the transfers.
	rampEvery = 100 * time.Millisecond
)

// run is the state of one Run. Everything except the fields marked otherwise
// is owned by the dispatcher goroutine; workers get what they need through the
// task and report back through results.
type run struct {
	ctx      context.Context // the caller's; objects derive theirs from it
	opt      Options
	out      string // absolute OutDir
	partsDir string
	ckpt     int64 // bytes between journal checkpoints; also the small/ranged threshold
	j        *journal
	lock     *os.File

	datasets []*dsState
	lanes    []*lane
	hosts    map[string]*host
	delayed  []*task
	active   map[*object]bool
	inflight int

	results chan *taskResult
	notes   chan note // workers' news from the middle of a request
	events  chan Event
	commits chan struct{} // bounds concurrent fsync/rename/journal of small files
	hashers sync.WaitGroup
	fetched atomic.Int64 // written by workers
	bufs    sync.Pool

	dirsMu sync.Mutex
	dirs   map[string]bool // directories that received files, to fsync at the end
}

type dsState struct {
	idx        int
	name       string
	objs       []*object
	unsettled  int
	dispatched int64 // bytes handed to workers: the fairness clock
	total      int64 // known bytes
	failed     bool
	lanes      map[*host]*lane
}

// lane holds the ready tasks of one dataset on one host.
type lane struct {
	ds   *dsState
	host *host
	q    taskHeap
}

type host struct {
	name        string
	limit, max  int
	inflight    int
	lastRaise   time.Time
	pausedUntil time.Time
	// earned is set when a response arrived since the last raise: the
	// server copes with the current limit, so it may double once rampEvery
	// has passed, even if no further response comes before then (ranges of
	// a large file all start at once and then run for seconds).
	earned bool
}

// ready reports whether the host has a free slot, raising its limit first
// when that is earned and due.
func (h *host) ready(now time.Time) bool {
	if h.inflight >= h.limit {
		h.raise(now)
	}
	return h.inflight < h.limit && !now.Before(h.pausedUntil)
}

// succeeded ramps the host up: polite to a server that has not yet shown it
// copes, quick to reach the cap when it does.
func (h *host) succeeded(now time.Time) {
	h.earned = true
	h.raise(now)
}

func (h *host) raise(now time.Time) {
	if h.earned && h.limit < h.max && now.Sub(h.lastRaise) >= rampEvery {
		h.limit = min(2*h.limit, h.max)
		h.lastRaise = now
		h.earned = false
	}
}

// raiseDue is when an earned raise becomes possible, if one is pending.
func (h *host) raiseDue() (time.Time, bool) {
	if !h.earned || h.limit >= h.max || h.inflight < h.limit {
		return time.Time{}, false
	}
	return h.lastRaise.Add(rampEvery), true
}

// throttled backs the host off after a 429/503.
func (h *host) throttled(now time.Time, after time.Duration) {
	h.limit = max(1, h.limit/2)
	h.lastRaise = now
	h.earned = false
	if after > 0 {
		if until := now.Add(min(after, maxRetryAfter)); until.After(h.pausedUntil) {
			h.pausedUntil = until
		}
	}
}

type action int

const (
	actNone action = iota
	actRestart
	actFail
)

type object struct {
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
	s3       bool // the store is S3: a plain 32-hex ETag is the MD5

	// Expectations; changed only while no task of the object runs.
	size   int64
	hint   int64 // approximate size when size < 0 (0: none)
	etag   string
	md5    []byte
	crc    uint32
	hasCRC bool
	ranged bool
	file   *os.File // ranged: the part file
	have   rangeSet
	hash   *hasher // ranged: hashes the part file's contiguous prefix

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
	reported      int64

	haveBytes atomic.Int64 // bytes in place (workers add)
	fetched   atomic.Int64 // bytes downloaded this run (workers add)
	res       Result
}

// name identifies the object in errors: dataset/path, or the raw path when it
// was rejected.
func (o *object) name() string {
	if o.path == "" {
		return fmt.Sprintf("%s/%q", o.ds.name, o.src.Path)
	}
	return o.ds.name + "/" + o.path
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
	attempts  int
	bo        *backoff.ExponentialBackOff
	notBefore time.Time
	cause     error // kCheck: the failure being checked
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
func (h *taskHeap) Push(x any)   { *h = append(*h, x.(*task)) }
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

func newRun(ctx context.Context, jobs []Job, opt Options) (*run, error) {
	out, err := filepath.Abs(opt.OutDir)
	if err != nil {
		return nil, fmt.Errorf("transfer: output directory %q: %w", opt.OutDir, err)
	}
	r := &run{
		opt:      opt,
		out:      out,
		partsDir: filepath.Join(out, stateDir, "parts"),
		ckpt:     max(opt.PartSize/8, 64<<10),
		hosts:    map[string]*host{},
		active:   map[*object]bool{},
		results:  make(chan *taskResult, opt.Total),
		notes:    make(chan note, opt.Total),
		commits:  make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		events:   make(chan Event, 256),
	}
	r.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	if err := os.MkdirAll(r.partsDir, 0o755); err != nil {
		return nil, fmt.Errorf("transfer: output directory: %w", err)
	}
	if r.lock, err = lockDir(filepath.Join(out, stateDir, "lock")); err != nil {
		return nil, err
	}
	if r.j, err = openJournal(filepath.Join(out, stateDir, "journal.jsonl")); err != nil {
		r.lock.Close()
		return nil, fmt.Errorf("transfer: %w", err)
	}
	stores := map[string]*store.Store{}
	storeErrs := map[string]error{}
	seenDS := map[string]bool{}
	finals := map[string]string{} // final file → dataset/path that claimed it
	for i, job := range jobs {
		ds := &dsState{idx: i, name: job.Dataset, lanes: map[*host]*lane{}}
		r.datasets = append(r.datasets, ds)
		dsName, dsErr := cleanDataset(job.Dataset)
		if dsErr == nil {
			ds.name = dsName
			if seenDS[dsName] {
				dsErr = fmt.Errorf("dataset %q appears twice", job.Dataset)
			}
			seenDS[dsName] = true
		}
		seen := map[string]bool{}
		for k, src := range job.Objects {
			o := &object{ds: ds, idx: k, src: src, key: src.Key, size: src.Size, etag: cleanETag(src.ETag)}
			o.res = Result{Dataset: job.Dataset, Path: src.Path, SourceURL: src.SourceURL, Size: src.Size}
			ds.objs = append(ds.objs, o)
			ds.unsettled++
			if o.size < 0 {
				o.size = -1
				o.hint = max(src.SizeHint, 0)
				ds.total += o.hint // for progress only
			} else {
				ds.total += o.size
			}
			if len(src.MD5) == 16 {
				o.md5 = src.MD5
			}
			o.crc, o.hasCRC = src.CRC32C, src.HasCRC
			if dsErr != nil {
				o.res.Err = dsErr
				continue
			}
			p, err := cleanRel("object path", src.Path)
			if err != nil {
				o.res.Err = err
				continue
			}
			if seen[p] {
				o.res.Err = fmt.Errorf("object path %q appears twice in the dataset", src.Path)
				continue
			}
			seen[p] = true
			final := filepath.Join(out, filepath.FromSlash(ds.name), filepath.FromSlash(p))
			if other, dup := finals[final]; dup {
				// Nested dataset names can make two objects share one file.
				o.res.Err = fmt.Errorf("object path %q: same local file as %s", src.Path, other)
				continue
			}
			finals[final] = ds.name + "/" + p
			o.path = p
			o.final = final
			o.partPath = filepath.Join(r.partsDir, partName(ds.name, p))
			o.res.File = o.final
			st, ok := stores[src.StoreURL]
			if !ok && storeErrs[src.StoreURL] == nil {
				st, err = opt.Stores.Open(ctx, src.StoreURL)
				if err != nil {
					storeErrs[src.StoreURL] = err
				} else {
					stores[src.StoreURL] = st
				}
			}
			if st == nil {
				o.res.Err = fmt.Errorf("open %s: %w", src.StoreURL, storeErrs[src.StoreURL])
				continue
			}
			o.st = st
			o.s3 = isS3(src.StoreURL, opt.Stores)
			hk := hostKey(src.StoreURL, opt.Stores)
			h := r.hosts[hk]
			if h == nil {
				hmax := perHostFor(src.StoreURL, opt)
				h = &host{name: hk, max: hmax, limit: min(initialPerHost, hmax), lastRaise: time.Now()}
				r.hosts[hk] = h
			}
			o.host = h
			o.lane = ds.lanes[h]
			if o.lane == nil {
				o.lane = &lane{ds: ds, host: h}
				ds.lanes[h] = o.lane
				r.lanes = append(r.lanes, o.lane)
			}
		}
	}
	return r, nil
}

func (r *run) run(ctx context.Context) (*Summary, error) {
	r.ctx = ctx
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		for ev := range r.events {
			if r.opt.Events != nil {
				r.opt.Events(ev)
			}
		}
	}()
	defer func() {
		close(r.events)
		<-emitted
		r.j.close()
		r.lock.Close()
	}()

	now := time.Now()
	for _, ds := range r.datasets {
		r.emit(Event{Type: EventPlan, Dataset: ds.name, Bytes: int64(len(ds.objs)), Total: ds.total})
	}
	for _, ds := range r.datasets {
		for _, o := range ds.objs {
			o.ctx, o.cancel = context.WithCancel(ctx)
			if o.res.Err != nil {
				r.settleFailed(o, o.res.Err)
				continue
			}
			r.begin(o, now)
		}
		if len(ds.objs) == 0 {
			r.datasetDone(ds)
		}
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	stopping := false
	cancelled := ctx.Done()
	for {
		now = time.Now()
		if !stopping {
			r.promote(now)
			r.dispatch(now)
		}
		if r.inflight == 0 && (stopping || r.idle()) {
			break
		}
		if !stopping {
			if next, ok := r.nextWake(); ok {
				timer.Reset(max(time.Until(next), time.Millisecond))
			}
		}
		select {
		case res := <-r.results:
			r.handle(res, time.Now())
		case n := <-r.notes:
			r.note(n, time.Now())
		case <-timer.C:
		case <-tick.C:
			r.reportProgress()
		case <-cancelled:
			stopping = true
			cancelled = nil // do not spin on a closed channel while workers wind down
		}
		if ctx.Err() != nil {
			stopping = true
		}
	}
	r.reportProgress()
	r.syncDirs()
	r.hashers.Wait() // every object is settled or its context cancelled: they are ending
	sum := r.summary(ctx.Err())
	return sum, ctx.Err()
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

// begin decides an object's first step: skip it, stat it or fetch it.
func (r *run) begin(o *object, now time.Time) {
	e := r.j.entries[entryKey(o.ds.name, o.path)]
	switch {
	case o.size < 0 && o.hint <= r.ckpt && e == nil:
		// Unsized or listed as small: the GET's answer tells the size and
		// ETag, so no Stat comes first; one that turns out large is switched
		// to ranges (errSplit). With a journal entry, a Stat must first tell
		// whether the entry is still valid.
		r.enqueue(&task{obj: o, kind: kSmall}, now)
	case o.size < 0 || o.size > r.ckpt:
		// Large objects are planned from a fresh Stat: its ETag is the one the
		// journal and the final check compare against.
		r.enqueue(&task{obj: o, kind: kStat}, now)
	case e != nil && e.done != nil && r.doneValid(o, e):
		r.skip(o, e)
	default:
		r.enqueue(&task{obj: o, kind: kSmall}, now)
	}
}

// doneValid reports whether the journal's completed record still describes
// both the local file and the remote object.
func (r *run) doneValid(o *object, e *entry) bool {
	d := e.done
	if o.size < 0 && o.etag == "" {
		return false // nothing to tell whether the remote object changed
	}
	if o.size >= 0 && d.Size != o.size {
		return false
	}
	if o.etag != "" && d.ETag != "" && d.ETag != o.etag {
		return false
	}
	fi, err := os.Lstat(o.final)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != d.Size {
		return false
	}
	if fi.ModTime().UnixNano() == d.MTime {
		return true
	}
	// Touched since: only its content can tell.
	f, err := os.Open(o.final)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := r.getBuf()
	defer r.putBuf(buf)
	sum, _, _, n, err := hashReader(o.ctx, f, false, false, buf)
	return err == nil && n == d.Size && sum == d.SHA256
}

func (r *run) skip(o *object, e *entry) {
	o.res.Skipped = true
	o.res.Size = e.done.Size
	o.res.SHA256 = e.done.SHA256
	o.haveBytes.Store(e.done.Size)
	r.emit(Event{Type: EventSkipped, Dataset: o.ds.name, Path: o.path, Bytes: e.done.Size, Total: e.done.Size})
	r.settle(o)
}

// plan sets a ranged object up after its Stat: reuse journaled parts when the
// remote object is the one they came from, then queue the missing ranges.
func (r *run) plan(o *object, now time.Time) {
	k := entryKey(o.ds.name, o.path)
	e := r.j.entries[k]
	if e != nil && e.done != nil && r.doneValid(o, e) {
		r.skip(o, e)
		return
	}
	if o.size < 0 || o.size <= r.ckpt {
		o.ranged = false
		r.enqueue(&task{obj: o, kind: kSmall}, now)
		return
	}
	o.ranged = true
	o.have = nil
	if e != nil && e.done == nil && e.size == o.size && e.etag == o.etag {
		if fi, err := os.Stat(o.partPath); err == nil && fi.Size() == o.size {
			o.have = append(rangeSet(nil), e.parts...)
		}
	}
	if o.have == nil {
		if e != nil {
			if err := r.j.append(record{T: recReset, Dataset: o.ds.name, Path: o.path}); err != nil {
				r.settleFailed(o, err)
				return
			}
		}
		os.Remove(o.partPath)
	}
	delete(r.j.entries, k)
	f, err := os.OpenFile(o.partPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		err = f.Truncate(o.size)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		r.settleFailed(o, fmt.Errorf("part file: %w", err))
		return
	}
	o.file = f
	wantMD5 := r.wantMD5(o)
	o.hash = r.startHasher(o.ctx, f, o.size, wantMD5 != nil, o.hasCRC && !r.opt.NoVerify)
	o.hash.advance(o.have.prefix())
	o.haveBytes.Store(o.have.total())
	gaps := o.have.missing(o.size)
	if len(gaps) == 0 {
		r.enqueue(&task{obj: o, kind: kFinish}, now)
		return
	}
	ps := r.opt.PartSize
	for _, g := range gaps {
		if g.hi-g.lo <= 2*ps {
			r.enqueue(&task{obj: o, kind: kRange, off: g.lo, end: g.hi}, now)
			continue
		}
		// Cut the gap into a multiple of the per-host connection count, so the
		// last round of ranges keeps every connection busy (60 parts over 16
		// connections left 4 idle for a whole part time); never below 1 MiB.
		// The last round is cut in half again: connections that started late
		// (ramp-up) or run slow finish their last part while the others take
		// the small ones, instead of idling for a whole part time.
		n := (g.hi - g.lo + ps - 1) / ps
		k := max(int64(o.host.max), 1)
		if k > 1 {
			n = (n + k - 1) / k * k
		}
		minPart := min(ps, 1<<20)
		size := max((g.hi-g.lo+n-1)/n, minPart)
		tail := g.hi
		if n > k && size/2 >= minPart {
			tail = min(g.lo+(n-k)*size, g.hi)
		}
		off := g.lo
		for ; off < tail; off += size {
			r.enqueue(&task{obj: o, kind: kRange, off: off, end: min(off+size, tail)}, now)
		}
		for half := (size + 1) / 2; off < g.hi; off += half {
			r.enqueue(&task{obj: o, kind: kRange, off: off, end: min(off+half, g.hi)}, now)
		}
	}
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
		if res.progress >= minProgress {
			t.attempts = 0
			t.bo.Reset()
		}
		t.attempts++
		if t.attempts <= r.opt.Retries {
			delay := t.bo.NextBackOff()
			if throttle {
				o.host.throttled(now, after)
			}
			if after > delay {
				delay = min(after, maxRetryAfter)
			}
			t.notBefore = now.Add(delay)
			r.enqueue(t, now)
			r.emit(Event{Type: EventRetry, Dataset: o.ds.name, Path: o.path, Bytes: o.haveBytes.Load(), Total: o.size, Err: err.Error()})
			return
		}
		err = fmt.Errorf("giving up after %d retries: %w", r.opt.Retries, err)
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
	if e := cleanETag(info.ETag); e != "" {
		o.etag = e
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
	e := cleanETag(info.ETag)
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
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
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
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
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

func (r *run) datasetDone(ds *dsState) {
	ev := Event{Type: EventDatasetDone, Dataset: ds.name, Total: ds.total}
	var n int64
	for _, o := range ds.objs {
		n += o.haveBytes.Load()
		if o.res.Err != nil {
			ev.Err = fmt.Sprintf("%d objects failed", countFailed(ds))
		}
	}
	ev.Bytes = n
	r.emit(ev)
}

func countFailed(ds *dsState) int {
	n := 0
	for _, o := range ds.objs {
		if o.res.Err != nil {
			n++
		}
	}
	return n
}

func (r *run) reportProgress() {
	for o := range r.active {
		if b := o.haveBytes.Load(); b != o.reported {
			o.reported = b
			r.emit(Event{Type: EventProgress, Dataset: o.ds.name, Path: o.path, Bytes: b, Total: o.size})
		}
	}
}

func (r *run) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	r.events <- ev
}

func (r *run) summary(cause error) *Summary {
	s := &Summary{Fetched: r.fetched.Load()}
	for _, ds := range r.datasets {
		d := DatasetSummary{Dataset: ds.name}
		for _, o := range ds.objs {
			if !o.settled && o.res.Err == nil {
				if o.file != nil {
					o.file.Close()
					o.file = nil
				}
				err := cause
				if err == nil {
					err = errors.New("not finished")
				}
				o.res.Err = fmt.Errorf("%s: %w", o.name(), err)
			}
			o.res.Fetched = o.fetched.Load()
			d.Fetched += o.res.Fetched
			switch {
			case o.res.Err != nil:
				d.Failed++
			case o.res.Skipped:
				d.Skipped++
				d.Size += o.res.Size
			default:
				d.Done++
				d.Size += o.res.Size
			}
			d.Results = append(d.Results, o.res)
		}
		s.Datasets = append(s.Datasets, d)
	}
	return s
}

func (r *run) dirtyDir(dir string) {
	r.dirsMu.Lock()
	defer r.dirsMu.Unlock()
	if r.dirs == nil {
		r.dirs = map[string]bool{}
	}
	r.dirs[dir] = true
}

// syncDirs makes the renames of this run durable.
func (r *run) syncDirs() {
	r.dirsMu.Lock()
	defer r.dirsMu.Unlock()
	for d := range r.dirs {
		_ = syncDir(d) // best effort: the journal check covers a lost rename
	}
	r.dirs = nil
}

func (r *run) getBuf() []byte  { return *(r.bufs.Get().(*[]byte)) }
func (r *run) putBuf(b []byte) { r.bufs.Put(&b) }

// cleanETag strips the weak marker and quotes, as the store drivers do.
func cleanETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// etagMD5 returns the MD5 an S3 ETag carries: only a plain 32-hex ETag of a
// single-part upload is the MD5 of the content ("…-N" marks a multipart one).
func etagMD5(etag string) []byte {
	if len(etag) != 32 {
		return nil
	}
	b, err := hex.DecodeString(etag)
	if err != nil {
		return nil
	}
	return b
}

// hostKey names the server a store URL talks to, for the per-host caps.
func hostKey(storeURL string, op *store.Opener) string {
	u, err := url.Parse(storeURL)
	if err != nil || !strings.Contains(storeURL, "://") {
		return "file"
	}
	switch u.Scheme {
	case "s3":
		if op.S3Endpoint != "" {
			return hostOf(op.S3Endpoint)
		}
		return "s3.amazonaws.com"
	case "gs":
		if op.GCSEndpoint != "" {
			return hostOf(op.GCSEndpoint)
		}
		return "storage.googleapis.com"
	case "file":
		return "file"
	}
	return strings.ToLower(u.Host)
}

func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return strings.ToLower(u.Host)
	}
	return endpoint
}

// isS3 reports whether storeURL is opened with the S3 API.
// Default per-host caps (Options.PerHost zero).
const (
	perHostWeb         = 16
	perHostObjectStore = 64
)

// perHostFor is the concurrency cap of the host behind storeURL.
func perHostFor(storeURL string, opt Options) int {
	if opt.PerHost > 0 {
		return opt.PerHost
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		return perHostWeb
	}
	h := strings.ToLower(u.Hostname())
	if u.Scheme == "gs" || h == "storage.googleapis.com" || isS3(storeURL, opt.Stores) {
		return perHostObjectStore
	}
	return perHostWeb
}

func isS3(storeURL string, op *store.Opener) bool {
	u, err := url.Parse(storeURL)
	if err != nil {
		return false
	}
	if u.Scheme == "s3" {
		return true
	}
	return (u.Scheme == "https" || u.Scheme == "http") && op.S3Endpoint == "" &&
		strings.HasSuffix(strings.ToLower(u.Host), ".amazonaws.com") && strings.Contains(strings.ToLower(u.Host), "s3")
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
