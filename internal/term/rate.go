package term

import (
	"fmt"
	"math"
	"time"

	"github.com/vbauerster/mpb/v8/decor"
)

// rateWindow is the time constant of the moving rate: long enough that the
// gaps between progress events (a quarter second) do not make it jump, short
// enough that a stalled download shows it within seconds.
const rateWindow = 3 * time.Second

// meter measures a rate in bytes per second as an exponentially weighted
// moving average over time, not over samples: bytes and elapsed time are
// both summed with weights that decay by their age, and the rate is their
// ratio. Averaging per-sample rates (or per-byte durations) instead lets a
// few bytes that arrive after a long pause dominate — the "4.9 KiB/s" a
// loopback download showed.
type meter struct {
	bytes, secs float64   // decayed sums
	last        time.Time // time of the last sample; zero before the first
	start       time.Time
	moved       int64 // all bytes counted, undecayed, for the average
}

// add counts n bytes that arrived at t (since the last sample).
func (m *meter) add(n int64, t time.Time) {
	if m.last.IsZero() {
		m.last, m.start = t, t
	}
	dt := t.Sub(m.last).Seconds()
	if dt < 0 {
		dt = 0 // events from different goroutines may come a little out of order
	} else {
		m.last = t
	}
	w := math.Exp(-dt / rateWindow.Seconds())
	m.bytes = m.bytes*w + float64(n)
	m.secs = m.secs*w + dt
	m.moved += n
}

// rate is the current rate in bytes per second; 0 until time has passed.
func (m *meter) rate() float64 {
	if m.secs <= 0 {
		return 0
	}
	return m.bytes / m.secs
}

// average is the rate over the whole time from the first sample to end.
func (m *meter) average(end time.Time) float64 {
	d := end.Sub(m.start).Seconds()
	if m.start.IsZero() || d <= 0 {
		return 0
	}
	return float64(m.moved) / d
}

// size formats n bytes in IEC units (1.5 KiB, 3.2 GiB), as everything the
// terminal shows does.
func size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n) // decor would say "512.0 b"
	}
	return fmt.Sprintf("% .1f", decor.SizeB1024(n))
}

// perSecond formats a rate in bytes per second in IEC units (12.0 MiB/s).
func perSecond(r float64) string {
	return size(int64(math.Round(r))) + "/s"
}

// eta formats the time left for n bytes at r bytes per second; "" when
// there is no rate yet.
func eta(n int64, r float64) string {
	if r <= 0 || n < 0 {
		return ""
	}
	return duration(time.Duration(float64(n) / r * float64(time.Second)))
}

// duration formats d for a person: 0.4s, 12s, 3m05s, 2h10m.
func duration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
