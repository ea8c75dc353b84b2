package demo

import (
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/pipeline"
)

// phases is a pipeline.Display that records the phases a run shows.
type phases struct {
	mu   sync.Mutex
	list []*phase
}

func (p *phases) Logf(string, ...any) {}

func (p *phases) Phase(name string, total int64) pipeline.Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := &phase{name: name, total: total}
	p.list = append(p.list, ph)
	return ph
}

type phase struct {
	mu          sync.Mutex
	name        string
	total, done int64
	ends        int
	err         error
}

func (p *phase) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total == p.total {
		p.done = max(p.done, done)
	}
}

func (p *phase) End(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ends++
	p.err = err
}

// TestDemoShowsPhases checks that every block output of the demo — each
// conversion, the stack of sections and the crop — was shown as one phase
// that reached its whole size and ended once, so a person watching a
// 3 GB conversion sees it move.
func TestDemoShowsPhases(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo skipped in -short mode")
	}
	_, rep := runDemo(t)
	outputs := 0
	for _, d := range rep.Datasets {
		outputs += len(d.Outputs)
	}
	shown := &demoRun.shown
	shown.mu.Lock()
	defer shown.mu.Unlock()
	if len(shown.list) != outputs || outputs == 0 {
		t.Errorf("%d phases shown for %d block outputs", len(shown.list), outputs)
	}
	for _, p := range shown.list {
		if p.total <= 0 || p.done != p.total || p.ends != 1 || p.err != nil {
			t.Errorf("phase %q: %d of %d bytes, ended %d times, err %v", p.name, p.done, p.total, p.ends, p.err)
		}
	}
}
