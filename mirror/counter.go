package mirror

import (
	"bufio"
	"net"
	"net/http"
	"sort"
	"sync"
)

// PathCount is what a Counter saw for one URL path.
type PathCount struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}

// Counter is an http.Handler decorator that counts requests and response body
// bytes, in total and per URL path. Bytes are those the wrapped handler got
// through to the connection, so a truncated or reset response counts only what
// was sent. It is safe for concurrent use.
type Counter struct {
	mu       sync.Mutex
	requests int64
	bytes    int64
	paths    map[string]*PathCount
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter {
	return &Counter{paths: make(map[string]*PathCount)}
}

// Wrap returns h with counting added.
func (c *Counter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		c.mu.Lock()
		c.requests++
		pc := c.paths[p]
		if pc == nil {
			pc = &PathCount{}
			c.paths[p] = pc
		}
		pc.Requests++
		c.mu.Unlock()
		h.ServeHTTP(&countingWriter{ResponseWriter: w, c: c, path: p}, r)
	})
}

func (c *Counter) add(path string, n int64) {
	c.mu.Lock()
	c.bytes += n
	if pc := c.paths[path]; pc != nil {
		pc.Bytes += n
	}
	c.mu.Unlock()
}

// Requests is the number of requests seen since the last Reset.
func (c *Counter) Requests() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// Bytes is the number of response body bytes sent since the last Reset.
func (c *Counter) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Path returns the counts for one URL path (decoded, as in r.URL.Path).
func (c *Counter) Path(p string) PathCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pc := c.paths[p]; pc != nil {
		return *pc
	}
	return PathCount{}
}

// Paths returns a copy of the per-path counts.
func (c *Counter) Paths() map[string]PathCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]PathCount, len(c.paths))
	for p, pc := range c.paths {
		out[p] = *pc
	}
	return out
}

// PathNames returns the paths seen, sorted.
func (c *Counter) PathNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.paths))
	for p := range c.paths {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Reset zeroes every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests, c.bytes = 0, 0
	c.paths = make(map[string]*PathCount)
}

// countingWriter counts body bytes. It passes Flush and Hijack through so the
// fault decorator beneath it can still pace and cut connections.
type countingWriter struct {
	http.ResponseWriter
	c    *Counter
	path string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.c.add(w.path, int64(n))
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
