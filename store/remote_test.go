package store_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/imgdataset/imgdataset/store"
)

// hostRouter is a RoundTripper that sends requests for named hosts (the real
// AWS and Google endpoints) to loopback test servers, recording the hosts
// asked for, so the default endpoints are exercised without the network.
type hostRouter struct {
	mu     sync.Mutex
	routes map[string]string // host → test server host:port
	asked  []string          // "METHOD host path"
}

func (h *hostRouter) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.asked = append(h.asked, r.Method+" "+r.URL.Host+" "+r.URL.EscapedPath())
	to, ok := h.routes[r.URL.Host]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("test router: no route to %s", r.URL.Host)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host = "http", to
	return http.DefaultTransport.RoundTrip(r2)
}

func (h *hostRouter) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.asked...)
}

func hostOf(t *testing.T, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestOpenerDispatch(t *testing.T) {
	objs := map[string][]byte{"a b/c.txt": []byte("hello")}
	s3srv := newS3Fake(t, objs, nil)
	gcs := newGCSFake(t, objs)
	web := fixtureServer(t, objs, nil)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a b", "c.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	router := &hostRouter{routes: map[string]string{
		"s3.amazonaws.com":           hostOf(t, s3srv.URL),
		"s3.eu-west-1.amazonaws.com": hostOf(t, s3srv.URL),
		"storage.googleapis.com":     hostOf(t, gcs.URL()),
	}}
	client := &http.Client{Transport: router}
	withEndpoints := &store.Opener{HTTP: s3srv.Client(), S3Endpoint: s3srv.URL, GCSEndpoint: gcs.URL()}
	defaults := &store.Opener{HTTP: client}
	regional := &store.Opener{HTTP: client, S3Region: "eu-west-1"}

	cases := []struct {
		name     string
		o        *store.Opener
		url      string
		wantType string
		wantHost string // the host the request must have been sent to (default endpoints only)
	}{
		{"local path", defaults, dir, "*store.FileDriver", ""},
		{"file URL", defaults, "file://" + dir, "*store.FileDriver", ""},
		{"s3 scheme with endpoint", withEndpoints, "s3://bkt/root", "*store.S3Driver", ""},
		{"gs scheme with endpoint", withEndpoints, "gs://bkt/root/", "*store.GCSDriver", ""},
		{"plain http", withEndpoints, web.URL + "/root", "*store.HTTPDriver", ""},
		{"s3 scheme default endpoint", defaults, "s3://bkt/root", "*store.S3Driver", "s3.amazonaws.com"},
		{"s3 scheme regional endpoint", regional, "s3://bkt/root", "*store.S3Driver", "s3.eu-west-1.amazonaws.com"},
		{"gs scheme default endpoint", defaults, "gs://bkt/root", "*store.GCSDriver", "storage.googleapis.com"},
		{"https GCS form", defaults, "https://storage.googleapis.com/bkt/root", "*store.GCSDriver", "storage.googleapis.com"},
		{"https S3 path style", defaults, "https://s3.amazonaws.com/bkt/root", "*store.S3Driver", "s3.amazonaws.com"},
		{"https S3 virtual host", defaults, "https://bkt.s3.amazonaws.com/root", "*store.S3Driver", "s3.amazonaws.com"},
		{"https S3 regional virtual host", regional, "https://bkt.s3.eu-west-1.amazonaws.com/root/", "*store.S3Driver", "s3.eu-west-1.amazonaws.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(router.log())
			st, err := c.o.Open(context.Background(), c.url)
			if err != nil {
				t.Fatalf("Open(%q): %v", c.url, err)
			}
			if got := fmt.Sprintf("%T", st.Driver()); got != c.wantType {
				t.Fatalf("Open(%q) driver %s, want %s", c.url, got, c.wantType)
			}
			b, err := st.ReadAll(context.Background(), "a b/c.txt", 100)
			if err != nil || string(b) != "hello" {
				t.Fatalf("Open(%q).ReadAll(\"a b/c.txt\") = %q, %v", c.url, b, err)
			}
			if c.wantHost != "" {
				log := router.log()[before:]
				if len(log) == 0 || !strings.Contains(log[0], " "+c.wantHost+" ") {
					t.Fatalf("Open(%q): requests %q, want them sent to %s", c.url, log, c.wantHost)
				}
			}
		})
	}
	if _, err := defaults.Open(context.Background(), "ftp://host/x"); err == nil {
		t.Error("Open(ftp://…) succeeded, want an unsupported-scheme error")
	}
	if _, err := defaults.Open(context.Background(), "s3://bad bucket/x"); err == nil {
		t.Error("Open(s3://bad bucket/…) succeeded, want an error")
	}
}

// redirectingS3 answers everything with the 301 S3 sends for a bucket in
// another region; body may be empty (HEAD answers carry only the header).
func redirectingS3(t *testing.T, region, endpoint string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if region != "" {
			w.Header().Set("X-Amz-Bucket-Region", region)
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusMovedPermanently)
		if endpoint != "" && r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>%s</Endpoint><Bucket>bkt</Bucket><RequestId>X</RequestId><HostId>Y</HostId></Error>`, endpoint)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestS3RegionRedirect(t *testing.T) {
	objs := map[string][]byte{"k.bin": []byte("regional bytes")}
	real := newS3Fake(t, objs, nil)

	t.Run("Endpoint in body", func(t *testing.T) {
		wrong := redirectingS3(t, "", "bkt.s3.eu-west-1.amazonaws.com")
		router := &hostRouter{routes: map[string]string{
			"s3.amazonaws.com":           hostOf(t, wrong.URL),
			"s3.eu-west-1.amazonaws.com": hostOf(t, real.URL),
		}}
		d, err := store.NewS3(&http.Client{Transport: router}, "", "", "bkt", "root")
		if err != nil {
			t.Fatal(err)
		}
		st := store.New(d)
		if b, err := st.ReadAll(context.Background(), "k.bin", 100); err != nil || string(b) != "regional bytes" {
			t.Fatalf("ReadAll after redirect = %q, %v", b, err)
		}
		if _, err := st.Stat(context.Background(), "k.bin"); err != nil {
			t.Fatalf("Stat after redirect: %v", err)
		}
		want := []string{
			"GET s3.amazonaws.com /bkt/root/k.bin",
			"GET s3.eu-west-1.amazonaws.com /bkt/root/k.bin",
			"HEAD s3.eu-west-1.amazonaws.com /bkt/root/k.bin", // the driver stays in the right region
		}
		if got := router.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if d.Endpoint() != "https://s3.eu-west-1.amazonaws.com" {
			t.Fatalf("Endpoint() = %q after redirect", d.Endpoint())
		}
	})

	t.Run("region header on HEAD", func(t *testing.T) {
		wrong := redirectingS3(t, "eu-west-1", "")
		router := &hostRouter{routes: map[string]string{
			"s3.amazonaws.com":           hostOf(t, wrong.URL),
			"s3.eu-west-1.amazonaws.com": hostOf(t, real.URL),
		}}
		d, err := store.NewS3(&http.Client{Transport: router}, "", "", "bkt", "root")
		if err != nil {
			t.Fatal(err)
		}
		oi, err := d.Stat(context.Background(), "k.bin")
		if err != nil || oi.Size != 14 {
			t.Fatalf("Stat after redirect = %+v, %v", oi, err)
		}
		var n int
		err = d.List(context.Background(), "", "", func(store.ObjectInfo) error { n++; return nil })
		if err != nil || n != 1 {
			t.Fatalf("List after redirect: %d objects, %v", n, err)
		}
	})

	t.Run("redirect loop", func(t *testing.T) {
		wrong := redirectingS3(t, "eu-west-1", "")
		router := &hostRouter{routes: map[string]string{
			"s3.amazonaws.com":           hostOf(t, wrong.URL),
			"s3.eu-west-1.amazonaws.com": hostOf(t, wrong.URL),
		}}
		d, err := store.NewS3(&http.Client{Transport: router}, "", "", "bkt", "root")
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Stat(context.Background(), "k.bin")
		var he *store.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusMovedPermanently {
			t.Fatalf("Stat through a redirect loop: %v, want an HTTP 301 error", err)
		}
		if n := len(router.log()); n != 2 {
			t.Fatalf("%d requests, want exactly one retry", n)
		}
	})

	t.Run("redirect naming nothing", func(t *testing.T) {
		wrong := redirectingS3(t, "", "")
		d, err := store.NewS3(wrong.Client(), wrong.URL, "", "bkt", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.New(d).ReadAll(context.Background(), "k.bin", 100)
		var he *store.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusMovedPermanently {
			t.Fatalf("got %v, want an HTTP 301 error", err)
		}
	})

	t.Run("hostile region is ignored", func(t *testing.T) {
		wrong := redirectingS3(t, "evil.example/x?", "")
		d, err := store.NewS3(wrong.Client(), wrong.URL, "", "bkt", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Stat(context.Background(), "k.bin"); err == nil {
			t.Fatal("Stat succeeded through a hostile redirect")
		}
		if d.Endpoint() != wrong.URL {
			t.Fatalf("endpoint moved to %q", d.Endpoint())
		}
	})
}

// TestS3ErrorBodies: S3 XML errors become messages, and NoSuchBucket means not-exist.
func TestS3ErrorBodies(t *testing.T) {
	objs := map[string][]byte{"k": []byte("x")}
	srv := newS3Fake(t, objs, nil)
	d, err := store.NewS3(srv.Client(), srv.URL, "", "no-such-bucket", "")
	if err != nil {
		t.Fatal(err)
	}
	err = d.List(context.Background(), "", "", func(store.ObjectInfo) error { return nil })
	var he *store.HTTPError
	if !errors.Is(err, store.ErrNotExist) || !errors.As(err, &he) || he.Code != "NoSuchBucket" {
		t.Fatalf("List of a missing bucket: %v, want NoSuchBucket wrapping ErrNotExist", err)
	}
}

// TestGCSGzipObject: an object stored with Content-Encoding gzip (as
// precomputed chunks often are) is decoded on whole reads by Go's transport,
// while ranged reads address the stored bytes (formats.md §1.5).
func TestGCSGzipObject(t *testing.T) {
	plain := bytes.Repeat([]byte("precomputed chunk "), 200)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	stored := zb.Bytes()

	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		InitialObjects: []fakestorage.Object{{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: "vol/0_64", ContentEncoding: "gzip"},
			Content:     stored,
		}},
		Scheme: "http", Host: "127.0.0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	d, err := store.NewGCS(nil, srv.URL(), "bkt", "vol")
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(d)
	ctx := context.Background()

	oi, err := st.Stat(ctx, "0_64")
	if err != nil || oi.Size != int64(len(stored)) || oi.ContentEncoding != "gzip" {
		t.Fatalf("Stat = %+v, %v; want stored size %d and encoding gzip", oi, err, len(stored))
	}
	whole, err := st.ReadAll(ctx, "0_64", 1<<20)
	if err != nil || !bytes.Equal(whole, plain) {
		t.Fatalf("whole read: %d bytes, %v; want the %d decoded bytes", len(whole), err, len(plain))
	}
	head := make([]byte, 2)
	if err := st.ReadAt(ctx, "0_64", head, 0); err != nil || head[0] != 0x1f || head[1] != 0x8b {
		t.Fatalf("ranged read of the first 2 bytes = %x, %v; want the stored gzip magic", head, err)
	}
	tail, err := readAllRange(st, "0_64", 10, -1)
	if err != nil || !bytes.Equal(tail, stored[10:]) {
		t.Fatalf("ranged read to the end: %d bytes, %v; want %d stored bytes", len(tail), err, len(stored)-10)
	}
}

func readAllRange(st *store.Store, key string, off, n int64) ([]byte, error) {
	rc, err := st.ReadRange(context.Background(), key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// wireDir holds real S3/GCS responses recorded by others (see its README).
const wireDir = "/work/shared/docs/wire-samples"

func wireSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wireDir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			t.Skipf("wire samples not available (%v); these tests replay recorded S3/GCS answers", err)
		}
		t.Fatal(err)
	}
	return b
}

// TestS3ListReplay serves the recorded ListObjectsV2 pages in the order S3
// sent them, checking that the driver follows the real continuation tokens.
func TestS3ListReplay(t *testing.T) {
	pages := [][]byte{
		wireSample(t, "s3-listobjectsv2-delimiter-paged-1.xml"),
		wireSample(t, "s3-listobjectsv2-delimiter-paged-2.xml"),
		wireSample(t, "s3-listobjectsv2-delimiter-paged-3.xml"),
	}
	tokens := []string{"", "1d2xGvRt0MK6Pfl9g0vQYGBlJpnFZVEQl+5hfJF7+zd/CYE3fp5Zw2RvAXgDkEyyvGAehfojpAFM=", "1esf/kpv50DA3w0BFh32xDb1hSK0k4Mt8XWoCn/2tqYnCBNh8TYbOulmShR/eKhHvIFpiycmejiM="}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/go-cloud-testing-2" || q.Get("list-type") != "2" || q.Get("prefix") != "blob-for-delimiters-/" || q.Get("delimiter") != "/" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		for i, tok := range tokens {
			if q.Get("continuation-token") == tok {
				w.Header().Set("Content-Type", "application/xml")
				w.Write(pages[i])
				return
			}
		}
		http.Error(w, "bad token", http.StatusBadRequest)
	}))
	defer srv.Close()
	d, err := store.NewS3(srv.Client(), srv.URL, "", "go-cloud-testing-2", "blob-for-delimiters-")
	if err != nil {
		t.Fatal(err)
	}
	got := listAll(t, d, "", "/")
	want := []string{"dir1/ dir", "dir2/ dir", "f.txt 5 5d41402abc4b2a76b9719d911017c592 2024-08-20T22:38:18Z"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("listing:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGCSListReplay does the same with the recorded objects.list pages.
func TestGCSListReplay(t *testing.T) {
	pages := [][]byte{
		wireSample(t, "gcs-list-objects-delimiter-paged-1.json"),
		wireSample(t, "gcs-list-objects-delimiter-paged-2.json"),
		wireSample(t, "gcs-list-objects-delimiter-paged-3.json"),
	}
	tokens := []string{"", "ChpibG9iLWZvci1kZWxpbWl0ZXJzLS9kaXIxLw==", "ChpibG9iLWZvci1kZWxpbWl0ZXJzLS9kaXIyLw=="}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/storage/v1/b/go-cloud-blob-test-bucket/o" || q.Get("prefix") != "blob-for-delimiters-/" || q.Get("delimiter") != "/" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		for i, tok := range tokens {
			if q.Get("pageToken") == tok {
				w.Header().Set("Content-Type", "application/json; charset=UTF-8")
				w.Write(pages[i])
				return
			}
		}
		http.Error(w, "bad token", http.StatusBadRequest)
	}))
	defer srv.Close()
	d, err := store.NewGCS(srv.Client(), srv.URL, "go-cloud-blob-test-bucket", "blob-for-delimiters-/")
	if err != nil {
		t.Fatal(err)
	}
	got := listAll(t, d, "", "/")
	want := []string{"dir1/ dir", "dir2/ dir", "f.txt 5 CJiht/CIreACEAE= 2019-02-08T21:22:23.403Z md5=5d41402abc4b2a76b9719d911017c592 crc32c=9a71bb4c gen=1549660943405208"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("listing:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// listAll formats a listing compactly for comparison.
func listAll(t *testing.T, d store.Driver, prefix, delim string) []string {
	t.Helper()
	var out []string
	err := d.List(context.Background(), prefix, delim, func(oi store.ObjectInfo) error {
		if oi.IsDir {
			out = append(out, oi.Key+" dir")
			return nil
		}
		s := fmt.Sprintf("%s %d %s %s", oi.Key, oi.Size, oi.ETag, oi.ModTime.Format("2006-01-02T15:04:05.999Z07:00"))
		if oi.MD5 != nil {
			s += fmt.Sprintf(" md5=%x", oi.MD5)
		}
		if oi.HasCRC {
			s += fmt.Sprintf(" crc32c=%08x", oi.CRC32C)
		}
		if oi.Version != "" {
			s += " gen=" + oi.Version
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q, %q): %v", prefix, delim, err)
	}
	return out
}
