package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRangeSet(t *testing.T) {
	cases := []struct {
		name    string
		adds    [][2]int64
		want    rangeSet
		size    int64
		missing []interval
	}{
		{"empty", nil, nil, 10, []interval{{0, 10}}},
		{"one", [][2]int64{{2, 5}}, rangeSet{{2, 5}}, 10, []interval{{0, 2}, {5, 10}}},
		{"adjacent merge", [][2]int64{{0, 5}, {5, 10}}, rangeSet{{0, 10}}, 10, nil},
		{"out of order", [][2]int64{{6, 8}, {0, 2}, {3, 4}}, rangeSet{{0, 2}, {3, 4}, {6, 8}}, 8, []interval{{2, 3}, {4, 6}}},
		{"overlap spans several", [][2]int64{{0, 2}, {4, 6}, {8, 10}, {1, 9}}, rangeSet{{0, 10}}, 12, []interval{{10, 12}}},
		{"empty interval ignored", [][2]int64{{3, 3}, {5, 4}}, nil, 1, []interval{{0, 1}}},
		{"contained", [][2]int64{{0, 10}, {2, 3}}, rangeSet{{0, 10}}, 10, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s rangeSet
			for _, a := range tc.adds {
				s.add(a[0], a[1])
			}
			if !reflect.DeepEqual(s, tc.want) {
				t.Errorf("set %v, want %v", s, tc.want)
			}
			if got := s.missing(tc.size); !reflect.DeepEqual(got, tc.missing) {
				t.Errorf("missing %v, want %v", got, tc.missing)
			}
		})
	}
}

func TestJournalReplay(t *testing.T) {
	cases := []struct {
		name  string
		lines string
		check func(t *testing.T, e map[string]*entry)
	}{
		{"torn last line", `{"t":"part","ds":"d","path":"p","off":0,"len":10,"size":100,"etag":"e"}
{"t":"part","ds":"d","path":"p","off":10,"le`, func(t *testing.T, e map[string]*entry) {
			if got := e[entryKey("d", "p")].parts; !reflect.DeepEqual(got, rangeSet{{0, 10}}) {
				t.Errorf("parts %v", got)
			}
		}},
		{"parts of another Last-Modified dropped", `{"t":"part","ds":"d","path":"p","off":0,"len":10,"size":100,"lastmod":1000}
{"t":"part","ds":"d","path":"p","off":10,"len":10,"size":100,"lastmod":2000}
`, func(t *testing.T, e map[string]*entry) {
			got := e[entryKey("d", "p")]
			if !reflect.DeepEqual(got.parts, rangeSet{{10, 20}}) || got.lastMod != 2000 {
				t.Errorf("parts %v of Last-Modified %d, want [10,20) of 2000", got.parts, got.lastMod)
			}
		}},
		{"reset forgets", `{"t":"part","ds":"d","path":"p","off":0,"len":10,"size":100}
{"t":"reset","ds":"d","path":"p"}
`, func(t *testing.T, e map[string]*entry) {
			if len(e) != 0 {
				t.Errorf("entries %v", e)
			}
		}},
		{"new version drops old parts", `{"t":"part","ds":"d","path":"p","off":0,"len":10,"size":100,"etag":"a"}
{"t":"part","ds":"d","path":"p","off":50,"len":10,"size":100,"etag":"b"}
`, func(t *testing.T, e map[string]*entry) {
			x := e[entryKey("d", "p")]
			if x.etag != "b" || !reflect.DeepEqual(x.parts, rangeSet{{50, 60}}) {
				t.Errorf("entry %+v", x)
			}
		}},
		{"done", `{"t":"done","ds":"d","path":"p","size":3,"sha256":"` + strings.Repeat("a", 64) + `","mtime":5}
`, func(t *testing.T, e map[string]*entry) {
			x := e[entryKey("d", "p")]
			if x == nil || x.done == nil || x.done.MTime != 5 {
				t.Errorf("entry %+v", x)
			}
		}},
		{"hostile records ignored", `{"t":"part","ds":"d","path":"p","off":-5,"len":10,"size":100}
{"t":"part","ds":"d","path":"p","off":95,"len":10,"size":100}
{"t":"part","ds":"d","path":"p","off":9223372036854775800,"len":9223372036854775800,"size":100}
{"t":"done","ds":"d","path":"q","size":3,"sha256":"short"}
not json at all
{"t":"part","ds":"","path":"p","off":0,"len":1,"size":1}
`, func(t *testing.T, e map[string]*entry) {
			if len(e) != 0 {
				t.Errorf("entries %v", e)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "journal.jsonl")
			if err := os.WriteFile(p, []byte(tc.lines), 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := openJournal(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, j.entries)
			// Appending after a torn line must give a parseable journal, and
			// compaction must keep the state.
			if err := j.append(record{T: recPart, Dataset: "z", Path: "z", Off: 0, Len: 1, Size: 2}); err != nil {
				t.Fatal(err)
			}
			j.close()
			again, err := replay(p)
			if err != nil {
				t.Fatal(err)
			}
			if again[entryKey("z", "z")] == nil {
				t.Error("appended record lost")
			}
			delete(again, entryKey("z", "z"))
			tc.check(t, again)
		})
	}
}

// TestJournalGroupCommit appends from many goroutines; every record must be
// in the file afterwards.
func TestJournalGroupCommit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "journal.jsonl")
	j, err := openJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 10 {
				if err := j.append(record{T: recPart, Dataset: "d", Path: "p", Off: int64(i*10+k) * 2, Len: 1, Size: 1000}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	j.close()
	e, err := replay(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := e[entryKey("d", "p")].parts.total(); got != 500 {
		t.Errorf("%d bytes recorded, want 500", got)
	}
}

func FuzzReplay(f *testing.F) {
	f.Add([]byte(`{"t":"part","ds":"d","path":"p","off":0,"len":10,"size":100,"etag":"e"}` + "\n" + `{"t":"reset","ds":"d","path":"p"}`))
	f.Add([]byte(`{"t":"done","ds":"d","path":"p","size":3,"sha256":"` + strings.Repeat("a", 64) + `"}` + "\n{\"t\":\"pa"))
	f.Add([]byte("\n\n\x00{}"))
	f.Add([]byte(`{"t":"part","ds":"d","path":"p","off":1,"len":1,"size":3}` + "\n" + `{"t":"part","ds":"d","path":"p","off":0,"len":3,"size":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := replayFrom(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for k, x := range e {
			if x.done != nil {
				continue
			}
			var prev int64 = -1
			for _, iv := range x.parts {
				if iv.lo < 0 || iv.hi > x.size || iv.lo >= iv.hi || iv.lo <= prev {
					t.Fatalf("%q: bad parts %v for size %d", k, x.parts, x.size)
				}
				prev = iv.hi
			}
		}
		// Compaction must be a fixed point: replaying its output gives it back.
		var c1, c2 bytes.Buffer
		if err := encodeEntries(&c1, e); err != nil {
			t.Fatal(err)
		}
		again, err := replayFrom(bytes.NewReader(c1.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if err := encodeEntries(&c2, again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c1.Bytes(), c2.Bytes()) {
			t.Fatalf("compaction is not stable:\n%s\n---\n%s", c1.Bytes(), c2.Bytes())
		}
	})
}
