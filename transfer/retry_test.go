package transfer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// TestRetryAfterBounded: a server that answers every GET with 429 and
// Retry-After: 999999 holds each request for at most MaxRetryAfter, host
// pauses included, after which it fails with an error naming the wait; the
// attempt budget is deliberately larger, so only the cap can end the run.
func TestRetryAfterBounded(t *testing.T) {
	s := newTestServer(t)
	names := []string{"a", "b", "c", "d"}
	for i, n := range names {
		s.put(n, randBytes(uint64(i), 1000))
	}
	s.fault = func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
		if r.Method != http.MethodGet {
			return false
		}
		w.Header().Set("Retry-After", "999999")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return true
	}
	opt := testOptions(t, t.TempDir())
	opt.MaxRetryAfter = 100 * time.Millisecond
	opt.Retries = 50
	opt.PerHost = 1
	sum, err := Run(context.Background(), []Job{{Dataset: "d", Objects: s.objects(names...)}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if f := sum.Failed(); len(f) != len(names) {
		t.Fatalf("%d of %d objects failed, want all", len(f), len(names))
	}
	requests := 0
	for _, r := range sum.Failed() {
		requests += s.count(r.Path)
		var he *store.HTTPError
		if !errors.As(r.Err, &he) || he.Status != http.StatusTooManyRequests {
			t.Errorf("%s: %v, want the 429 as cause", r.Path, r.Err)
		}
		if msg := r.Err.Error(); !strings.Contains(msg, "MaxRetryAfter") || !strings.Contains(msg, "after 100ms of Retry-After waits") {
			t.Errorf("%s: error %q does not say the 100ms cap ended it", r.Path, msg)
		}
	}
	// One object waits out the capped Retry-After and asks once more; the
	// others sat through that host pause, so their budget is spent at their
	// first 429.
	if want := len(names) + 1; requests != want {
		t.Errorf("%d requests, want %d", requests, want)
	}
}
