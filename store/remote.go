package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the HTTP plumbing shared by the http, s3 and gcs drivers:
// status classification, header metadata, strict ranged reads.

// maxErrorBody caps how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// maxListBody caps one listing page (S3 XML or GCS JSON). A page of 1000 keys
// with full metadata is well under 2 MiB; anything far larger is a lying server.
const maxListBody = 32 << 20

// defaultPageTimeout bounds one listing page in time, headers and body: a
// server that trickles a page a byte at a time must not hold a listing
// forever (its size is already bounded by maxListBody).
const defaultPageTimeout = 2 * time.Minute

// pageContext is the context of one listing page request.
func pageContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = defaultPageTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

// HTTPError is an HTTP answer that is not a success. The transfer layer reads
// Status and RetryAfter through errors.As to decide whether and when to retry.
type HTTPError struct {
	URL    string
	Status int
	// RetryAfter is the server's Retry-After (usually on 429 and 503); zero when absent.
	RetryAfter time.Duration
	// Code and Message come from an S3/GCS error body when the server sent one
	// (e.g. "NoSuchKey", "The specified key does not exist.").
	Code    string
	Message string
}

// Error names the URL and status, plus the server's own explanation if any.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s", e.Code)
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
		b.WriteString(")")
	} else if e.Message != "" {
		fmt.Fprintf(&b, " (%s)", e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotExist) true for "no such object" answers, so
// callers need not know HTTP status codes.
func (e *HTTPError) Is(target error) bool {
	if target != ErrNotExist {
		return false
	}
	switch e.Code {
	case "NoSuchKey", "NoSuchBucket":
		return true
	}
	return e.Status == http.StatusNotFound || e.Status == http.StatusGone
}

// newHTTPError builds the error of a failed response from its headers and the
// (already read, bounded) body.
func newHTTPError(u string, resp *http.Response, body []byte) *HTTPError {
	e := &HTTPError{URL: u, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	e.Code, e.Message = parseErrorBody(body)
	return e
}

// readErrorBody reads at most maxErrorBody bytes of resp and closes it.
func readErrorBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	return b
}

// failed turns a non-success response into an *HTTPError, consuming the body.
func failed(u string, resp *http.Response) *HTTPError {
	return newHTTPError(u, resp, readErrorBody(resp))
}

// parseRetryAfter accepts both forms of RFC 9110 Retry-After: delay-seconds
// and an HTTP-date (relative to now). Garbage and past dates give zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// A day is a sane cap: a longer wait is better decided by the user, and
	// it keeps huge values from overflowing.
	const maxWait = 24 * time.Hour
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(maxWait/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxWait)
	}
	return 0
}

// s3Error is the XML error body of S3 (and of the GCS XML API).
type s3Error struct {
	Code     string `xml:"Code"`
	Message  string `xml:"Message"`
	Endpoint string `xml:"Endpoint"` // PermanentRedirect: the bucket's regional host
	Region   string `xml:"Region"`
}

// parseErrorBody extracts a code and message from an S3/GCS XML error or a
// GCS JSON error ({"error":{"code":404,"message":"…"}}). Unknown bodies give "".
func parseErrorBody(body []byte) (code, msg string) {
	t := bytes.TrimSpace(body)
	switch {
	case len(t) > 0 && t[0] == '<':
		var e s3Error
		if xml.Unmarshal(t, &e) == nil {
			return clip(e.Code), clip(e.Message)
		}
	case len(t) > 0 && t[0] == '{':
		var e struct {
			Error struct {
				Message string `json:"message"`
				Errors  []struct {
					Reason string `json:"reason"`
				} `json:"errors"`
			} `json:"error"`
		}
		if json.Unmarshal(t, &e) == nil {
			if len(e.Error.Errors) > 0 {
				code = e.Error.Errors[0].Reason
			}
			return clip(code), clip(e.Error.Message)
		}
	}
	return "", ""
}

// clip keeps hostile error messages from flooding logs.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// headerInfo collects what response headers say about the object. Size comes
// from Content-Length of a full (non-range) answer; the caller overrides it
// when the size came from Content-Range.
func headerInfo(key string, resp *http.Response) ObjectInfo {
	h := resp.Header
	oi := ObjectInfo{Key: key, Size: -1}
	if resp.ContentLength >= 0 && !resp.Uncompressed {
		oi.Size = resp.ContentLength
	}
	oi.ETag = CleanETag(h.Get("ETag"))
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		oi.ModTime = t
	}
	if m, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h.Get("Content-MD5"))); err == nil && len(m) == 16 {
		oi.MD5 = m
	}
	// x-goog-hash may repeat or carry a comma-separated list: "crc32c=…, md5=…".
	for _, v := range h.Values("X-Goog-Hash") {
		for _, part := range strings.Split(v, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val))
			if err != nil {
				continue
			}
			switch {
			case name == "md5" && len(b) == 16:
				oi.MD5 = b
			case name == "crc32c" && len(b) == 4:
				oi.CRC32C, oi.HasCRC = binary.BigEndian.Uint32(b), true
			}
		}
	}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h.Get("X-Amz-Checksum-Crc32c"))); err == nil && len(b) == 4 {
		oi.CRC32C, oi.HasCRC = binary.BigEndian.Uint32(b), true
	}
	oi.ContentEncoding = h.Get("Content-Encoding")
	if se := h.Get("X-Goog-Stored-Content-Encoding"); se != "" && se != "identity" {
		oi.ContentEncoding = se
	}
	if g := h.Get("X-Goog-Generation"); g != "" {
		oi.Version = g
	} else if v := h.Get("X-Amz-Version-Id"); v != "" && v != "null" {
		oi.Version = v
	}
	// A GCS object stored compressed reports its stored size here even when the
	// body was transcoded.
	if s, err := strconv.ParseInt(h.Get("X-Goog-Stored-Content-Length"), 10, 64); err == nil && s >= 0 && oi.Size < 0 {
		oi.Size = s
	}
	return oi
}

// CleanETag strips an ETag's weak marker and quotes, so that the same
// version compares equal however a server or listing spelled it.
func CleanETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// contentRange is a parsed "Content-Range: bytes first-last/total" header.
// Total is -1 for "*". Unsatisfied is set for "bytes */total" (416 answers).
type contentRange struct {
	First, Last, Total int64
	Unsatisfied        bool
}

// parseContentRange parses RFC 9110 byte Content-Range values.
func parseContentRange(v string) (contentRange, error) {
	cr := contentRange{Total: -1}
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return cr, fmt.Errorf("Content-Range %q: not a byte range", v)
	}
	rng, total, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return cr, fmt.Errorf("Content-Range %q: no total", v)
	}
	if total != "*" {
		t, err := parseNonNeg(total)
		if err != nil {
			return cr, fmt.Errorf("Content-Range %q: bad total", v)
		}
		cr.Total = t
	}
	if rng == "*" {
		if cr.Total < 0 {
			return cr, fmt.Errorf("Content-Range %q: neither range nor total", v)
		}
		cr.Unsatisfied = true
		return cr, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return cr, fmt.Errorf("Content-Range %q: bad range", v)
	}
	first, err1 := parseNonNeg(a)
	last, err2 := parseNonNeg(b)
	if err1 != nil || err2 != nil || last < first || (cr.Total >= 0 && last >= cr.Total) {
		return cr, fmt.Errorf("Content-Range %q: bad range", v)
	}
	cr.First, cr.Last = first, last
	return cr, nil
}

// parseNonNeg parses a decimal without sign (strconv accepts "+1").
func parseNonNeg(s string) (int64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return n, nil
}

// sendFunc sends one request for a fixed object and returns the response
// whatever its status, plus the URL it used (for errors). Drivers supply it so
// that redirects (S3 regions) and URL forms stay driver business.
type sendFunc func(ctx context.Context, method string, hdr http.Header) (*http.Response, string, error)

// send is the plain sendFunc body used by the http and gcs drivers.
func send(ctx context.Context, client *http.Client, method, u string, hdr http.Header) (*http.Response, error) {
	ctx = guardRequest(ctx)
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	return resp, wrapRefused(ctx, err)
}

// rangeRequest describes one ReadRange call for openRange.
type rangeRequest struct {
	off, n int64
	send   sendFunc
	// acceptEncoding is sent on ranged requests, and on whole reads unless
	// transcode is set. "identity" asks for the bytes as stored on plain
	// servers; GCS needs "gzip" instead, because for objects stored
	// gzip-compressed it otherwise decompresses on the fly and ignores Range,
	// which would put the offsets in another coordinate space.
	acceptEncoding string
	// transcode leaves a whole read's Accept-Encoding to the client (GCS: a
	// whole read of an object stored gzip-compressed is meant to be decoded).
	transcode bool
	// size looks the object size up when a 416 answer does not tell it.
	size func(ctx context.Context) (int64, error)
}

// openRange performs a strict ranged GET: the returned body yields exactly
// the requested bytes or an error.
func openRange(ctx context.Context, rr rangeRequest) (io.ReadCloser, error) {
	off, n := rr.off, rr.n
	switch {
	case n == 0:
		return io.NopCloser(bytes.NewReader(nil)), nil
	case off < 0 || (n > 0 && off > math.MaxInt64-n):
		return nil, fmt.Errorf("invalid range %s", rangeString(off, n))
	}
	// The encoding is asked for on whole reads too: a header set by the
	// caller also keeps Go's transport from inflating a gzip answer on the
	// fly, which would store other bytes than the server's (and a 300 KiB
	// answer could inflate to gigabytes).
	hdr := http.Header{}
	ranged := off > 0 || n >= 0
	if ranged || !rr.transcode {
		hdr.Set("Accept-Encoding", rr.acceptEncoding)
	}
	if ranged {
		if n < 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", off))
		} else {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		}
	}
	resp, u, err := rr.send(ctx, http.MethodGet, hdr)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return bodyFromFull(u, resp, off, n, ranged)
	case http.StatusPartialContent:
		if !ranged {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: unrequested 206 answer", u)
		}
		return bodyFromPartial(u, resp, off, n)
	case http.StatusRequestedRangeNotSatisfiable:
		return rangeNotSatisfiable(ctx, u, rr, resp)
	}
	return nil, failed(u, resp)
}

// bodyFromFull handles a 200 answer. Some servers (old proxies, simple static
// servers, GCS when it transcodes) ignore Range and send the whole object; we
// then skip the first off bytes and keep n, so callers still get what they
// asked for, at the price of transferring the prefix.
func bodyFromFull(u string, resp *http.Response, off, n int64, ranged bool) (io.ReadCloser, error) {
	total := resp.ContentLength
	if resp.Uncompressed {
		total = -1 // Go removed a gzip layer: the decoded length is unknown
	}
	if ranged {
		if ce := resp.Header.Get("Content-Encoding"); (ce != "" && ce != "identity") || transcoded(resp) {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: server ignored Range and sent an encoded body (%s); byte offsets are meaningless", u, ce)
		}
		if total >= 0 && (off > total || (n >= 0 && off+n > total)) {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: range %s beyond size %d: %w", u, rangeString(off, n), total, io.ErrUnexpectedEOF)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: skipping %d bytes of an unranged answer: %w", u, off, noEOF(err))
		}
		if n >= 0 {
			// The rest of the object follows; it is not an error, just unwanted.
			return &exactBody{resp: resp, url: u, left: n, tailOK: true}, nil
		}
		if total >= 0 {
			return &exactBody{resp: resp, url: u, left: total - off}, nil
		}
		return &exactBody{resp: resp, url: u, left: -1}, nil
	}
	return &exactBody{resp: resp, url: u, left: total}, nil
}

// transcoded reports GCS's decompressive transcoding (stored gzip, served plain).
func transcoded(resp *http.Response) bool {
	se := resp.Header.Get("X-Goog-Stored-Content-Encoding")
	return se != "" && se != "identity" && resp.Header.Get("Content-Encoding") == ""
}

// bodyFromPartial checks a 206 answer against the request.
func bodyFromPartial(u string, resp *http.Response, off, n int64) (io.ReadCloser, error) {
	cr, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if cr.Unsatisfied || cr.First != off {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: asked bytes from %d, got Content-Range %q", u, off, resp.Header.Get("Content-Range"))
	}
	got := cr.Last - cr.First + 1
	switch {
	case n >= 0 && got < n && cr.Total >= 0 && cr.Last == cr.Total-1:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: range %s beyond size %d: %w", u, rangeString(off, n), cr.Total, io.ErrUnexpectedEOF)
	case n >= 0 && got != n:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: asked %d bytes at %d, got Content-Range %q", u, n, off, resp.Header.Get("Content-Range"))
	case n < 0 && cr.Total >= 0 && cr.Last != cr.Total-1:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: asked bytes %d to the end, got Content-Range %q", u, off, resp.Header.Get("Content-Range"))
	}
	if resp.ContentLength >= 0 && resp.ContentLength != got {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: Content-Length %d disagrees with Content-Range %q", u, resp.ContentLength, resp.Header.Get("Content-Range"))
	}
	return &exactBody{resp: resp, url: u, left: got}, nil
}

// rangeNotSatisfiable turns a 416 into either an empty body (reading from
// exactly the end, which is valid and what the file driver does) or an error.
func rangeNotSatisfiable(ctx context.Context, u string, rr rangeRequest, resp *http.Response) (io.ReadCloser, error) {
	herr := failed(u, resp)
	size := int64(-1)
	if cr, err := parseContentRange(resp.Header.Get("Content-Range")); err == nil && cr.Unsatisfied {
		size = cr.Total
	} else if rr.n < 0 && rr.size != nil {
		if s, err := rr.size(ctx); err == nil {
			size = s
		}
	}
	if rr.n < 0 && size == rr.off {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if size >= 0 {
		return nil, fmt.Errorf("range start %d beyond size %d: %w", rr.off, size, herr)
	}
	return nil, fmt.Errorf("range start %d: %w", rr.off, herr)
}

// rangeString formats a requested range for messages.
func rangeString(off, n int64) string {
	if n < 0 {
		return fmt.Sprintf("[%d,end)", off)
	}
	return fmt.Sprintf("[%d,+%d)", off, n)
}

// noEOF turns an early io.EOF into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// exactBody delivers exactly left bytes (or any number when left < 0). A body
// that ends early fails with io.ErrUnexpectedEOF; one that goes on fails too,
// unless tailOK (a Range-ignoring server whose tail we do not want).
type exactBody struct {
	resp   *http.Response // the answer: its Body, and its headers for ObjectInfo
	url    string
	left   int64
	tailOK bool
	err    error
}

// ObjectInfo implements InfoReader. The headers are parsed only when asked:
// most range reads never need them.
func (b *exactBody) ObjectInfo() ObjectInfo {
	oi := headerInfo("", b.resp)
	if b.resp.StatusCode == http.StatusPartialContent {
		oi.Size = -1
		if cr, err := parseContentRange(b.resp.Header.Get("Content-Range")); err == nil && cr.Total >= 0 {
			oi.Size = cr.Total
		}
	}
	return oi
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left < 0 {
		n, err := b.resp.Body.Read(p)
		if err != nil && err != io.EOF {
			err = fmt.Errorf("GET %s: %w", b.url, err)
			b.err = err
		}
		return n, err
	}
	if b.left == 0 {
		if !b.tailOK {
			var one [1]byte
			if k, _ := io.ReadFull(b.resp.Body, one[:]); k > 0 {
				b.err = fmt.Errorf("GET %s: body longer than announced", b.url)
				return 0, b.err
			}
		}
		b.err = io.EOF
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.resp.Body.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		if b.left > 0 {
			b.err = fmt.Errorf("GET %s: body ended %d bytes early: %w", b.url, b.left, io.ErrUnexpectedEOF)
			return n, b.err
		}
		err = nil // the next Read checks for trailing bytes
	} else if err != nil {
		b.err = fmt.Errorf("GET %s: %w", b.url, err)
		return n, b.err
	}
	return n, err
}

func (b *exactBody) Close() error { return b.resp.Body.Close() }

// hostName is the lower-case host[:port] of an endpoint or root URL the
// driver constructor already validated.
func hostName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return strings.ToLower(u.Host)
}

// escapeKey percent-escapes each slash-separated segment of key.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// relKey turns a full bucket key into a driver-relative key, refusing keys a
// hostile listing could use to escape the root. ok is false for keys to skip
// silently: directory markers ("dir/" objects the S3 console creates).
func relKey(root, full string, isDir bool) (rel string, ok bool, err error) {
	r, found := strings.CutPrefix(full, root)
	if !found {
		return "", false, fmt.Errorf("listing returned %q outside prefix %q: %w", full, root, ErrBadKey)
	}
	check := r
	if isDir {
		check = strings.TrimSuffix(check, "/")
	} else if r == "" || strings.HasSuffix(r, "/") {
		return "", false, nil
	}
	if check == "" {
		return "", false, nil
	}
	c, err := CleanKey(check)
	if err != nil {
		return "", false, fmt.Errorf("listing: %w", err)
	}
	if c != check {
		return "", false, fmt.Errorf("listing returned non-canonical key %q: %w", full, ErrBadKey)
	}
	return r, true, nil
}

// dirPrefix normalises a bucket prefix to "" or "…/" and validates it.
func dirPrefix(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "", nil
	}
	c, err := CleanKey(p)
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", nil
	}
	return c + "/", nil
}

// objectName joins the driver prefix and a key. The empty key names the
// prefix itself without its slash, so a root that names one object works.
func objectName(prefix, key string) string {
	if key == "" {
		return strings.TrimSuffix(prefix, "/")
	}
	return prefix + key
}

// lister merges the objects and common prefixes of successive listing pages
// into one lexical stream and drops repeated common prefixes, which GCS may
// send again on a later page.
type lister struct {
	seenDirs map[string]bool
	fn       func(ObjectInfo) error
}

func (l *lister) page(infos []ObjectInfo) error {
	sortInfos(infos)
	for _, oi := range infos {
		if oi.IsDir {
			if l.seenDirs[oi.Key] {
				continue
			}
			if l.seenDirs == nil {
				l.seenDirs = map[string]bool{}
			}
			l.seenDirs[oi.Key] = true
		}
		if err := l.fn(oi); err != nil {
			return err
		}
	}
	return nil
}

func sortInfos(infos []ObjectInfo) {
	slices.SortStableFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
}
