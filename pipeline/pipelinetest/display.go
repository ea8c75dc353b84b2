// Package pipelinetest records what the pipeline shows a person, so that
// tests can check the log lines and the phases of a run.
package pipelinetest

import (
	"fmt"
	"slices"
	"sync"

	"github.com/imgdataset/imgdataset/pipeline"
)

// Display is a pipeline.Display that records what it is shown. The zero
// value is ready; it is safe for concurrent use.
type Display struct {
	mu     sync.Mutex
	lines  []string
	phases []*Phase
}

// Logf implements pipeline.Display.
func (d *Display) Logf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines = append(d.lines, fmt.Sprintf(format, args...))
}

// Phase implements pipeline.Display.
func (d *Display) Phase(name string, total int64) pipeline.Phase {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := &Phase{Name: name, total: total}
	d.phases = append(d.phases, p)
	return p
}

// Lines returns the log lines written so far.
func (d *Display) Lines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.lines)
}

// Phases returns the phases started so far, in order.
func (d *Display) Phases() []*Phase {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.phases)
}

// Phase is one recorded phase.
type Phase struct {
	Name string

	mu          sync.Mutex
	total, done int64
	bad         []string
	ends        int
	err         error
}

// Update implements pipeline.Phase.
func (p *Phase) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total != p.total || done < 0 || done > total {
		p.bad = append(p.bad, fmt.Sprintf("update %d of %d", done, total))
	}
	p.done = max(p.done, done)
}

// End implements pipeline.Phase.
func (p *Phase) End(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ends++
	p.err = err
}

// Total is the size the phase was started with.
func (p *Phase) Total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Problem says what is wrong with a phase that should have completed: ""
// when every update was within the total it started with, it reached that
// total, and it ended once without an error.
func (p *Phase) Problem() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case len(p.bad) > 0:
		return fmt.Sprintf("phase %q of %d bytes: %v", p.Name, p.total, p.bad)
	case p.done != p.total:
		return fmt.Sprintf("phase %q reached %d of %d bytes", p.Name, p.done, p.total)
	case p.ends != 1 || p.err != nil:
		return fmt.Sprintf("phase %q ended %d times, last with %v", p.Name, p.ends, p.err)
	}
	return ""
}
