package serve

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TestConcurrentRandomReads fires 400 requests at once for random zarr chunks
// of every level of a pyramid and random blocks of its levels, with a memory
// budget that holds only a few of them, and compares every answer byte for
// byte with a direct read of the level. What does not fit the budget waits in
// the queue; with a queue shorter than the flood the rest is answered 503
// with Retry-After, which the client honours (paced, not timed) before
// asking again. Any other status fails. Afterwards the whole budget is free.
func TestConcurrentRandomReads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	if err := zarr.WriteNGFF(ctx, st, "pyr.zarr", u16(t, [3]int64{72, 200, 264}), zarr.WriteOptions{Chunks: []int64{32, 64, 64}, Levels: 3, Name: "pyr"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, tc := range []struct {
		name     string
		maxQueue int
		shed     bool // whether some requests must be turned away
	}{
		{"queued", 0, false},
		{"queue of 16", 16, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			retried := concurrentReads(t, dir, tc.maxQueue)
			if tc.shed != (retried > 0) {
				t.Errorf("%d answers of 503; want some: %v", retried, tc.shed)
			}
		})
	}
}

// concurrentReads runs the flood of TestConcurrentRandomReads against the
// pyramid in dir with the given Options.MaxQueue and returns the number of
// 503 answers the clients retried.
func concurrentReads(t *testing.T, dir string, maxQueue int) int {
	const requests = 400
	ctx := context.Background()
	srv := openServer(t, dir, Options{MaxBytes: 1 << 20, Memory: minMemory, MaxQueue: maxQueue, ErrorLog: quietLog(t)})
	sctx, cancel := context.WithCancel(ctx)
	addr, wait := serveLoopback(t, sctx, srv)
	defer func() { cancel(); wait() }()
	base := "http://" + addr

	var levels []*entry
	for _, e := range srv.list {
		if len(srv.groups[e.ID]) == 3 {
			for _, id := range srv.groups[e.ID] {
				levels = append(levels, srv.byID[id])
			}
		}
	}
	if len(levels) != 3 {
		t.Fatalf("no 3-level pyramid served (%d volumes)", len(srv.list))
	}
	// Each request is planned first (seeded, so a failure can be replayed)
	// with the box it covers in its level.
	type request struct {
		path  string
		level *entry
		box   volume.Box // the part of the answer inside the level
		chunk volume.Box // the whole zarr chunk; zero for a block
	}
	rng := rand.New(rand.NewPCG(16, 400))
	reqs := make([]request, requests)
	for i := range reqs {
		k := rng.IntN(len(levels))
		e := levels[k]
		n := len(e.Shape)
		if i%2 == 0 {
			idx := make([]int64, n)
			chunk := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
			box := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
			for a := range n {
				idx[a] = rng.Int64N(e.zgrid[a])
				chunk.Start[a] = idx[a] * e.ZarrChunks[a]
				chunk.Stop[a] = chunk.Start[a] + e.ZarrChunks[a]
				box.Start[a], box.Stop[a] = chunk.Start[a], min(chunk.Stop[a], e.Shape[a])
			}
			key := strings.ReplaceAll(joinInts(idx), ",", ".")
			reqs[i] = request{path: fmt.Sprintf("/zarr/%s/%d/%s", levels[0].ID, k, key), level: e, box: box, chunk: chunk}
			continue
		}
		origin, size := make([]int64, n), make([]int64, n)
		for a := range n {
			size[a] = 1 + rng.Int64N(min(e.Shape[a], 48))
			origin[a] = rng.Int64N(e.Shape[a] - size[a] + 1)
		}
		reqs[i] = request{path: fmt.Sprintf("%s?origin=%s&size=%s", e.BlockURL, joinInts(origin), joinInts(size)), level: e, box: volume.NewBox(origin, size)}
	}

	// The budget must hold only a part of the requests at once, or the
	// test would not exercise the queue.
	demand := int64(0)
	for _, q := range reqs {
		out := q.box.NumElements() * int64(q.level.in.DType.Size())
		if q.chunk.Start != nil {
			out = q.chunk.NumElements() * int64(q.level.in.DType.Size())
		}
		demand += srv.planRead(q.level, q.box, out).reserve
	}
	if demand < 8*srv.opt.Memory {
		t.Fatalf("the requests reserve %d bytes together, less than 8 times the %d-byte budget: nothing would queue", demand, srv.opt.Memory)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: requests}}
	defer client.CloseIdleConnections()
	type result struct {
		status int
		body   []byte
		err    error
		retry  int // 503 answers before this one
	}
	results := make([]result, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := &results[i]
			for {
				resp, err := client.Get(base + reqs[i].path)
				if err != nil {
					r.err = err
					return
				}
				r.body, r.err = io.ReadAll(resp.Body)
				resp.Body.Close()
				r.status = resp.StatusCode
				ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if r.status != http.StatusServiceUnavailable || err != nil || ra < 1 || r.retry >= 1000 {
					return
				}
				r.retry++
				// Retry-After in twentieths, jittered so the turned-away
				// do not come back as one wave: pacing, not a timing.
				time.Sleep(time.Duration(ra)*time.Second/20 + time.Duration(rand.Int64N(int64(50*time.Millisecond))))
			}
		}()
	}
	close(start)
	wg.Wait()

	retried := 0
	for i, r := range results {
		q := reqs[i]
		retried += r.retry
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("%s: %d %v %q", q.path, r.status, r.err, r.body)
			continue
		}
		var want []byte
		if q.chunk.Start != nil {
			want = paddedRead(t, q.level, q.chunk)
		} else {
			want = make([]byte, q.box.NumElements()*int64(q.level.in.DType.Size()))
			if err := q.level.vol.ReadRegion(ctx, q.box, want); err != nil {
				t.Fatal(err)
			}
		}
		if string(r.body) != string(want) {
			t.Errorf("%s: %d bytes differ from a direct read of %d", q.path, len(r.body), len(want))
		}
	}
	t.Logf("%d concurrent requests answered exactly; %d answers of 503 with Retry-After retried", requests, retried)
	if free := freeMemory(srv); free != srv.opt.Memory {
		t.Errorf("%d of %d bytes of the memory budget free after the requests", free, srv.opt.Memory)
	}
	if w := srv.waiting.Load(); w != 0 {
		t.Errorf("%d requests still counted as waiting", w)
	}
	return retried
}

// TestQueueFull holds the whole memory budget so that a request waits, and
// checks that with Options.MaxQueue 1 the next is answered 503 with
// Retry-After at once, and that the waiting one is answered once memory
// comes back.
func TestQueueFull(t *testing.T) {
	srv, ts := testServer(t, builtDir(t), Options{MaxBytes: builtMaxBytes, MaxQueue: 1, ErrorLog: quietLog(t)})
	v := find(t, srv.Volumes(), "uint16", 3)
	ctx := context.Background()
	if err := srv.mem.Acquire(ctx, srv.opt.Memory); err != nil {
		t.Fatal(err)
	}
	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(ts.URL + v.ZarrArrayURL + "/0.0.0")
		if err != nil {
			first <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	limit := time.Now().Add(time.Minute)
	for srv.waiting.Load() != 1 {
		if time.Now().After(limit) {
			t.Fatal("the first request never waited for memory")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range []string{v.ZarrArrayURL + "/0.0.1", v.BlockURL + "?size=1,1,1"} {
		resp, body := get(t, ts.URL+p)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "busy") {
			t.Errorf("%s with the queue full: %s, Retry-After %q, %q", p, resp.Status, resp.Header.Get("Retry-After"), body)
		}
	}
	srv.mem.Release(srv.opt.Memory)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the waiting request: status %d, want 200 once memory came back", code)
	}
}
