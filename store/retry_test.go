package store_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// flaky fails the first n calls of each method with a transient error.
type flaky struct {
	store.Driver
	n     int32
	stats atomic.Int32
	lists atomic.Int32
}

func (f *flaky) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if f.stats.Add(1) <= f.n {
		return store.ObjectInfo{}, &store.HTTPError{URL: "x", Status: 503}
	}
	return f.Driver.Stat(ctx, key)
}

func (f *flaky) List(ctx context.Context, prefix, delim string, fn func(store.ObjectInfo) error) error {
	call := f.lists.Add(1)
	seen := 0
	return f.Driver.List(ctx, prefix, delim, func(oi store.ObjectInfo) error {
		seen++
		if call <= f.n && seen == 2 {
			return io.ErrUnexpectedEOF // the page broke after one key was delivered
		}
		return fn(oi)
	})
}

func TestRetryDriverResumesListingWithoutDuplicates(t *testing.T) {
	dir := t.TempDir()
	base := store.New(store.NewFile(dir))
	for _, k := range []string{"a", "b", "c"} {
		if err := base.WriteAll(context.Background(), k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	f := &flaky{Driver: store.NewFile(dir), n: 2}
	st := store.New(store.WithRetry(f, 4, time.Millisecond))
	var keys []string
	if err := st.List(context.Background(), "", "", func(oi store.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a,b,c" || f.lists.Load() != 3 {
		t.Fatalf("keys %v after %d listings; want a,b,c after 3", keys, f.lists.Load())
	}
	if _, err := st.Stat(context.Background(), "a"); err != nil || f.stats.Load() != 3 {
		t.Fatalf("stat: %v after %d calls", err, f.stats.Load())
	}
	if _, err := st.Stat(context.Background(), "missing"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestRetryDriverGivesUpAndKeepsPermanentErrors(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if strings.HasSuffix(r.URL.Path, "/gone") {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(503)
	}))
	defer srv.Close()
	d, err := store.NewHTTP(srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(store.WithRetry(d, 3, time.Millisecond))
	if _, err := st.Stat(context.Background(), "x"); err == nil {
		t.Fatal("503 forever succeeded")
	}
	if got := n.Load(); got < 3 {
		t.Fatalf("%d requests for 3 attempts", got)
	}
	n.Store(0)
	if _, err := st.Stat(context.Background(), "gone"); !errors.Is(err, store.ErrNotExist) || n.Load() > 2 {
		t.Fatalf("404 retried or misreported: %v after %d requests", err, n.Load())
	}
}
