package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTaskJournals runs the two datasets of a fixture as two tasks of a
// sharded run, each with a journal of its own, one of them cancelled in
// the middle and rerun (it resumes from its journal); then MergeJournals
// folds them into the main journal, and a run of everything finds every
// object done and downloads nothing.
func TestTaskJournals(t *testing.T) {
	s, jobs, total := resumeFixture(t)
	out := t.TempDir()
	opt := resumeOptions(t, out)
	names := []string{"tasks/0-of-2.journal.jsonl", "tasks/1-of-2.journal.jsonl"}

	t0 := opt
	t0.Journal = names[0]
	runOK(t, jobs[:1], t0)

	t1 := opt
	t1.Journal = names[1]
	ctx, cancel := context.WithCancel(context.Background())
	s.setAfterChunk(func(string) {
		if s.served.Load() >= total*3/4 {
			cancel()
		}
	})
	if _, err := Run(ctx, jobs[1:], t1); !errors.Is(err, context.Canceled) {
		t.Fatalf("task 1 was to be cancelled in the middle; Run = %v", err)
	}
	cancel()
	s.setAfterChunk(nil)
	sum := runOK(t, jobs[1:], t1)
	checkResumed(t, s, jobs[1:], out, sum, total, 1, opt.PartSize)
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(out, stateDir, filepath.FromSlash(n))); err != nil {
			t.Fatalf("task journal %s: %v", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, stateDir, mainJournal)); err == nil {
		t.Fatal("the tasks wrote the main journal")
	}

	if err := MergeJournals(out, names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(out, stateDir, filepath.FromSlash(n))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("task journal %s is still there after the merge (%v)", n, err)
		}
	}
	served := s.served.Load()
	all := runOK(t, jobs, opt)
	if s.served.Load() != served {
		t.Errorf("the run after the merge downloaded %d bytes again", s.served.Load()-served)
	}
	var objects, skipped int
	for _, j := range jobs {
		objects += len(j.Objects)
	}
	for _, d := range all.Datasets {
		skipped += d.Skipped
	}
	if skipped != objects {
		t.Errorf("the run after the merge skipped %d of %d objects", skipped, objects)
	}
	// A journal name that leaves the state directory is refused.
	if err := MergeJournals(out, []string{"../escape.jsonl"}); err == nil {
		t.Error("MergeJournals took a journal outside the state directory")
	}
}

// TestTaskLocks checks the locks of a sharded run: tasks share the output,
// the same task twice does not, and a whole-output lock (a run without
// --shard, or finalize) excludes and is excluded by every task.
func TestTaskLocks(t *testing.T) {
	type step struct {
		take    string // "task:NAME" or "output"
		release int    // index of an earlier step to release first; -1 none
		locked  bool   // want ErrLocked
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"tasks share the output", []step{{"task:0-of-2", -1, false}, {"task:1-of-2", -1, false}}},
		{"the same task twice", []step{{"task:0-of-2", -1, false}, {"task:0-of-2", -1, true}}},
		{"finalize while a task runs", []step{{"task:0-of-2", -1, false}, {"output", -1, true}}},
		{"finalize after the tasks", []step{{"task:0-of-2", -1, false}, {"task:1-of-2", -1, false}, {"output", 0, true}, {"output", 1, false}}},
		{"a task while the output is locked", []step{{"output", -1, false}, {"task:0-of-2", -1, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			held := make([]interface{ Close() error }, len(c.steps))
			defer func() {
				for _, h := range held {
					if h != nil {
						h.Close()
					}
				}
			}()
			for i, s := range c.steps {
				if s.release >= 0 && held[s.release] != nil {
					held[s.release].Close()
					held[s.release] = nil
				}
				var err error
				var l interface{ Close() error }
				if name, ok := strings.CutPrefix(s.take, "task:"); ok {
					l, err = LockTask(dir, name)
				} else {
					l, err = LockOutput(dir)
				}
				if got := errors.Is(err, ErrLocked); got != s.locked || (err != nil && !got) {
					t.Fatalf("step %d (%s): err %v, want locked=%v", i, s.take, err, s.locked)
				}
				if err == nil {
					held[i] = l
				}
			}
		})
	}
}
