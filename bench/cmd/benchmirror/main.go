// Command benchmirror is the loopback server of the transfer benchmarks
// (bench/transfer.sh). It serves a directory over HTTP/1.1 on 127.0.0.1 through
// mirror.Faults, which adds a fixed latency to every request and caps the body
// rate of every response (and so of every connection), and it generates the
// benchmark data.
//
// Usage:
//
//	benchmirror gen-file PATH BYTES        # one file of pseudo-random bytes
//	benchmirror gen-tree DIR COUNT BYTES   # COUNT files named like zarr v2 chunks ("i.j")
//	benchmirror serve -root DIR [-latency 20ms] [-rate 25000000] [-url-file F] [-max-time 3h]
//
// The server lists directories the way net/http.FileServer does (a <pre> of
// links, no sizes), which both imgdataset's listing resolver and rclone's http
// backend read. GET /_stats (never delayed or throttled) prints the requests
// and body bytes seen since the last /_stats?reset=1, by method.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/mirror"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "gen-file":
		err = genFile(os.Args[2:])
	case "gen-tree":
		err = genTree(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmirror:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchmirror gen-file PATH BYTES | gen-tree DIR COUNT BYTES | serve -root DIR [flags]")
	os.Exit(2)
}

// writeRandom writes n pseudo-random bytes from a ChaCha8 stream seeded with
// seed: incompressible, reproducible, and much faster than /dev/urandom.
func writeRandom(w io.Writer, seed uint64, n int64) error {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	src := rand.NewChaCha8(key)
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		if _, err := src.Read(b); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad byte count %q", s)
	}
	return n, nil
}

func genFile(args []string) error {
	if len(args) != 2 {
		usage()
	}
	n, err := parseSize(args[1])
	if err != nil {
		return err
	}
	f, err := os.Create(args[0])
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 4<<20)
	if err := writeRandom(bw, uint64(n), n); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", args[0], err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", args[0], err)
	}
	return f.Close()
}

// genTree writes count files of size bytes into dir, named "i.j" (100 per
// row) like the chunks of a 2-D zarr v2 array, and dir/../<base>.names with
// one name per line for the clients that take a URL list.
func genTree(args []string) error {
	if len(args) != 3 {
		usage()
	}
	count, err := parseSize(args[1])
	if err != nil {
		return err
	}
	size, err := parseSize(args[2])
	if err != nil {
		return err
	}
	dir := filepath.Clean(args[0])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names, err := os.Create(dir + ".names")
	if err != nil {
		return err
	}
	nw := bufio.NewWriter(names)
	for i := range count {
		name := fmt.Sprintf("%d.%d", i/100, i%100)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			names.Close()
			return err
		}
		err = writeRandom(f, uint64(i), size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			names.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		fmt.Fprintln(nw, name)
	}
	if err := nw.Flush(); err != nil {
		names.Close()
		return err
	}
	return names.Close()
}

// stats counts requests and body bytes by method.
type stats struct {
	get, head, other, bytes atomic.Int64
}

type countWriter struct {
	http.ResponseWriter
	s *stats
}

func (w countWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.s.bytes.Add(int64(n))
	return n, err
}

func (w countWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *stats) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			s.get.Add(1)
		case http.MethodHead:
			s.head.Add(1)
		default:
			s.other.Add(1)
		}
		h.ServeHTTP(countWriter{w, s}, r)
	})
}

func (s *stats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "get=%d head=%d other=%d bytes=%d\n", s.get.Load(), s.head.Load(), s.other.Load(), s.bytes.Load())
	if r.URL.Query().Get("reset") != "" {
		s.get.Store(0)
		s.head.Store(0)
		s.other.Store(0)
		s.bytes.Store(0)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	root := fs.String("root", "", "directory to serve (required)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	latency := fs.Duration("latency", 20*time.Millisecond, "latency added before every request")
	rate := fs.Int64("rate", 25_000_000, "body bytes per second per response (0 = unlimited)")
	urlFile := fs.String("url-file", "", "write the base URL (http://127.0.0.1:PORT) here once listening")
	maxTime := fs.Duration("max-time", 3*time.Hour, "stop by itself after this long")
	fs.Parse(args)
	if *root == "" {
		return errors.New("serve: -root is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("serve: %s is not a loopback address", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var st stats
	faulted := mirror.Faults(http.FileServer(http.Dir(*root)), mirror.FaultConfig{Latency: *latency, BytesPerSec: *rate})
	mux := http.NewServeMux()
	mux.Handle("/_stats", &st)
	mux.Handle("/", st.wrap(faulted))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}

	base := "http://" + ln.Addr().String()
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(base+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "benchmirror: serving %s at %s (latency %v, %d B/s per response)\n", *root, base, *latency, *rate)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxTime)
	defer cancel()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
