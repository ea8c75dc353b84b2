package store

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const wireSamples = "/work/shared/docs/wire-samples"

// readSample reads a recorded wire sample, skipping when the shared docs are absent.
func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wireSamples, name))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("wire sample %s not available: %v", name, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// describe formats infos compactly for table comparisons.
func describe(infos []ObjectInfo) string {
	var b strings.Builder
	for _, oi := range infos {
		if oi.IsDir {
			fmt.Fprintf(&b, "%s/dir;", strings.TrimSuffix(oi.Key, "/"))
			continue
		}
		fmt.Fprintf(&b, "%s %d %s", oi.Key, oi.Size, oi.ETag)
		if !oi.ModTime.IsZero() {
			fmt.Fprintf(&b, " %s", oi.ModTime.UTC().Format(time.RFC3339))
		}
		if oi.MD5 != nil {
			fmt.Fprintf(&b, " md5=%x", oi.MD5)
		}
		if oi.HasCRC {
			fmt.Fprintf(&b, " crc=%08x", oi.CRC32C)
		}
		if oi.Version != "" {
			fmt.Fprintf(&b, " v=%s", oi.Version)
		}
		if oi.ContentEncoding != "" {
			fmt.Fprintf(&b, " ce=%s", oi.ContentEncoding)
		}
		b.WriteString(";")
	}
	return b.String()
}

func TestParseS3ListWireSamples(t *testing.T) {
	cases := []struct {
		file, root, want, next string
		truncated              bool
	}{
		{"s3-listobjectsv2-delimiter.xml", "blob-for-delimiters-/", "f.txt 5 5d41402abc4b2a76b9719d911017c592 2024-08-20T22:38:18Z;dir1/dir;dir2/dir;", "", false},
		{"s3-listobjectsv2-delimiter-paged-1.xml", "blob-for-delimiters-/", "dir1/dir;", "1d2xGvRt0MK6Pfl9g0vQYGBlJpnFZVEQl+5hfJF7+zd/CYE3fp5Zw2RvAXgDkEyyvGAehfojpAFM=", true},
		{"s3-listobjectsv2-delimiter-paged-2.xml", "blob-for-delimiters-/", "dir2/dir;", "1esf/kpv50DA3w0BFh32xDb1hSK0k4Mt8XWoCn/2tqYnCBNh8TYbOulmShR/eKhHvIFpiycmejiM=", true},
		{"s3-listobjectsv2-delimiter-paged-3.xml", "blob-for-delimiters-/", "f.txt 5 5d41402abc4b2a76b9719d911017c592 2024-08-20T22:38:18Z;", "", false},
		{"s3-listobjectsv2-truncated-1.xml", "", "blob-for-list-0 5 5d41402abc4b2a76b9719d911017c592 2024-08-20T22:38:15Z;blob-for-list-1 5 5d41402abc4b2a76b9719d911017c592 2026-03-19T15:28:24Z;", "1/CyMFpQkjDGpvaUdyjEHeDHq1vVong/WBKxJUlmcB0SnAPR6fz7LtSPi9VcsP0F+", true},
		{"s3-listobjectsv2-truncated-2.xml", "", "blob-for-list-2 5 5d41402abc4b2a76b9719d911017c592 2024-08-20T22:38:15Z;", "", false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			pg, err := parseS3ListPage(readSample(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if pg.IsTruncated != c.truncated || pg.NextContinuationToken != c.next {
				t.Errorf("truncated %v token %q, want %v %q", pg.IsTruncated, pg.NextContinuationToken, c.truncated, c.next)
			}
			infos, err := pg.infos(c.root)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(infos); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestParseGCSListWireSamples(t *testing.T) {
	const f = "f.txt 5 CJiht/CIreACEAE= 2019-02-08T21:22:23Z md5=5d41402abc4b2a76b9719d911017c592 crc=9a71bb4c v=1549660943405208;"
	cases := []struct{ file, root, want, next string }{
		{"gcs-list-objects-delimiter.json", "blob-for-delimiters-/", f + "dir1/dir;dir2/dir;", ""},
		{"gcs-list-objects-delimiter-paged-1.json", "blob-for-delimiters-/", "dir1/dir;", "ChpibG9iLWZvci1kZWxpbWl0ZXJzLS9kaXIxLw=="},
		{"gcs-list-objects-delimiter-paged-2.json", "blob-for-delimiters-/", "dir2/dir;", "ChpibG9iLWZvci1kZWxpbWl0ZXJzLS9kaXIyLw=="},
		{"gcs-list-objects-delimiter-paged-3.json", "blob-for-delimiters-/", f, ""},
		{"gcs-list-objects-truncated-1.json", "", "", "Cg9ibG9iLWZvci1saXN0LTE="},
		{"gcs-list-objects-truncated-2.json", "", "blob-for-list-2 5 CKOZ0eaIreACEAE= 2019-02-08T21:22:02Z md5=5d41402abc4b2a76b9719d911017c592 crc=9a71bb4c v=1549660922858659;", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			pg, err := parseGCSListPage(readSample(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if pg.NextPageToken != c.next {
				t.Errorf("token %q, want %q", pg.NextPageToken, c.next)
			}
			infos, err := pg.infos(c.root)
			if err != nil {
				t.Fatal(err)
			}
			got := describe(infos)
			if c.file == "gcs-list-objects-truncated-1.json" {
				// Two items; check count and keys only.
				if len(infos) != 2 || infos[0].Key != "blob-for-list-0" || infos[1].Key != "blob-for-list-1" || infos[1].Size != 5 {
					t.Errorf("got %s", got)
				}
				return
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestParseErrorBodies(t *testing.T) {
	cases := []struct {
		name       string
		body       func(t *testing.T) []byte
		code, msg  string
		status     int
		isNotExist bool
	}{
		{"s3 404 sample", func(t *testing.T) []byte { return readSample(t, "s3-getobject-404-nosuchkey.xml") }, "NoSuchKey", "The specified key does not exist.", 404, true},
		{"gcs xml 404 sample", func(t *testing.T) []byte { return readSample(t, "gcs-xmlapi-get-404-nosuchkey.xml") }, "NoSuchKey", "The specified key does not exist.", 404, true},
		{"gcs json 404", func(t *testing.T) []byte { return readTestdata(t, "gcs-error-404.json") }, "notFound", "No such object: bkt/data/missing", 404, true},
		{"s3 redirect", func(t *testing.T) []byte { return readTestdata(t, "s3-error-redirect.xml") }, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.", 301, false},
		{"NoSuchKey under 403", func(t *testing.T) []byte { return []byte("<Error><Code>NoSuchKey</Code></Error>") }, "NoSuchKey", "", 403, true},
		{"html", func(t *testing.T) []byte { return []byte("<html><body>oops</body></html>") }, "", "", 500, false},
		{"empty", func(t *testing.T) []byte { return nil }, "", "", 503, false},
		{"long message", func(t *testing.T) []byte {
			return []byte(`{"error":{"message":"` + strings.Repeat("x", 5000) + `"}}`)
		}, "", strings.Repeat("x", 300) + "…", 500, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: c.status, Header: http.Header{}}
			e := newHTTPError("https://h/k", resp, c.body(t))
			if e.Code != c.code || e.Message != c.msg {
				t.Errorf("code %q message %q, want %q %q", e.Code, e.Message, c.code, c.msg)
			}
			if errors.Is(fmt.Errorf("wrapped: %w", e), ErrNotExist) != c.isNotExist {
				t.Errorf("errors.Is(ErrNotExist) = %v, want %v", !c.isNotExist, c.isNotExist)
			}
			if !strings.Contains(e.Error(), "https://h/k") || !strings.Contains(e.Error(), fmt.Sprint(c.status)) {
				t.Errorf("Error() = %q should name the URL and status", e.Error())
			}
		})
	}
}

func TestParseSyntheticListings(t *testing.T) {
	pg, err := parseS3ListPage(readTestdata(t, "s3-list-synthetic.xml"))
	if err != nil {
		t.Fatal(err)
	}
	infos, err := pg.infos("data/")
	if err != nil {
		t.Fatal(err)
	}
	// The "data/" directory marker is skipped; the weak ETag is cleaned.
	want := " ElectronMicroscopy_Hippocampus.tif 3353674357 abc-12 2024-02-03T04:05:06Z;µ & more.txt 7 weak;s0/dir;"
	if got := describe(infos); got != want || pg.NextContinuationToken != "tok+/=" || !pg.IsTruncated {
		t.Errorf("got %s (token %q)\nwant %s", got, pg.NextContinuationToken, want)
	}

	pg, err = parseS3ListPage(readTestdata(t, "s3-list-hostile.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.infos("data/"); !errors.Is(err, ErrBadKey) {
		t.Errorf("hostile key: got %v, want ErrBadKey", err)
	}

	gp, err := parseGCSListPage(readTestdata(t, "gcs-list-synthetic.json"))
	if err != nil {
		t.Fatal(err)
	}
	ginfos, err := gp.infos("data/")
	if err != nil {
		t.Fatal(err)
	}
	gwant := "info 1234 CJiht/CIreACEAE= 2023-11-14T22:13:20Z md5=5d41402abc4b2a76b9719d911017c592 crc=9a71bb4c v=1700000000000001 ce=gzip;a b 5 ;s0/dir;s1/dir;"
	if got := describe(ginfos); got != gwant {
		t.Errorf("got  %s\nwant %s", got, gwant)
	}

	bad := []struct{ name, body string }{
		{"not xml", "{}"},
		{"other root", "<Error><Code>AccessDenied</Code></Error>"},
		{"bad size", "<ListBucketResult><Contents><Key>a</Key><Size>x</Size></Contents></ListBucketResult>"},
	}
	for _, b := range bad {
		if _, err := parseS3ListPage([]byte(b.body)); err == nil {
			t.Errorf("parseS3ListPage(%s) succeeded", b.name)
		}
	}
	neg, err := parseS3ListPage([]byte("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := neg.infos(""); err == nil {
		t.Error("negative size accepted")
	}
	for _, body := range []string{`{"items":[{"name":"a","size":"-5"}]}`, `{"items":[{"name":"a","size":"1e3"}]}`, `{"items":[{"name":"/abs","size":"1"}]}`} {
		gp, err := parseGCSListPage([]byte(body))
		if err == nil {
			_, err = gp.infos("")
		}
		if err == nil {
			t.Errorf("GCS listing %s accepted", body)
		}
	}
}

func TestRelKey(t *testing.T) {
	cases := []struct {
		root, full string
		dir        bool
		rel        string
		ok, bad    bool
	}{
		{"data/", "data/a/b.bin", false, "a/b.bin", true, false},
		{"data/", "data/", false, "", false, false},
		{"data/", "data/sub/", false, "", false, false},
		{"data/", "data/sub/", true, "sub/", true, false},
		{"data/", "datax/a", false, "", false, true},
		{"data/", "data/../x", false, "", false, true},
		{"data/", "data//x", false, "", false, true},
		{"data/", "data/./x", false, "", false, true},
		{"", "/etc/passwd", false, "", false, true},
		{"", "a\x00b", false, "", false, true},
		{"", " lead space/x", false, " lead space/x", true, false},
	}
	for _, c := range cases {
		rel, ok, err := relKey(c.root, c.full, c.dir)
		if rel != c.rel || ok != c.ok || (err != nil) != c.bad || (err != nil && !errors.Is(err, ErrBadKey)) {
			t.Errorf("relKey(%q, %q, %v) = %q, %v, %v", c.root, c.full, c.dir, rel, ok, err)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	cases := []struct {
		in   string
		want contentRange
		bad  bool
	}{
		{"bytes 10-14/27", contentRange{First: 10, Last: 14, Total: 27}, false},
		{"bytes 0-0/1", contentRange{First: 0, Last: 0, Total: 1}, false},
		{"bytes 5-9/*", contentRange{First: 5, Last: 9, Total: -1}, false},
		{"bytes */27", contentRange{Total: 27, Unsatisfied: true}, false},
		{"bytes */0", contentRange{Total: 0, Unsatisfied: true}, false},
		{"bytes */*", contentRange{}, true},
		{"bytes 5-4/27", contentRange{}, true},
		{"bytes 5-27/27", contentRange{}, true},
		{"bytes -1-4/27", contentRange{}, true},
		{"bytes +1-4/27", contentRange{}, true},
		{"bytes 1-4", contentRange{}, true},
		{"items 1-4/5", contentRange{}, true},
		{"bytes 1-99999999999999999999/5", contentRange{}, true},
		{"", contentRange{}, true},
	}
	for _, c := range cases {
		got, err := parseContentRange(c.in)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("parseContentRange(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 6, 2, 18, 30, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"99999999999999999999", 0},
		{"9999999999", 24 * time.Hour},
		{"Tue, 02 Jun 2026 18:31:40 GMT", 100 * time.Second},
		{"Tue, 02 Jun 2026 18:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, c := range cases {
		if got := parseRetryAfter(c.in, now); got != c.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestHeaderInfo uses the headers of the recorded GCS and S3 ranged reads.
func TestHeaderInfo(t *testing.T) {
	gcs := &http.Response{ContentLength: 5, Header: http.Header{
		"Etag":                           {`"3df96c5abe97f2967d38010870030a5f"`},
		"Last-Modified":                  {"Thu, 19 Mar 2026 15:07:56 GMT"},
		"X-Goog-Generation":              {"1773932876940483"},
		"X-Goog-Hash":                    {"crc32c=MoVm6Q==", "md5=PflsWr6X8pZ9OAEIcAMKXw=="},
		"X-Goog-Stored-Content-Encoding": {"identity"},
		"X-Goog-Stored-Content-Length":   {"27"},
	}}
	oi := headerInfo("k", gcs)
	if got := describe([]ObjectInfo{oi}); got != "k 5 3df96c5abe97f2967d38010870030a5f 2026-03-19T15:07:56Z md5=3df96c5abe97f2967d38010870030a5f crc=328566e9 v=1773932876940483;" {
		t.Errorf("GCS headers: %s", got)
	}
	// fake-gcs-server joins both hashes in one header without a space.
	oi = headerInfo("k", &http.Response{ContentLength: -1, Header: http.Header{"X-Goog-Hash": {"crc32c=MoVm6Q==,md5=PflsWr6X8pZ9OAEIcAMKXw=="}, "X-Goog-Stored-Content-Length": {"27"}}})
	if !oi.HasCRC || oi.CRC32C != 0x328566e9 || len(oi.MD5) != 16 || oi.Size != 27 {
		t.Errorf("joined x-goog-hash: %+v", oi)
	}
	s3 := &http.Response{ContentLength: 27, Header: http.Header{
		"Etag":                  {`W/"3df96c5abe97f2967d38010870030a5f"`},
		"Last-Modified":         {"Tue, 02 Jun 2026 18:30:43 GMT"},
		"X-Amz-Version-Id":      {"null"},
		"Content-Md5":           {"PflsWr6X8pZ9OAEIcAMKXw=="},
		"Content-Encoding":      {"gzip"},
		"X-Amz-Checksum-Crc32c": {"bad"},
	}}
	if got := describe([]ObjectInfo{headerInfo("k", s3)}); got != "k 27 3df96c5abe97f2967d38010870030a5f 2026-06-02T18:30:43Z md5=3df96c5abe97f2967d38010870030a5f ce=gzip;" {
		t.Errorf("S3 headers: %s", got)
	}
	dec := &http.Response{ContentLength: -1, Uncompressed: true, Header: http.Header{}}
	if oi := headerInfo("k", dec); oi.Size != -1 {
		t.Errorf("decoded body size %d, want unknown", oi.Size)
	}
}

func TestRegionalEndpoint(t *testing.T) {
	body := readTestdata(t, "s3-error-redirect.xml")
	cases := []struct {
		current, region string
		body            []byte
		want            string
	}{
		{"https://s3.amazonaws.com", "", body, "https://s3.us-west-2.amazonaws.com"},
		{"http://127.0.0.1:9", "", body, "http://s3.us-west-2.amazonaws.com"},
		{"https://s3.amazonaws.com", "eu-central-1", nil, "https://s3.eu-central-1.amazonaws.com"},
		{"https://s3.eu-central-1.amazonaws.com", "us-east-1", nil, "https://s3.amazonaws.com"},
		{"https://s3.amazonaws.com", "x.evil.com/", nil, ""},
		{"https://s3.amazonaws.com", "", []byte("<Error><Endpoint>evil.com/path?</Endpoint></Error>"), ""},
		{"https://s3.amazonaws.com", "", nil, ""},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.region != "" {
			h.Set("X-Amz-Bucket-Region", c.region)
		}
		if got := regionalEndpoint(c.current, "bkt", h, c.body); got != c.want {
			t.Errorf("regionalEndpoint(%q, region %q) = %q, want %q", c.current, c.region, got, c.want)
		}
	}
}

func TestNewDriverValidation(t *testing.T) {
	for _, c := range []struct{ endpoint, region, bucket, prefix string }{
		{"", "", "", ""},
		{"", "", "a/b", ""},
		{"", "", "a b", ""},
		{"", "bad region!", "bkt", ""},
		{"ftp://x", "", "bkt", ""},
		{"", "", "bkt", "../up"},
	} {
		if _, err := NewS3(nil, c.endpoint, c.region, c.bucket, c.prefix); err == nil {
			t.Errorf("NewS3(%q, %q, %q, %q) succeeded", c.endpoint, c.region, c.bucket, c.prefix)
		}
		if c.region == "" {
			if _, err := NewGCS(nil, c.endpoint, c.bucket, c.prefix); err == nil {
				t.Errorf("NewGCS(%q, %q, %q) succeeded", c.endpoint, c.bucket, c.prefix)
			}
		}
	}
	d, err := NewS3(nil, "", "eu-west-1", "bkt", "/a/b")
	if err != nil || d.Endpoint() != "https://s3.eu-west-1.amazonaws.com" || d.String() != "s3://bkt/a/b/" || d.URL("x y") != "https://s3.eu-west-1.amazonaws.com/bkt/a/b/x%20y" || d.URL("") != "https://s3.eu-west-1.amazonaws.com/bkt/a/b" {
		t.Errorf("NewS3 regional: %v %q %q %q", err, d.Endpoint(), d.String(), d.URL("x y"))
	}
	g, err := NewGCS(nil, "", "bkt", "vol/")
	if err != nil || g.metaURL(objectName(g.prefix, "s0/0_0 1")) != "https://storage.googleapis.com/storage/v1/b/bkt/o/vol%2Fs0%2F0_0%201" || g.URL("s0/x") != "https://storage.googleapis.com/bkt/vol/s0/x" {
		t.Errorf("NewGCS: %v %q %q", err, g.metaURL("vol/s0/0_0 1"), g.URL("s0/x"))
	}
}
