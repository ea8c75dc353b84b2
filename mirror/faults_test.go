package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeClock lets pacing run without wall time: Sleep records and advances.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) total() time.Duration {
	var t time.Duration
	for _, d := range c.sleeps {
		t += d
	}
	return t
}

// recWriter records the size of every body write the fault layer makes.
type recWriter struct {
	h       http.Header
	status  int
	writes  []int
	body    bytes.Buffer
	flushes int
}

func newRec() *recWriter                 { return &recWriter{h: http.Header{}} }
func (w *recWriter) Header() http.Header { return w.h }
func (w *recWriter) WriteHeader(c int) {
	if w.status == 0 {
		w.status = c
	}
}
func (w *recWriter) Flush() { w.flushes++ }
func (w *recWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.writes = append(w.writes, len(p))
	return w.body.Write(p)
}

func fileHandler(data []byte) http.Handler {
	f := memFile{data: data, mod: time.Date(2024, 1, 15, 10, 31, 0, 0, time.UTC)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, "f.bin", f) })
}

func withClock(h *FaultHandler) *fakeClock {
	c := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.Now, h.Sleep = c.Now, c.Sleep
	return c
}

func serveRec(h http.Handler, hdr ...string) *recWriter {
	req := httptest.NewRequest(http.MethodGet, "/data/f.bin", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := newRec()
	h.ServeHTTP(w, req)
	return w
}

func TestFaultBandwidthPacing(t *testing.T) {
	data := synth("paced", 10000)
	for _, rate := range []int64{2000, 3333, 40000} {
		f := Faults(fileHandler(data), FaultConfig{BytesPerSec: rate})
		clk := withClock(f)
		w := serveRec(f)
		q := int(max(rate/20, 1))
		if !bytes.Equal(w.body.Bytes(), data) {
			t.Fatalf("rate %d: body changed", rate)
		}
		for i, n := range w.writes {
			if n > q {
				t.Errorf("rate %d: write %d is %d bytes, slice is %d", rate, i, n, q)
			}
		}
		if want := (len(data) + q - 1) / q; len(w.writes) != want || w.flushes < want {
			t.Errorf("rate %d: %d writes, %d flushes, want %d", rate, len(w.writes), w.flushes, want)
		}
		// The last slice goes out when the clock reaches (total-last)/rate.
		last := w.writes[len(w.writes)-1]
		want := time.Duration(float64(len(data)-last) / float64(rate) * float64(time.Second))
		if got := clk.total(); got < want-time.Millisecond || got > want+time.Millisecond {
			t.Errorf("rate %d: slept %v, want %v", rate, got, want)
		}
	}
}

func TestFaultTrickle(t *testing.T) {
	data := synth("trickle", 1000)
	f := Faults(fileHandler(data), FaultConfig{TrickleEvery: 2, TrickleBytes: 64, TrickleChunk: 8, TrickleDelay: 5 * time.Millisecond})
	clk := withClock(f)
	if w := serveRec(f); len(w.writes) != 1 || len(clk.sleeps) != 0 {
		t.Errorf("request 1 trickled: %v", w.writes)
	}
	w := serveRec(f)
	if !bytes.Equal(w.body.Bytes(), data) {
		t.Fatal("trickled body changed")
	}
	if len(w.writes) != 9 || w.writes[0] != 8 || w.writes[7] != 8 || w.writes[8] != 1000-64 {
		t.Errorf("writes %v, want 8×8 then the rest", w.writes)
	}
	if len(clk.sleeps) != 8 || clk.sleeps[0] != 5*time.Millisecond {
		t.Errorf("sleeps %v, want 8×5ms", clk.sleeps)
	}
}

func TestFaultLatency(t *testing.T) {
	f := Faults(fileHandler([]byte("abc")), FaultConfig{Latency: 250 * time.Millisecond})
	clk := withClock(f)
	w := serveRec(f)
	if w.status != 200 || w.body.String() != "abc" || len(clk.sleeps) != 1 || clk.sleeps[0] != 250*time.Millisecond {
		t.Errorf("status %d body %q sleeps %v", w.status, w.body.String(), clk.sleeps)
	}
}

func TestFaultStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        FaultConfig
		want       []int
		retryAfter string
	}{
		{"429 every 3", FaultConfig{Status429Every: 3, RetryAfter: 2 * time.Second}, []int{200, 200, 429, 200, 200, 429}, "2"},
		{"503 every 2", FaultConfig{Status503Every: 2, RetryAfter: 100 * time.Millisecond}, []int{200, 503, 200, 503}, "1"},
		{"503 always", FaultConfig{Status503Prob: 1}, []int{503, 503}, "0"},
		{"503 wins over 429", FaultConfig{Status429Every: 1, Status503Every: 1}, []int{503}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Faults(fileHandler([]byte("body")), tc.cfg)
			withClock(f)
			for i, want := range tc.want {
				w := serveRec(f)
				if w.status != want {
					t.Errorf("request %d: %d, want %d", i+1, w.status, want)
				}
				if want != 200 && w.h.Get("Retry-After") != tc.retryAfter {
					t.Errorf("request %d: Retry-After %q, want %q", i+1, w.h.Get("Retry-After"), tc.retryAfter)
				}
			}
		})
	}
}

func TestFaultSeedDeterminism(t *testing.T) {
	run := func(seed uint64) []faultMode {
		f := Faults(http.NotFoundHandler(), FaultConfig{Seed: seed, Status429Prob: 0.3, ResetProb: 0.2, TruncateProb: 0.1})
		cfg := f.cfg.Load()
		var out []faultMode
		for range 200 {
			m, _ := f.decide(cfg)
			out = append(out, m)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if !equalModes(a, b) {
		t.Error("same seed, different faults")
	}
	if equalModes(a, c) {
		t.Error("different seeds, same faults")
	}
	n429 := 0
	for _, m := range a {
		if m == mode429 {
			n429++
		}
	}
	if n429 < 30 || n429 > 90 {
		t.Errorf("%d of 200 requests got 429 at p=0.3", n429)
	}
}

func equalModes(a, b []faultMode) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultPathPrefix(t *testing.T) {
	f := Faults(fileHandler([]byte("x")), FaultConfig{PathPrefix: "/data/", Status503Every: 1})
	req := httptest.NewRequest(http.MethodGet, "/other", nil)
	w := newRec()
	f.ServeHTTP(w, req)
	if w.status != 200 || f.Requests() != 0 {
		t.Errorf("outside the prefix: %d, counted %d", w.status, f.Requests())
	}
	if w := serveRec(f); w.status != 503 || f.Requests() != 1 {
		t.Errorf("inside the prefix: %d, counted %d", w.status, f.Requests())
	}
}

func TestFaultChangeETag(t *testing.T) {
	data := synth("etag", 100)
	f := Faults(fileHandler(data), FaultConfig{ChangeETagAfter: 2})
	w1, w2 := serveRec(f), serveRec(f)
	old := w1.h.Get("ETag")
	if old == "" || w2.h.Get("ETag") != old || !bytes.Equal(w2.body.Bytes(), data) {
		t.Fatalf("before the change: %q %q", old, w2.h.Get("ETag"))
	}
	w3 := serveRec(f)
	cur := w3.h.Get("ETag")
	if cur == old || w3.status != 200 || bytes.Equal(w3.body.Bytes(), data) || len(w3.body.Bytes()) != len(data) {
		t.Fatalf("after the change: ETag %q (old %q), status %d", cur, old, w3.status)
	}
	if lm1, lm3 := w1.h.Get("Last-Modified"), w3.h.Get("Last-Modified"); lm1 == lm3 {
		t.Errorf("Last-Modified unchanged: %q", lm3)
	}
	if w := serveRec(f, "If-None-Match", old); w.status != 200 || !bytes.Equal(w.body.Bytes(), w3.body.Bytes()) {
		t.Errorf("If-None-Match old: %d", w.status)
	}
	if w := serveRec(f, "If-None-Match", cur); w.status != http.StatusNotModified {
		t.Errorf("If-None-Match current: %d", w.status)
	}
	if w := serveRec(f, "Range", "bytes=0-9", "If-Range", old); w.status != 200 || w.body.Len() != len(data) {
		t.Errorf("If-Range old: %d, %d bytes (want the whole new body)", w.status, w.body.Len())
	}
	if w := serveRec(f, "Range", "bytes=0-9", "If-Range", cur); w.status != 206 || !bytes.Equal(w.body.Bytes(), w3.body.Bytes()[:10]) {
		t.Errorf("If-Range current: %d", w.status)
	}
	if w := serveRec(f, "If-Modified-Since", w1.h.Get("Last-Modified")); w.status != 200 {
		t.Errorf("If-Modified-Since before the change: %d", w.status)
	}
}

// startFaulty serves h behind faults on a real loopback server.
func startFaulty(t *testing.T, h http.Handler, cfg FaultConfig) (string, *Counter) {
	t.Helper()
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t.Context(), "test", ln, h, Options{Faults: &cfg})
	t.Cleanup(s.close)
	return s.url, s.counter
}

func TestFaultTruncateAndReset(t *testing.T) {
	data := synth("cut", 50000)
	noLength := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i < 3; i++ {
			w.Write(data[i*1000 : (i+1)*1000])
		}
	})
	for _, tc := range []struct {
		name  string
		h     http.Handler
		cfg   FaultConfig
		total int
	}{
		{"truncate file", fileHandler(data), FaultConfig{TruncateEvery: 1}, len(data)},
		{"truncate unsized body", noLength, FaultConfig{TruncateProb: 1}, 3000},
		{"reset file", fileHandler(data), FaultConfig{ResetEvery: 1}, len(data)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, cnt := startFaulty(t, tc.h, tc.cfg)
			c := newClient(t)
			resp, err := c.Get(u + "/data/f.bin")
			if strings.HasPrefix(tc.name, "reset") {
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					t.Fatal("reset: the client saw no error")
				}
				if cnt.Bytes() >= int64(tc.total) {
					t.Errorf("reset: %d bytes sent of %d", cnt.Bytes(), tc.total)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read error %v, want unexpected EOF", err)
			}
			if resp.ContentLength != int64(tc.total) || len(body) != tc.total/2 || !bytes.Equal(body, data[:tc.total/2]) {
				t.Errorf("Content-Length %d, got %d bytes", resp.ContentLength, len(body))
			}
			if cnt.Bytes() != int64(len(body)) {
				t.Errorf("counter %d bytes, client got %d", cnt.Bytes(), len(body))
			}
		})
	}
	// HEAD and 304 are never cut.
	u, _ := startFaulty(t, fileHandler(data), FaultConfig{TruncateEvery: 1})
	c := newClient(t)
	if r := do(t, c, http.MethodHead, u+"/f"); r.err != nil || r.status != 200 || r.header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Errorf("HEAD under truncation: %d %v", r.status, r.err)
	}
}
