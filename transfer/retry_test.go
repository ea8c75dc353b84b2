package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// TestCutAtHalf: a server that always ends the body halfway through what was
// asked. Each retry resumes after the bytes already received (a Range
// request, also for an object fetched whole), every attempt counts although
// each made progress, and the object fails after Retries+1 attempts per
// request with the truncation as cause, having fetched no byte twice.
func TestCutAtHalf(t *testing.T) {
	const size = 3 << 20
	cases := []struct {
		name     string
		partSize int64
		requests int // most GETs of the object: Retries+1 per request
	}{
		{"small object, one GET per attempt", 32 << 20, 4},
		// Three 1 MiB ranges; the first to give up fails the object and
		// cancels the others.
		{"ranged object", 1 << 20, 3 * 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t)
			data := randBytes(1, size)
			s.put("cut", data)
			var starts startLog
			s.fault = func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
				if r.Method != http.MethodGet {
					return false
				}
				lo, hi := starts.answer(w, r, s.get(name), true)
				s.writeBody(w, name, data[lo:lo+(hi-lo)/2]) // then the handler returns short
				return true
			}
			out := t.TempDir()
			opt := testOptions(t, out)
			opt.PartSize = c.partSize
			opt.Retries = 3
			sum, err := Run(context.Background(), []Job{{Dataset: "d", Objects: s.objects("cut")}}, opt)
			if err != nil {
				t.Fatal(err)
			}
			f := sum.Failed()
			if len(f) != 1 || !errors.Is(f[0].Err, io.ErrUnexpectedEOF) || !strings.Contains(f[0].Err.Error(), "giving up after 4 attempts") {
				t.Fatalf("failed = %+v, want cut giving up after 4 attempts on a truncated body", f)
			}
			if got := starts.get(); len(got) > c.requests {
				t.Errorf("%d GETs (starting at %v), want at most %d", len(got), got, c.requests)
			}
			// Every retry asks only for bytes not yet received, so even the
			// server's count (which includes what a cancelled request left
			// unread) stays below one copy of the object.
			if got := s.served.Load(); got >= size {
				t.Errorf("served %d bytes of a %d-byte object that never completes: bytes were fetched twice", got, size)
			}
			if c.partSize > size {
				// The whole-object GET resumes where the last one was cut.
				want := []int64{0, size / 2, size * 3 / 4, size * 7 / 8}
				if got := starts.get(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("GETs start at %v, want %v", got, want)
				}
				if left, _ := os.ReadDir(filepath.Join(out, stateDir, "parts")); len(left) != 0 {
					t.Errorf("temp files left behind: %v", left)
				}
			}
		})
	}
}

// TestSmallResume: a whole-object GET cut off once is resumed with a Range
// request only when the answer's ETag shows the same version; otherwise the
// retry starts over and the result is the current version, complete.
func TestSmallResume(t *testing.T) {
	const size = 200 << 10
	cases := []struct {
		name   string
		etag   bool // the server sends ETags
		change bool // the object changes after the cut
		starts []int64
	}{
		{"same version: resumed", true, false, []int64{0, size / 2}},
		{"changed: started over", true, true, []int64{0, size / 2, 0}},
		{"no validator: started over", false, false, []int64{0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t)
			s.put("x", randBytes(1, size))
			changed := randBytes(2, size)
			var starts startLog
			s.fault = func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
				if r.Method != http.MethodGet {
					return false
				}
				obj := s.get(name)
				lo, hi := starts.answer(w, r, obj, c.etag)
				if n == 0 {
					s.writeBody(w, name, obj.data[:size/2]) // cut off
					if c.change {
						s.put(name, changed)
					}
					return true
				}
				s.writeBody(w, name, obj.data[lo:hi])
				return true
			}
			out := t.TempDir()
			opt := testOptions(t, out)
			opt.PartSize = 32 << 20 // the object is small: one GET
			objs := s.objects("x")
			objs[0].ETag = ""
			sum := runOK(t, []Job{{Dataset: "d", Objects: objs}}, opt)
			checkTree(t, out, sum, s, "d", "x")
			if got := starts.get(); fmt.Sprint(got) != fmt.Sprint(c.starts) {
				t.Errorf("GETs start at %v, want %v", got, c.starts)
			}
		})
	}
}

// startLog records where the GETs of a fault handler start.
type startLog struct {
	mu     sync.Mutex
	starts []int64
}

// answer writes the headers of the answer to r for obj, as the test server
// would, records where the asked bytes [lo, hi) start, and leaves the body to
// the caller.
func (l *startLog) answer(w http.ResponseWriter, r *http.Request, obj *testObject, etag bool) (lo, hi int64) {
	size := int64(len(obj.data))
	lo, hi = 0, size
	rg := r.Header.Get("Range")
	if rg != "" {
		lo, hi, _ = parseRange(rg, size)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", lo, hi-1, size))
	}
	l.mu.Lock()
	l.starts = append(l.starts, lo)
	l.mu.Unlock()
	if etag {
		w.Header().Set("ETag", `"`+obj.etag+`"`)
	}
	w.Header().Set("Content-Length", fmt.Sprint(hi-lo))
	if rg != "" {
		w.WriteHeader(http.StatusPartialContent)
	}
	return lo, hi
}

func (l *startLog) get() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.starts)
}
