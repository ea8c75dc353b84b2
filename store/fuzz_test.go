package store

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addSeedFiles adds files from the wire samples (when present) and testdata
// whose names match the glob patterns.
func addSeedFiles(f *testing.F, patterns ...string) {
	for _, dir := range []string{wireSamples, "testdata"} {
		for _, p := range patterns {
			names, _ := filepath.Glob(filepath.Join(dir, p))
			for _, n := range names {
				if b, err := os.ReadFile(n); err == nil {
					f.Add(b)
				}
			}
		}
	}
}

// checkInfos asserts what a listing may hand to callers, whatever the input.
func checkInfos(t *testing.T, infos []ObjectInfo) {
	for _, oi := range infos {
		k := oi.Key
		if oi.IsDir {
			k = strings.TrimSuffix(k, "/")
		} else if oi.Size < -1 {
			t.Fatalf("object %q with negative size %d", oi.Key, oi.Size)
		}
		c, err := CleanKey(k)
		if err != nil || c != k || k == "" {
			t.Fatalf("listing produced unsafe or non-canonical key %q (%v)", oi.Key, err)
		}
	}
}

func FuzzS3XML(f *testing.F) {
	addSeedFiles(f, "s3-*.xml")
	f.Add([]byte(`<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>data/x</Key><Size>1</Size></Contents><CommonPrefixes><Prefix>data/d/</Prefix></CommonPrefixes></ListBucketResult>`))
	f.Add([]byte(`<Error><Code>PermanentRedirect</Code><Endpoint>bkt.s3.eu-west-1.amazonaws.com</Endpoint></Error>`))
	f.Add([]byte(`<ListBucketResult><Contents><Key>data/../x</Key><Size>-1</Size></Contents></ListBucketResult>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if pg, err := parseS3ListPage(body); err == nil {
			for _, root := range []string{"", "data/"} {
				if infos, err := pg.infos(root); err == nil {
					checkInfos(t, infos)
				}
			}
		}
		parseErrorBody(body)
		if ep := regionalEndpoint("https://s3.amazonaws.com", "bkt", http.Header{}, body); ep != "" {
			u, err := url.Parse(ep)
			if err != nil || u.Path != "" || u.RawQuery != "" || u.User != nil || !validHost(u.Host) {
				t.Fatalf("redirect to unsafe endpoint %q", ep)
			}
		}
	})
}

func FuzzGCSJSON(f *testing.F) {
	addSeedFiles(f, "gcs-*.json")
	f.Add([]byte(`{"items":[{"name":"data/a","size":"12","md5Hash":"XUFAKrxLKna5cZ2REBfFkg==","crc32c":"mnG7TA==","updated":"2019-02-08T21:22:23.403Z"}],"prefixes":["data/p/"],"nextPageToken":"x"}`))
	f.Add([]byte(`{"error":{"code":404,"message":"No such object","errors":[{"reason":"notFound"}]}}`))
	f.Add([]byte(`{"name":"data/a","size":"99999999999999999999"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if pg, err := parseGCSListPage(body); err == nil {
			for _, root := range []string{"", "data/"} {
				if infos, err := pg.infos(root); err == nil {
					checkInfos(t, infos)
				}
			}
		}
		parseErrorBody(body)
	})
}

func FuzzHeaders(f *testing.F) {
	f.Add("bytes 10-14/27", "120", "crc32c=MoVm6Q==, md5=PflsWr6X8pZ9OAEIcAMKXw==", "W/\"x\"")
	f.Add("bytes */27", "Tue, 02 Jun 2026 18:31:40 GMT", "crc32c=MoVm6Q==,md5=PflsWr6X8pZ9OAEIcAMKXw==", "")
	f.Add("bytes 5-9/*", "-1", "md5", "\"")
	f.Add("bytes 0-0/0", "99999999999999999999", "=,=", "abc")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cr, retry, hash, etag string) {
		if c, err := parseContentRange(cr); err == nil {
			if c.Unsatisfied {
				if c.Total < 0 {
					t.Fatalf("%q: unsatisfied range without total", cr)
				}
			} else if c.First < 0 || c.Last < c.First || (c.Total >= 0 && c.Last >= c.Total) {
				t.Fatalf("%q parsed to inconsistent %+v", cr, c)
			}
		}
		if d := parseRetryAfter(retry, now); d < 0 || d > 24*time.Hour {
			t.Fatalf("Retry-After %q gave %s", retry, d)
		}
		oi := headerInfo("k", &http.Response{ContentLength: -1, Header: http.Header{
			"X-Goog-Hash": {hash}, "Etag": {etag}, "Content-Md5": {hash}, "X-Amz-Checksum-Crc32c": {hash},
		}})
		if oi.MD5 != nil && len(oi.MD5) != 16 {
			t.Fatalf("MD5 of length %d", len(oi.MD5))
		}
	})
}

// FuzzRangeAnswer feeds arbitrary server answers to a ReadRange request: the
// reader must either fail or deliver exactly the bytes asked for.
func FuzzRangeAnswer(f *testing.F) {
	f.Add(206, "bytes 10-14/27", int64(5), []byte("klmno"), int64(10), int64(5), "")
	f.Add(200, "", int64(27), []byte("abcdefghijklmnopqrstuvwxyz!"), int64(10), int64(5), "")
	f.Add(200, "", int64(-1), []byte("abcdefghijklmnopqrstuvwxyz!"), int64(3), int64(-1), "")
	f.Add(206, "bytes 10-26/27", int64(-1), []byte("klmnopqrstuvwxyz!"), int64(10), int64(-1), "")
	f.Add(416, "bytes */27", int64(0), []byte(""), int64(27), int64(-1), "")
	f.Add(200, "", int64(12), []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00"), int64(1), int64(2), "gzip")
	f.Add(404, "", int64(0), []byte("<Error><Code>NoSuchKey</Code></Error>"), int64(0), int64(-1), "")
	f.Fuzz(func(t *testing.T, status int, cr string, clen int64, body []byte, off, n int64, ce string) {
		if off < 0 || off > 1<<20 || n < -1 || n > 1<<20 || status < 100 || status > 999 {
			return
		}
		if n == 0 {
			return // Store.ReadRange answers n == 0 itself
		}
		send := func(ctx context.Context, method string, hdr http.Header) (*http.Response, string, error) {
			h := http.Header{}
			if cr != "" {
				h.Set("Content-Range", cr)
			}
			if ce != "" {
				h.Set("Content-Encoding", ce)
			}
			return &http.Response{StatusCode: status, Header: h, ContentLength: clen, Body: io.NopCloser(bytes.NewReader(body))}, "http://test/k", nil
		}
		rc, err := openRange(context.Background(), rangeRequest{off: off, n: n, send: send, acceptEncoding: "identity",
			size: func(context.Context) (int64, error) { return int64(len(body)), nil }})
		if err != nil {
			return
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return
		}
		if n >= 0 && int64(len(got)) != n {
			t.Fatalf("asked %d bytes at %d, got %d without error (status %d, Content-Range %q, Content-Length %d, body %d)", n, off, len(got), status, cr, clen, len(body))
		}
		if status == http.StatusOK && n >= 0 && !bytes.Equal(got, body[off:off+n]) {
			t.Fatalf("200 fallback delivered the wrong slice")
		}
	})
}
