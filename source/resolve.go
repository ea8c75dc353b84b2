package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

// Limits that keep a hostile or broken server from exhausting memory.
const (
	maxPageBytes = 16 << 20 // an HTML page or JSON document
	maxMetaBytes = 16 << 20 // a zarr/precomputed metadata object
	headLimit    = 32       // concurrent HEAD requests per resolver call
)

// DefaultRequestTimeout bounds one resolver request, body included, when
// Env.RequestTimeout is zero: a 16 MiB page (maxPageBytes) still arrives at
// about 140 KB/s, while a trickling server is cut.
const DefaultRequestTimeout = 2 * time.Minute

// dataExts are the file extensions that count as data when a dataset gives no
// include patterns.
var dataExts = map[string]bool{
	".tif": true, ".tiff": true, ".dm3": true, ".dm4": true, ".zarr": true,
	".n5": true, ".h5": true, ".mrc": true,
}

func isDataExt(name string) bool { return dataExts[strings.ToLower(path.Ext(name))] }

var empiarPathRE = regexp.MustCompile(`/empiar/EMPIAR-(\d+)`)

// Detect guesses the kind of a dataset URL from the URL alone (no network).
// It returns one of the manifest.Kind* constants; webpage is the fallback.
func Detect(rawURL string) string {
	raw := strings.TrimSpace(rawURL)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return manifest.KindFile
	}
	switch strings.ToLower(scheme) {
	case "s3":
		return manifest.KindS3
	case "gs":
		return manifest.KindGCS
	case "precomputed":
		return manifest.KindPrecomputed
	case "file":
		return manifest.KindFile
	}
	if strings.Contains(rest, "#!") {
		return manifest.KindNeuroglancer
	}
	// Parse without the fragment: Neuroglancer fragments are not valid URL syntax.
	beforeFrag, _, _ := strings.Cut(raw, "#")
	u, err := url.Parse(strings.ReplaceAll(beforeFrag, " ", "%20"))
	if err != nil {
		return manifest.KindWebPage
	}
	host := strings.ToLower(u.Hostname())
	p := u.Path
	switch {
	case host == "tinyurl.com" || strings.HasSuffix(host, ".tinyurl.com"):
		return manifest.KindNeuroglancer
	case strings.Contains(p, "/webclient/img_detail/"),
		strings.HasSuffix(p, "/webclient/") && u.Query().Get("show") != "":
		return manifest.KindOMERO
	case empiarPathRE.MatchString(p):
		return manifest.KindEMPIAR
	case host == "openorganelle.janelia.org" && strings.HasPrefix(p, "/datasets/"):
		return manifest.KindS3
	case host == "storage.googleapis.com":
		return manifest.KindGCS
	case host == "s3.amazonaws.com" || strings.HasSuffix(host, ".s3.amazonaws.com") ||
		(strings.HasSuffix(host, ".amazonaws.com") && (strings.HasPrefix(host, "s3.") || strings.Contains(host, ".s3."))):
		return manifest.KindS3
	case isDataExt(p):
		return manifest.KindFile
	case strings.HasSuffix(p, "/") && strings.HasPrefix(host, "ftp."):
		return manifest.KindListing
	}
	return manifest.KindWebPage
}

// Resolvers is a set of resolvers, one per kind. It holds no mutable state once
// built, so one value can serve concurrent Resolve calls.
type Resolvers struct {
	byKind map[string]Resolver
}

// NewResolvers builds a set from rs; a later resolver replaces an earlier one of the same kind.
func NewResolvers(rs ...Resolver) *Resolvers {
	m := make(map[string]Resolver, len(rs))
	for _, r := range rs {
		m[r.Kind()] = r
	}
	return &Resolvers{byKind: m}
}

// DefaultResolvers returns every built-in resolver with default limits.
func DefaultResolvers() *Resolvers {
	l := &Listing{}
	return NewResolvers(
		l,
		&WebPage{},
		&OMERO{},
		&EMPIAR{Listing: l},
		&Bucket{Scheme: manifest.KindS3},
		&Bucket{Scheme: manifest.KindGCS},
		&Neuroglancer{},
		&Precomputed{},
		&File{},
	)
}

// Kinds lists the kinds the set can resolve, sorted.
func (rs *Resolvers) Kinds() []string {
	ks := make([]string, 0, len(rs.byKind))
	for k := range rs.byKind {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Resolve picks the resolver for ds.Kind (or the detected kind) and checks
// that every object path it returns is a safe, unique relative path.
func (rs *Resolvers) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	kind := ds.Kind
	if kind == manifest.KindAuto {
		kind = Detect(ds.URL)
	}
	r, ok := rs.byKind[kind]
	if !ok {
		return nil, fmt.Errorf("dataset %s: no resolver for kind %q", ds.Name, kind)
	}
	if env == nil {
		env = &Env{}
	}
	res, err := r.Resolve(ctx, env, ds)
	if err != nil {
		// The caller names the dataset; the kind says how it was tried, and
		// the URL what, unless the cause names the URL that failed itself.
		if strings.Contains(err.Error(), "://") {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		return nil, fmt.Errorf("%s %s: %w", kind, ds.URL, err)
	}
	res.Dataset = ds
	if res.Kind == "" { // a resolver may name what it found (a web page that is an index)
		res.Kind = kind
	}
	if err := checkPaths(res); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", ds.Name, err)
	}
	return res, nil
}

// Resolve resolves ds with the built-in resolvers.
func Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	return DefaultResolvers().Resolve(ctx, env, ds)
}

// checkPaths is the last line of defence against hostile listings: every
// output path must be a clean relative key, and no two objects may share one.
func checkPaths(res *Resolved) error {
	seen := make(map[string]string, len(res.Objects))
	for i := range res.Objects {
		o := &res.Objects[i]
		k, err := store.CleanKey(o.Path)
		if err != nil || k == "" || k != o.Path {
			return fmt.Errorf("object %q (from %s): unsafe output path: %v", o.Path, o.SourceURL, err)
		}
		if prev, dup := seen[k]; dup {
			return fmt.Errorf("objects %s and %s both map to output path %q", prev, o.SourceURL, k)
		}
		seen[k] = o.SourceURL
	}
	for _, v := range res.Volumes {
		k, err := store.CleanKey(v.Path)
		if err != nil || k == "" || k != v.Path {
			return fmt.Errorf("volume %q (from %s): unsafe output path: %v", v.Path, v.StoreURL, err)
		}
	}
	return nil
}

// safeName reports whether name can be one path segment of an output path.
func safeName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// client returns the resolver client with a whole-request timeout
// (Env.RequestTimeout): without one, a page trickled a byte every few
// seconds keeps a resolver waiting forever, since the transport bounds only
// the wait for the headers. A client that has its own timeout keeps it.
func (e *Env) client() *http.Client {
	c := http.DefaultClient
	if e.HTTP != nil {
		c = e.HTTP
	}
	if c.Timeout > 0 {
		return c
	}
	t := *c
	t.Timeout = e.RequestTimeout
	if t.Timeout <= 0 {
		t.Timeout = DefaultRequestTimeout
	}
	return &t
}

// jarClient returns a client that keeps cookies for this call only: a copy of
// the shared client (same transport, so the same connection pool) with a
// fresh jar unless the shared one already has one.
func (e *Env) jarClient() *http.Client {
	c := *e.client()
	if c.Jar == nil {
		jar, _ := cookiejar.New(nil) // New never fails with nil options
		c.Jar = jar
	}
	return &c
}

func (e *Env) opener() *store.Opener {
	if e.Stores != nil {
		return e.Stores
	}
	return &store.Opener{HTTP: e.client()}
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// HTTPError is a non-2xx answer to a resolver request.
type HTTPError struct {
	URL    string
	Status int
	Body   string // the first bytes of the body, for the message
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// get fetches rawURL and returns at most limit bytes of its body (more is an
// error, never a silent truncation) and the final URL after redirects.
func get(ctx context.Context, c *http.Client, rawURL string, limit int64) ([]byte, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err // *url.Error already names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		snip, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, nil, &HTTPError{URL: rawURL, Status: resp.StatusCode, Body: strings.TrimSpace(string(snip))}
	}
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("GET %s: body of %d bytes exceeds the %d-byte limit", rawURL, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("GET %s: body exceeds the %d-byte limit", rawURL, limit)
	}
	return b, resp.Request.URL, nil
}

// ErrNoObjects is wrapped when a resolver found nothing to take (an empty
// listing, or take patterns that match nothing).
var ErrNoObjects = errors.New("no objects selected")

// splitURL splits an object URL into its directory (with trailing slash) and
// its decoded file name.
func splitURL(u *url.URL) (dir string, name string, err error) {
	p := u.Path
	i := strings.LastIndex(p, "/")
	name = p[i+1:]
	if !safeName(name) {
		return "", "", fmt.Errorf("%s: no usable file name", u.Redacted())
	}
	d := *u
	d.Path = p[:i+1]
	d.RawPath = ""
	d.RawQuery = ""
	d.Fragment = ""
	d.RawFragment = ""
	return d.String(), name, nil
}

// canonicalURL re-encodes a URL so equal resources give equal strings: the path
// is decoded and escaped again in Go's canonical form (a space becomes %20).
func canonicalURL(u *url.URL) string {
	c := *u
	c.RawPath = ""
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}
