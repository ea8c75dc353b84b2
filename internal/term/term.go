// Package term draws a run on a terminal: one progress bar per dataset while
// it downloads, one per long phase (conversion, crop, stack), and log lines
// above the bars, all through one mpb container so that nothing is drawn
// twice or over a line. The CLI owns one Terminal per command invocation and
// hands it to the pipeline as its pipeline.Display and transfer event sink.
package term

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/transfer"
)

// maxBarWidth is the widest the bar itself is drawn; the rest of a line is
// name and numbers, and on a narrow terminal the bar shrinks first.
const maxBarWidth = 40

// maxName is the most characters of a bar's name shown; longer names are
// shortened in the middle so that a bar never wraps.
const maxName = 30

// Terminal is a pipeline.Display drawing live bars on a terminal.
type Terminal struct {
	p *mpb.Progress
	w io.Writer // the terminal, for lines once mpb draws no more

	mu     sync.Mutex
	sets   map[string]*dsBar
	phases map[*phase]bool
	closed bool
}

// New starts a Terminal writing to w (a terminal: the bars are redrawn in
// place and sized to its width). Close it when the command is done.
func New(ctx context.Context, w io.Writer) *Terminal {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(maxBarWidth),
		mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	return &Terminal{p: p, w: w, sets: map[string]*dsBar{}, phases: map[*phase]bool{}}
}

// Logf writes one line above the bars, whole: a long path is wrapped by the
// terminal, never cut, and no bar is drawn over it.
func (t *Terminal) Logf(format string, args ...any) {
	t.line(fmt.Sprintf(format, args...))
}

// line writes s and a newline above the bars. mpb writes it into its next
// frame before the bars, after erasing the bars it drew last: the line lands
// above them and stays. Once mpb is done (Close, or a terminal it could not
// draw on) there are no bars, and the line goes straight to the terminal:
// a log line is never lost.
func (t *Terminal) line(s string) {
	b := []byte(s + "\n")
	if _, err := t.p.Write(b); err != nil {
		_, _ = t.w.Write(b)
	}
}

// Close ends the bars still running (a run that stopped early) and waits
// until the terminal is drawn for the last time. Nothing is drawn after.
func (t *Terminal) Close() {
	t.mu.Lock()
	t.closed = true
	for _, d := range t.sets {
		if d.bar != nil && !d.ended {
			// Interrupted: say where the download stopped, as a finished
			// one says what it took.
			t.line(fmt.Sprintf("%s: download stopped with %s of %s in place", d.name, size(d.cur), d.totalText()))
			d.bar.Abort(true)
		}
	}
	for ph := range t.phases {
		ph.bar.Abort(true)
	}
	t.mu.Unlock()
	t.p.Wait()
}

// shortName fits a bar's name in maxName characters, cutting the middle
// (the ends say which dataset and which file).
func shortName(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= maxName {
		return s
	}
	r := []rune(s)
	head := (maxName - 1) / 2
	return string(r[:head]) + "…" + string(r[n-(maxName-1-head):])
}

// addBar adds a bar named name whose numbers come from status. It is
// removed when it completes or is aborted; mpb draws a bar once more after
// that, and that frame is blank, so a finished bar is never seen next to
// the line that replaces it.
func (t *Terminal) addBar(name string, total int64, status func(decor.Statistics) string) *mpb.Bar {
	name = shortName(name)
	live := func(show func(decor.Statistics) string) decor.DecorFunc {
		return func(s decor.Statistics) string {
			if s.Completed || s.Aborted {
				return ""
			}
			return show(s)
		}
	}
	// Add, not AddBar: it fails instead of panicking after the container
	// is done (callers hold t.mu and check t.closed, so it should not be).
	b, err := t.p.Add(total, mpb.BarStyle().Build(),
		mpb.BarRemoveOnComplete(), mpb.BarFillerClearOnComplete(), mpb.BarFillerClearOnAbort(),
		mpb.PrependDecorators(decor.Any(live(func(decor.Statistics) string { return name }), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(live(status), decor.WCSyncWidthR)))
	if err != nil {
		return nil
	}
	return b
}

// dsBar is the download of one dataset.
type dsBar struct {
	name    string
	total   int64 // from the plan event; <= 0 unknown
	ended   bool  // its final line is written
	bar     *mpb.Bar
	objects map[string]int64 // bytes in place per object
	cur     int64            // bytes in place, all objects

	mu   sync.Mutex // guards what the status decorator reads (m and rate)
	m    meter      // bytes moved by this run (not those already there)
	rate float64
}

// Event is the transfer.Options.Events callback: it draws one bar per
// dataset being downloaded.
func (t *Terminal) Event(ev transfer.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	d := t.sets[ev.Dataset]
	if ev.Type == transfer.EventPlan {
		if d == nil {
			t.sets[ev.Dataset] = &dsBar{name: ev.Dataset, total: ev.Total, objects: map[string]int64{}}
		}
		return
	}
	if d == nil {
		d = &dsBar{name: ev.Dataset, total: -1, objects: map[string]int64{}}
		t.sets[ev.Dataset] = d
	}
	if d.bar == nil {
		if ev.Type == transfer.EventDatasetDone && d.cur == 0 && ev.Bytes == 0 && ev.Err == "" {
			return // nothing happened for this dataset: no bar
		}
		// A finished dataset's bar goes away; one final line replaces it.
		if d.bar = t.addBar(ev.Dataset, max(d.total, 0), d.status); d.bar == nil {
			return
		}
		d.sample(0, ev.Time)
	}
	switch ev.Type {
	case transfer.EventStart, transfer.EventSkipped:
		// Bytes already on disk (a resumed part, a complete object): in
		// place, but not moved now, so not part of the rate.
		d.place(ev.Path, ev.Bytes)
		d.sample(0, ev.Time)
	case transfer.EventProgress, transfer.EventDone, transfer.EventRetry, transfer.EventFailed:
		d.sample(max(d.place(ev.Path, ev.Bytes), 0), ev.Time)
	case transfer.EventDatasetDone:
		t.line(d.final(ev))
		d.ended = true
		if ev.Err != "" {
			d.bar.Abort(true)
		} else {
			d.bar.SetTotal(d.cur, true)
		}
		return
	}
	if d.total > 0 && d.cur > d.total {
		d.bar.SetTotal(d.cur, false)
	}
	d.bar.SetCurrent(d.cur)
}

// place records that n bytes of the object at p are in place and returns
// by how much that grew.
func (d *dsBar) place(p string, n int64) int64 {
	grew := n - d.objects[p]
	d.objects[p] = n
	d.cur += grew
	return grew
}

// sample counts n bytes moved at time at.
func (d *dsBar) sample(n int64, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m.add(n, at)
	d.rate = d.m.rate()
}

// totalText is the dataset's size as far as it is known.
func (d *dsBar) totalText() string {
	if d.total <= 0 {
		return "?"
	}
	return size(max(d.total, d.cur))
}

// status is the numbers after a dataset's bar: bytes in place of the
// total, rate and time left.
func (d *dsBar) status(s decor.Statistics) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return progressLine(s, d.rate)
}

// final is the line that replaces a dataset's bar when it is done: what
// came of it, how long it took and at what average rate.
func (d *dsBar) final(ev transfer.Event) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := d.name + ": "
	switch {
	case ev.Err != "":
		return fmt.Sprintf("%sdownload failed with %s of %s in place (the summary says why)", name, size(d.cur), d.totalText())
	case d.m.moved == 0:
		return fmt.Sprintf("%s%s, all in place already", name, size(d.cur))
	}
	return fmt.Sprintf("%sdownloaded %s in %s (%s)", name, size(d.cur), duration(ev.Time.Sub(d.m.start)), perSecond(d.m.average(ev.Time)))
}

// progressLine is "12.0 MiB / 48.0 MiB  3.0 MiB/s  ETA 12s".
func progressLine(s decor.Statistics, rate float64) string {
	line := size(s.Current) + " / " + totalOf(s)
	if rate > 0 {
		line += "  " + perSecond(rate)
		if s.Total > 0 {
			line += "  ETA " + eta(s.Total-s.Current, rate)
		}
	}
	return line
}

func totalOf(s decor.Statistics) string {
	if s.Total <= 0 {
		return "?"
	}
	return size(s.Total)
}

// Phase starts a bar for one long piece of work (pipeline.Display). It goes
// away when the work is done: the log line above it already says what it
// was, and the dataset's final line what came of it.
func (t *Terminal) Phase(name string, total int64) pipeline.Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	ph := &phase{t: t}
	ph.m.add(0, time.Now())
	if !t.closed {
		ph.bar = t.addBar(name, total, ph.status)
	}
	if ph.bar == nil {
		return noPhase{} // the command is ending: nothing is drawn any more
	}
	t.phases[ph] = true
	return ph
}

// noPhase shows nothing.
type noPhase struct{}

func (noPhase) Update(int64, int64) {}
func (noPhase) End(error)           {}

// phase is one long piece of work shown on the terminal.
type phase struct {
	t   *Terminal
	bar *mpb.Bar

	mu   sync.Mutex
	done int64
	m    meter
	rate float64
}

// Update implements pipeline.Phase.
func (p *phase) Update(done, total int64) {
	p.mu.Lock()
	if done <= p.done {
		p.mu.Unlock()
		return
	}
	p.m.add(done-p.done, time.Now())
	p.done, p.rate = done, p.m.rate()
	p.mu.Unlock()
	p.bar.SetTotal(total, false)
	p.bar.SetCurrent(done)
}

// End implements pipeline.Phase.
func (p *phase) End(err error) {
	if err != nil {
		p.bar.Abort(true)
	} else {
		p.bar.SetTotal(-1, true)
	}
	p.bar.Wait() // drawn for the last time before anything else is written
	p.t.mu.Lock()
	delete(p.t.phases, p)
	p.t.mu.Unlock()
}

func (p *phase) status(s decor.Statistics) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return progressLine(s, p.rate)
}
