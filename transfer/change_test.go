package transfer

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/source"
)

// lastModServer serves one object with Last-Modified and no ETag, as plain
// file servers do; the test replaces it between runs.
type lastModServer struct {
	mu   sync.Mutex
	data []byte
	mod  time.Time
}

func (s *lastModServer) set(data []byte, mod time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.mod = data, mod
}

func (s *lastModServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data, mod := s.data, s.mod
	s.mu.Unlock()
	http.ServeContent(w, r, "", mod, bytes.NewReader(data))
}

// A file replaced on a server without ETags by one of the same size is
// fetched again when its Last-Modified is another; an unchanged one is not.
// Small files (one request) and large ones (ranges) both.
func TestLastModifiedDetectsReplacedFile(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		size     int
		sized    bool // the listing states the size
		replace  bool
		wantSkip bool
	}{
		{name: "small unchanged", size: 1000, sized: true, wantSkip: true},
		{name: "small replaced", size: 1000, sized: true, replace: true},
		{name: "small unsized replaced", size: 1000, replace: true},
		{name: "ranged unchanged", size: 300 << 10, sized: true, wantSkip: true},
		{name: "ranged replaced", size: 300 << 10, sized: true, replace: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &lastModServer{}
			s.set(randBytes(1, tc.size), t0)
			srv := httptest.NewServer(s)
			defer srv.Close()
			size := int64(-1)
			if tc.sized {
				size = int64(tc.size)
			}
			jobs := []Job{{Dataset: "d", Objects: []source.Object{{StoreURL: srv.URL + "/", Key: "f.bin", SourceURL: srv.URL + "/f.bin", Path: "f.bin", Size: size}}}}
			out := t.TempDir()
			opt := testOptions(t, out)
			runOK(t, jobs, opt)
			want := randBytes(1, tc.size)
			if tc.replace {
				want = randBytes(2, tc.size) // same size, other bytes
				s.set(want, t0.Add(time.Hour))
			}
			sum := runOK(t, jobs, opt)
			res := sum.Datasets[0].Results[0]
			if res.Skipped != tc.wantSkip {
				t.Errorf("second run: skipped = %v, want %v", res.Skipped, tc.wantSkip)
			}
			got, err := os.ReadFile(filepath.Join(out, "d", "f.bin"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Error("the local file is not the server's current content")
			}
		})
	}
}
