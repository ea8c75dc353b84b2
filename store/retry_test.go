package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// flaky fails the first n calls of each method with a transient error.
type flaky struct {
	store.Driver
	n     int32
	stats atomic.Int32
	lists atomic.Int32
}

func (f *flaky) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if f.stats.Add(1) <= f.n {
		return store.ObjectInfo{}, &store.HTTPError{URL: "x", Status: 503}
	}
	return f.Driver.Stat(ctx, key)
}

func (f *flaky) List(ctx context.Context, prefix, delim string, fn func(store.ObjectInfo) error) error {
	call := f.lists.Add(1)
	seen := 0
	return f.Driver.List(ctx, prefix, delim, func(oi store.ObjectInfo) error {
		seen++
		if call <= f.n && seen == 2 {
			return io.ErrUnexpectedEOF // the page broke after one key was delivered
		}
		return fn(oi)
	})
}

func TestRetryDriverResumesListingWithoutDuplicates(t *testing.T) {
	dir := t.TempDir()
	base := store.New(store.NewFile(dir))
	for _, k := range []string{"a", "b", "c"} {
		if err := base.WriteAll(context.Background(), k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	f := &flaky{Driver: store.NewFile(dir), n: 2}
	st := store.New(store.WithRetry(f, 4, time.Millisecond))
	var keys []string
	if err := st.List(context.Background(), "", "", func(oi store.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a,b,c" || f.lists.Load() != 3 {
		t.Fatalf("keys %v after %d listings; want a,b,c after 3", keys, f.lists.Load())
	}
	if _, err := st.Stat(context.Background(), "a"); err != nil || f.stats.Load() != 3 {
		t.Fatalf("stat: %v after %d calls", err, f.stats.Load())
	}
	if _, err := st.Stat(context.Background(), "missing"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestRetryDriverGivesUpAndKeepsPermanentErrors(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if strings.HasSuffix(r.URL.Path, "/gone") {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(503)
	}))
	defer srv.Close()
	d, err := store.NewHTTP(srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(store.WithRetry(d, 3, time.Millisecond))
	if _, err := st.Stat(context.Background(), "x"); err == nil {
		t.Fatal("503 forever succeeded")
	}
	if got := n.Load(); got < 3 {
		t.Fatalf("%d requests for 3 attempts", got)
	}
	n.Store(0)
	if _, err := st.Stat(context.Background(), "gone"); !errors.Is(err, store.ErrNotExist) || n.Load() > 2 {
		t.Fatalf("404 retried or misreported: %v after %d requests", err, n.Load())
	}
}

// TestClassify: one classification for every retry layer.
func TestClassify(t *testing.T) {
	httpErr := func(status int) error {
		return fmt.Errorf("http store: read %q: %w", "k", &store.HTTPError{URL: "http://h/k", Status: status})
	}
	cases := []struct {
		name string
		err  error
		want store.Class
	}{
		{"nil", nil, store.Permanent},
		{"cancelled", fmt.Errorf("stat: %w", context.Canceled), store.Permanent},
		{"deadline of one request", fmt.Errorf("stat: %w", context.DeadlineExceeded), store.Temporary},
		{"corrupt", fmt.Errorf("chunk 3: %w", store.ErrCorrupt), store.Corrupt},
		{"bad zip", fmt.Errorf("a.zip: %w", store.ErrBadZip), store.Corrupt},
		{"not exist", fmt.Errorf("stat: %w", store.ErrNotExist), store.NotFound},
		{"local not exist", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, store.NotFound},
		{"404", httpErr(404), store.NotFound},
		{"410", httpErr(410), store.NotFound},
		{"NoSuchKey with 403", &store.HTTPError{Status: 403, Code: "NoSuchKey"}, store.NotFound},
		{"403", httpErr(403), store.Permanent},
		{"416", httpErr(416), store.Permanent},
		{"408", httpErr(408), store.Temporary},
		{"425", httpErr(425), store.Temporary},
		{"429", httpErr(429), store.Temporary},
		{"500", httpErr(500), store.Temporary},
		{"501", httpErr(501), store.Permanent},
		{"503", httpErr(503), store.Temporary},
		{"505", httpErr(505), store.Permanent},
		{"bad key", fmt.Errorf("x: %w", store.ErrBadKey), store.Permanent},
		{"not supported", fmt.Errorf("x: %w", store.ErrNotSupported), store.Permanent},
		{"too large", fmt.Errorf("x: %w", store.ErrTooLarge), store.Permanent},
		{"truncated body", fmt.Errorf("GET x: %w", io.ErrUnexpectedEOF), store.Temporary},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, store.Temporary},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), store.Temporary},
		{"local disk", &fs.PathError{Op: "read", Path: "/x", Err: syscall.EIO}, store.Permanent},
		{"unmarked protocol trouble", errors.New("GET x: body longer than announced"), store.Temporary},
	}
	for _, c := range cases {
		if got := store.Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %s, want %s", c.name, c.err, got, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		err       error
		wait      time.Duration
		throttled bool
	}{
		{fmt.Errorf("x: %w", &store.HTTPError{Status: 429, RetryAfter: 3 * time.Second}), 3 * time.Second, true},
		{&store.HTTPError{Status: 503}, 0, true},
		{&store.HTTPError{Status: 500, RetryAfter: time.Second}, time.Second, false},
		{io.ErrUnexpectedEOF, 0, false},
	}
	for _, c := range cases {
		if w, th := store.RetryAfter(c.err); w != c.wait || th != c.throttled {
			t.Errorf("RetryAfter(%v) = %s, %v; want %s, %v", c.err, w, th, c.wait, c.throttled)
		}
	}
}

func TestRetryTransportRetriesIdempotentOnly(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := &http.Client{Transport: &store.RetryTransport{Delay: time.Millisecond}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || n.Load() != 3 {
		t.Fatalf("status %d after %d requests; want 200 after 3", resp.StatusCode, n.Load())
	}
	n.Store(0)
	resp, err = c.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || n.Load() != 1 {
		t.Fatalf("POST was retried: status %d after %d requests", resp.StatusCode, n.Load())
	}
}

// TestRetryTransportAnswers: the transport retries what Classify calls
// Temporary and hands every other answer, or the last one, to the caller.
func TestRetryTransportAnswers(t *testing.T) {
	cases := []struct {
		status   int
		attempts int
		want     int32 // requests made
	}{
		{http.StatusTooManyRequests, 3, 3},
		{http.StatusInternalServerError, 3, 3},
		{http.StatusNotFound, 3, 1},
		{http.StatusForbidden, 3, 1},
		{http.StatusNotImplemented, 3, 1},
	}
	for _, c := range cases {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.WriteHeader(c.status)
		}))
		cl := &http.Client{Transport: &store.RetryTransport{Attempts: c.attempts, Delay: time.Millisecond}}
		resp, err := cl.Get(srv.URL)
		srv.Close()
		if err != nil {
			t.Fatalf("%d: %v", c.status, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status || n.Load() != c.want {
			t.Errorf("%d: status %d after %d requests; want it after %d", c.status, resp.StatusCode, n.Load(), c.want)
		}
	}
}

// TestRetryTransportStopsWithContext: a cancelled request is not retried
// and reports the cancellation, not the server's last answer.
func TestRetryTransportStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cl := &http.Client{Transport: &store.RetryTransport{Attempts: 5, Delay: time.Millisecond}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := cl.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.Canceled) || n.Load() != 1 {
		t.Errorf("err %v after %d requests; want context.Canceled after 1", err, n.Load())
	}
}
