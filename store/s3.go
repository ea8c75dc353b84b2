package store

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3Driver reads a public S3 bucket anonymously over the S3 REST API with
// path-style URLs (<endpoint>/<bucket>/<key>), which work for every bucket
// name and for S3-compatible servers alike.
type S3Driver struct {
	client         *http.Client
	bucket, prefix string

	// PageSize caps keys per ListObjectsV2 page (max-keys); 0 leaves the
	// server default (1000). Set it before first use.
	PageSize int
	// PageTimeout bounds each listing page request, body included; 0 means
	// two minutes. Set it before first use.
	PageTimeout time.Duration

	mu       sync.Mutex
	endpoint string // may move once to the bucket's region, see do
}

// NewS3 returns a driver for bucket, rooted at prefix. endpoint defaults to
// https://s3.amazonaws.com, or https://s3.<region>.amazonaws.com when region
// is set. A non-empty prefix always names a directory ("/" is appended); the
// empty key names the prefix itself, so a URL of one object can be a root.
func NewS3(client *http.Client, endpoint, region, bucket, prefix string) (*S3Driver, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if !validBucket(bucket) {
		return nil, fmt.Errorf("s3 store: invalid bucket name %q", bucket)
	}
	if endpoint == "" {
		if !validRegion(region) {
			return nil, fmt.Errorf("s3 store: invalid region %q", region)
		}
		endpoint = "https://s3.amazonaws.com"
		if region != "" && region != "us-east-1" {
			endpoint = "https://s3." + region + ".amazonaws.com"
		}
	}
	endpoint = strings.TrimRight(endpoint, "/")
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3 store: endpoint %q is not an http(s) URL", endpoint)
	}
	p, err := dirPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("s3 store: prefix %q: %w", prefix, err)
	}
	return &S3Driver{client: client, bucket: bucket, prefix: p, endpoint: endpoint}, nil
}

// validBucket accepts S3 bucket names (and the looser legacy ones) while
// refusing anything that would change the URL's structure.
func validBucket(b string) bool {
	if b == "" || len(b) > 255 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validRegion keeps a region taken from a server header from injecting a host.
func validRegion(r string) bool {
	if len(r) > 64 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validHost accepts host[:port] names made of DNS characters only.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Host implements HostInfo: the endpoint in use (regional after a redirect),
// an object store whose single-part ETags are MD5s.
func (d *S3Driver) Host() Host {
	return Host{Name: hostName(d.Endpoint()), ObjectStore: true, Parallel: ParallelObjectStore, ETagIsMD5: true}
}

// Close implements io.Closer: it drops the idle keep-alive connections of the
// driver's HTTP client. The client may be shared with other stores; they dial
// again when they next need a connection.
func (d *S3Driver) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// String names the root as an s3:// URL.
func (d *S3Driver) String() string { return "s3://" + d.bucket + "/" + d.prefix }

// Endpoint returns the endpoint in use (it changes after a region redirect).
func (d *S3Driver) Endpoint() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endpoint
}

// URL implements URLDriver: the anonymous path-style URL of key.
func (d *S3Driver) URL(key string) string {
	return d.objectURL(d.Endpoint(), objectName(d.prefix, key))
}

func (d *S3Driver) objectURL(ep, obj string) string {
	return ep + "/" + d.bucket + "/" + escapeKey(obj)
}

// do sends one request built by build for the current endpoint. S3 answers a
// request sent to the wrong region with 301 PermanentRedirect (no Location,
// so Go does not follow it) naming the right endpoint in the XML body or the
// region in x-amz-bucket-region; do then moves the driver there and retries
// once. Other answers are returned whatever their status.
func (d *S3Driver) do(ctx context.Context, method string, build func(ep string) string, hdr http.Header) (*http.Response, string, error) {
	ep := d.Endpoint()
	u := build(ep)
	resp, err := send(ctx, d.client, method, u, hdr)
	if err != nil {
		return nil, u, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return resp, u, nil
	}
	body := readErrorBody(resp)
	next := regionalEndpoint(ep, d.bucket, resp.Header, body)
	if next == "" || next == ep {
		return nil, u, newHTTPError(u, resp, body)
	}
	d.mu.Lock()
	if d.endpoint == ep {
		d.endpoint = next
	}
	d.mu.Unlock()
	u = build(next)
	resp, err = send(ctx, d.client, method, u, hdr)
	return resp, u, err
}

// regionalEndpoint derives the endpoint a redirect points to, keeping the
// current scheme. It returns "" when the answer names no usable place.
func regionalEndpoint(current, bucket string, h http.Header, body []byte) string {
	scheme := "https"
	if strings.HasPrefix(current, "http://") {
		scheme = "http"
	}
	var e s3Error
	if len(body) > 0 && xml.Unmarshal(body, &e) == nil && e.Endpoint != "" {
		host := strings.TrimPrefix(strings.TrimSpace(e.Endpoint), bucket+".")
		if validHost(host) {
			return scheme + "://" + host
		}
	}
	region := h.Get("X-Amz-Bucket-Region")
	if region == "" {
		region = e.Region
	}
	if region != "" && validRegion(region) {
		if region == "us-east-1" {
			return "https://s3.amazonaws.com"
		}
		return "https://s3." + region + ".amazonaws.com"
	}
	return ""
}

func (d *S3Driver) sender(obj string) sendFunc {
	return func(ctx context.Context, method string, hdr http.Header) (*http.Response, string, error) {
		return d.do(ctx, method, func(ep string) string { return d.objectURL(ep, obj) }, hdr)
	}
}

// Stat implements Driver with HEAD Object.
func (d *S3Driver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	obj := objectName(d.prefix, key)
	if obj == "" {
		return ObjectInfo{}, fmt.Errorf("s3 store %s: stat of the bucket root: %w", d, ErrNotExist)
	}
	oi, err := remoteStat(ctx, key, d.sender(obj))
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("s3 store %s: stat %q: %w", d, key, err)
	}
	return oi, nil
}

// ReadRange implements Driver with a strict ranged GET Object.
func (d *S3Driver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	obj := objectName(d.prefix, key)
	if obj == "" {
		return nil, fmt.Errorf("s3 store %s: read of the bucket root: %w", d, ErrNotExist)
	}
	rc, err := openRange(ctx, rangeRequest{
		off: off, n: n, send: d.sender(obj), acceptEncoding: "identity",
		size: func(ctx context.Context) (int64, error) {
			oi, err := d.Stat(ctx, key)
			return oi.Size, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: read %q %s: %w", d, key, rangeString(off, n), err)
	}
	return rc, nil
}

// List implements Driver with ListObjectsV2, following continuation tokens.
func (d *S3Driver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	full := d.prefix + prefix
	l := lister{fn: fn}
	seen := map[string]bool{}
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		q := url.Values{"list-type": {"2"}, "prefix": {full}}
		if delim != "" {
			q.Set("delimiter", delim)
		}
		if token != "" {
			q.Set("continuation-token", token)
		}
		if d.PageSize > 0 {
			q.Set("max-keys", strconv.Itoa(d.PageSize))
		}
		// S3 wants %20, not the form encoding "+", for spaces.
		qs := strings.ReplaceAll(q.Encode(), "+", "%20")
		pctx, cancel := pageContext(ctx, d.PageTimeout)
		resp, u, err := d.do(pctx, http.MethodGet, func(ep string) string { return ep + "/" + d.bucket + "?" + qs }, nil)
		if err != nil {
			cancel()
			return fmt.Errorf("s3 store %s: list %q: %w", d, prefix, err)
		}
		if resp.StatusCode != http.StatusOK {
			err := failed(u, resp)
			cancel()
			return fmt.Errorf("s3 store %s: list %q: %w", d, prefix, err)
		}
		body, err := readLimited(resp, maxListBody)
		cancel()
		if err != nil {
			return fmt.Errorf("s3 store %s: list %q: GET %s: %w", d, prefix, u, err)
		}
		pg, err := parseS3ListPage(body)
		if err != nil {
			return fmt.Errorf("s3 store %s: list %q: GET %s: %w", d, prefix, u, err)
		}
		infos, err := pg.infos(d.prefix)
		if err != nil {
			return fmt.Errorf("s3 store %s: list %q: %w", d, prefix, err)
		}
		if err := l.page(infos); err != nil {
			return err
		}
		if !pg.IsTruncated {
			return nil
		}
		if pg.NextContinuationToken == "" || seen[pg.NextContinuationToken] {
			return fmt.Errorf("s3 store %s: list %q: GET %s: truncated listing without a new continuation token", d, prefix, u)
		}
		seen[pg.NextContinuationToken] = true
		token = pg.NextContinuationToken
	}
}

// readLimited reads a whole response body, refusing more than limit bytes.
func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes: %w", limit, ErrTooLarge)
	}
	return b, nil
}

// s3ListPage is one ListObjectsV2 answer (ListBucketResult).
type s3ListPage struct {
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
	Contents              []struct {
		Key          string `xml:"Key"`
		Size         int64  `xml:"Size"`
		ETag         string `xml:"ETag"`
		LastModified string `xml:"LastModified"`
	} `xml:"Contents"`
	CommonPrefixes []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
}

// parseS3ListPage decodes a ListBucketResult body.
func parseS3ListPage(body []byte) (*s3ListPage, error) {
	var pg struct {
		XMLName xml.Name
		s3ListPage
	}
	if err := xml.Unmarshal(body, &pg); err != nil {
		return nil, fmt.Errorf("bad ListObjectsV2 XML: %w", err)
	}
	if pg.XMLName.Local != "ListBucketResult" {
		return nil, fmt.Errorf("bad ListObjectsV2 XML: root element <%s>", pg.XMLName.Local)
	}
	return &pg.s3ListPage, nil
}

// infos converts a page to ObjectInfos with keys relative to root.
func (pg *s3ListPage) infos(root string) ([]ObjectInfo, error) {
	out := make([]ObjectInfo, 0, len(pg.Contents)+len(pg.CommonPrefixes))
	for _, c := range pg.Contents {
		rel, ok, err := relKey(root, c.Key, false)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if c.Size < 0 {
			return nil, fmt.Errorf("listing: %q has negative size %d", c.Key, c.Size)
		}
		oi := ObjectInfo{Key: rel, Size: c.Size, ETag: CleanETag(c.ETag)}
		if t, err := time.Parse(time.RFC3339, strings.TrimSpace(c.LastModified)); err == nil {
			oi.ModTime = t
		}
		out = append(out, oi)
	}
	for _, p := range pg.CommonPrefixes {
		rel, ok, err := relKey(root, p.Prefix, true)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ObjectInfo{Key: rel, Size: -1, IsDir: true})
		}
	}
	return out, nil
}
