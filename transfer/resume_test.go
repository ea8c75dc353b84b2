package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// resumeFixture is a server with small objects and one large file, paced so
// that a download can be interrupted in the middle.
func resumeFixture(t *testing.T) (*testServer, []Job, int64) {
	s := newTestServer(t)
	small, big := fillServer(s, 20, 3<<20+4321)
	s.pace = 200 * time.Microsecond
	jobs := []Job{{Dataset: "a", Objects: s.objects(small...)}, {Dataset: "b", Objects: s.objects(big)}}
	var total int64
	for _, n := range append(small, big) {
		total += int64(len(s.get(n).data))
	}
	return s, jobs, total
}

func resumeOptions(t *testing.T, out string) Options {
	opt := testOptions(t, out)
	opt.PartSize = 512 << 10
	opt.PerHost, opt.Total = 2, 2
	return opt
}

func checkResumed(t *testing.T, s *testServer, jobs []Job, out string, sum *Summary, total int64, interruptions int, partSize int64) {
	t.Helper()
	for _, j := range jobs {
		var names []string
		for _, o := range j.Objects {
			names = append(names, o.Path)
		}
		checkTree(t, out, sum, s, j.Dataset, names...)
	}
	noLeftovers(t, out)
	served := s.served.Load()
	t.Logf("served %d bytes for %d (%d interruptions)", served, total, interruptions)
	if limit := total + int64(interruptions)*partSize; served > limit {
		t.Errorf("served %d bytes over all runs, more than size %d + %d interruptions × part %d", served, total, interruptions, partSize)
	}
}

// TestCancelResume cancels a run in the middle (several times), then reruns.
func TestCancelResume(t *testing.T) {
	s, jobs, total := resumeFixture(t)
	out := t.TempDir()
	opt := resumeOptions(t, out)
	interruptions := 0
	for step := int64(1); step <= 3; step++ {
		ctx, cancel := context.WithCancel(context.Background())
		threshold := step * total / 4
		s.setAfterChunk(func(string) {
			if s.served.Load() >= threshold {
				cancel()
			}
		})
		sum, err := Run(ctx, jobs, opt)
		cancel()
		s.setAfterChunk(nil)
		if err == nil {
			t.Fatalf("step %d: run finished before it was cancelled", step)
		}
		if !errors.Is(err, context.Canceled) || sum == nil || sum.Err() == nil {
			t.Fatalf("step %d: err %v, summary %v", step, err, sum)
		}
		interruptions++
		noLeftovers(t, out)
	}
	sum := runOK(t, jobs, opt)
	checkResumed(t, s, jobs, out, sum, total, interruptions, opt.PartSize)
	before := s.served.Load()
	runOK(t, jobs, opt)
	if s.served.Load() != before {
		t.Errorf("idempotent rerun fetched %d bytes", s.served.Load()-before)
	}
}

const childEnv = "IMGDATASET_TRANSFER_CHILD"

type childSpec struct {
	Jobs     []Job
	Out      string
	PartSize int64
}

// TestKillResume SIGKILLs a download running in a child process several times,
// then finishes it and checks the tree and the bytes fetched over all runs.
func TestKillResume(t *testing.T) {
	if spec := os.Getenv(childEnv); spec != "" {
		var c childSpec
		if err := json.Unmarshal([]byte(spec), &c); err != nil {
			t.Fatal(err)
		}
		opt := resumeOptions(t, c.Out)
		opt.PartSize = c.PartSize
		Run(context.Background(), c.Jobs, opt)
		return
	}
	s, jobs, total := resumeFixture(t)
	out := t.TempDir()
	opt := resumeOptions(t, out)
	spec, err := json.Marshal(childSpec{Jobs: jobs, Out: out, PartSize: opt.PartSize})
	if err != nil {
		t.Fatal(err)
	}
	kills := 0
	for step := int64(1); step <= 4; step++ {
		threshold := step * total / 5
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillResume$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
	wait:
		for {
			select {
			case <-exited:
				break wait
			case <-time.After(time.Millisecond):
				if s.served.Load() >= threshold {
					cmd.Process.Kill() // SIGKILL
					<-exited
					killed = true
					break wait
				}
			}
		}
		if !killed {
			t.Fatalf("step %d: child finished before it was killed", step)
		}
		kills++
		noLeftovers(t, out)
	}
	sum := runOK(t, jobs, opt)
	checkResumed(t, s, jobs, out, sum, total, kills, opt.PartSize)
	if _, err := os.Stat(filepath.Join(out, stateDir, "journal.jsonl")); err != nil {
		t.Error(err)
	}
}
