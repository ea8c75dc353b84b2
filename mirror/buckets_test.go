package mirror

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/store/storetest"
)

// bucketServer serves objs under bucket "bkt", prefix "root/", plus decoys
// outside the prefix, by the S3 or GCS mirror handler on a loopback test
// server. lists, when set, counts listing requests.
func bucketServer(t *testing.T, kind string, objs map[string][]byte, lists *atomic.Int64) *httptest.Server {
	t.Helper()
	all := map[string][]byte{
		"bkt/rootx/decoy": []byte("outside the prefix"),
		"bkt/other/decoy": []byte("outside the prefix"),
	}
	for k, v := range objs {
		all["bkt/root/"+k] = v
	}
	h := newBucketHandler(t, kind, all)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lists != nil && (r.URL.Query().Get("list-type") == "2" || strings.HasSuffix(r.URL.Path, "/o")) {
			lists.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newBucketHandler(t testing.TB, kind string, objs map[string][]byte) http.Handler {
	t.Helper()
	newHandler := newS3
	if kind == "gcs" {
		newHandler = newGCS
	}
	h, err := newHandler(objs)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// bucketDriver opens the store driver of kind on a bucket server.
func bucketDriver(t *testing.T, kind string, srv *httptest.Server, bucket, prefix string, pageSize int) *store.Store {
	t.Helper()
	if kind == "s3" {
		d, err := store.NewS3(srv.Client(), srv.URL, "", bucket, prefix)
		if err != nil {
			t.Fatal(err)
		}
		d.PageSize = pageSize
		return store.New(d)
	}
	d, err := store.NewGCS(srv.Client(), srv.URL, bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	d.PageSize = pageSize
	return store.New(d)
}

// TestBucketDriversConformance runs the store drivers' conformance suite
// against the in-repo S3 and GCS mirrors, as store's own tests run it against
// gofakes3 and fake-gcs-server: the mirrors answer the drivers the way those
// independent servers do. Small pages make every listing follow tokens.
func TestBucketDriversConformance(t *testing.T) {
	for _, c := range []struct {
		kind     string
		pageSize int
		minLists int64 // the suite runs 15 listings; at 3 entries a page the larger ones take many
	}{
		{"s3", 0, 15},
		{"s3", 3, 40},
		{"gcs", 0, 15},
		{"gcs", 3, 40},
	} {
		t.Run(fmt.Sprintf("%s/page=%d", c.kind, c.pageSize), func(t *testing.T) {
			var lists atomic.Int64
			storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
				return bucketDriver(t, c.kind, bucketServer(t, c.kind, objs, &lists), "bkt", "root", c.pageSize)
			}, storetest.Options{ResponseInfo: true})
			if n := lists.Load(); n < c.minLists {
				t.Errorf("%d listing requests, want at least %d: paging was not exercised", n, c.minLists)
			}
		})
	}
}

// TestBucketDriversMissingBucket: both services' "no such bucket" answers
// reach the drivers as ErrNotExist with the service's code.
func TestBucketDriversMissingBucket(t *testing.T) {
	for _, c := range []struct{ kind, code string }{{"s3", "NoSuchBucket"}, {"gcs", "notFound"}} {
		t.Run(c.kind, func(t *testing.T) {
			srv := bucketServer(t, c.kind, map[string][]byte{"a": []byte("a")}, nil)
			st := bucketDriver(t, c.kind, srv, "no-such-bucket", "", 0)
			if _, err := st.Stat(context.Background(), "a"); !errors.Is(err, store.ErrNotExist) {
				t.Errorf("Stat in a missing bucket: %v, want ErrNotExist", err)
			}
			// A HEAD answer has no body; the listing's error document names the cause.
			err := st.List(context.Background(), "", "/", func(store.ObjectInfo) error { return nil })
			var he *store.HTTPError
			if !errors.Is(err, store.ErrNotExist) || !errors.As(err, &he) || he.Code != c.code {
				t.Errorf("List of a missing bucket: %v, want ErrNotExist with code %s", err, c.code)
			}
		})
	}
}

// TestBucketBadRequests: every malformed or unsupported request gets the
// service's status and error document, never a panic or a silent answer.
func TestBucketBadRequests(t *testing.T) {
	objs := map[string][]byte{"bkt/root/hello.txt": []byte("hello, world\n"), "bkt/root/empty.bin": {}}
	const hello = "/bkt/root/hello.txt"
	const helloJSON = "/storage/v1/b/bkt/o/root%2Fhello.txt"
	gen := strconv.FormatInt(bucketTime.UnixMicro(), 10)
	cases := []struct {
		kind, method, path string
		rng                string // Range header
		status             int
		body               []string          // substrings of the answer
		hdr                map[string]string // exact header values
	}{
		{"s3", "GET", "/nosuch/key", "", 404, []string{"<Code>NoSuchBucket</Code>", "<BucketName>nosuch</BucketName>"}, map[string]string{"Content-Type": "application/xml"}},
		{"s3", "GET", "/nosuch?list-type=2", "", 404, []string{"<Code>NoSuchBucket</Code>"}, nil},
		{"s3", "GET", "/bkt/root/missing", "", 404, []string{"<Code>NoSuchKey</Code>", "<Key>root/missing</Key>"}, nil},
		{"s3", "HEAD", "/bkt/root/missing", "", 404, nil, nil},
		{"s3", "GET", hello, "bytes=100-", 416, []string{"<Code>InvalidRange</Code>", "<ActualObjectSize>13</ActualObjectSize>"}, map[string]string{"Content-Range": "bytes */13"}},
		{"s3", "GET", hello, "bytes=13-13", 416, []string{"InvalidRange"}, map[string]string{"Content-Range": "bytes */13"}},
		{"s3", "GET", hello, "bytes=5-2", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", hello, "bytes=0-1,4-5", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", hello, "items=0-1", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", hello, "bytes=-0", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", hello, "bytes=+1-2", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", hello, "bytes=99999999999999999999-", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", hello, "bytes", 416, []string{"InvalidRange"}, nil},
		{"s3", "GET", "/bkt/root/empty.bin", "bytes=0-", 416, []string{"InvalidRange"}, map[string]string{"Content-Range": "bytes */0"}},
		{"s3", "GET", hello, "bytes=-5", 206, []string{"orld\n"}, map[string]string{"Content-Range": "bytes 8-12/13", "Content-Length": "5"}},
		{"s3", "GET", hello, "bytes=3-1000", 206, []string{"lo, world\n"}, map[string]string{"Content-Range": "bytes 3-12/13"}},
		{"s3", "HEAD", hello, "bytes=0-1", 206, nil, map[string]string{"Content-Range": "bytes 0-1/13", "Content-Length": "2"}},
		{"s3", "GET", "/bkt?list-type=2&continuation-token=%25%25%25", "", 400, []string{"<Code>InvalidArgument</Code>", "continuation token"}, nil},
		{"s3", "GET", "/bkt?list-type=2&max-keys=-1", "", 400, []string{"max-keys"}, nil},
		{"s3", "GET", "/bkt?list-type=2&max-keys=ten", "", 400, []string{"max-keys"}, nil},
		{"s3", "GET", "/bkt", "", 501, []string{"<Code>NotImplemented</Code>", "list-type=2"}, nil},
		{"s3", "GET", "/bkt?list-type=2&encoding-type=url", "", 501, []string{"encoding-type"}, nil},
		{"s3", "PUT", "/bkt/x", "", 405, []string{"MethodNotAllowed"}, map[string]string{"Allow": "GET, HEAD"}},
		{"s3", "GET", "/", "", 403, []string{"AccessDenied"}, nil},
		{"s3", "HEAD", "/bkt", "", 200, nil, nil},
		{"gcs", "GET", "/storage/v1/b/nosuch/o", "", 404, []string{`"reason":"notFound"`, "bucket does not exist"}, map[string]string{"Content-Type": "application/json; charset=UTF-8"}},
		{"gcs", "GET", "/storage/v1/b/bkt/o/root%2Fmissing", "", 404, []string{`"code":404`, "No such object: bkt/root/missing"}, nil},
		{"gcs", "GET", "/storage/v1/b/bkt/o/", "", 404, []string{"notFound"}, nil},
		{"gcs", "GET", "/nosuch/x", "", 404, []string{"<Code>NoSuchBucket</Code>"}, nil},
		{"gcs", "GET", "/bkt/root/missing", "", 404, []string{"<Code>NoSuchKey</Code>", "<Details>No such object: bkt/root/missing</Details>"}, nil},
		{"gcs", "GET", helloJSON + "?alt=media", "bytes=20-", 416, []string{"requestedRangeNotSatisfiable"}, map[string]string{"Content-Range": "bytes */13"}},
		{"gcs", "GET", hello, "bytes=20-", 416, []string{"<Code>InvalidRange</Code>", "<Details>bytes=20-</Details>"}, nil},
		{"gcs", "GET", hello, "bytes=a-b", 416, []string{"InvalidRange"}, nil},
		{"gcs", "GET", helloJSON + "?alt=media", "bytes=7-", 206, []string{"world\n"}, map[string]string{"Content-Range": "bytes 7-12/13", "X-Goog-Stored-Content-Length": "13"}},
		{"gcs", "GET", "/download/storage/v1/b/bkt/o/root%2Fhello.txt?generation=" + gen + "&alt=media", "", 200, []string{"hello, world\n"}, map[string]string{"X-Goog-Generation": gen}},
		{"gcs", "GET", "/download/storage/v1/b/bkt/o/root%2Fhello.txt?generation=7&alt=media", "", 404, []string{"No such object: bkt/root/hello.txt"}, nil},
		{"gcs", "GET", hello + "?generation=7", "", 404, []string{"NoSuchKey"}, nil},
		{"gcs", "GET", "/storage/v1/b/bkt/o?pageToken=garbage", "", 400, []string{"pageToken"}, nil},
		{"gcs", "GET", "/storage/v1/b/bkt/o?pageToken=Cg%3D%3D", "", 400, []string{"pageToken"}, nil},
		{"gcs", "GET", "/storage/v1/b/bkt/o?maxResults=x", "", 400, []string{"maxResults"}, nil},
		{"gcs", "GET", "/storage/v1/b/bkt/o?matchGlob=*", "", 501, []string{"matchGlob"}, nil},
		{"gcs", "GET", helloJSON + "?alt=xml", "", 400, []string{"alt"}, nil},
		{"gcs", "GET", "/download/storage/v1/b/bkt/o/root%2Fhello.txt", "", 400, []string{"alt=media"}, nil},
		{"gcs", "DELETE", helloJSON, "", 405, []string{"methodNotAllowed"}, nil},
		{"gcs", "PUT", hello, "", 405, []string{"MethodNotAllowed"}, nil},
		{"gcs", "GET", "/storage/v1/b/bkt", "", 501, []string{"notImplemented"}, nil},
		{"gcs", "GET", "/bkt", "", 501, []string{"NotImplemented"}, nil},
	}
	servers := map[string]*httptest.Server{}
	for _, kind := range []string{"s3", "gcs"} {
		servers[kind] = httptest.NewServer(newBucketHandler(t, kind, objs))
		defer servers[kind].Close()
	}
	c := newClient(t)
	for _, tc := range cases {
		t.Run(tc.kind+" "+tc.method+" "+tc.path+" "+tc.rng, func(t *testing.T) {
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			r := do(t, c, tc.method, servers[tc.kind].URL+tc.path, hdr...)
			if r.status != tc.status {
				t.Errorf("status %d, want %d (body %q)", r.status, tc.status, r.body)
			}
			for _, s := range tc.body {
				if !bytes.Contains(r.body, []byte(s)) {
					t.Errorf("body %q lacks %q", r.body, s)
				}
			}
			if tc.method == http.MethodHead && len(r.body) != 0 {
				t.Errorf("HEAD answered with a %d-byte body", len(r.body))
			}
			for k, v := range tc.hdr {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestBucketList checks the listing walk on its own: roll-up into common
// prefixes, resumption after an object or a prefix, full last pages.
func TestBucketList(t *testing.T) {
	bs, err := newBuckets(map[string][]byte{
		"b/a": nil, "b/d/1": nil, "b/d/2": nil, "b/d/x/3": nil, "b/d0": nil, "b/e/": nil, "b/f": nil,
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	b := bs["b"]
	cases := []struct {
		prefix, delim, after string
		limit                int
		want                 []string // common prefixes marked with "*"
		more                 bool
	}{
		{"", "", "", 100, []string{"a", "d/1", "d/2", "d/x/3", "d0", "e/", "f"}, false},
		// The object "e/" ends with the delimiter: it rolls up into the prefix "e/".
		{"", "/", "", 100, []string{"a", "d/*", "d0", "e/*", "f"}, false},
		{"", "/", "", 2, []string{"a", "d/*"}, true},
		{"", "/", "d/", 2, []string{"d0", "e/*"}, true},
		{"", "/", "e/", 2, []string{"f"}, false},
		{"", "/", "", 5, []string{"a", "d/*", "d0", "e/*", "f"}, false},
		{"d/", "/", "", 100, []string{"d/1", "d/2", "d/x/*"}, false},
		{"d", "/", "", 100, []string{"d/*", "d0"}, false},
		{"d/", "", "d/1", 1, []string{"d/2"}, true},
		{"", "", "", 0, nil, false},
		{"zzz", "/", "", 10, nil, false},
		{"", "/", "zzz", 10, nil, false},
		{"", "d/", "", 100, []string{"a", "d/*", "d0", "e/", "f"}, false},
	}
	for _, c := range cases {
		got, more := b.list(c.prefix, c.delim, c.after, c.limit)
		var names []string
		for _, e := range got {
			if e.obj == nil {
				names = append(names, e.name+"*")
			} else {
				names = append(names, e.name)
			}
		}
		if !slices.Equal(names, c.want) || more != c.more {
			t.Errorf("list(%q, %q, after %q, %d) = %q more=%v, want %q more=%v", c.prefix, c.delim, c.after, c.limit, names, more, c.want, c.more)
		}
	}
}

func TestBucketTokens(t *testing.T) {
	for _, name := range []string{"a", "blob-for-delimiters-/dir1/", strings.Repeat("µ", 200)} {
		if got, ok := decodeGCSToken(encodeGCSToken(name)); !ok || got != name {
			t.Errorf("GCS token round trip of %q: %q %v", name, got, ok)
		}
	}
	for _, bad := range []string{"", "!!", "Cg==", "CgE=", "CgJh", "EgFh", "CgP/" + "/w=="} {
		if got, ok := decodeGCSToken(bad); ok {
			t.Errorf("decodeGCSToken(%q) = %q, want a refusal", bad, got)
		}
	}
	for _, bad := range []string{"%%%", "", "//79"} {
		if got, ok := decodeS3Token(bad); ok {
			t.Errorf("decodeS3Token(%q) = %q, want a refusal", bad, got)
		}
	}
}

// wireDir holds the real services' answers (read-only, outside the repo).
const wireDir = "/work/shared/docs/wire-samples"

// exchange is one recorded request and answer of wire-samples/*-exchanges.http.txt.
type exchange struct {
	title, body     string // body: the sibling file with the answer's body, if any
	method, url     string
	reqHdr, respHdr http.Header
	status          int
}

func readExchanges(t *testing.T, name string) []exchange {
	t.Helper()
	f, err := os.Open(filepath.Join(wireDir, name))
	if err != nil {
		t.Skipf("wire samples not available (%v); skipping", err)
	}
	defer f.Close()
	var out []exchange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			ex := exchange{title: line[3:], reqHdr: http.Header{}, respHdr: http.Header{}}
			if _, file, ok := strings.Cut(ex.title, "-> "); ok {
				ex.body = strings.TrimSpace(file)
			}
			out = append(out, ex)
		case len(out) == 0 || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "GET ") || strings.HasPrefix(line, "HEAD "):
			out[len(out)-1].method, out[len(out)-1].url, _ = strings.Cut(line, " ")
		case strings.HasPrefix(line, "> "):
			k, v, _ := strings.Cut(line[2:], ": ")
			out[len(out)-1].reqHdr.Add(k, v)
		case strings.HasPrefix(line, "< HTTP/"):
			_, code, _ := strings.Cut(line, " ")
			out[len(out)-1].status, _ = strconv.Atoi(strings.TrimSpace(code[strings.Index(code, " ")+1:]))
		case strings.HasPrefix(line, "< "):
			k, v, _ := strings.Cut(line[2:], ": ")
			out[len(out)-1].respHdr.Add(k, v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBucketsReplayWireExchanges replays every recorded S3 and GCS exchange
// against the mirrors, filled with the recorded objects (go-cloud's
// conformance fixtures: "hello" and the 27-byte alphabet with its typo), and
// compares status, protocol headers and body structure with the real answers.
func TestBucketsReplayWireExchanges(t *testing.T) {
	// Response headers that describe the recording, not the protocol: who
	// answered, when, and how the recorded bucket is configured (region,
	// encryption, caching). Headers in presentOnly must be there; their values
	// are the recording's own times, generation and storage class.
	ignored := map[string]bool{"Date": true, "Server": true, "X-Amz-Id-2": true, "X-Amz-Request-Id": true,
		"X-Amz-Server-Side-Encryption": true, "X-Amz-Bucket-Region": true, "Cache-Control": true, "Expires": true,
		"Vary": true, "X-Guploader-Uploadid": true}
	presentOnly := map[string]bool{"Last-Modified": true, "X-Goog-Generation": true, "X-Goog-Storage-Class": true}
	fixture := func(bucket string) map[string][]byte {
		m := map[string][]byte{bucket + "/blob-for-reading": []byte("abcdefghijklmnopqurstuvwxyz")}
		for _, k := range []string{"blob-for-delimiters-/f.txt", "blob-for-delimiters-/dir1/f.txt", "blob-for-delimiters-/dir2/f.txt", "blob-for-list-0", "blob-for-list-1", "blob-for-list-2"} {
			m[bucket+"/"+k] = []byte("hello")
		}
		return m
	}
	for _, c := range []struct{ kind, file, bucket string }{
		{"s3", "s3-exchanges.http.txt", "go-cloud-testing-2"},
		{"gcs", "gcs-exchanges.http.txt", "go-cloud-blob-test-bucket"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			exs := readExchanges(t, c.file)
			if len(exs) < 7 {
				t.Fatalf("%s: %d exchanges parsed, want at least 7", c.file, len(exs))
			}
			srv := httptest.NewServer(newBucketHandler(t, c.kind, fixture(c.bucket)))
			defer srv.Close()
			cl := newClient(t)
			lastToken := ""
			for _, ex := range exs {
				u, err := url.Parse(ex.url)
				if err != nil {
					t.Fatalf("%s: %v", ex.title, err)
				}
				path := u.EscapedPath()
				if b, ok := strings.CutSuffix(u.Host, ".s3.us-west-1.amazonaws.com"); ok {
					path = strings.TrimSuffix("/"+b+path, "/") // virtual-hosted → path style
				}
				q := u.Query()
				if q.Get("continuation-token") != "" {
					q.Set("continuation-token", lastToken) // S3 tokens are the server's own
				}
				var hdr []string
				if v := ex.reqHdr.Get("Range"); v != "" {
					hdr = []string{"Range", v}
				}
				r := do(t, cl, ex.method, srv.URL+path+"?"+strings.ReplaceAll(q.Encode(), "+", "%20"), hdr...)
				if r.status != ex.status {
					t.Errorf("%s: status %d, recorded %d (%s)", ex.title, r.status, ex.status, r.body)
					continue
				}
				for k, want := range ex.respHdr {
					got := r.header.Values(k)
					switch {
					case ignored[k]:
					case len(got) == 0:
						t.Errorf("%s: no %s header, recorded %q", ex.title, k, want)
					case presentOnly[k], ex.body != "" && k == "Content-Length", ex.body == "" && k == "Content-Type":
						// Bodies on file are compared below; object types come from the key.
					case !slices.Equal(got, want):
						t.Errorf("%s: %s %q, recorded %q", ex.title, k, got, want)
					}
				}
				if ex.body == "" {
					continue
				}
				want, err := os.ReadFile(filepath.Join(wireDir, ex.body))
				if err != nil {
					t.Fatalf("%s: %v", ex.title, err)
				}
				if strings.HasSuffix(ex.body, ".json") {
					compareGCSJSON(t, ex.title, r.body, want)
					continue
				}
				if g, w := xmlShape(t, r.body), xmlShape(t, want); !slices.Equal(g, w) {
					i := 0
					for i < min(len(g), len(w)) && g[i] == w[i] {
						i++
					}
					t.Errorf("%s: XML differs at item %d: got %q, recorded %q", ex.title, i, g[i:min(i+3, len(g))], w[i:min(i+3, len(w))])
				}
				var l struct{ NextContinuationToken string }
				xml.Unmarshal(r.body, &l)
				lastToken = l.NextContinuationToken
			}
		})
	}
}

// xmlShape flattens an XML document into element paths and texts. Values that
// belong to one recording (tokens, dates, request ids) become "<set>";
// elements for checksums the mirror does not store are dropped.
func xmlShape(t *testing.T, b []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var out, stack []string
	skip := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("XML %q: %v", b, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name.Local)
			switch tok.Name.Local {
			case "ChecksumAlgorithm", "ChecksumType", "RequestId", "HostId":
				skip++
			}
			if skip == 0 {
				out = append(out, "<"+strings.Join(stack, "/")+" "+tok.Name.Space)
			}
		case xml.EndElement:
			switch tok.Name.Local {
			case "ChecksumAlgorithm", "ChecksumType", "RequestId", "HostId":
				skip--
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			s := strings.TrimSpace(string(tok))
			if s == "" || skip > 0 {
				continue
			}
			switch stack[len(stack)-1] {
			case "ContinuationToken", "NextContinuationToken", "LastModified":
				s = "<set>"
			}
			out = append(out, s)
		}
	}
}

// compareGCSJSON compares two objects.list answers. Page tokens must be equal:
// the mirror issues GCS's own token form. Fields of an item that identify the
// recording (links, generation, times, type, storage class) need only be
// strings; size and checksums must be equal.
func compareGCSJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	mask := func(b []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: JSON %q: %v", what, b, err)
		}
		items, _ := m["items"].([]any)
		for _, it := range items {
			o, _ := it.(map[string]any)
			for _, k := range []string{"id", "selfLink", "mediaLink", "generation", "etag", "contentType", "storageClass", "timeCreated", "updated", "timeStorageClassUpdated", "timeFinalized"} {
				if _, ok := o[k].(string); ok {
					o[k] = "<set>"
				}
			}
		}
		return m
	}
	if g, w := mask(got), mask(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: JSON\n got  %v\n want %v", what, g, w)
	}
}

// FuzzBuckets sends arbitrary paths, queries and ranges to the S3 and GCS
// mirrors: no panic, no server error (501 names an unimplemented feature),
// and partial answers whose Content-Range matches the body.
func FuzzBuckets(f *testing.F) {
	objs := map[string][]byte{"bkt/a/b.txt": []byte("0123456789"), "bkt/a/c": {}, "bkt/µ x": []byte("x")}
	handlers := []http.Handler{newBucketHandler(f, "s3", objs), newBucketHandler(f, "gcs", objs)}
	for _, s := range []struct {
		h         byte
		p, q, rng string
		head      bool
	}{
		{0, "/bkt", "list-type=2&delimiter=/&max-keys=1", "", false},
		{0, "/bkt", "list-type=2&continuation-token=YS8=", "", false},
		{0, "/bkt/a/b.txt", "", "bytes=3-", true},
		{0, "/bkt/a/c", "", "bytes=-1", false},
		{1, "/storage/v1/b/bkt/o", "delimiter=/&maxResults=1&pageToken=CgJhLw==", "", false},
		{1, "/storage/v1/b/bkt/o/a/b.txt", "alt=media", "bytes=9-100", false},
		{1, "/download/storage/v1/b/bkt/o/a%2Fc", "alt=media", "bytes=0-0", false},
		{1, "/bkt/a/b.txt", "", "bytes=-20", true},
	} {
		f.Add(s.h, s.p, s.q, s.rng, s.head)
	}
	f.Fuzz(func(t *testing.T, which byte, p, q, rng string, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req := &http.Request{Method: method, URL: &url.URL{Path: p, RawQuery: q}, Header: http.Header{}, Host: "mirror.invalid"}
		req = req.WithContext(t.Context())
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		handlers[int(which)%len(handlers)].ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusNotImplemented {
			t.Fatalf("%s %q?%q Range %q: %d %s", method, p, q, rng, w.Code, w.Body.Bytes())
		}
		if w.Code == http.StatusPartialContent {
			var first, last, size int64
			if _, err := fmt.Sscanf(w.Header().Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &size); err != nil || first > last || last >= size {
				t.Fatalf("206 with Content-Range %q", w.Header().Get("Content-Range"))
			}
			if !head && int64(w.Body.Len()) != last-first+1 {
				t.Fatalf("206 %q with %d body bytes", w.Header().Get("Content-Range"), w.Body.Len())
			}
		}
	})
}
