package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

// fillServer puts nSmall small objects and one large one on s and returns their names.
func fillServer(s *testServer, nSmall int, large int) (small []string, big string) {
	for i := range nSmall {
		n := fmt.Sprintf("small/%03d.bin", i)
		s.put(n, randBytes(uint64(i), 100+i*397%20000))
		small = append(small, n)
	}
	s.put("big/volume.tif", randBytes(1000, large))
	return small, "big/volume.tif"
}

func TestManySmallAndLargeSplit(t *testing.T) {
	s := newTestServer(t)
	small, big := fillServer(s, 40, 3<<20+12345)
	s.put("mid.bin", randBytes(7, 100<<10)) // between checkpoint and 2×PartSize: one ranged request
	out := t.TempDir()
	opt := testOptions(t, out)
	opt.PerHost = 3
	var events []Event
	opt.Events = func(ev Event) { events = append(events, ev) }
	jobs := []Job{
		{Dataset: "a", Objects: s.objects(small...)},
		{Dataset: "b", Objects: s.objects(big, "mid.bin")},
	}
	sum := runOK(t, jobs, opt)
	checkTree(t, out, sum, s, "a", small...)
	checkTree(t, out, sum, s, "b", big, "mid.bin")
	noLeftovers(t, out)

	var total int64
	for _, n := range append(small, big, "mid.bin") {
		total += int64(len(s.get(n).data))
	}
	if sum.Fetched != total || s.served.Load() != total {
		t.Errorf("fetched %d, served %d, want %d", sum.Fetched, s.served.Load(), total)
	}
	if got := s.inflight.peak.Load(); got > int64(opt.PerHost) {
		t.Errorf("server saw %d requests in flight, cap %d", got, opt.PerHost)
	}
	if n := s.count(big); n < 40 {
		t.Errorf("large file fetched with %d requests, want it split into ranges", n)
	}
	done := map[string]int{}
	planned := 0
	for _, ev := range events {
		done[ev.Type]++
		if ev.Type == EventPlan {
			// The object count is its own field; bytes are bytes.
			planned += ev.Objects
			if ev.Bytes != 0 {
				t.Errorf("plan event of %s: bytes %d, want 0 (objects %d)", ev.Dataset, ev.Bytes, ev.Objects)
			}
		}
	}
	if planned != len(small)+2 {
		t.Errorf("plan events count %d objects, want %d", planned, len(small)+2)
	}
	if done[EventDone] != len(small)+2 || done[EventDatasetDone] != 2 || done[EventPlan] != 2 {
		t.Errorf("events: %v", done)
	}

	// Idempotency: a second run fetches nothing and reports every object skipped.
	before := s.served.Load()
	opt.Events = nil
	sum2 := runOK(t, jobs, opt)
	if sum2.Fetched != 0 || s.served.Load() != before {
		t.Errorf("second run fetched %d bytes (server %d)", sum2.Fetched, s.served.Load()-before)
	}
	for _, d := range sum2.Datasets {
		if d.Skipped != len(d.Results) {
			t.Errorf("dataset %s: %d of %d skipped on rerun", d.Dataset, d.Skipped, len(d.Results))
		}
	}
	checkTree(t, out, sum2, s, "b", big, "mid.bin")
}

func TestFaults(t *testing.T) {
	abort := func(w http.ResponseWriter, r *http.Request, s *testServer, name string, keep int) {
		obj := s.get(name)
		lo, hi := int64(0), int64(len(obj.data))
		if rg := r.Header.Get("Range"); rg != "" {
			lo, hi, _ = parseRange(rg, hi)
		}
		w.Header().Set("Content-Length", fmt.Sprint(hi-lo))
		if r.Header.Get("Range") != "" {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", lo, hi-1, len(obj.data)))
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write(obj.data[lo : lo+min(int64(keep), hi-lo)])
		w.(http.Flusher).Flush()
	}
	cases := []struct {
		name  string
		fault func(s *testServer) func(w http.ResponseWriter, r *http.Request, name string, n int) bool
	}{
		{"503 twice per object", func(s *testServer) func(http.ResponseWriter, *http.Request, string, int) bool {
			return func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
				if n < 2 && r.Method == http.MethodGet {
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return true
				}
				return false
			}
		}},
		{"429 with Retry-After", func(s *testServer) func(http.ResponseWriter, *http.Request, string, int) bool {
			var once atomic.Bool
			return func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
				if r.Method == http.MethodGet && once.CompareAndSwap(false, true) {
					w.Header().Set("Retry-After", "1")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return true
				}
				return false
			}
		}},
		{"connection reset mid-body", func(s *testServer) func(http.ResponseWriter, *http.Request, string, int) bool {
			return func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
				if n%3 == 1 && r.Method == http.MethodGet && s.get(name) != nil {
					abort(w, r, s, name, 1000)
					panic(http.ErrAbortHandler)
				}
				return false
			}
		}},
		{"truncated body", func(s *testServer) func(http.ResponseWriter, *http.Request, string, int) bool {
			return func(w http.ResponseWriter, r *http.Request, name string, n int) bool {
				if n%2 == 1 && r.Method == http.MethodGet && s.get(name) != nil {
					abort(w, r, s, name, 5000) // handler returns short of Content-Length
					return true
				}
				return false
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			small, big := fillServer(s, 12, 1<<20+777)
			s.fault = tc.fault(s)
			out := t.TempDir()
			opt := testOptions(t, out)
			var retries atomic.Int64
			opt.Events = func(ev Event) {
				if ev.Type == EventRetry {
					retries.Add(1)
				}
			}
			jobs := []Job{{Dataset: "a", Objects: s.objects(small...)}, {Dataset: "b", Objects: s.objects(big)}}
			sum := runOK(t, jobs, opt)
			checkTree(t, out, sum, s, "a", small...)
			checkTree(t, out, sum, s, "b", big)
			noLeftovers(t, out)
			if retries.Load() == 0 {
				t.Error("the fault never fired")
			}
		})
	}
}

// TestChangedDuringDownload replaces the large object after some of its bytes
// were served: the result must be the new version, complete.
func TestChangedDuringDownload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newSize int
	}{{"same size", 1 << 20}, {"shrinks", 300 << 10}, {"grows", 1<<20 + 70000}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			s.put("big", randBytes(1, 1<<20))
			// Made before the run: generating 1 MiB inside the hook took long
			// enough for the other ranges to finish before the change landed.
			changed := randBytes(2, tc.newSize)
			var chunks atomic.Int64
			s.setAfterChunk(func(name string) {
				if name == "big" && chunks.Add(1) == 20 {
					s.put("big", changed)
				}
			})
			out := t.TempDir()
			opt := testOptions(t, out)
			sum := runOK(t, []Job{{Dataset: "d", Objects: s.objects("big")}}, opt)
			checkTree(t, out, sum, s, "d", "big")
			t.Logf("fetched %d served %d requests %d", sum.Fetched, s.served.Load(), s.count("big"))
			if s.served.Load() <= int64(tc.newSize) {
				t.Errorf("served %d bytes: the object did not change mid-download", s.served.Load())
			}
		})
	}
}

func TestNotFoundFailsOnlyItsDataset(t *testing.T) {
	s := newTestServer(t)
	s.put("ok1", randBytes(1, 5000))
	s.put("ok2", randBytes(2, 300<<10))
	out := t.TempDir()
	opt := testOptions(t, out)
	bad := s.objects("ok1")[0]
	bad.Key, bad.Path = "missing.bin", "missing.bin"
	jobs := []Job{
		{Dataset: "broken", Objects: append(s.objects("ok1"), bad)},
		{Dataset: "fine", Objects: s.objects("ok1", "ok2")},
	}
	sum, err := Run(context.Background(), jobs, opt)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, sum, s, "fine", "ok1", "ok2")
	checkTree(t, out, sum, s, "broken", "ok1")
	if sum.Datasets[1].Err() != nil {
		t.Errorf("fine: %v", sum.Datasets[1].Err())
	}
	failed := sum.Failed()
	if len(failed) != 1 || failed[0].Path != "missing.bin" || !errors.Is(failed[0].Err, store.ErrNotExist) {
		t.Fatalf("failed = %+v", failed)
	}
	if err := sum.Err(); err == nil || !strings.Contains(err.Error(), "broken/missing.bin") {
		t.Errorf("summary error %v does not name the object", err)
	}
	if n := s.count("missing.bin"); n != 1 {
		t.Errorf("404 was requested %d times, want 1 (no retry)", n)
	}
	if _, err := os.Stat(filepath.Join(out, "broken", "missing.bin")); !os.IsNotExist(err) {
		t.Errorf("missing.bin exists locally: %v", err)
	}
}

func TestHostilePaths(t *testing.T) {
	s := newTestServer(t)
	s.put("x", []byte("payload"))
	root := t.TempDir()
	out := filepath.Join(root, "sub", "out")
	outside := filepath.Join(root, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink planted in the output tree must not be followed.
	if err := os.MkdirAll(filepath.Join(out, "ds"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(out, "ds", "link")); err != nil {
		t.Fatal(err)
	}
	obj := func(p string) source.Object {
		o := s.objects("x")[0]
		o.Path = p
		return o
	}
	paths := []string{"../x", "/abs", "a/../../b", "", "..", `..\x`, "link/x"}
	var objs []source.Object
	for _, p := range paths {
		objs = append(objs, obj(p))
	}
	jobs := []Job{
		{Dataset: "ds", Objects: objs},
		{Dataset: "../evil", Objects: []source.Object{obj("x")}},
		{Dataset: ".imgdataset", Objects: []source.Object{obj("journal.jsonl")}},
	}
	opt := testOptions(t, out)
	sum, err := Run(context.Background(), jobs, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sum.Datasets {
		for _, r := range d.Results {
			if !errors.Is(r.Err, store.ErrBadKey) {
				t.Errorf("%s/%q: err %v, want ErrBadKey", d.Dataset, r.Path, r.Err)
			}
		}
	}
	// Only "link/x" may have been requested: the rest is rejected before any I/O.
	if n := s.count("x"); n > 1 {
		t.Errorf("object requested %d times", n)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Errorf("wrote outside the output directory: %v", entries)
	}
	top, _ := os.ReadDir(root)
	sub, _ := os.ReadDir(filepath.Join(root, "sub"))
	if len(top) != 2 || len(sub) != 1 {
		t.Errorf("unexpected files next to the output directory: %v %v", top, sub)
	}
	if b, _ := os.ReadFile(filepath.Join(out, stateDir, "journal.jsonl")); bytes.Contains(b, []byte("payload")) {
		t.Error("journal overwritten")
	}
}

func TestChecksums(t *testing.T) {
	s := newTestServer(t)
	data := randBytes(9, 200<<10)
	s.put("good", data)
	s.put("small", data[:1000])
	s.put("bad", data)
	md := md5.Sum(data)
	smallMD := md5.Sum(data[:1000])
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	objs := s.objects("good", "small", "bad")
	objs[0].MD5, objs[0].CRC32C, objs[0].HasCRC = md[:], crc, true
	objs[1].MD5 = smallMD[:]
	objs[2].MD5 = make([]byte, 16) // wrong
	out := t.TempDir()
	opt := testOptions(t, out)
	var retries atomic.Int64
	opt.Events = func(ev Event) {
		if ev.Type == EventRetry {
			retries.Add(1)
		}
	}
	sum, err := Run(context.Background(), []Job{{Dataset: "d", Objects: objs}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	rs := sum.Datasets[0].Results
	if rs[0].Err != nil || rs[1].Err != nil {
		t.Fatalf("good objects failed: %v / %v", rs[0].Err, rs[1].Err)
	}
	if rs[2].Err == nil || !errors.Is(rs[2].Err, errVerify) || !strings.Contains(rs[2].Err.Error(), "MD5") {
		t.Fatalf("bad object: %v, want MD5 mismatch", rs[2].Err)
	}
	if _, err := os.Stat(filepath.Join(out, "d", "bad")); !os.IsNotExist(err) {
		t.Errorf("object that failed verification is in place: %v", err)
	}
	if got := s.served.Load(); got != int64(len(data))*3+1000 {
		t.Errorf("served %d bytes: the bad object should be fetched exactly twice", got)
	}
	checkTree(t, out, sum, s, "d", "good", "small")
}

func TestJSONLines(t *testing.T) {
	s := newTestServer(t)
	s.put("a", randBytes(1, 10))
	var buf bytes.Buffer
	opt := testOptions(t, t.TempDir())
	opt.Events = JSONLines(&buf)
	runOK(t, []Job{{Dataset: "d", Objects: s.objects("a")}}, opt)
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		types = append(types, ev.Type)
	}
	want := []string{EventPlan, EventStart, EventDone, EventDatasetDone}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", types, want)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := Run(context.Background(), nil, Options{}); err == nil {
		t.Error("no error without OutDir")
	}
	if _, err := Run(context.Background(), nil, Options{OutDir: t.TempDir()}); err == nil {
		t.Error("no error without Stores")
	}
}

func TestConcurrentRunsRefused(t *testing.T) {
	out := t.TempDir()
	if err := os.MkdirAll(filepath.Join(out, stateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := lockDir(filepath.Join(out, stateDir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Run(context.Background(), nil, testOptions(t, out)); err == nil {
		t.Error("second run on a locked output directory was not refused")
	}
}

// TestUnknownSizeAndEmpty covers objects the listing gave no size or ETag for
// (learned by a Stat) and zero-length objects.
func TestUnknownSizeAndEmpty(t *testing.T) {
	s := newTestServer(t)
	s.put("empty", nil)
	s.put("unknown-small", randBytes(3, 3000))
	s.put("unknown-large", randBytes(4, 400<<10))
	objs := s.objects("empty", "unknown-small", "unknown-large")
	for i := 1; i < 3; i++ {
		objs[i].Size, objs[i].ETag = -1, ""
	}
	out := t.TempDir()
	opt := testOptions(t, out)
	sum := runOK(t, []Job{{Dataset: "d", Objects: objs}}, opt)
	checkTree(t, out, sum, s, "d", "empty", "unknown-small", "unknown-large")
	if n := s.count("unknown-large"); n < 3 {
		t.Errorf("unknown-large took %d requests; want a Stat and several ranges", n)
	}
	before := s.served.Load()
	sum = runOK(t, []Job{{Dataset: "d", Objects: objs}}, opt)
	if s.served.Load() != before || sum.Datasets[0].Skipped != 3 {
		t.Errorf("rerun fetched %d bytes, skipped %d", s.served.Load()-before, sum.Datasets[0].Skipped)
	}
}

// TestCaps runs many objects over two hosts and checks the per-host and
// global caps on the server side.
func TestCaps(t *testing.T) {
	var all peakCounter
	var servers []*testServer
	var jobs []Job
	for k := range 2 {
		s := newTestServer(t)
		s.pace = 100 * time.Microsecond
		s.shared = &all
		var names []string
		for i := range 60 {
			n := fmt.Sprintf("o%02d", i)
			s.put(n, randBytes(uint64(k*100+i), 20000+i))
			names = append(names, n)
		}
		s.put("big", randBytes(uint64(k), 1<<20))
		names = append(names, "big")
		servers = append(servers, s)
		jobs = append(jobs, Job{Dataset: fmt.Sprint("ds", k), Objects: s.objects(names...)})
	}
	out := t.TempDir()
	opt := testOptions(t, out)
	opt.PerHost, opt.Total = 4, 6
	runOK(t, jobs, opt)
	for i, s := range servers {
		if m := s.inflight.peak.Load(); m > int64(opt.PerHost) {
			t.Errorf("server %d: %d requests in flight, cap %d", i, m, opt.PerHost)
		}
	}
	if m := all.peak.Load(); m > int64(opt.Total) {
		t.Errorf("%d requests in flight over both hosts, cap %d", m, opt.Total)
	}
}

func TestDuplicateLocalFile(t *testing.T) {
	s := newTestServer(t)
	s.put("x", []byte("one"))
	o1 := s.objects("x")[0]
	o1.Path = "b/x"
	o2 := s.objects("x")[0]
	opt := testOptions(t, t.TempDir())
	sum, err := Run(context.Background(), []Job{{Dataset: "a", Objects: []source.Object{o1}}, {Dataset: "a/b", Objects: []source.Object{o2, o2}}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Datasets[0].Err() != nil || sum.Datasets[1].Failed != 2 {
		t.Errorf("results: %+v", sum.Datasets)
	}
}

// TestHostRamp checks the ramp-up and back-off rules with explicit times.
func TestHostRamp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := &host{max: 16, limit: initialPerHost, lastRaise: t0}
	steps := []struct {
		name  string
		do    func()
		limit int
	}{
		{"success within the first rampEvery", func() { h.succeeded(t0.Add(rampEvery / 2)) }, 4},
		{"success after rampEvery doubles", func() { h.succeeded(t0.Add(rampEvery)) }, 8},
		{"again too soon", func() { h.succeeded(t0.Add(rampEvery + rampEvery/2)) }, 8},
		{"doubles to the cap", func() { h.succeeded(t0.Add(2 * rampEvery)) }, 16},
		{"never beyond the cap", func() { h.succeeded(t0.Add(10 * time.Second)) }, 16},
		{"429 halves", func() { h.throttled(t0.Add(11*time.Second), 3*time.Second) }, 8},
		{"not ready while paused", func() {
			if h.ready(t0.Add(13 * time.Second)) {
				t.Error("host ready during Retry-After")
			}
			if !h.ready(t0.Add(14 * time.Second)) {
				t.Error("host not ready after Retry-After")
			}
		}, 8},
		{"floor of one", func() {
			for range 10 {
				h.throttled(t0.Add(20*time.Second), 0)
			}
		}, 1},
		// Long ranges: the responses all arrive at once, then nothing for
		// seconds. The earned raise happens when due, found by nextWake.
		{"earned while busy, not yet due", func() {
			h.inflight = h.limit
			h.succeeded(t0.Add(20*time.Second + 10*time.Millisecond))
			if due, ok := h.raiseDue(); !ok || !due.Equal(t0.Add(20*time.Second+rampEvery)) {
				t.Errorf("raiseDue = %v, %v; want rampEvery after the last change", due, ok)
			}
		}, 1},
		{"raised when due, without a new response", func() {
			if !h.ready(t0.Add(20*time.Second + rampEvery)) {
				t.Error("busy host not raised when its earned raise fell due")
			}
		}, 2},
		{"no second raise without new evidence", func() {
			h.inflight = h.limit
			if h.ready(t0.Add(30 * time.Second)) {
				t.Error("raised again with no response since the last raise")
			}
			if _, ok := h.raiseDue(); ok {
				t.Error("raise pending without evidence")
			}
		}, 2},
	}
	for _, s := range steps {
		s.do()
		if h.limit != s.limit {
			t.Errorf("%s: limit %d, want %d", s.name, h.limit, s.limit)
		}
	}
}

// TestSmallDatasetFirst: with one connection's worth of concurrency, a
// dataset of a few small files finishes before one with a large split file,
// even though the large one is listed first.
func TestSmallDatasetFirst(t *testing.T) {
	s := newTestServer(t)
	s.put("big", randBytes(1, 2<<20))
	var small []string
	for i := range 5 {
		n := fmt.Sprint("s", i)
		s.put(n, randBytes(uint64(10+i), 5000))
		small = append(small, n)
	}
	opt := testOptions(t, t.TempDir())
	opt.PerHost, opt.Total = 2, 2
	var order []string
	opt.Events = func(ev Event) {
		if ev.Type == EventDatasetDone {
			order = append(order, ev.Dataset)
		}
	}
	runOK(t, []Job{{Dataset: "large", Objects: s.objects("big")}, {Dataset: "small", Objects: s.objects(small...)}}, opt)
	if strings.Join(order, ",") != "small,large" {
		t.Errorf("datasets finished in order %v", order)
	}
}

// TestSizeHints: objects a listing sized only roughly are fetched with one GET
// each (no HEAD), end up exact, and are journaled with the answer's ETag, so
// a later run can tell a changed object from an unchanged one.
func TestSizeHints(t *testing.T) {
	s := newTestServer(t)
	s.put("under", randBytes(1, 3000))  // listed as smaller than it is
	s.put("over", randBytes(2, 5000))   // listed as larger
	s.put("big", randBytes(3, 400<<10)) // large hint: Stat, then ranges
	s.put("unsized", randBytes(4, 7000))
	s.put("unsized-big", randBytes(5, 300<<10)) // its GET's answer says large: ranges
	objs := s.objects("under", "over", "big", "gone", "unsized", "unsized-big")
	hints := []int64{2900, 6000, 400 << 10, 100, 0, 0}
	for i := range objs {
		objs[i].Size, objs[i].ETag, objs[i].SizeHint = -1, "", hints[i]
	}
	objs[3].Key, objs[3].Path = "gone", "gone"
	out := t.TempDir()
	opt := testOptions(t, out)
	sum, err := Run(context.Background(), []Job{{Dataset: "d", Objects: objs}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, sum, s, "d", "under", "over", "big", "unsized", "unsized-big")
	if f := sum.Failed(); len(f) != 1 || f[0].Path != "gone" || !errors.Is(f[0].Err, store.ErrNotExist) {
		t.Errorf("failed = %+v, want only gone (not found)", f)
	}
	for _, n := range []string{"under", "over", "gone", "unsized"} {
		if c := s.count(n); c != 1 {
			t.Errorf("%s: %d requests, want one GET", n, c)
		}
	}
	// ≥ 300 KiB in 64 KiB parts: the size learned (a Stat, or the first
	// GET stopped at its headers), ≥ 4 ranges and the final Stat.
	for _, n := range []string{"big", "unsized-big"} {
		if c := s.count(n); c < 6 {
			t.Errorf("%s: %d requests, want its size learned and then several ranges", n, c)
		}
	}

	// Second run: the journal holds each file with its ETag; a Stat per file
	// confirms it and nothing is fetched again.
	objs = append(objs[:3], objs[4:]...)
	before := s.served.Load()
	sum = runOK(t, []Job{{Dataset: "d", Objects: objs}}, opt)
	if s.served.Load() != before || sum.Datasets[0].Skipped != 5 {
		t.Errorf("rerun fetched %d bytes, skipped %d", s.served.Load()-before, sum.Datasets[0].Skipped)
	}

	// The same size with other content: only the ETag from the first GET can
	// tell, and it does.
	changed := randBytes(9, 3000)
	s.put("under", changed)
	sum = runOK(t, []Job{{Dataset: "d", Objects: objs}}, opt)
	checkTree(t, out, sum, s, "d", "under", "over", "big", "unsized", "unsized-big")
	if sum.Datasets[0].Skipped != 4 {
		t.Errorf("after a change: skipped %d, want 4 (under must be fetched again)", sum.Datasets[0].Skipped)
	}
}

// TestHostsFromStores: per-host caps and the ETag rule come from what each
// store says of its server (store.Host), through the Opener's retry
// decorator; an explicit PerHost wins everywhere.
func TestHostsFromStores(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		url        string
		s3Endpoint string
		perHost    int
		wantHost   string
		wantMax    int
		wantMD5    bool
	}{
		{"https://ftp.ebi.ac.uk/empiar/world_availability/11759/data/", "", 0, "ftp.ebi.ac.uk", store.ParallelWeb, false},
		{"http://127.0.0.1:8080/d/", "", 0, "127.0.0.1:8080", store.ParallelWeb, false},
		{"s3://janelia-cosem-datasets/jrc_mus-nacc-2/", "", 0, "s3.amazonaws.com", store.ParallelObjectStore, true},
		{"s3://bucket/p/", "http://127.0.0.1:9000", 0, "127.0.0.1:9000", store.ParallelObjectStore, true},
		{"https://janelia-cosem-datasets.s3.amazonaws.com/jrc_mus-nacc-2/", "", 0, "s3.amazonaws.com", store.ParallelObjectStore, true},
		{"gs://neuroglancer-janelia-flyem-hemibrain/emdata/", "", 0, "storage.googleapis.com", store.ParallelObjectStore, false},
		{"https://storage.googleapis.com/bucket/p/", "", 0, "storage.googleapis.com", store.ParallelObjectStore, false},
		{dir, "", 0, "local", store.ParallelWeb, false},
		{"s3://bucket/p/", "", 8, "s3.amazonaws.com", 8, true},
		{"https://example.org/", "", 100, "example.org", 100, false},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			opt := testOptions(t, t.TempDir())
			opt.Stores.S3Endpoint, opt.Stores.Retry, opt.PerHost = c.s3Endpoint, 3, c.perHost
			o := opt.withDefaults()
			jobs := []Job{{Dataset: "d", Objects: []source.Object{{StoreURL: c.url, Key: "k", Path: "k", Size: 1}}}}
			r, err := newRun(context.Background(), jobs, o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			obj := r.datasets[0].objs[0]
			if obj.res.Err != nil {
				t.Fatal(obj.res.Err)
			}
			if obj.host.name != c.wantHost || obj.host.max != c.wantMax || obj.etagIsMD5 != c.wantMD5 {
				t.Errorf("host %q cap %d ETag-is-MD5 %v; want %q, %d, %v", obj.host.name, obj.host.max, obj.etagIsMD5, c.wantHost, c.wantMax, c.wantMD5)
			}
		})
	}
}

// TestClassify: transfer's own errors first, then store.Classify.
func TestClassify(t *testing.T) {
	he := func(status int, after time.Duration) error {
		return fmt.Errorf("read: %w", &store.HTTPError{URL: "http://h/k", Status: status, RetryAfter: after})
	}
	cases := []struct {
		name     string
		err      error
		class    errClass
		after    time.Duration
		throttle bool
	}{
		{"changed", fmt.Errorf("%w: size 1 → 2", errChanged), errClassChanged, 0, false},
		{"verify", fmt.Errorf("%w: MD5", errVerify), errClassVerify, 0, false},
		{"local disk", local(errors.New("no space left on device")), errClassPermanent, 0, false},
		{"local disk while stalled", fmt.Errorf("%w: %w", errStalled, local(errors.New("EIO"))), errClassPermanent, 0, false},
		{"stall", fmt.Errorf("%w: %w", errStalled, context.Canceled), errClassRetry, 0, false},
		{"cancelled", fmt.Errorf("read: %w", context.Canceled), errClassCanceled, 0, false},
		{"429", he(429, 3*time.Second), errClassRetry, 3 * time.Second, true},
		{"503", he(503, 0), errClassRetry, 0, true},
		{"500 with Retry-After", he(500, time.Second), errClassRetry, time.Second, false},
		{"404", he(404, 0), errClassPermanent, 0, false},
		{"403", he(403, 0), errClassPermanent, 0, false},
		{"truncated", fmt.Errorf("range: %w", io.ErrUnexpectedEOF), errClassRetry, 0, false},
	}
	for _, c := range cases {
		cl, after, th := classify(c.err)
		if cl != c.class || after != c.after || th != c.throttle {
			t.Errorf("%s: classify = %d, %s, %v; want %d, %s, %v", c.name, cl, after, th, c.class, c.after, c.throttle)
		}
	}
}

// idleCounter is a transport that counts CloseIdleConnections calls.
type idleCounter struct {
	http.RoundTripper
	closed atomic.Int32
}

func (c *idleCounter) CloseIdleConnections() { c.closed.Add(1) }

// TestRunClosesItsStores: the stores a run opens are closed when it ends,
// which drops the idle connections of their client.
func TestRunClosesItsStores(t *testing.T) {
	s := newTestServer(t)
	s.put("a", randBytes(1, 1000))
	opt := testOptions(t, t.TempDir())
	tr := &idleCounter{RoundTripper: opt.Stores.HTTP.Transport}
	opt.Stores.HTTP = &http.Client{Transport: tr}
	runOK(t, []Job{{Dataset: "d", Objects: s.objects("a")}}, opt)
	if n := tr.closed.Load(); n != 1 {
		t.Errorf("idle connections closed %d times after the run, want once", n)
	}
}
