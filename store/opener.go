package store

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Opener maps URLs to stores. It carries no global state: the pipeline builds one
// with its shared HTTP client, and the demo points the S3/GCS endpoints at the
// loopback mirrors so the same code paths run.
type Opener struct {
	// HTTP is shared by every remote driver (keep-alive pools sized by the caller).
	HTTP *http.Client
	// S3Endpoint overrides "https://s3.amazonaws.com" (path-style requests).
	S3Endpoint string
	// S3Region is sent in nothing (requests are anonymous) but used to build the
	// regional endpoint when S3Endpoint is empty; default us-east-1.
	S3Region string
	// GCSEndpoint overrides "https://storage.googleapis.com".
	GCSEndpoint string
	// Retry, when above 1, wraps remote drivers in a RetryDriver with that many
	// attempts (for metadata reads: resolvers, inspect, crops). Leave it 0 for
	// the transfer scheduler, which retries by itself.
	Retry int
}

// Open returns a store rooted at rawURL. Accepted forms: a local path or
// file:// URL, http(s)://, s3://bucket/prefix, gs://bucket/prefix, and the
// HTTPS forms of public buckets (https://bucket.s3.amazonaws.com/…,
// https://s3.amazonaws.com/bucket/…, https://storage.googleapis.com/bucket/…),
// which are opened with their bucket APIs so listing works.
func (o *Opener) Open(ctx context.Context, rawURL string) (*Store, error) {
	st, err := o.open(ctx, rawURL)
	if err != nil || o.Retry <= 1 {
		return st, err
	}
	if _, local := st.Driver().(*FileDriver); local {
		return st, nil
	}
	return New(WithRetry(st.Driver(), o.Retry, 300*time.Millisecond)), nil
}

func (o *Opener) open(ctx context.Context, rawURL string) (*Store, error) {
	if !strings.Contains(rawURL, "://") {
		return New(NewFile(rawURL)), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse %q: %w", rawURL, err)
	}
	client := o.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	switch u.Scheme {
	case "file":
		return New(NewFile(u.Path)), nil
	case "s3":
		d, err := NewS3(client, o.S3Endpoint, o.S3Region, u.Host, strings.TrimPrefix(u.Path, "/"))
		if err != nil {
			return nil, err
		}
		return New(d), nil
	case "gs":
		d, err := NewGCS(client, o.GCSEndpoint, u.Host, strings.TrimPrefix(u.Path, "/"))
		if err != nil {
			return nil, err
		}
		return New(d), nil
	case "http", "https":
		if bucket, prefix, ok := gcsHTTPS(u); ok && o.GCSEndpoint == "" {
			d, err := NewGCS(client, "", bucket, prefix)
			if err != nil {
				return nil, err
			}
			return New(d), nil
		}
		if bucket, prefix, ok := s3HTTPS(u); ok && o.S3Endpoint == "" {
			d, err := NewS3(client, "", o.S3Region, bucket, prefix)
			if err != nil {
				return nil, err
			}
			return New(d), nil
		}
		d, err := NewHTTP(client, rawURL)
		if err != nil {
			return nil, err
		}
		return New(d), nil
	}
	return nil, fmt.Errorf("store: %q: unsupported scheme %q", rawURL, u.Scheme)
}

// gcsHTTPS recognises https://storage.googleapis.com/<bucket>/<prefix>.
func gcsHTTPS(u *url.URL) (bucket, prefix string, ok bool) {
	if u.Host != "storage.googleapis.com" {
		return "", "", false
	}
	p := strings.TrimPrefix(u.Path, "/")
	bucket, prefix, _ = strings.Cut(p, "/")
	return bucket, prefix, bucket != ""
}

// s3HTTPS recognises virtual-hosted and path-style AWS S3 URLs.
func s3HTTPS(u *url.URL) (bucket, prefix string, ok bool) {
	h := u.Host
	p := strings.TrimPrefix(u.Path, "/")
	switch {
	case h == "s3.amazonaws.com" || (strings.HasPrefix(h, "s3.") && strings.HasSuffix(h, ".amazonaws.com")):
		bucket, prefix, _ = strings.Cut(p, "/")
		return bucket, prefix, bucket != ""
	case strings.Contains(h, ".s3.") && strings.HasSuffix(h, ".amazonaws.com"):
		return h[:strings.Index(h, ".s3.")], p, true
	case strings.HasSuffix(h, ".s3.amazonaws.com"):
		return strings.TrimSuffix(h, ".s3.amazonaws.com"), p, true
	}
	return "", "", false
}
