package transfer

import (
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds the per-host limits: the cap the store suggests, the
// ramp-up and the back-off after throttling answers.

const (
	// initialPerHost is where the per-host ramp-up starts.
	initialPerHost = 4
	// rampEvery is the shortest time between two doublings of a host's limit.
	// A request counts as a success once its response starts, so the ramp
	// follows the server's answers, not the length of the transfers.
	rampEvery = 100 * time.Millisecond
)

type host struct {
	name        string
	limit, max  int
	inflight    int
	lastRaise   time.Time
	pausedUntil time.Time
	// pausedFor adds up the host's pauses; a task charges the part that
	// passed while it waited to its Retry-After budget.
	pausedFor time.Duration
	// earned is set when a response arrived since the last raise: the
	// server copes with the current limit, so it may double once rampEvery
	// has passed, even if no further response comes before then (ranges of
	// a large file all start at once and then run for seconds).
	earned bool
}

// ready reports whether the host has a free slot, raising its limit first
// when that is earned and due.
func (h *host) ready(now time.Time) bool {
	if h.inflight >= h.limit {
		h.raise(now)
	}
	return h.inflight < h.limit && !now.Before(h.pausedUntil)
}

// succeeded ramps the host up: polite to a server that has not yet shown it
// copes, quick to reach the cap when it does.
func (h *host) succeeded(now time.Time) {
	h.earned = true
	h.raise(now)
}

func (h *host) raise(now time.Time) {
	if h.earned && h.limit < h.max && now.Sub(h.lastRaise) >= rampEvery {
		h.limit = min(2*h.limit, h.max)
		h.lastRaise = now
		h.earned = false
	}
}

// raiseDue is when an earned raise becomes possible, if one is pending.
func (h *host) raiseDue() (time.Time, bool) {
	if !h.earned || h.limit >= h.max || h.inflight < h.limit {
		return time.Time{}, false
	}
	return h.lastRaise.Add(rampEvery), true
}

// throttled backs the host off after a 429/503 and pauses it for pause (the
// server's Retry-After, already cut to the budget of the task that got it).
func (h *host) throttled(now time.Time, pause time.Duration) {
	h.limit = max(1, h.limit/2)
	h.lastRaise = now
	h.earned = false
	if until := now.Add(pause); pause > 0 && until.After(h.pausedUntil) {
		h.pausedFor += until.Sub(maxTime(now, h.pausedUntil))
		h.pausedUntil = until
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newHost starts the ramp of the server a store describes. perHost, when
// positive, is the user's cap and wins over the store's default.
func newHost(info store.Host, perHost int, now time.Time) *host {
	hmax := info.Parallel
	if perHost > 0 {
		hmax = perHost
	}
	hmax = max(hmax, 1)
	return &host{name: info.Name, max: hmax, limit: min(initialPerHost, hmax), lastRaise: now}
}
