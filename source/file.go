package source

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/imgdataset/imgdataset/manifest"
)

// File resolves a URL that names one file (http(s), s3, gs or file).
type File struct{}

// Kind implements Resolver.
func (f *File) Kind() string { return manifest.KindFile }

// Resolve implements Resolver: one object, sized by a HEAD (or Stat).
func (f *File) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	raw := strings.TrimSpace(ds.URL)
	if !strings.Contains(raw, "://") {
		raw = "file://" + raw
	}
	u, err := url.Parse(strings.ReplaceAll(raw, " ", "%20"))
	if err != nil {
		return nil, err
	}
	dir, name, err := splitURL(u)
	if err != nil {
		return nil, err
	}
	o := Object{StoreURL: dir, Key: name, SourceURL: canonicalURL(u), Path: name, Size: -1}
	if u.RawQuery != "" && (u.Scheme == "http" || u.Scheme == "https") {
		// The query may be what selects the file: keep the URL whole.
		o.StoreURL, o.Key = o.SourceURL, ""
	}
	objs := []Object{o}
	if _, err := statObjects(ctx, env, objs, false); err != nil {
		return nil, fmt.Errorf("file %s: %w", ds.URL, err)
	}
	return &Resolved{Objects: objs}, nil
}
