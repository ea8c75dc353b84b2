package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/internal/demo"
)

// loopbackPort is the part of a log line that differs between two demo
// runs: the mirrors listen on new ports each time.
var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)

// TestDemoInTerminal runs the built binary's demo in a real terminal (tmux)
// at 120×50 and 80×24 and reads everything it left on the terminal: every
// log line of the same run with --progress none is there exactly once and
// whole (the terminal wraps long paths, nothing cuts them), each dataset's
// download ends in exactly one final line, and nothing else is there — no
// stale copy of a bar, no half-overwritten line.
func TestDemoInTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skipf("tmux is not installed (%v): scripts/test installs it; cannot run the demo in a terminal", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v): cannot build the binary", err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "imgdataset")
	if out, err := exec.Command(goBin, "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The log lines, as --progress none writes them.
	code, _, stderr := runCLI(t, "demo", "--progress", "none", "--out", filepath.Join(dir, "plain"))
	if code != 0 {
		t.Fatalf("demo --progress none: exit %d\n%s", code, stderr)
	}
	want := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		want[loopbackPort.ReplaceAllString(l, "127.0.0.1:PORT")]++
	}

	for _, size := range []struct{ w, h int }{{120, 50}, {80, 24}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			screen := runInTmux(t, tmux, exe, size.w, size.h, filepath.Join(dir, fmt.Sprintf("out-%d", size.w)))
			got := map[string]int{}
			for _, l := range strings.Split(screen, "\n") {
				if l = strings.TrimRight(l, " "); l != "" {
					got[loopbackPort.ReplaceAllString(l, "127.0.0.1:PORT")]++
				}
			}
			for l, n := range want {
				if got[l] != n {
					t.Errorf("log line %q is on the terminal %d times, want %d", l, got[l], n)
				}
			}
			finals := map[string]int{}
			for l, n := range got {
				if want[l] > 0 {
					continue
				}
				name, rest, _ := strings.Cut(l, ": ")
				if isDemoDataset(name) && (strings.HasPrefix(rest, "downloaded ") || strings.HasPrefix(rest, "download failed ")) {
					finals[name] += n
					continue
				}
				t.Errorf("line %q (%d times) is neither a log line nor a dataset's final line", l, n)
			}
			for _, name := range []string{"idr-9846137", "empiar-11759", "epfl-hippocampus", "openorganelle-jrc-mus-nacc-2"} {
				if finals[name] != 1 {
					t.Errorf("dataset %s has %d final lines, want 1", name, finals[name])
				}
			}
			if t.Failed() {
				t.Logf("the terminal:\n%s", screen)
			}
		})
	}
}

func isDemoDataset(name string) bool {
	for _, d := range demo.Datasets() {
		if d.Name == name {
			return true
		}
	}
	return false
}

// runInTmux runs exe demo in a new tmux server of its own, in a w×h
// terminal, with stdout to a file (the terminal shows what stderr shows a
// person), and returns the whole history of the terminal with wrapped lines
// joined.
func runInTmux(t *testing.T, tmux, exe string, w, h int, out string) string {
	t.Helper()
	dir := t.TempDir()
	sock, done := filepath.Join(dir, "tmux.sock"), filepath.Join(dir, "exit")
	env := append(os.Environ(), "TERM=xterm-256color")
	tm := func(args ...string) ([]byte, error) {
		c := exec.Command(tmux, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...)
		c.Env = env
		var stderr bytes.Buffer
		c.Stderr = &stderr
		b, err := c.Output()
		if err != nil {
			err = fmt.Errorf("tmux %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return b, err
	}
	// The shell keeps the pane open after the demo so that it can be read.
	script := fmt.Sprintf("%q demo --out %q >%q; echo $? >%q; exec sleep 600", exe, out, filepath.Join(dir, "stdout"), done)
	if _, err := tm("new-session", "-d", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "sh", "-c", script); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tm("kill-server") })
	// Waiting, not timing: the demo's own duration varies with the machine.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		b, err := os.ReadFile(done)
		if err == nil && len(b) > 0 {
			if s := strings.TrimSpace(string(b)); s != "0" {
				screen, _ := tm("capture-pane", "-p", "-J", "-S", "-", "-E", "-")
				t.Fatalf("demo in tmux: exit %s\n%s", s, screen)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("demo in tmux did not finish in 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	screen, err := tm("capture-pane", "-p", "-J", "-S", "-", "-E", "-")
	if err != nil {
		t.Fatal(err)
	}
	return string(screen)
}
