package transfer

import (
	"net/url"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file holds the per-host limits: the ramp-up, the back-off after
// throttling answers and the default caps.

const (
	// maxRetryAfter caps how long one Retry-After may stall a host.
	maxRetryAfter = 10 * time.Minute
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

// throttled backs the host off after a 429/503.
func (h *host) throttled(now time.Time, after time.Duration) {
	h.limit = max(1, h.limit/2)
	h.lastRaise = now
	h.earned = false
	if after > 0 {
		if until := now.Add(min(after, maxRetryAfter)); until.After(h.pausedUntil) {
			h.pausedUntil = until
		}
	}
}

// hostKey names the server a store URL talks to, for the per-host caps.
func hostKey(storeURL string, op *store.Opener) string {
	u, err := url.Parse(storeURL)
	if err != nil || !strings.Contains(storeURL, "://") {
		return "file"
	}
	switch u.Scheme {
	case "s3":
		if op.S3Endpoint != "" {
			return hostOf(op.S3Endpoint)
		}
		return "s3.amazonaws.com"
	case "gs":
		if op.GCSEndpoint != "" {
			return hostOf(op.GCSEndpoint)
		}
		return "storage.googleapis.com"
	case "file":
		return "file"
	}
	return strings.ToLower(u.Host)
}

func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return strings.ToLower(u.Host)
	}
	return endpoint
}

// Default per-host caps (Options.PerHost zero).
const (
	perHostWeb         = 16
	perHostObjectStore = 64
)

// perHostFor is the concurrency cap of the host behind storeURL.
func perHostFor(storeURL string, opt Options) int {
	if opt.PerHost > 0 {
		return opt.PerHost
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		return perHostWeb
	}
	h := strings.ToLower(u.Hostname())
	if u.Scheme == "gs" || h == "storage.googleapis.com" || isS3(storeURL, opt.Stores) {
		return perHostObjectStore
	}
	return perHostWeb
}

// isS3 reports whether storeURL is opened with the S3 API.
func isS3(storeURL string, op *store.Opener) bool {
	u, err := url.Parse(storeURL)
	if err != nil {
		return false
	}
	if u.Scheme == "s3" {
		return true
	}
	return (u.Scheme == "https" || u.Scheme == "http") && op.S3Endpoint == "" &&
		strings.HasSuffix(strings.ToLower(u.Host), ".amazonaws.com") && strings.Contains(strings.ToLower(u.Host), "s3")
}
