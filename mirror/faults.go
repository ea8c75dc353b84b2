package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FaultConfig says which faults a FaultHandler injects. The zero value injects
// nothing. "Every N" counts the requests the handler accepted as eligible (see
// PathPrefix), starting at 1, so Every=3 hits requests 3, 6, 9, …; the
// probabilities draw from a PRNG seeded with Seed, four draws per eligible
// request in a fixed order, so the same seed and the same request order give
// the same faults. When several modes hit one request the first in this order
// wins: 503, 429, reset, truncate, trickle.
type FaultConfig struct {
	// Seed seeds the PRNG behind the *Prob fields.
	Seed uint64
	// PathPrefix, when set, limits every fault (latency and bandwidth too) to
	// requests whose URL path starts with it, and only those are counted.
	PathPrefix string
	// Latency is added before each request is handled.
	Latency time.Duration
	// BytesPerSec caps the response body rate of each request. Requests on one
	// HTTP/1.1 connection are sequential, so this is also the per-connection cap.
	// The body is written in slices of BytesPerSec/20 bytes (at least 1), each
	// one when the rate allows it, flushed as it goes.
	BytesPerSec int64
	// Status429Every / Status503Every answer every Nth request with 429 Too Many
	// Requests / 503 Service Unavailable and a Retry-After header.
	Status429Every, Status503Every int
	// Status429Prob / Status503Prob do the same with this probability.
	Status429Prob, Status503Prob float64
	// RetryAfter is the Retry-After value sent with 429/503, rounded up to whole
	// seconds (the header takes integers); 0 sends "0".
	RetryAfter time.Duration
	// ResetEvery / ResetProb cut the connection with a TCP reset after half of
	// the declared body (GET 200/206 responses only).
	ResetEvery int
	ResetProb  float64
	// TruncateEvery / TruncateProb declare the full Content-Length, send half
	// of the body and close the connection cleanly (GET 200/206 only). A
	// response without a Content-Length is buffered to learn it.
	TruncateEvery int
	TruncateProb  float64
	// TrickleEvery sends the first TrickleBytes of every Nth body in
	// TrickleChunk-byte pieces, sleeping TrickleDelay before each piece, then the
	// rest normally. Defaults: 4096 bytes, 16-byte pieces, 20 ms.
	TrickleEvery int
	TrickleBytes int64
	TrickleChunk int
	TrickleDelay time.Duration
	// ChangeETagAfter > 0 makes the content "change" after that many requests:
	// later responses carry a different ETag (suffix "-changed") and
	// Last-Modified (+1 h), every body byte is inverted, and validators the
	// client sends are translated so that the old ETag no longer matches
	// (If-None-Match → full 200, If-Range → full 200, If-Match → 412).
	ChangeETagAfter int
}

// active reports whether the config injects anything at all.
func (c *FaultConfig) active() bool {
	return c != nil && (c.Latency > 0 || c.BytesPerSec > 0 || c.Status429Every > 0 || c.Status503Every > 0 ||
		c.Status429Prob > 0 || c.Status503Prob > 0 || c.ResetEvery > 0 || c.ResetProb > 0 ||
		c.TruncateEvery > 0 || c.TruncateProb > 0 || c.TrickleEvery > 0 || c.ChangeETagAfter > 0)
}

// FaultHandler is the fault-injection decorator built by Faults. It is an
// http.Handler; its config can be replaced while it serves.
type FaultHandler struct {
	h   http.Handler
	cfg atomic.Pointer[FaultConfig]

	mu  sync.Mutex
	rng *rand.Rand
	n   int64 // eligible requests seen since the last Set

	// Now and Sleep are the clock used for latency, pacing and trickling.
	// Tests replace them to check pacing without measuring wall time. Set them
	// before serving.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Logf, when set, is told about every fault injected.
	Logf func(format string, args ...any)
}

// Faults wraps h with the faults cfg describes.
func Faults(h http.Handler, cfg FaultConfig) *FaultHandler {
	f := &FaultHandler{h: h, Now: time.Now, Sleep: sleepCtx}
	f.Set(cfg)
	return f
}

// Set replaces the config, reseeds the PRNG and restarts request counting.
func (f *FaultHandler) Set(cfg FaultConfig) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	f.n = 0
	f.cfg.Store(&cfg)
}

// Config returns the config in force.
func (f *FaultHandler) Config() FaultConfig { return *f.cfg.Load() }

// Requests is the number of eligible requests seen since the last Set.
func (f *FaultHandler) Requests() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type faultMode int

const (
	modeNone faultMode = iota
	mode503
	mode429
	modeReset
	modeTruncate
	modeTrickle
)

func (m faultMode) String() string {
	return [...]string{"none", "503", "429", "reset", "truncate", "trickle"}[m]
}

// decide counts the request and picks its fault.
func (f *FaultHandler) decide(cfg *FaultConfig) (faultMode, bool) {
	f.mu.Lock()
	f.n++
	n := f.n
	var d [4]float64
	for i := range d {
		d[i] = f.rng.Float64()
	}
	f.mu.Unlock()
	every := func(k int) bool { return k > 0 && n%int64(k) == 0 }
	changed := cfg.ChangeETagAfter > 0 && n > int64(cfg.ChangeETagAfter)
	switch {
	case every(cfg.Status503Every) || d[0] < cfg.Status503Prob:
		return mode503, changed
	case every(cfg.Status429Every) || d[1] < cfg.Status429Prob:
		return mode429, changed
	case every(cfg.ResetEvery) || d[2] < cfg.ResetProb:
		return modeReset, changed
	case every(cfg.TruncateEvery) || d[3] < cfg.TruncateProb:
		return modeTruncate, changed
	case every(cfg.TrickleEvery):
		return modeTrickle, changed
	}
	return modeNone, changed
}

func (f *FaultHandler) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

// ServeHTTP implements http.Handler.
func (f *FaultHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := f.cfg.Load()
	if !cfg.active() || (cfg.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, cfg.PathPrefix)) {
		f.h.ServeHTTP(w, r)
		return
	}
	mode, changed := f.decide(cfg)
	if cfg.Latency > 0 {
		if err := f.Sleep(r.Context(), cfg.Latency); err != nil {
			return
		}
	}
	switch mode {
	case mode429, mode503:
		code := http.StatusTooManyRequests
		if mode == mode503 {
			code = http.StatusServiceUnavailable
		}
		secs := int64((cfg.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code)+"\n")
		f.logf("mirror: fault %s on %s %s", mode, r.Method, r.URL.Path)
		return
	}
	if changed {
		r = withTranslatedValidators(r)
	}
	fw := &faultWriter{w: w, f: f, cfg: cfg, ctx: r.Context(), mode: mode, changed: changed, head: r.Method == http.MethodHead}
	f.h.ServeHTTP(fw, r)
	fw.finish()
	if fw.cut {
		f.logf("mirror: fault %s on %s %s after %d bytes", mode, r.Method, r.URL.Path, fw.sent)
	}
}

const changedSuffix = "-changed"

// changedETag turns the inner handler's ETag into the "changed content" one.
func changedETag(v string) string {
	if len(v) >= 2 && strings.HasSuffix(v, `"`) {
		return v[:len(v)-1] + changedSuffix + `"`
	}
	return v + changedSuffix
}

// withTranslatedValidators maps the client's validators to the inner handler's
// ETags: a "-changed" ETag (the current one) back to the inner value, anything
// else (an ETag from before the change) to one that matches nothing.
func withTranslatedValidators(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	for _, h := range []string{"If-None-Match", "If-Match", "If-Range"} {
		v := r2.Header.Get(h)
		if v == "" {
			continue
		}
		parts := strings.Split(v, ",")
		for i, p := range parts {
			p = strings.TrimSpace(p)
			switch {
			case p == "*":
			case strings.HasSuffix(p, changedSuffix+`"`):
				p = strings.TrimSuffix(p, changedSuffix+`"`) + `"`
			case strings.HasSuffix(p, changedSuffix):
				p = strings.TrimSuffix(p, changedSuffix)
			default:
				p = `"stale-before-change"`
			}
			parts[i] = p
		}
		r2.Header.Set(h, strings.Join(parts, ", "))
	}
	// Dates from before the change would make the inner handler answer 304/412.
	r2.Header.Del("If-Modified-Since")
	r2.Header.Del("If-Unmodified-Since")
	return r2
}

// errCut stops the inner handler's copy once a cut response has sent its share.
var errCut = errors.New("mirror: response cut by fault injection")

// maxFaultBuffer bounds the buffering of bodies without Content-Length.
const maxFaultBuffer = 64 << 20

type faultWriter struct {
	w       http.ResponseWriter
	f       *FaultHandler
	cfg     *FaultConfig
	ctx     context.Context
	mode    faultMode
	changed bool
	head    bool

	wroteHeader bool
	status      int
	bodyOK      bool // 200/206: a body the faults may touch

	cut       bool  // truncate or reset this response
	limit     int64 // body bytes to send before cutting
	buffering bool  // cut wanted but no Content-Length yet
	buf       bytes.Buffer

	sent        int64 // body bytes passed down
	trickleLeft int64
	paceStart   time.Time
	paced       int64
}

func (fw *faultWriter) Header() http.Header { return fw.w.Header() }

func (fw *faultWriter) WriteHeader(code int) {
	if fw.wroteHeader {
		return
	}
	fw.wroteHeader = true
	fw.status = code
	h := fw.w.Header()
	if fw.changed {
		if et := h.Get("ETag"); et != "" {
			h.Set("ETag", changedETag(et))
		}
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
			h.Set("Last-Modified", lm.Add(time.Hour).UTC().Format(http.TimeFormat))
		}
	}
	fw.bodyOK = (code == http.StatusOK || code == http.StatusPartialContent) && !fw.head
	if fw.bodyOK && (fw.mode == modeReset || fw.mode == modeTruncate) {
		cl := h.Get("Content-Length")
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n > 0 {
			fw.cut, fw.limit = true, n/2
		} else if cl == "" && h.Get("Transfer-Encoding") == "" {
			fw.cut, fw.buffering = true, true
			return // header goes out in finish, with the length
		}
	}
	if fw.bodyOK && fw.mode == modeTrickle {
		fw.trickleLeft = fw.cfg.TrickleBytes
		if fw.trickleLeft <= 0 {
			fw.trickleLeft = 4096
		}
	}
	fw.w.WriteHeader(code)
}

func (fw *faultWriter) Write(p []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.changed && fw.bodyOK {
		q := make([]byte, len(p))
		for i, b := range p {
			q[i] = ^b
		}
		p = q
	}
	if fw.buffering {
		if fw.buf.Len()+len(p) > maxFaultBuffer {
			return 0, errCut
		}
		return fw.buf.Write(p)
	}
	n := len(p)
	if fw.cut {
		remain := fw.limit - fw.sent
		if remain <= 0 {
			return 0, errCut
		}
		if int64(len(p)) > remain {
			p = p[:remain]
		}
	}
	if err := fw.emit(p); err != nil {
		return 0, err
	}
	if len(p) < n {
		return len(p), errCut
	}
	return n, nil
}

// Flush passes through except while buffering.
func (fw *faultWriter) Flush() {
	if !fw.buffering {
		http.NewResponseController(fw.w).Flush()
	}
}

// emit writes p down, trickling and pacing as configured.
func (fw *faultWriter) emit(p []byte) error {
	f, cfg := fw.f, fw.cfg
	for len(p) > 0 {
		chunk := len(p)
		flush := false
		switch {
		case fw.trickleLeft > 0:
			c := cfg.TrickleChunk
			if c <= 0 {
				c = 16
			}
			chunk = int(min(int64(chunk), int64(c), fw.trickleLeft))
			delay := cfg.TrickleDelay
			if delay <= 0 {
				delay = 20 * time.Millisecond
			}
			if err := f.Sleep(fw.ctx, delay); err != nil {
				return err
			}
			fw.trickleLeft -= int64(chunk)
			flush = true
		case cfg.BytesPerSec > 0 && fw.bodyOK:
			q := max(cfg.BytesPerSec/20, 1)
			chunk = int(min(int64(chunk), q))
			now := f.Now()
			if fw.paceStart.IsZero() {
				fw.paceStart = now
			}
			due := fw.paceStart.Add(time.Duration(float64(fw.paced) / float64(cfg.BytesPerSec) * float64(time.Second)))
			if d := due.Sub(now); d > 0 {
				if err := f.Sleep(fw.ctx, d); err != nil {
					return err
				}
			}
			flush = true
		}
		n, err := fw.w.Write(p[:chunk])
		fw.sent += int64(n)
		fw.paced += int64(n)
		if err != nil {
			return err
		}
		if flush {
			http.NewResponseController(fw.w).Flush()
		}
		p = p[chunk:]
	}
	return nil
}

// finish sends a buffered body and cuts the connection when the mode says so.
func (fw *faultWriter) finish() {
	if !fw.wroteHeader || !fw.cut {
		return
	}
	if fw.buffering {
		fw.buffering = false
		body := fw.buf.Bytes()
		fw.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		fw.w.WriteHeader(fw.status)
		if len(body) == 0 {
			fw.cut = false
			return
		}
		fw.limit = int64(len(body)) / 2
		if err := fw.emit(body[:fw.limit]); err != nil {
			return
		}
	}
	rc := http.NewResponseController(fw.w)
	rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		return // e.g. an httptest.ResponseRecorder: the short body is the fault
	}
	if fw.mode == modeReset {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close sends RST instead of FIN
		}
	}
	conn.Close()
}
