package store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// HTTPDriver reads objects from a plain HTTP(S) server: HEAD for metadata and
// ranged GET for bytes. A plain server has no listing API, so List reports
// ErrNotSupported; parsing HTML directory indexes is the source package's job.
type HTTPDriver struct {
	client *http.Client
	// base is the root up to (and excluding) any query; query is "" or "?…".
	base, query string
	root        string
}

// NewHTTP returns a driver rooted at root, an http(s) URL naming a directory
// or a single file. Keys are appended to the root with "/" whether or not the
// root ends in one; the empty key names the root itself. The root is kept as
// given (already-escaped parts stay escaped) except that raw spaces, which
// appear in links scraped from web pages, are escaped to %20.
func NewHTTP(client *http.Client, root string) (*HTTPDriver, error) {
	if client == nil {
		client = http.DefaultClient
	}
	r := strings.ReplaceAll(strings.TrimSpace(root), " ", "%20")
	if i := strings.IndexByte(r, '#'); i >= 0 {
		r = r[:i] // a fragment is never sent to the server
	}
	u, err := url.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("http store %q: %w", root, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http store %q: not an http(s) URL with a host", root)
	}
	d := &HTTPDriver{client: client, root: r, base: r}
	if i := strings.IndexByte(r, '?'); i >= 0 {
		d.base, d.query = r[:i], r[i:]
	}
	return d, nil
}

// Host implements HostInfo: a plain web server.
func (d *HTTPDriver) Host() Host {
	return Host{Name: hostName(d.root), Parallel: ParallelWeb}
}

// Close implements io.Closer: it drops the idle keep-alive connections of the
// driver's HTTP client. The client may be shared with other stores; they dial
// again when they next need a connection.
func (d *HTTPDriver) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// String returns the root URL.
func (d *HTTPDriver) String() string { return d.root }

// URL implements URLDriver: the root joined with the escaped key.
func (d *HTTPDriver) URL(key string) string {
	if key == "" {
		return d.root
	}
	b := d.base
	if !strings.HasSuffix(b, "/") {
		b += "/"
	}
	return b + escapeKey(key) + d.query
}

func (d *HTTPDriver) sender(key string) sendFunc {
	u := d.URL(key)
	return func(ctx context.Context, method string, hdr http.Header) (*http.Response, string, error) {
		resp, err := send(ctx, d.client, method, u, hdr)
		return resp, u, err
	}
}

// Stat implements Driver with HEAD. Servers that refuse HEAD (405, 501, and
// pre-signed style URLs answering 403) are asked for the first byte instead,
// and the size is read from Content-Range.
func (d *HTTPDriver) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	oi, err := remoteStat(ctx, key, d.sender(key))
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("http store: stat %q: %w", key, err)
	}
	return oi, nil
}

// remoteStat is Stat over HEAD with the one-byte GET fallback, shared by the
// http and s3 drivers.
func remoteStat(ctx context.Context, key string, send sendFunc) (ObjectInfo, error) {
	resp, u, err := send(ctx, http.MethodHead, nil)
	if err != nil {
		return ObjectInfo{}, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return headerInfo(key, resp), nil
	case http.StatusMethodNotAllowed, http.StatusForbidden, http.StatusNotImplemented:
		return statByGet(ctx, key, send)
	}
	return ObjectInfo{}, newHTTPError(u, resp, nil)
}

// statByGet learns the metadata from a GET of byte 0.
func statByGet(ctx context.Context, key string, send sendFunc) (ObjectInfo, error) {
	hdr := http.Header{"Range": {"bytes=0-0"}, "Accept-Encoding": {"identity"}}
	resp, u, err := send(ctx, http.MethodGet, hdr)
	if err != nil {
		return ObjectInfo{}, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		resp.Body.Close() // the whole object is coming; we only wanted its headers
		return headerInfo(key, resp), nil
	case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		oi := headerInfo(key, resp)
		oi.Size = -1
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("GET %s: %w", u, err)
		}
		if cr.Total >= 0 {
			oi.Size = cr.Total
		}
		return oi, nil
	}
	return ObjectInfo{}, failed(u, resp)
}

// List implements Driver: plain HTTP has no listing API.
func (d *HTTPDriver) List(ctx context.Context, prefix, delim string, fn func(ObjectInfo) error) error {
	return fmt.Errorf("http store %s: list %q: %w", d.root, prefix, ErrNotSupported)
}

// ReadRange implements Driver with a strict ranged GET (see openRange).
func (d *HTTPDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := openRange(ctx, rangeRequest{
		off: off, n: n, send: d.sender(key), acceptEncoding: "identity",
		size: func(ctx context.Context) (int64, error) {
			oi, err := d.Stat(ctx, key)
			return oi.Size, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("http store: read %q %s: %w", key, rangeString(off, n), err)
	}
	return rc, nil
}
