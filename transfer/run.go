package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds one Run's state and its dispatcher loop, from the first
// plan event to the summary.

const (
	// bufSize is the copy buffer of one request; memory is Total × bufSize.
	bufSize = 128 << 10
	// progressEvery is the period of progress events.
	progressEvery = 250 * time.Millisecond
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
	lock     *os.File                // nil when the caller holds the lock (Options.Locked)
	stores   map[string]*store.Store // by StoreURL; the run opened them and closes them

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

// close releases what newRun acquired: the journal, the lock and the stores.
func (r *run) close() {
	r.j.close()
	r.closeLock()
	for _, st := range r.stores {
		st.Close() // releases connections and handles; nothing to report
	}
}

func (r *run) closeLock() {
	if r.lock != nil {
		r.lock.Close()
	}
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
		r.close()
	}()

	now := time.Now()
	for _, ds := range r.datasets {
		r.emit(Event{Type: EventPlan, Dataset: ds.name, Objects: len(ds.objs), Total: ds.total})
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

func (r *run) summary(cause error) *Summary {
	s := &Summary{Fetched: r.fetched.Load()}
	for _, ds := range r.datasets {
		d := DatasetSummary{Dataset: ds.name}
		for _, o := range ds.objs {
			if !o.settled && o.res.Err == nil {
				o.release()
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

func (r *run) getBuf() []byte { return *(r.bufs.Get().(*[]byte)) }

func (r *run) putBuf(b []byte) { r.bufs.Put(&b) }
