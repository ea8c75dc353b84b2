package transfer

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// JSONLines returns an Events callback that writes each event as one JSON
// line to w, for logs and CI. Write errors are ignored: progress must never
// stop a download.
func JSONLines(w io.Writer) func(Event) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
}

// Bars returns an Events callback that draws one progress bar per active
// dataset on w (bytes, rate, ETA), and a function that waits for the bars to
// finish drawing; call it after Run returns. w is meant to be a terminal: the
// bars are redrawn in place (callers log JSONLines when it is not).
func Bars(ctx context.Context, w io.Writer) (func(Event), func()) {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	b := &bars{p: p, sets: map[string]*dsBar{}}
	return b.event, b.wait
}

type bars struct {
	mu   sync.Mutex
	p    *mpb.Progress
	sets map[string]*dsBar
	done bool
}

type dsBar struct {
	total   int64
	bar     *mpb.Bar
	objects map[string]int64 // bytes in place per object
	cur     int64
	last    time.Time
}

func (b *bars) event(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	d := b.sets[ev.Dataset]
	if ev.Type == EventPlan {
		if d == nil {
			b.sets[ev.Dataset] = &dsBar{total: ev.Total, objects: map[string]int64{}}
		}
		return
	}
	if d == nil {
		d = &dsBar{total: -1, objects: map[string]int64{}}
		b.sets[ev.Dataset] = d
	}
	if d.bar == nil {
		if ev.Type == EventDatasetDone && d.cur == 0 && ev.Bytes == 0 && ev.Err == "" {
			return // nothing happened for this dataset: no bar
		}
		total := d.total
		if total <= 0 {
			total = 0 // mpb treats 0 as unknown until SetTotal
		}
		d.bar = b.p.AddBar(total,
			mpb.PrependDecorators(decor.Name(ev.Dataset, decor.WCSyncSpaceR), decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace)),
			mpb.AppendDecorators(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace), decor.Name(" ETA "), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
		)
		d.last = ev.Time
	}
	switch ev.Type {
	case EventStart, EventProgress, EventDone, EventSkipped, EventRetry, EventFailed:
		prev := d.objects[ev.Path]
		d.objects[ev.Path] = ev.Bytes
		cur := d.cur + ev.Bytes - prev
		dur := ev.Time.Sub(d.last)
		d.last = ev.Time
		if cur > d.cur && ev.Type != EventSkipped {
			d.bar.EwmaSetCurrent(cur, max(dur, time.Millisecond))
		} else {
			d.bar.SetCurrent(cur)
		}
		d.cur = cur
		if d.total > 0 && d.cur > d.total {
			d.bar.SetTotal(d.cur, false)
		}
	case EventDatasetDone:
		if ev.Err != "" {
			d.bar.Abort(false)
		} else {
			d.bar.SetTotal(d.cur, true)
		}
	}
}

func (b *bars) wait() {
	b.mu.Lock()
	b.done = true
	for _, d := range b.sets {
		if d.bar != nil && !d.bar.Completed() && !d.bar.Aborted() {
			d.bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}
