package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// chunkFile returns the path of one chunk file of the level-0 array of the
// store at dir/name.
func chunkFile(t *testing.T, dir, name string) string {
	t.Helper()
	var found string
	filepath.WalkDir(filepath.Join(dir, name), func(p string, d fs.DirEntry, err error) error {
		if err == nil && found == "" && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && d.Name() != "zarr.json" {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no chunk file under %s", name)
	}
	return found
}

// TestSymlinks checks that a chunk linked out of the served tree is refused
// (403, its bytes not sent) while one linked to another place inside the tree
// is served.
func TestSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(dir, chunk string) string
		code   int
	}{
		// A valid chunk outside: only the refusal keeps it from being served.
		{"out of the tree", func(dir, chunk string) string {
			return copyFile(t, chunk, filepath.Join(t.TempDir(), "outside-chunk"))
		}, http.StatusForbidden},
		{"inside the tree", func(dir, chunk string) string {
			return copyFile(t, chunk, filepath.Join(dir, "copy-of-chunk"))
		}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := builtDir(t)
			chunk := chunkFile(t, dir, "vol.zarr")
			target := tc.target(dir, chunk)
			if err := os.Remove(chunk); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, chunk); err != nil {
				t.Fatal(err)
			}
			srv, ts := testServer(t, dir, Options{MaxBytes: 1 << 20, ErrorLog: quietLog(t)})
			v := find(t, srv.Volumes(), "uint16", 3)
			for _, p := range []string{v.BlockURL + "?size=" + joinInts(v.Shape), v.ZarrArrayURL + "/0.0.0"} {
				resp, body := get(t, ts.URL+p)
				if resp.StatusCode != tc.code {
					t.Errorf("%s: %s %.200q, want %d", p, resp.Status, body, tc.code)
				}
				if strings.Contains(string(body), dir) {
					t.Errorf("%s: body %.200q names a local path", p, body)
				}
			}
		})
	}
}

// copyFile copies src to dst and returns dst.
func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// quietLog sends the server's error log to the test log.
func quietLog(t *testing.T) *log.Logger {
	return log.New(testWriter{t}, "", 0)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

// replaceFile writes b to p through a temporary file and a rename, as tools
// that replace data files do.
func replaceFile(t *testing.T, p string, b []byte) {
	t.Helper()
	tmp := p + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// TestReplacedFile checks that a file replaced while the server runs is served
// under a new ETag with its new shape and bytes (no stale 304), and that a
// replacement the server cannot read is refused without naming local paths.
func TestReplacedFile(t *testing.T) {
	ctx := context.Background()
	dir := builtDir(t)
	srv, ts := testServer(t, dir, Options{MaxBytes: 1 << 20, ErrorLog: quietLog(t)})
	v := find(t, srv.Volumes(), "uint8", 3)
	if v.Path != "stack.tif" {
		t.Fatalf("uint8 volume is %s, want stack.tif", v.Path)
	}
	urls := []string{"/volumes/" + v.ID, v.BlockURL + "?size=2,3,4", v.ZarrArrayURL + "/.zarray", v.ZarrArrayURL + "/0.0.0"}
	old := map[string]string{}
	for _, u := range urls {
		resp, body := get(t, ts.URL+u)
		if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
			t.Fatalf("%s: %s %q, ETag %q", u, resp.Status, body, resp.Header.Get("ETag"))
		}
		old[u] = resp.Header.Get("ETag")
		if resp, _ := get(t, ts.URL+u, "If-None-Match", old[u]); resp.StatusCode != http.StatusNotModified {
			t.Fatalf("%s: unchanged file: %s, want 304", u, resp.Status)
		}
	}
	tif, err := sample.ImageJTIFF(ctx, [3]int64{3, 40, 20}, 11, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, filepath.Join(dir, "stack.tif"), tif)
	for _, u := range urls {
		resp, body := get(t, ts.URL+u, "If-None-Match", old[u])
		if resp.StatusCode != 200 {
			t.Errorf("%s after replacement: %s %.200q, want 200", u, resp.Status, body)
			continue
		}
		if e := resp.Header.Get("ETag"); e == "" || e == old[u] {
			t.Errorf("%s after replacement: ETag %q, was %q", u, e, old[u])
		}
	}
	resp, body := get(t, ts.URL+"/volumes/"+v.ID)
	if !strings.Contains(string(body), "40") || resp.StatusCode != 200 {
		t.Errorf("volume info after replacement: %s %s, want the new shape 3,40,20", resp.Status, body)
	}
	// The block's bytes are the new file's.
	st := store.New(store.NewFile(dir))
	defer st.Close()
	_, vols, err := srv.opt.Formats.Open(ctx, st, "stack.tif")
	if err != nil || len(vols) == 0 {
		t.Fatalf("open replaced file: %v", err)
	}
	box := volume.Box{Start: []int64{0, 0, 0}, Stop: []int64{2, 3, 4}}
	want := make([]byte, 24)
	if err := vols[0].ReadRegion(ctx, box, want); err != nil {
		t.Fatal(err)
	}
	if _, got := get(t, ts.URL+v.BlockURL+"?size=2,3,4"); string(got) != string(want) {
		t.Errorf("block after replacement: %v, want %v", got, want)
	}

	// A replacement that is no TIFF: refused, nothing stale, no path.
	replaceFile(t, filepath.Join(dir, "stack.tif"), []byte("not a tiff any more"))
	for _, u := range urls {
		resp, body := get(t, ts.URL+u, "If-None-Match", old[u])
		if resp.StatusCode < 500 {
			t.Errorf("%s after a broken replacement: %s, want a 5xx", u, resp.Status)
		}
		if strings.Contains(string(body), dir) || strings.Contains(string(body), "/tmp") {
			t.Errorf("%s: error body %q names a local path", u, body)
		}
	}
}

// bigDir writes a uint16 zarr array of the given shape with the given
// chunks, uncompressed so that decoding costs no more than copying.
func bigDir(t *testing.T, shape [3]int64, chunks []int64) string {
	t.Helper()
	dir := t.TempDir()
	m := u16(t, shape)
	st := store.New(store.NewFile(dir))
	defer st.Close()
	if err := zarr.WriteNGFF(context.Background(), st, "big.zarr", m, zarr.WriteOptions{Chunks: chunks, Compressor: "none", Name: "big"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stallingDial connects to addr with a small receive buffer: the kernel
// would otherwise take tens of MiB (net.ipv4.tcp_rmem) from a client that
// never reads before the server's writes block.
func stallingDial(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return d.Dial("tcp", addr)
}

// freeMemory is the part of srv's memory budget no request holds.
func freeMemory(srv *Server) int64 {
	free := int64(0)
	for step := srv.opt.Memory; step > 0; step /= 2 {
		if srv.mem.TryAcquire(free + step) {
			srv.mem.Release(free + step)
			free += step
		}
	}
	return free
}

// TestTiledReads checks blocks read in slabs and tiles (a budget far
// below one layer of chunks) against a direct read of the volume.
func TestTiledReads(t *testing.T) {
	dir := bigDir(t, [3]int64{40, 200, 300}, []int64{16, 32, 32})
	srv, ts := testServer(t, dir, Options{MaxBytes: 64 << 20, Memory: minMemory, ErrorLog: quietLog(t)})
	v := find(t, srv.Volumes(), "uint16", 3)
	for _, box := range []volume.Box{
		volume.Full(v.Shape),
		{Start: []int64{3, 17, 5}, Stop: []int64{37, 199, 290}},
		{Start: []int64{15, 31, 31}, Stop: []int64{17, 33, 33}},
		{Start: []int64{0, 0, 299}, Stop: []int64{40, 200, 300}},
	} {
		want := make([]byte, box.NumElements()*2)
		if err := srv.byID[v.ID].vol.ReadRegion(context.Background(), box, want); err != nil {
			t.Fatal(err)
		}
		u := fmt.Sprintf("%s%s?origin=%s&size=%s", ts.URL, v.BlockURL, joinInts(box.Start), joinInts(box.Shape()))
		resp, got := get(t, u)
		if resp.StatusCode != 200 || string(got) != string(want) {
			t.Errorf("%v: %s, %d bytes differ from a direct read of %d", box, resp.Status, len(got), len(want))
		}
	}
	// A handler gives its memory back when it returns, which can be after
	// the client has the whole body; Close waits for every handler.
	ts.Close()
	if free := freeMemory(srv); free != srv.opt.Memory {
		t.Errorf("%d of %d bytes free after the requests", free, srv.opt.Memory)
	}
}

// TestStalledClients checks that clients that ask for large blocks and never
// read them do not starve a small request: each holds at most one slab of
// the memory budget (Memory/16) while blocked. Twelve such clients would
// hold more than the budget if they kept a slab's decoding reservation, or a
// whole block, while writing.
func TestStalledClients(t *testing.T) {
	dir := bigDir(t, [3]int64{64, 256, 512}, []int64{16, 64, 64}) // 16 MiB
	srv, ts := testServer(t, dir, Options{MaxBytes: 64 << 20, Memory: minMemory, WriteTimeout: time.Hour, ErrorLog: quietLog(t)})
	v := find(t, srv.Volumes(), "uint16", 3)
	addr := strings.TrimPrefix(ts.URL, "http://")
	const stalled = 12
	for i := range stalled {
		c, err := stallingDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s?size=%s HTTP/1.1\r\nHost: %s\r\n\r\n", v.BlockURL, joinInts(v.Shape), addr)
		// Wait for the status line: the server is then writing the body
		// this client never reads.
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(line, "200") {
			t.Fatalf("stalled client %d: %q, %v", i, line, err)
		}
	}
	// Wait until every stalled client's response is blocked in a write.
	limit := time.Now().Add(2 * time.Minute)
	for srv.writing.Load() < stalled {
		if time.Now().After(limit) {
			t.Fatalf("only %d of %d stalled responses ever got to write (%d of %d bytes free)", srv.writing.Load(), stalled, freeMemory(srv), srv.opt.Memory)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+v.BlockURL+"?origin=1,2,3&size=2,2,2", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("small request behind %d stalled clients: %v", stalled, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || len(got) != 16 {
		t.Fatalf("small request: %s, %d bytes, %v", resp.Status, len(got), err)
	}
	box := volume.Box{Start: []int64{1, 2, 3}, Stop: []int64{3, 4, 5}}
	want := make([]byte, 16)
	if err := srv.byID[v.ID].vol.ReadRegion(ctx, box, want); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("small block %v, want %v", got, want)
	}
}

// openServer opens dir and closes the server when the test ends.
func openServer(t *testing.T, dir string, opt Options) *Server {
	t.Helper()
	srv, err := Open(context.Background(), dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// serveLoopback runs srv.Serve (the real server, with its write deadlines)
// on a loopback port until ctx ends; wait returns Serve's result.
func serveLoopback(t *testing.T, ctx context.Context, srv *Server) (addr string, wait func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return ln.Addr().String(), func() error { return <-done }
}

// TestWriteTimeoutFreesMemory checks that a client that stops reading is
// disconnected after WriteTimeout, so the memory it held comes back.
func TestWriteTimeoutFreesMemory(t *testing.T) {
	dir := bigDir(t, [3]int64{64, 256, 512}, []int64{16, 64, 64})
	srv := openServer(t, dir, Options{MaxBytes: 64 << 20, Memory: minMemory, WriteTimeout: 200 * time.Millisecond, ErrorLog: quietLog(t)})
	ctx, cancel := context.WithCancel(context.Background())
	addr, wait := serveLoopback(t, ctx, srv)
	defer func() { cancel(); wait() }()
	v := find(t, srv.Volumes(), "uint16", 3)
	c, err := stallingDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s?size=%s HTTP/1.1\r\nHost: x\r\n\r\n", v.BlockURL, joinInts(v.Shape))
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("%q, %v", line, err)
	}
	// Stall until the server has given up on us, then drain: the body
	// must fall short of the 16 MiB announced.
	deadline := time.Now().Add(2 * time.Minute)
	for !srv.mem.TryAcquire(srv.opt.Memory) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled client's memory was never released")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.mem.Release(srv.opt.Memory)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	n, _ := io.Copy(io.Discard, br)
	if n >= v.Bytes {
		t.Errorf("read %d bytes, the whole body; the stalled connection should have been cut", n)
	}
}
