package term

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/transfer"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// TestMeterRate checks the moving rate on series of samples whose true rate
// is known. The last case is what made a loopback download show KiB/s: a
// few bytes after a pause must not drag a fast rate down to their own.
func TestMeterRate(t *testing.T) {
	type sample struct {
		n  int64
		at time.Duration
	}
	const mib = 1 << 20
	for _, c := range []struct {
		name     string
		samples  []sample
		min, max float64 // bytes/s
	}{
		{"none", nil, 0, 0},
		{"one instant", []sample{{mib, 0}}, 0, 0},
		{"steady 4 MiB/s", []sample{{0, 0}, {mib, 250 * time.Millisecond}, {mib, 500 * time.Millisecond}, {mib, 750 * time.Millisecond}, {mib, time.Second}}, 4 * mib * 0.999, 4 * mib * 1.001},
		{"uneven events, 2 MiB/s", []sample{{0, 0}, {mib / 10, 50 * time.Millisecond}, {mib * 9 / 10, 500 * time.Millisecond}, {mib, time.Second}}, 2 * mib * 0.999, 2 * mib * 1.001},
		{"tail after a pause", []sample{{0, 0}, {8 * mib, time.Second}, {100, 1500 * time.Millisecond}}, 4 * mib, 8 * mib},
		{"stalled for a minute", []sample{{0, 0}, {8 * mib, time.Second}, {0, 61 * time.Second}}, 0, 0.01 * mib},
		{"out of order", []sample{{0, time.Second}, {mib, 2 * time.Second}, {mib, 1500 * time.Millisecond}}, 1.9 * mib, 2.1 * mib},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m meter
			for _, s := range c.samples {
				m.add(s.n, at(s.at))
			}
			if r := m.rate(); r < c.min || r > c.max || math.IsNaN(r) {
				t.Errorf("rate %.0f B/s, want %.0f…%.0f", r, c.min, c.max)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{size(0), "0 B"},
		{size(1023), "1023 B"},
		{size(1536), "1.5 KiB"},
		{size(3350000000), "3.1 GiB"},
		{perSecond(5.5 * (1 << 20)), "5.5 MiB/s"},
		{eta(1<<20, 0), ""},
		{eta(10<<20, 1<<20), "10s"},
		{duration(400 * time.Millisecond), "0.4s"},
		{duration(185 * time.Second), "3m05s"},
		{duration(130 * time.Minute), "2h10m"},
		{shortName("short"), "short"},
		{shortName(strings.Repeat("a", 20) + strings.Repeat("b", 30)), strings.Repeat("a", 14) + "…" + strings.Repeat("b", 15)},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestDatasetFinalLines feeds a Terminal the events of four datasets and
// checks the one final line each leaves: its size, time and average rate
// from the events' own times, the failure, or where an interrupted one
// stopped.
func TestDatasetFinalLines(t *testing.T) {
	var out bytes.Buffer
	term := New(context.Background(), &out)
	events := []transfer.Event{
		{Type: transfer.EventPlan, Dataset: "good", Objects: 2, Total: 6 << 20},
		{Type: transfer.EventPlan, Dataset: "bad", Objects: 1, Total: 1 << 20},
		{Type: transfer.EventPlan, Dataset: "there", Objects: 1, Total: 1 << 20},
		{Time: at(0), Type: transfer.EventStart, Dataset: "good", Path: "a", Total: 4 << 20},
		{Time: at(0), Type: transfer.EventStart, Dataset: "good", Path: "b", Bytes: 1 << 20, Total: 2 << 20}, // resumed
		{Time: at(0), Type: transfer.EventStart, Dataset: "bad", Path: "c", Total: 1 << 20},
		{Time: at(time.Second), Type: transfer.EventProgress, Dataset: "good", Path: "a", Bytes: 2 << 20, Total: 4 << 20},
		{Time: at(time.Second), Type: transfer.EventRetry, Dataset: "bad", Path: "c", Bytes: 300 << 10, Total: 1 << 20, Err: "503"},
		{Time: at(time.Second), Type: transfer.EventSkipped, Dataset: "there", Path: "d", Bytes: 1 << 20, Total: 1 << 20},
		{Time: at(time.Second), Type: transfer.EventDatasetDone, Dataset: "there", Total: 1 << 20, Bytes: 1 << 20},
		{Time: at(2 * time.Second), Type: transfer.EventDone, Dataset: "good", Path: "a", Bytes: 4 << 20, Total: 4 << 20},
		{Time: at(2 * time.Second), Type: transfer.EventDone, Dataset: "good", Path: "b", Bytes: 2 << 20, Total: 2 << 20},
		{Time: at(2 * time.Second), Type: transfer.EventDatasetDone, Dataset: "good", Total: 6 << 20, Bytes: 6 << 20},
		{Time: at(3 * time.Second), Type: transfer.EventFailed, Dataset: "bad", Path: "c", Bytes: 300 << 10, Total: 1 << 20, Err: "404"},
		{Time: at(3 * time.Second), Type: transfer.EventDatasetDone, Dataset: "bad", Total: 1 << 20, Err: "c: 404"},
		{Type: transfer.EventPlan, Dataset: "cut", Objects: 1, Total: 2 << 20},
		{Time: at(3 * time.Second), Type: transfer.EventProgress, Dataset: "cut", Path: "e", Bytes: 512 << 10, Total: 2 << 20},
	}
	for _, ev := range events {
		term.Event(ev)
	}
	term.Close()
	text := out.String()
	for _, want := range []string{
		"good: downloaded 6.0 MiB in 2.0s (2.5 MiB/s)\n", // 5 MiB moved in 2 s; 1 MiB was there
		"bad: download failed with 300.0 KiB of 1.0 MiB in place (the summary says why)\n",
		"there: 1.0 MiB, all in place already\n",
		"cut: download stopped with 512.0 KiB of 2.0 MiB in place\n", // interrupted: Close before its end
	} {
		if n := strings.Count(text, want); n != 1 {
			t.Errorf("%q written %d times, want once; output:\n%s", want, n, text)
		}
	}
}

// TestPhaseAndLogAfterClose checks that a phase can be updated from many
// goroutines and ended, that no bar is drawn after Close and that a log
// line after Close is still written, whole.
func TestPhaseAndLogAfterClose(t *testing.T) {
	var out bytes.Buffer
	term := New(context.Background(), &out)
	term.Logf("converting %s", "a/very/long/path/that/stays/whole.tif")
	ph := term.Phase("ds: converting whole.tif", 1000)
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			ph.Update(int64(250*(i+1)), 1000)
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	ph.End(nil)
	failed := term.Phase("ds: cropping", 10)
	failed.End(errors.New("disk full"))
	term.Close()
	term.Logf("after close")
	late := term.Phase("after close", 10) // must not panic
	late.Update(5, 10)
	late.End(nil)
	term.Event(transfer.Event{Type: transfer.EventStart, Dataset: "late", Path: "x", Time: at(0)})
	text := out.String()
	if !strings.Contains(text, "converting a/very/long/path/that/stays/whole.tif\n") {
		t.Errorf("log line not written whole:\n%s", text)
	}
	if strings.Contains(text, "late") {
		t.Errorf("a bar was drawn after Close:\n%s", text)
	}
	if !strings.HasSuffix(text, "after close\n") {
		t.Errorf("the log line after Close is lost or not last:\n%s", text)
	}
}
