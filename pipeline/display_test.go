package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
)

// recDisplay records what the pipeline shows.
type recDisplay struct {
	mu     sync.Mutex
	lines  []string
	phases []*recPhase
}

func (d *recDisplay) Logf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines = append(d.lines, fmt.Sprintf(format, args...))
}

func (d *recDisplay) Phase(name string, total int64) Phase {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := &recPhase{name: name, total: total}
	d.phases = append(d.phases, p)
	return p
}

type recPhase struct {
	mu          sync.Mutex
	name        string
	total, done int64
	bad         []string
	ended       int
	err         error
}

func (p *recPhase) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total != p.total || done > total {
		p.bad = append(p.bad, fmt.Sprintf("%d of %d (started with %d)", done, total, p.total))
	}
	p.done = max(p.done, done)
}

func (p *recPhase) End(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended++
	p.err = err
}

// TestConvertCropPhases checks that convert and crop show one phase each,
// for every output format, that it reaches the whole array and ends once.
func TestConvertCropPhases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	uncalibratedTIFF(t, dir, "a.tif") // 4×6×8 uint8
	src := filepath.Join(dir, "a.tif")
	for _, out := range []string{"o.zarr", "o.ome.zarr", "o.tif", "o.n5", "o.dm3", "o.precomputed"} {
		for _, c := range []struct {
			op    string
			total int64
			run   func(out string, opt Options) error
		}{
			{"convert", 4 * 6 * 8, func(out string, opt Options) error { return Convert(ctx, src, "", out, opt) }},
			{"crop", 2 * 3 * 4, func(out string, opt Options) error {
				_, err := Crop(ctx, src, manifest.Crop{Origin: []int64{1, 1, 1}, Size: []int64{2, 3, 4}}, out, opt)
				return err
			}},
		} {
			t.Run(c.op+" "+out, func(t *testing.T) {
				d := &recDisplay{}
				if err := c.run(filepath.Join(t.TempDir(), out), Options{Display: d}); err != nil {
					t.Fatal(err)
				}
				if len(d.phases) != 1 {
					t.Fatalf("%d phases, want 1", len(d.phases))
				}
				p := d.phases[0]
				if p.total != c.total || p.done != c.total || p.ended != 1 || p.err != nil || len(p.bad) > 0 {
					t.Errorf("phase %q: total %d, done %d, ended %d times, err %v, bad updates %v; want %d done, ended once",
						p.name, p.total, p.done, p.ended, p.err, p.bad, c.total)
				}
			})
		}
	}
}
