package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxMetaBody caps one object's JSON metadata.
const maxMetaBody = 1 << 20

// GCSDriver reads a public Google Cloud Storage bucket anonymously through
// the JSON API: object metadata, media download with Range, paged listing.
type GCSDriver struct {
	client                   *http.Client
	endpoint, bucket, prefix string

	// PageSize caps items per objects.list page (maxResults); 0 leaves the
	// server default (1000). Set it before first use.
	PageSize int
	// PageTimeout bounds each listing page request, body included; 0 means
	// two minutes. Set it before first use.
	PageTimeout time.Duration
}

// NewGCS returns a driver for bucket rooted at prefix. endpoint defaults to
// https://storage.googleapis.com. A non-empty prefix names a directory; the
// empty key names the prefix itself, so a URL of one object can be a root.
func NewGCS(client *http.Client, endpoint, bucket, prefix string) (*GCSDriver, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if !validBucket(bucket) {
		return nil, fmt.Errorf("gcs store: invalid bucket name %q", bucket)
	}
	if endpoint == "" {
		endpoint = "https://storage.googleapis.com"
	}
	endpoint = strings.TrimRight(endpoint, "/")
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gcs store: endpoint %q is not an http(s) URL", endpoint)
	}
	p, err := dirPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("gcs store: prefix %q: %w", prefix, err)
	}
	return &GCSDriver{client: client, endpoint: endpoint, bucket: bucket, prefix: p}, nil
}

// Host implements HostInfo: the endpoint, an object store. GCS ETags are not
// MD5s; objects carry md5Hash and crc32c instead.
func (d *GCSDriver) Host() Host {
	return Host{Name: hostName(d.endpoint), ObjectStore: true, Parallel: ParallelObjectStore}
}

// Close implements io.Closer: it drops the idle keep-alive connections of the
// driver's HTTP client. The client may be shared with other stores; they dial
// again when they next need a connection.
func (d *GCSDriver) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// String names the root as a gs:// URL.
func (d *GCSDriver) String() string { return "gs://" + d.bucket + "/" + d.prefix }

// URL implements URLDriver: the public XML-API URL of key, the form Neuroglancer
// and browsers use.
func (d *GCSDriver) URL(key string) string {
	return d.endpoint + "/" + d.bucket + "/" + escapeKey(objectName(d.prefix, key))
}

// metaURL is the JSON API object URL; the object name is one path segment,
// its slashes escaped as %2F.
func (d *GCSDriver) metaURL(obj string) string {
	return d.endpoint + "/storage/v1/b/" + d.bucket + "/o/" + url.PathEscape(obj)
}

// Stat implements Driver with objects.get.
func (d *GCSDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	obj := objectName(d.prefix, key)
	if obj == "" {
		return ObjectInfo{}, fmt.Errorf("gcs store %s: stat of the bucket root: %w", d, ErrNotExist)
	}
	u := d.metaURL(obj)
	resp, err := send(ctx, d.client, http.MethodGet, u, nil)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("gcs store %s: stat %q: %w", d, key, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ObjectInfo{}, fmt.Errorf("gcs store %s: stat %q: %w", d, key, failed(u, resp))
	}
	body, err := readLimited(resp, maxMetaBody)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("gcs store %s: stat %q: GET %s: %w", d, key, u, err)
	}
	var o gcsObject
	if err := json.Unmarshal(body, &o); err != nil {
		return ObjectInfo{}, fmt.Errorf("gcs store %s: stat %q: GET %s: bad object JSON: %w", d, key, u, err)
	}
	oi, err := o.info(key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("gcs store %s: stat %q: %w", d, key, err)
	}
	return oi, nil
}

// ReadRange implements Driver with a strict ranged media download.
func (d *GCSDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	obj := objectName(d.prefix, key)
	if obj == "" {
		return nil, fmt.Errorf("gcs store %s: read of the bucket root: %w", d, ErrNotExist)
	}
	u := d.metaURL(obj) + "?alt=media"
	rc, err := openRange(ctx, rangeRequest{
		off: off, n: n, acceptEncoding: "gzip", transcode: true,
		send: func(ctx context.Context, method string, hdr http.Header) (*http.Response, string, error) {
			resp, err := send(ctx, d.client, method, u, hdr)
			return resp, u, err
		},
		size: func(ctx context.Context) (int64, error) {
			oi, err := d.Stat(ctx, key)
			return oi.Size, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gcs store %s: read %q %s: %w", d, key, rangeString(off, n), err)
	}
	return rc, nil
}

// List implements Driver with objects.list, following page tokens.
func (d *GCSDriver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	full := d.prefix + prefix
	l := lister{fn: fn}
	seen := map[string]bool{}
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		q := url.Values{"prefix": {full}}
		if delim != "" {
			q.Set("delimiter", delim)
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		if d.PageSize > 0 {
			q.Set("maxResults", strconv.Itoa(d.PageSize))
		}
		u := d.endpoint + "/storage/v1/b/" + d.bucket + "/o?" + q.Encode()
		pctx, cancel := pageContext(ctx, d.PageTimeout)
		resp, err := send(pctx, d.client, http.MethodGet, u, nil)
		if err != nil {
			cancel()
			return fmt.Errorf("gcs store %s: list %q: %w", d, prefix, err)
		}
		if resp.StatusCode != http.StatusOK {
			err := failed(u, resp)
			cancel()
			return fmt.Errorf("gcs store %s: list %q: %w", d, prefix, err)
		}
		body, err := readLimited(resp, maxListBody)
		cancel()
		if err != nil {
			return fmt.Errorf("gcs store %s: list %q: GET %s: %w", d, prefix, u, err)
		}
		pg, err := parseGCSListPage(body)
		if err != nil {
			return fmt.Errorf("gcs store %s: list %q: GET %s: %w", d, prefix, u, err)
		}
		infos, err := pg.infos(d.prefix)
		if err != nil {
			return fmt.Errorf("gcs store %s: list %q: %w", d, prefix, err)
		}
		if err := l.page(infos); err != nil {
			return err
		}
		if pg.NextPageToken == "" {
			return nil
		}
		if seen[pg.NextPageToken] {
			return fmt.Errorf("gcs store %s: list %q: GET %s: page token repeats", d, prefix, u)
		}
		seen[pg.NextPageToken] = true
		token = pg.NextPageToken
	}
}

// gcsObject is the JSON API object resource (the fields we use).
type gcsObject struct {
	Name            string `json:"name"`
	Size            string `json:"size"` // int64 as a decimal string
	MD5Hash         string `json:"md5Hash"`
	CRC32C          string `json:"crc32c"`
	ETag            string `json:"etag"`
	Generation      string `json:"generation"`
	Updated         string `json:"updated"`
	ContentEncoding string `json:"contentEncoding"`
}

// info converts the resource; key is the driver-relative name.
func (o *gcsObject) info(key string) (ObjectInfo, error) {
	oi := ObjectInfo{Key: key, Size: -1, ETag: o.ETag, Version: o.Generation, ContentEncoding: o.ContentEncoding}
	if o.Size != "" {
		s, err := parseNonNeg(o.Size)
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("object %q: bad size %q", o.Name, o.Size)
		}
		oi.Size = s
	}
	if m, err := base64.StdEncoding.DecodeString(o.MD5Hash); err == nil && len(m) == 16 {
		oi.MD5 = m
	}
	if c, err := base64.StdEncoding.DecodeString(o.CRC32C); err == nil && len(c) == 4 {
		oi.CRC32C, oi.HasCRC = binary.BigEndian.Uint32(c), true
	}
	if t, err := time.Parse(time.RFC3339, o.Updated); err == nil {
		oi.ModTime = t
	}
	return oi, nil
}

// gcsListPage is one objects.list answer.
type gcsListPage struct {
	Items         []gcsObject `json:"items"`
	Prefixes      []string    `json:"prefixes"`
	NextPageToken string      `json:"nextPageToken"`
}

// parseGCSListPage decodes an objects.list body.
func parseGCSListPage(body []byte) (*gcsListPage, error) {
	var pg gcsListPage
	if err := json.Unmarshal(body, &pg); err != nil {
		return nil, fmt.Errorf("bad objects.list JSON: %w", err)
	}
	return &pg, nil
}

// infos converts a page to ObjectInfos with keys relative to root.
func (pg *gcsListPage) infos(root string) ([]ObjectInfo, error) {
	out := make([]ObjectInfo, 0, len(pg.Items)+len(pg.Prefixes))
	for i := range pg.Items {
		o := &pg.Items[i]
		rel, ok, err := relKey(root, o.Name, false)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		oi, err := o.info(rel)
		if err != nil {
			return nil, fmt.Errorf("listing: %w", err)
		}
		out = append(out, oi)
	}
	for _, p := range pg.Prefixes {
		rel, ok, err := relKey(root, p, true)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ObjectInfo{Key: rel, Size: -1, IsDir: true})
		}
	}
	return out, nil
}
