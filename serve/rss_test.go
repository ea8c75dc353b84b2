package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// rssHelperEnv names the directory the helper process serves; the test binary
// re-executed with it set is the server whose memory TestMemoryBound measures.
const rssHelperEnv = "IMGDATASET_SERVE_RSS_HELPER"

// rssMemory is the --memory of the measured server, and rssOverhead what
// it may use beyond it: the Go runtime, the test binary's code, the open
// volumes and the connections' buffers (docs/benchmarks.md).
const (
	rssMemory   = 128 << 20
	rssOverhead = 64 << 20
)

// TestServeHelper is not a test: run by TestMemoryBound as a subprocess, it
// serves the directory named by rssHelperEnv as `imgdataset serve --memory`
// does (including its runtime memory limit), prints its address and serves
// until its stdin closes.
func TestServeHelper(t *testing.T) {
	dir := os.Getenv(rssHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestMemoryBound; runs only under it")
	}
	debug.SetMemoryLimit(rssMemory + rssOverhead/2) // as cmd/imgdataset serve does
	srv := openServer(t, dir, Options{Memory: rssMemory, ErrorLog: quietLog(t)})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	debug.FreeOSMemory() // as cmd/imgdataset serve does: what opening left is not serving
	addr, wait := serveLoopback(t, ctx, srv)
	fmt.Printf("addr %s rss %d\n", addr, procStatus(t, os.Getpid(), "VmRSS"))
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// procStatus reads a field of /proc/PID/status in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read status of process %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// TestMemoryBound starts a server with --memory 128 MiB in a subprocess, sends
// it 32 concurrent requests for 32 MiB blocks of a chunked volume, and checks
// that its peak resident memory (VmHWM) stays within the budget plus
// rssOverhead.
func TestMemoryBound(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc to measure resident memory: %v", err)
	}
	if testing.Short() {
		t.Skip("-short: writes a 64 MiB volume and moves 1 GiB over loopback")
	}
	dir := bigDir(t, [3]int64{128, 512, 512}, []int64{64, 64, 64}) // 64 MiB, 512 KiB chunks
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServeHelper$", "-test.v")
	cmd.Env = append(os.Environ(), rssHelperEnv+"="+dir, "GOMEMLIMIT=off")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() {
		stdin.Close()
		wg.Wait()
		cmd.Wait()
	}()
	br := bufio.NewReader(out)
	var addr string
	var base int64
	for addr == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("helper gave no address: %v", err)
		}
		fmt.Sscanf(line, "addr %s rss %d", &addr, &base)
	}
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(io.Discard, br) }()
	// Measure serving, not opening: scan samples statistics of every volume
	// at open, and that garbage may still be resident. Writing 5 to
	// clear_refs resets VmHWM to the current resident size (Linux ≥ 4.0).
	clear := fmt.Sprintf("/proc/%d/clear_refs", cmd.Process.Pid)
	if err := os.WriteFile(clear, []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident size (%s): %v", clear, err)
	}
	atStart := procStatus(t, cmd.Process.Pid, "VmHWM")

	url := "http://" + addr
	vs := volumesOf(t, url)
	if len(vs) != 1 {
		t.Fatalf("%d volumes, want 1", len(vs))
	}
	v := vs[0]
	const n, planes = 32, 64 // 32 requests of 64×512×512×2 bytes = 32 MiB
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			z := int64(i%2) * planes
			u := fmt.Sprintf("%s%s?origin=%d,0,0&size=%d,512,512", url, v.BlockURL, z, planes)
			req, err := http.NewRequestWithContext(gctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			got, err := io.Copy(io.Discard, resp.Body)
			if err != nil || resp.StatusCode != 200 || got != planes*512*512*2 {
				return fmt.Errorf("request %d: %s, %d bytes, %v", i, resp.Status, got, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	hwm := procStatus(t, cmd.Process.Pid, "VmHWM")
	t.Logf("helper: %d MiB resident after open (%d MiB when serving starts), peak %d MiB under %d concurrent 32 MiB requests with --memory %d MiB",
		base>>20, atStart>>20, hwm>>20, n, rssMemory>>20)
	if limit := int64(rssMemory + rssOverhead); hwm > limit {
		t.Errorf("peak resident memory %d MiB exceeds --memory %d MiB + %d MiB overhead", hwm>>20, rssMemory>>20, rssOverhead>>20)
	}
}
