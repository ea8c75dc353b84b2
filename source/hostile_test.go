package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/manifest"
)

// TestListingTrickled: a listing page sent one byte at a time, slowly, ends
// at the request timeout instead of never (issue #17 item 4).
func TestListingTrickled(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			f.Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := &Env{HTTP: srv.Client(), RequestTimeout: 300 * time.Millisecond}
	_, err := (&Listing{}).List(ctx, env, srv.URL+"/d/", manifest.Take{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("List: %v (backstop %v); want the request timeout", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "Timeout") && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("List: %v; want a timeout", err)
	}
}

// TestListingDeadLink: one listed file that answers 404 leaves the others
// resolved; it stays in the dataset with its listed size as a hint, for its
// download to fail alone (issue #17 item 6).
func TestListingDeadLink(t *testing.T) {
	tr := &tree{
		pages: map[string]string{"/d/": apacheIndex("/d/", [][3]string{
			{"a.bin", "a.bin", "5.0M"}, {"gone.bin", "gone.bin", "12M"}, {"c.bin", "c.bin", "1"},
		})},
		files: map[string][]byte{"/d/a.bin": make([]byte, 5<<20), "/d/c.bin": []byte("c")},
	}
	srv := httptest.NewServer(tr)
	defer srv.Close()
	objs, err := (&Listing{}).List(context.Background(), &Env{HTTP: srv.Client()}, srv.URL+"/d/", manifest.Take{})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Object{}
	for _, o := range objs {
		byPath[o.Path] = o
	}
	if a := byPath["a.bin"]; a.Size != 5<<20 {
		t.Errorf("a.bin: size %d, want the stat's %d", a.Size, 5<<20)
	}
	if g, ok := byPath["gone.bin"]; !ok || g.Size != -1 || g.SizeHint != 12<<20 {
		t.Errorf("gone.bin: %+v (present %v); want unsized with its 12M hint", g, ok)
	}
	if _, ok := byPath["c.bin"]; !ok || len(objs) != 3 {
		t.Errorf("objects %v, want all three", objPaths(objs))
	}
}
