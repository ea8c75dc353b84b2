package store_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// closing is a driver whose only extra is Close, which it counts.
type closing struct {
	store.Driver
	closed int
}

func (c *closing) Close() error { c.closed++; return nil }

// TestDecoratorAdvertisesOnlyWhatItWraps: a RetryDriver has exactly the
// optional interfaces of the driver under it, found with As, and a Store
// writes through it only when that driver can write.
func TestDecoratorAdvertisesOnlyWhatItWraps(t *testing.T) {
	web, err := store.NewHTTP(nil, "http://127.0.0.1:1/root/")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		inner      store.Driver
		write, url bool
	}{
		{"file", store.NewFile(t.TempDir()), true, false},
		{"http", web, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := store.WithRetry(c.inner, 3, time.Millisecond)
			if _, ok := d.(*store.RetryDriver); !ok {
				t.Fatalf("WithRetry returned %T, want a *RetryDriver", d)
			}
			for what, claimed := range map[string]bool{
				"WriterDriver": implements[store.WriterDriver](d),
				"URLDriver":    implements[store.URLDriver](d),
				"io.Closer":    implements[io.Closer](d),
			} {
				if claimed {
					t.Errorf("the decorator itself claims %s", what)
				}
			}
			if _, ok := store.As[store.WriterDriver](d); ok != c.write {
				t.Errorf("As[WriterDriver] = %v, want %v", ok, c.write)
			}
			if u, ok := store.As[store.URLDriver](d); ok != c.url || (ok && u.URL("k") != "http://127.0.0.1:1/root/k") {
				t.Errorf("As[URLDriver] = %v, want %v", ok, c.url)
			}
			err := store.New(d).WriteAll(context.Background(), "k", []byte("x"))
			if c.write && err != nil {
				t.Errorf("write through the decorator: %v", err)
			}
			if !c.write && !errors.Is(err, store.ErrNotSupported) {
				t.Errorf("write to a read-only driver: %v, want ErrNotSupported", err)
			}
		})
	}
}

func implements[T any](d store.Driver) bool {
	_, ok := d.(T)
	return ok
}

// TestCloseReachesThroughDecorators: Store.Close finds the driver's Close
// under any number of decorators, and is a no-op for drivers without one.
func TestCloseReachesThroughDecorators(t *testing.T) {
	c := &closing{Driver: store.NewFile(t.TempDir())}
	st := store.New(store.WithRetry(store.WithRetry(c, 2, time.Millisecond), 3, time.Millisecond))
	if err := st.Close(); err != nil || c.closed != 1 {
		t.Fatalf("Close: %v, driver closed %d times, want once", err, c.closed)
	}
	bare := struct{ store.Driver }{store.NewFile(t.TempDir())} // hides FileDriver.Close
	if err := store.New(bare).Close(); err != nil {
		t.Errorf("Close of a driver without Close: %v", err)
	}
}

// idleCounter is a transport that counts CloseIdleConnections calls.
type idleCounter struct {
	http.RoundTripper
	n int
}

func (c *idleCounter) CloseIdleConnections() { c.n++ }

// TestRemoteCloseDropsIdleConnections: closing a remote store, even one the
// Opener wrapped for retries, drops the idle connections of its client.
func TestRemoteCloseDropsIdleConnections(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:1/root/", "s3://bkt/root/", "gs://bkt/root/"} {
		tr := &idleCounter{RoundTripper: http.DefaultTransport}
		o := &store.Opener{HTTP: &http.Client{Transport: tr}, S3Endpoint: "http://127.0.0.1:1", GCSEndpoint: "http://127.0.0.1:1", Retry: 3}
		st, err := o.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		if err := st.Close(); err != nil || tr.n != 1 {
			t.Errorf("%s: Close = %v, idle connections closed %d times, want once", u, err, tr.n)
		}
	}
}

// TestHostInfo: every store tells what its server is, through decorators;
// stores without HostInfo count as one local server.
func TestHostInfo(t *testing.T) {
	defaults := &store.Opener{Retry: 3}
	mirror := &store.Opener{S3Endpoint: "http://127.0.0.1:9000", Retry: 3}
	cases := []struct {
		o    *store.Opener
		url  string
		want store.Host
	}{
		{defaults, "https://FTP.ebi.ac.uk/empiar/", store.Host{Name: "ftp.ebi.ac.uk", Parallel: store.ParallelWeb}},
		{mirror, "s3://bkt/p/", store.Host{Name: "127.0.0.1:9000", ObjectStore: true, Parallel: store.ParallelObjectStore, ETagIsMD5: true}},
		{defaults, "gs://bkt/p/", store.Host{Name: "storage.googleapis.com", ObjectStore: true, Parallel: store.ParallelObjectStore}},
		{defaults, "https://bkt.s3.eu-west-1.amazonaws.com/p/", store.Host{Name: "s3.amazonaws.com", ObjectStore: true, Parallel: store.ParallelObjectStore, ETagIsMD5: true}},
		{mirror, "https://bkt.s3.eu-west-1.amazonaws.com/p/", store.Host{Name: "bkt.s3.eu-west-1.amazonaws.com", Parallel: store.ParallelWeb}},
		{defaults, t.TempDir(), store.Host{Name: "local", Parallel: store.ParallelWeb}},
	}
	for _, c := range cases {
		st, err := c.o.Open(context.Background(), c.url)
		if err != nil {
			t.Fatalf("Open(%s): %v", c.url, err)
		}
		if got := st.Host(); got != c.want {
			t.Errorf("Open(%s).Host() = %+v, want %+v", c.url, got, c.want)
		}
		st.Close()
	}
}
