package transfer

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testRun() *run {
	r := &run{notes: make(chan note, 4)}
	r.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	return r
}

func TestRangeSetPrefix(t *testing.T) {
	tests := []struct {
		name string
		set  rangeSet
		want int64
	}{
		{"empty", nil, 0},
		{"starts later", rangeSet{{10, 20}}, 0},
		{"from zero", rangeSet{{0, 20}, {30, 40}}, 20},
	}
	for _, tc := range tests {
		if got := tc.set.prefix(); got != tc.want {
			t.Errorf("%s: prefix %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestHasherFollowsPrefix writes a file's ranges out of order, moving the
// frontier only as the contiguous prefix grows, and checks the sums against
// one pass over the finished file.
func TestHasherFollowsPrefix(t *testing.T) {
	data := randBytes(7, 3*bufSize+1234)
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "part"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	r := testRun()
	h := r.startHasher(context.Background(), f, int64(len(data)), true, true)
	var have rangeSet
	parts := []interval{{200000, int64(len(data))}, {0, 5000}, {5000, 200000}}
	for _, p := range parts {
		if _, err := f.WriteAt(data[p.lo:p.hi], p.lo); err != nil {
			t.Fatal(err)
		}
		have.add(p.lo, p.hi)
		h.advance(have.prefix())
	}
	sum, md, crc, n, err := h.wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if sum != hex.EncodeToString(want[:]) || n != int64(len(data)) {
		t.Errorf("sha256 %s over %d bytes, want %x over %d", sum, n, want, len(data))
	}
	if wm := md5.Sum(data); hex.EncodeToString(md.Sum(nil)) != hex.EncodeToString(wm[:]) {
		t.Error("MD5 differs")
	}
	if crc.(interface{ Sum32() uint32 }).Sum32() != crc32.Checksum(data, crcTable) {
		t.Error("CRC32C differs")
	}
	r.hashers.Wait()
}

// TestHasherCancelled: a hasher whose object is abandoned ends, and wait
// reports the cancellation instead of a sum.
func TestHasherCancelled(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "part"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := testRun()
	ctx, cancel := context.WithCancel(context.Background())
	h := r.startHasher(ctx, f, 1000, false, false)
	h.advance(10) // beyond the file's end: a short file is an error, not a hang
	cancel()
	r.hashers.Wait()
	if _, _, _, _, err := h.wait(context.Background()); err == nil {
		t.Error("wait succeeded on an incomplete file")
	}
	hctx, hcancel := context.WithCancel(context.Background())
	defer r.hashers.Wait()
	defer hcancel()
	h2 := r.startHasher(hctx, f, 1000, false, false)
	wctx, wcancel := context.WithCancel(context.Background())
	wcancel()
	if _, _, _, _, err := h2.wait(wctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
}

// TestNotes checks the dispatcher's handling of workers' mid-request news:
// a started response ramps the host up, a released slot frees the host, and
// journaled bytes of a stale generation are ignored.
func TestNotes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := testRun()
	h := &host{max: 16, limit: initialPerHost, lastRaise: t0, inflight: 3}
	o := &object{placement: placement{host: h}, expectation: expectation{size: 100}}
	tk := &task{obj: o}
	r.note(note{t: tk, started: true}, t0.Add(rampEvery/2))
	if h.limit != initialPerHost {
		t.Errorf("limit %d after an early response, want %d", h.limit, initialPerHost)
	}
	r.note(note{t: tk, started: true}, t0.Add(rampEvery))
	if h.limit != 2*initialPerHost {
		t.Errorf("limit %d after a response %v later, want %d", h.limit, rampEvery, 2*initialPerHost)
	}
	r.note(note{t: tk, released: true}, t0)
	if h.inflight != 2 {
		t.Errorf("inflight %d after a release, want 2", h.inflight)
	}
	r.note(note{t: tk, done: interval{0, 10}, gen: 0}, t0)
	o.gen = 1
	r.note(note{t: tk, done: interval{10, 20}, gen: 0}, t0)
	if got := o.have.prefix(); got != 10 {
		t.Errorf("have prefix %d, want 10 (stale note must be ignored)", got)
	}
}
