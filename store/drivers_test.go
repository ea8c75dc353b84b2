package store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/store/storetest"
)

func TestFileDriverConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		dir := t.TempDir()
		for k, v := range objs {
			p := filepath.Join(dir, filepath.FromSlash(k))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, v, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return store.New(store.NewFile(dir))
	}, storetest.Options{CanWrite: true})
}

// fixtureServer serves objs under /root/ with http.ServeContent, so Range,
// HEAD, ETag and 416 behave like a real static server. mutate may alter the
// request handling (fault injection); it returns true when it answered.
func fixtureServer(t *testing.T, objs map[string][]byte, mutate func(w http.ResponseWriter, r *http.Request, body []byte) bool) *httptest.Server {
	t.Helper()
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/root/")
		b, found := objs[key]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		if mutate != nil && mutate(w, r, b) {
			return
		}
		sum := md5.Sum(b)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		if r.Header.Get("Range") == "" {
			w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
		}
		http.ServeContent(w, r, "", mod, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPDriverConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		srv := fixtureServer(t, objs, nil)
		d, err := store.NewHTTP(srv.Client(), srv.URL+"/root") // no trailing slash: still a directory
		if err != nil {
			t.Fatal(err)
		}
		return store.New(d)
	}, storetest.Options{NoList: true, ResponseInfo: true})
}

// TestHTTPDriverNoHEAD: a server refusing HEAD is asked for byte 0 instead.
// The whole suite runs for 405; the other refusals only need Stat.
func TestHTTPDriverNoHEAD(t *testing.T) {
	noHead := func(status int) func(t *testing.T, objs map[string][]byte) *store.Store {
		return func(t *testing.T, objs map[string][]byte) *store.Store {
			srv := fixtureServer(t, objs, func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
				if r.Method == http.MethodHead {
					w.WriteHeader(status)
					return true
				}
				return false
			})
			d, err := store.NewHTTP(srv.Client(), srv.URL+"/root/")
			if err != nil {
				t.Fatal(err)
			}
			return store.New(d)
		}
	}
	storetest.Run(t, noHead(http.StatusMethodNotAllowed), storetest.Options{NoList: true})
	for _, status := range []int{http.StatusForbidden, http.StatusNotImplemented} {
		objs := map[string][]byte{"empty": {}, "one": {1}, "dir/a b": []byte("some bytes")}
		st := noHead(status)(t, objs)
		for k, v := range objs {
			oi, err := st.Stat(context.Background(), k)
			if err != nil || oi.Size != int64(len(v)) || oi.ETag == "" {
				t.Errorf("HEAD refused with %d: Stat(%q) = %+v, %v; want size %d and an ETag", status, k, oi, err, len(v))
			}
		}
		if _, err := st.Stat(context.Background(), "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("HEAD refused with %d: Stat(missing) = %v, want ErrNotExist", status, err)
		}
	}
}

// TestHTTPDriverIgnoresRange: a server answering 200 with the whole object to
// every ranged request still yields exactly the requested bytes.
func TestHTTPDriverIgnoresRange(t *testing.T) {
	var ranged atomic.Int64
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		srv := fixtureServer(t, objs, func(w http.ResponseWriter, r *http.Request, b []byte) bool {
			if r.Header.Get("Range") != "" {
				ranged.Add(1)
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			if r.Method != http.MethodHead {
				w.Write(b)
			}
			return true
		})
		d, err := store.NewHTTP(srv.Client(), srv.URL+"/root")
		if err != nil {
			t.Fatal(err)
		}
		return store.New(d)
	}, storetest.Options{NoList: true})
	if ranged.Load() == 0 {
		t.Fatal("no ranged request reached the server; the fallback was not exercised")
	}
}

// TestHTTPDriverFaults: bodies shorter or longer than announced, bad
// Content-Range answers and errors with Retry-After.
func TestHTTPDriverFaults(t *testing.T) {
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	cases := []struct {
		name    string
		off, n  int64
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{
			name: "truncated whole body", off: 0, n: -1,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.Write(data[:10]) // then the handler returns: the connection is cut
			},
			check: wantErrIs(io.ErrUnexpectedEOF),
		},
		{
			name: "truncated ranged body", off: 5, n: 20,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes 5-24/36")
				w.Header().Set("Content-Length", "20")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(data[5:12])
			},
			check: wantErrIs(io.ErrUnexpectedEOF),
		},
		{
			name: "chunked ranged body shorter than Content-Range", off: 5, n: 20,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes 5-24/36")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(data[5:12])
				w.(http.Flusher).Flush() // chunked, no Content-Length: the body ends cleanly but short
			},
			check: wantErrIs(io.ErrUnexpectedEOF),
		},
		{
			name: "chunked ranged body longer than Content-Range", off: 5, n: 4,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes 5-8/36")
				w.WriteHeader(http.StatusPartialContent)
				w.(http.Flusher).Flush()
				w.Write(data[5:20])
			},
			check: wantErrContains("longer than announced"),
		},
		{
			name: "ranged 200 shorter than needed", off: 30, n: 10,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write(data)
			},
			check: wantErrIs(io.ErrUnexpectedEOF),
		},
		{
			name: "wrong Content-Range start", off: 5, n: 4,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes 0-3/36")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(data[:4])
			},
			check: wantErrContains("Content-Range"),
		},
		{
			name: "garbage Content-Range", off: 5, n: 4,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes five-eight/36")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(data[5:9])
			},
			check: wantErrContains("Content-Range"),
		},
		{
			name: "206 to an unranged request", off: 0, n: -1,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", "bytes 0-3/36")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(data[:4])
			},
			check: wantErrContains("206"),
		},
		{
			name: "ranged 200 with gzip encoding", off: 5, n: 4,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0})
			},
			check: wantErrContains("encoded body"),
		},
		{
			name: "429 with Retry-After seconds", off: 0, n: 4,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			check: wantHTTPError(http.StatusTooManyRequests, 7*time.Second),
		},
		{
			name: "503 with Retry-After date", off: 0, n: 4,
			handler: func(w http.ResponseWriter, r *http.Request) {
				// An hour ahead: the parsed delay is well above any clock drift in the test.
				w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			check: func(t *testing.T, err error) {
				var he *store.HTTPError
				if !errors.As(err, &he) || he.Status != 503 || he.RetryAfter < 50*time.Minute || he.RetryAfter > time.Hour {
					t.Fatalf("got %v, want a 503 HTTPError with RetryAfter ≈ 1h", err)
				}
			},
		},
		{
			name: "410 is not-exist", off: 0, n: -1,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusGone)
			},
			check: wantErrIs(store.ErrNotExist),
		},
		{
			name: "500 names the URL", off: 0, n: -1,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
			},
			check: func(t *testing.T, err error) {
				wantHTTPError(500, 0)(t, err)
				if !strings.Contains(err.Error(), "/dir/obj%20x") || errors.Is(err, store.ErrNotExist) {
					t.Fatalf("error %q should name the URL and not mean not-exist", err)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			d, err := store.NewHTTP(srv.Client(), srv.URL+"/dir/")
			if err != nil {
				t.Fatal(err)
			}
			st := store.New(d)
			rc, err := st.ReadRange(context.Background(), "obj x", c.off, c.n)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			c.check(t, err)
		})
	}
}

func wantErrIs(target error) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("got %v, want an error wrapping %v", err, target)
		}
	}
}

func wantErrContains(s string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Fatalf("got %v, want an error mentioning %q", err, s)
		}
	}
}

func wantHTTPError(status int, retry time.Duration) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var he *store.HTTPError
		if !errors.As(err, &he) || he.Status != status || he.RetryAfter != retry {
			t.Fatalf("got %v (%#v), want HTTPError status %d RetryAfter %s", err, he, status, retry)
		}
	}
}

// TestHTTPDriverURLs checks how keys become URLs, including the EPFL form
// with a space at the start of a directory name.
func TestHTTPDriverURLs(t *testing.T) {
	cases := []struct{ root, key, want string }{
		{"https://h/data/", "a b/c.tif", "https://h/data/a%20b/c.tif"},
		{"https://h/data", "c.tif", "https://h/data/c.tif"},
		{"https://h", "c.tif", "https://h/c.tif"},
		{"https://h/data/ ElectronMicroscopy_Hippocampus", "volumedata.tif", "https://h/data/%20ElectronMicroscopy_Hippocampus/volumedata.tif"},
		{"https://h/data/%20ElectronMicroscopy_Hippocampus/volumedata.tif", "", "https://h/data/%20ElectronMicroscopy_Hippocampus/volumedata.tif"},
		{"https://h/d/", "q?x#y;z.txt", "https://h/d/q%3Fx%23y%3Bz.txt"},
		{"https://h/d/", "µ.txt", "https://h/d/%C2%B5.txt"},
		{"https://h/d/?token=1", "a/b", "https://h/d/a/b?token=1"},
		{"https://h/d/#frag", "a", "https://h/d/a"},
	}
	for _, c := range cases {
		d, err := store.NewHTTP(nil, c.root)
		if err != nil {
			t.Errorf("NewHTTP(%q): %v", c.root, err)
			continue
		}
		if got := d.URL(c.key); got != c.want {
			t.Errorf("NewHTTP(%q).URL(%q) = %q, want %q", c.root, c.key, got, c.want)
		}
	}
	for _, bad := range []string{"ftp://h/x", "https:///x", "://x", "h/x"} {
		if _, err := store.NewHTTP(nil, bad); err == nil {
			t.Errorf("NewHTTP(%q) succeeded, want an error", bad)
		}
	}
}

// TestHTTPDriverSingleFileRoot: a root naming one file is read with key "".
func TestHTTPDriverSingleFileRoot(t *testing.T) {
	objs := map[string][]byte{" dir/volume data.tif": []byte("tiff bytes")}
	srv := fixtureServer(t, objs, nil)
	d, err := store.NewHTTP(srv.Client(), srv.URL+"/root/ dir/volume data.tif")
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(d)
	oi, err := st.Stat(context.Background(), "")
	if err != nil || oi.Size != 10 || oi.ETag == "" || oi.MD5 == nil || oi.ModTime.IsZero() {
		t.Fatalf("Stat(root) = %+v, %v", oi, err)
	}
	b, err := st.ReadAll(context.Background(), "", 100)
	if err != nil || string(b) != "tiff bytes" {
		t.Fatalf("ReadAll(root) = %q, %v", b, err)
	}
}

// newS3Fake starts gofakes3 with objs under bucket "bkt", prefix "root/",
// plus decoys outside the prefix. It counts ListObjects requests.
func newS3Fake(t *testing.T, objs map[string][]byte, lists *atomic.Int64) *httptest.Server {
	t.Helper()
	be := s3mem.New()
	faker := gofakes3.New(be)
	h := faker.Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lists != nil && r.URL.Query().Get("list-type") == "2" {
			lists.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	if err := be.CreateBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	put := func(k string, v []byte) {
		if _, err := be.PutObject("bkt", k, map[string]string{}, bytes.NewReader(v), int64(len(v)), nil); err != nil {
			t.Fatalf("PutObject(%q): %v", k, err)
		}
	}
	for k, v := range objs {
		put("root/"+k, v)
	}
	put("rootx/decoy", []byte("outside the prefix"))
	put("other/decoy", []byte("outside the prefix"))
	return srv
}

func TestS3DriverConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		srv := newS3Fake(t, objs, nil)
		d, err := store.NewS3(srv.Client(), srv.URL, "", "bkt", "root")
		if err != nil {
			t.Fatal(err)
		}
		return store.New(d)
	}, storetest.Options{ResponseInfo: true})
}

func TestS3DriverPagination(t *testing.T) {
	var lists atomic.Int64
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		srv := newS3Fake(t, objs, &lists)
		d, err := store.NewS3(srv.Client(), srv.URL+"/", "", "bkt", "root/")
		if err != nil {
			t.Fatal(err)
		}
		d.PageSize = 3
		return store.New(d)
	}, storetest.Options{})
	// The suite runs 15 listings; at 3 keys a page the larger ones need many pages.
	if n := lists.Load(); n < 40 {
		t.Fatalf("only %d ListObjectsV2 requests: paging was not exercised", n)
	}
}

// newGCSFake starts fake-gcs-server with objs under bucket "bkt", prefix "root/".
func newGCSFake(t *testing.T, objs map[string][]byte) *fakestorage.Server {
	t.Helper()
	var initial []fakestorage.Object
	add := func(k string, v []byte) {
		initial = append(initial, fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: k},
			Content:     v,
		})
	}
	for k, v := range objs {
		add("root/"+k, v)
	}
	add("rootx/decoy", []byte("outside the prefix"))
	add("other/decoy", []byte("outside the prefix"))
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		InitialObjects: initial,
		Scheme:         "http",
		Host:           "127.0.0.1",
		Port:           0,
		NoListener:     false,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func TestGCSDriverConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		srv := newGCSFake(t, objs)
		d, err := store.NewGCS(http.DefaultClient, srv.URL(), "bkt", "root")
		if err != nil {
			t.Fatal(err)
		}
		return store.New(d)
	}, storetest.Options{ResponseInfo: true})
}

func TestGCSDriverPagination(t *testing.T) {
	lists := &countLists{}
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		srv := newGCSFake(t, objs)
		d, err := store.NewGCS(&http.Client{Transport: lists}, srv.URL(), "bkt", "root/")
		if err != nil {
			t.Fatal(err)
		}
		d.PageSize = 3
		return store.New(d)
	}, storetest.Options{})
	if n := lists.n.Load(); n < 40 {
		t.Fatalf("only %d objects.list requests: paging was not exercised", n)
	}
}

// countLists counts GCS objects.list requests passing through it.
type countLists struct{ n atomic.Int64 }

func (c *countLists) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/o") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}
