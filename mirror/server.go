package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// server is one loopback HTTP server with its own host:port, like the real
// services, and the Counter/Faults decorators in front of its handler.
type server struct {
	name    string
	url     string
	ln      net.Listener
	srv     *http.Server
	cancel  context.CancelFunc
	served  chan struct{}
	handles sync.WaitGroup
	counter *Counter
	faults  *FaultHandler
}

// listen reserves a loopback port. Servers whose handler needs its own address
// (links in generated pages) listen first and build the handler after.
func listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mirror: listen on loopback: %w", err)
	}
	return ln, nil
}

// serve starts serving h on ln. Requests see a context derived from ctx that
// is cancelled by close, so sleeping fault handlers return promptly.
func serve(ctx context.Context, name string, ln net.Listener, h http.Handler, opt Options) *server {
	s := &server{
		name:    name,
		url:     "http://" + ln.Addr().String(),
		ln:      ln,
		served:  make(chan struct{}),
		counter: NewCounter(),
	}
	var cfg FaultConfig
	if opt.Faults != nil {
		cfg = *opt.Faults
	}
	s.faults = Faults(h, cfg)
	if opt.Logf != nil {
		logf := opt.Logf
		s.faults.Logf = func(format string, args ...any) { logf("%s: "+format, append([]any{name}, args...)...) }
	}
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	inner := s.counter.Wrap(s.faults)
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.handles.Add(1)
			defer s.handles.Done()
			inner.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 30 * time.Second,
		// Hijacked-then-closed connections make net/http log; keep that out of
		// test output unless the caller asked for logs.
		ErrorLog: log.New(logWriter{opt.Logf, name}, "", 0),
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(ln)
	}()
	return s
}

// close stops the server, its connections and its handlers, and waits for them.
func (s *server) close() {
	s.cancel()
	s.srv.Close()
	<-s.served
	s.handles.Wait()
}

type logWriter struct {
	logf func(string, ...any)
	name string
}

func (l logWriter) Write(p []byte) (int, error) {
	if l.logf != nil {
		l.logf("%s: %s", l.name, bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

// writeJSON sends v as JSON with an explicit Content-Length, the way Django
// and most API servers answer. HTML escaping is off: real servers send "µm"
// and "<" as they are.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSONType(w, r, status, "application/json", v)
}

// writeJSONType is writeJSON with the Content-Type a service sends.
func writeJSONType(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "mirror: encode JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, r, status, contentType, buf.Bytes())
}

// writeBody sends a small generated body with Content-Length; HEAD gets the
// headers only.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// onlyGET answers 405 to methods other than GET and HEAD.
func onlyGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
