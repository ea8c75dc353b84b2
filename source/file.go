package source

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
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
	if u.Scheme == "file" {
		if fi, err := os.Stat(u.Path); err == nil && fi.IsDir() {
			return f.resolveDir(ctx, env, ds, u)
		}
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

// resolveDir lists a local folder: every file below it is an object, at its
// path relative to the folder (hidden files and folders left out, as the
// catalog leaves them out, except a chunked store's metadata), so `run DIR` gathers a folder as it gathers a
// bucket prefix.
func (f *File) resolveDir(ctx context.Context, env *Env, ds manifest.Dataset, u *url.URL) (*Resolved, error) {
	root := *u
	root.Path = strings.TrimSuffix(u.Path, "/") + "/"
	rootURL := canonicalURL(&root)
	st, err := env.Stores.Open(ctx, rootURL)
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", ds.URL, err)
	}
	defer st.Close()
	var objs []Object
	err = st.List(ctx, "", "", func(oi store.ObjectInfo) error {
		segs := strings.Split(oi.Key, "/")
		for i, seg := range segs {
			last := i == len(segs)-1
			if strings.HasPrefix(seg, ".") && !(last && env.StoreMeta != nil && env.StoreMeta(seg)) {
				return nil // hidden, unless a store's metadata (.zarray, .zattrs, ...)
			}
		}
		src := root
		src.Path = root.Path + oi.Key
		objs = append(objs, Object{StoreURL: rootURL, Key: oi.Key, SourceURL: canonicalURL(&src), Path: oi.Key,
			Size: oi.Size, ETag: oi.ETag})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", ds.URL, err)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("folder %s: no files in it", ds.URL)
	}
	if env.StoreMeta != nil && slices.ContainsFunc(objs, func(o Object) bool { return !strings.Contains(o.Key, "/") && env.StoreMeta(o.Key) }) {
		// The folder is itself a chunked store (a.zarr, b.n5): keep its
		// name, so that it is downloaded and opened as one store.
		base := path.Base(strings.TrimSuffix(u.Path, "/"))
		for i := range objs {
			objs[i].Path = base + "/" + objs[i].Path
		}
	}
	return &Resolved{Objects: objs}, nil
}
