package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

// testObject is one object served by testServer.
type testObject struct {
	data []byte
	etag string
}

// testServer serves objects by path with HEAD and single-range GET support,
// counts the body bytes it writes and the requests in flight, and lets a test
// inject faults per request.
type testServer struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	objs     map[string]*testObject
	requests map[string]int // per path, GET and HEAD

	served   atomic.Int64
	inflight peakCounter
	// shared, when set, also counts this server's requests (several servers
	// can share one to check a global cap).
	shared *peakCounter
	// pace slows the body down (a sleep per 16 KiB chunk) so a test can
	// interrupt a download in the middle.
	pace time.Duration
	// fault may handle a request itself (return true); n is the number of
	// earlier requests for the same path.
	fault func(w http.ResponseWriter, r *http.Request, name string, n int) bool
	// afterChunk runs after each body chunk of name was written.
	afterChunk atomic.Pointer[func(name string)]
}

func (s *testServer) setAfterChunk(f func(name string)) {
	if f == nil {
		s.afterChunk.Store(nil)
		return
	}
	s.afterChunk.Store(&f)
}

func newTestServer(t testing.TB) *testServer { return newServer(t, true) }

// newServer starts a server; smallBufs fixes small socket buffers, which keep
// the bytes "served" but not yet read by the client few, so that byte
// accounting across interruptions is tight (benchmarks want the defaults).
func newServer(t testing.TB, smallBufs bool) *testServer {
	s := &testServer{t: t, objs: map[string]*testObject{}, requests: map[string]int{}}
	s.srv = httptest.NewUnstartedServer(s)
	if smallBufs {
		s.srv.Listener = smallBufListener{s.srv.Listener}
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

func (s *testServer) put(name string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[name] = &testObject{data: data, etag: etagOf(data)}
}

func (s *testServer) get(name string) *testObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[name]
}

func (s *testServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[name]
}

// peakCounter counts requests in flight and remembers the peak.
type peakCounter struct{ n, peak atomic.Int64 }

func (c *peakCounter) enter() {
	v := c.n.Add(1)
	for {
		p := c.peak.Load()
		if v <= p || c.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

func (c *peakCounter) leave() { c.n.Add(-1) }

func etagOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.enter()
	defer s.inflight.leave()
	if s.shared != nil {
		s.shared.enter()
		defer s.shared.leave()
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	prior := s.requests[name]
	s.requests[name]++
	obj := s.objs[name]
	fault := s.fault
	s.mu.Unlock()
	if fault != nil && fault(w, r, name, prior) {
		return
	}
	if obj == nil {
		http.NotFound(w, r)
		return
	}
	data := obj.data
	w.Header().Set("ETag", `"`+obj.etag+`"`)
	w.Header().Set("Accept-Ranges", "bytes")
	lo, hi := int64(0), int64(len(data))
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		a, b, ok := parseRange(rg, int64(len(data)))
		if !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		lo, hi = a, b
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", lo, hi-1, len(data)))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(hi-lo, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	s.writeBody(w, name, data[lo:hi])
}

// writeBody writes b in 16 KiB chunks, counting what was accepted.
func (s *testServer) writeBody(w http.ResponseWriter, name string, b []byte) {
	fl, _ := w.(http.Flusher)
	for len(b) > 0 {
		c := b[:min(len(b), 16<<10)]
		n, err := w.Write(c)
		s.served.Add(int64(n))
		if err != nil {
			return
		}
		if fl != nil && s.pace > 0 {
			fl.Flush()
		}
		b = b[len(c):]
		if f := s.afterChunk.Load(); f != nil {
			(*f)(name)
		}
		if s.pace > 0 {
			time.Sleep(s.pace)
		}
	}
}

// parseRange parses "bytes=a-b" or "bytes=a-" into [lo, hi).
func parseRange(v string, size int64) (int64, int64, bool) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	lo, err := strconv.ParseInt(a, 10, 64)
	if err != nil || lo < 0 || lo >= size {
		return 0, 0, false
	}
	hi := size
	if b != "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < lo {
			return 0, 0, false
		}
		hi = min(last+1, size)
	}
	return lo, hi, true
}

// objects lists names as source objects of the server.
func (s *testServer) objects(names ...string) []source.Object {
	var out []source.Object
	for _, n := range names {
		o := s.get(n)
		size := int64(-1)
		etag := ""
		if o != nil {
			size, etag = int64(len(o.data)), o.etag
		}
		out = append(out, source.Object{StoreURL: s.srv.URL + "/", Key: n, SourceURL: s.srv.URL + "/" + n, Path: n, Size: size, ETag: etag})
	}
	return out
}

// testOptions are fast defaults for tests: tiny parts and retry delays.
func testOptions(t testing.TB, out string) Options {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(32 << 10)
			}
			return c, err
		}}
	t.Cleanup(tr.CloseIdleConnections)
	return Options{
		OutDir:     out,
		Stores:     &store.Opener{HTTP: &http.Client{Transport: tr}},
		PerHost:    4,
		Total:      8,
		PartSize:   64 << 10,
		RetryDelay: time.Millisecond,
	}
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// checkTree asserts that every named object is in place byte for byte, with
// the right sha256 in the summary.
func checkTree(t *testing.T, out string, sum *Summary, s *testServer, dataset string, names ...string) {
	t.Helper()
	results := map[string]Result{}
	for _, d := range sum.Datasets {
		if d.Dataset == dataset {
			for _, r := range d.Results {
				results[r.Path] = r
			}
		}
	}
	for _, n := range names {
		want := s.get(n).data
		got, err := os.ReadFile(filepath.Join(out, dataset, filepath.FromSlash(n)))
		if err != nil {
			t.Errorf("%s/%s: %v", dataset, n, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s: content differs (%d bytes, want %d)", dataset, n, len(got), len(want))
		}
		r, ok := results[n]
		if !ok {
			t.Errorf("%s/%s: no result", dataset, n)
			continue
		}
		h := sha256.Sum256(want)
		if r.Err != nil || r.SHA256 != hex.EncodeToString(h[:]) || r.Size != int64(len(want)) {
			t.Errorf("%s/%s: result %+v, want sha256 %x size %d", dataset, n, r, h, len(want))
		}
	}
}

// noLeftovers asserts that nothing but final files and the state directory
// exist under out (no temp files under final names).
func noLeftovers(t *testing.T, out string) {
	t.Helper()
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == stateDir {
			return filepath.SkipDir
		}
		if strings.Contains(d.Name(), ".tmp") || strings.HasSuffix(d.Name(), ".part") {
			t.Errorf("leftover %s", p)
		}
		return nil
	})
}

func runOK(t *testing.T, jobs []Job, opt Options) *Summary {
	t.Helper()
	sum, err := Run(context.Background(), jobs, opt)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := sum.Err(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}
