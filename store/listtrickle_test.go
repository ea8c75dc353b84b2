package store

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A server that sends a listing page's headers at once and then one byte now
// and then must not hold a listing forever: each page has a deadline, body
// included (the size bound alone would let it run for days).
func TestListPageTrickleIsCut(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	defer close(stop)

	s3, err := NewS3(srv.Client(), srv.URL, "us-east-1", "bucket", "")
	if err != nil {
		t.Fatal(err)
	}
	s3.PageTimeout = 300 * time.Millisecond
	gcs, err := NewGCS(srv.Client(), srv.URL, "bucket", "")
	if err != nil {
		t.Fatal(err)
	}
	gcs.PageTimeout = 300 * time.Millisecond
	for name, d := range map[string]Driver{"s3": s3, "gcs": gcs} {
		t.Run(name, func(t *testing.T) {
			// The test's own deadline is only a backstop far above the page's.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := d.List(ctx, "", "/", func(ObjectInfo) error { return nil })
			if err == nil {
				t.Fatal("a trickled listing page was accepted")
			}
			if ctx.Err() != nil {
				t.Fatalf("the listing ran until the test's backstop: %v", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not say the page's deadline passed", err)
			}
		})
	}
}
