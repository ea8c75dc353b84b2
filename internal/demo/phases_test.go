package demo

import "testing"

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
	shown := demoRun.shown.Phases()
	if len(shown) != outputs || outputs == 0 {
		t.Errorf("%d phases shown for %d block outputs", len(shown), outputs)
	}
	for _, p := range shown {
		if p.Total() <= 0 {
			t.Errorf("phase %q of %d bytes", p.Name, p.Total())
		}
		if problem := p.Problem(); problem != "" {
			t.Error(problem)
		}
	}
}
