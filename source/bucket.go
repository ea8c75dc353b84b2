package source

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

// OpenOrganelleBucket holds every OpenOrganelle dataset as <name>/<name>.zarr.
const OpenOrganelleBucket = "janelia-cosem-datasets"

// Bounds of a bucket walk.
const (
	DefaultBucketObjects = 2000000
	maxZarrDepth         = 16
)

// Bucket resolves an S3 or GCS prefix. Zarr/NGFF stores are walked through
// their metadata one level at a time, so unselected scale levels cost no
// listing; other prefixes are listed whole.
type Bucket struct {
	// Scheme is manifest.KindS3 or manifest.KindGCS: the kind this value resolves.
	Scheme string
	// MaxObjects bounds the objects returned (0 = DefaultBucketObjects).
	MaxObjects int
}

// Kind implements Resolver.
func (b *Bucket) Kind() string { return b.Scheme }

// BucketRef is a bucket prefix named by a URL.
type BucketRef struct {
	Scheme string // "s3" or "gs"
	Bucket string
	Prefix string // no leading or trailing slash; "" for the whole bucket
}

// ParseBucketURL accepts s3:// and gs:// URLs, their HTTPS forms, and
// OpenOrganelle dataset pages (https://openorganelle.janelia.org/datasets/<name>
// or any page at /datasets/<name> when openOrganelleAny is set, for mirrors).
func ParseBucketURL(raw string, openOrganelleAny bool) (BucketRef, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return BucketRef{}, err
	}
	p := strings.Trim(u.Path, "/")
	var r BucketRef
	switch u.Scheme {
	case "s3", "gs":
		r = BucketRef{u.Scheme, u.Host, p}
	case "http", "https":
		h := strings.ToLower(u.Hostname())
		switch {
		case h == "storage.googleapis.com":
			b, pre, _ := strings.Cut(p, "/")
			r = BucketRef{"gs", b, pre}
		case h == "s3.amazonaws.com" || (strings.HasPrefix(h, "s3.") && strings.HasSuffix(h, ".amazonaws.com")):
			b, pre, _ := strings.Cut(p, "/")
			r = BucketRef{"s3", b, pre}
		case strings.HasSuffix(h, ".amazonaws.com") && strings.Contains(h, ".s3."):
			r = BucketRef{"s3", h[:strings.Index(h, ".s3.")], p}
		case strings.HasSuffix(h, ".s3.amazonaws.com"):
			r = BucketRef{"s3", strings.TrimSuffix(h, ".s3.amazonaws.com"), p}
		case h == "openorganelle.janelia.org" || openOrganelleAny:
			name, ok := strings.CutPrefix(p, "datasets/")
			if !ok || name == "" || strings.Contains(name, "/") || !safeName(name) {
				return BucketRef{}, fmt.Errorf("%q is not an OpenOrganelle dataset page (want …/datasets/<name>)", raw)
			}
			r = BucketRef{"s3", OpenOrganelleBucket, name + "/" + name + ".zarr"}
		default:
			return BucketRef{}, fmt.Errorf("%q is not an S3 or GCS bucket URL", raw)
		}
	default:
		return BucketRef{}, fmt.Errorf("%q is not an S3 or GCS bucket URL", raw)
	}
	if r.Bucket == "" {
		return BucketRef{}, fmt.Errorf("%q names no bucket", raw)
	}
	if r.Prefix != "" {
		k, err := store.CleanKey(r.Prefix)
		if err != nil {
			return BucketRef{}, err
		}
		r.Prefix = k
	}
	return r, nil
}

// Resolve implements Resolver.
func (b *Bucket) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	ref, err := ParseBucketURL(ds.URL, b.Scheme == manifest.KindS3)
	if err != nil {
		return nil, err
	}
	// The store is rooted at the prefix's parent so object paths keep the
	// store's own name (jrc_mus-nacc-2.zarr/…).
	parent, name := "", ref.Prefix
	if i := strings.LastIndex(ref.Prefix, "/"); i >= 0 {
		parent, name = ref.Prefix[:i+1], ref.Prefix[i+1:]
	}
	rootURL := ref.Scheme + "://" + ref.Bucket + "/" + parent
	st, err := env.opener().Open(ctx, rootURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rootURL, err)
	}
	defer st.Close()
	w := &bucketWalk{env: env, st: st, rootURL: rootURL, take: ds.Take, max: b.MaxObjects}
	if w.max <= 0 {
		w.max = DefaultBucketObjects
	}
	res := &Resolved{}
	top := ""
	if name != "" {
		top = name + "/"
	}
	entries, err := w.listLevel(ctx, top)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 && name != "" {
		// Not a prefix: perhaps one object.
		info, err := st.Stat(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: nothing under prefix %q and no such object: %w", rootURL, name, err)
		}
		info.Key = name
		if err := w.add(info); err != nil {
			return nil, err
		}
		res.Objects = w.objs
		return res, nil
	}
	if isZarrLevel(entries) {
		if err := w.walkZarr(ctx, top, entries, 0); err != nil {
			return nil, err
		}
		if len(ds.Take.Scales) > 0 {
			if w.levels == 0 {
				res.Notes = append(res.Notes, "take.scales ignored: the store has no multiscales metadata")
			} else if w.selected == 0 {
				return nil, fmt.Errorf("take.scales %v matched no multiscale level (levels: %s)", ds.Take.Scales, strings.Join(w.levelNames, ", "))
			}
		}
		for _, a := range w.arrays {
			if err := w.listAll(ctx, a, true); err != nil {
				return nil, err
			}
		}
		res.Notes = append(res.Notes, fmt.Sprintf("zarr store: %d arrays selected, %d multiscale levels skipped", len(w.arrays), w.levels-w.selected))
	} else if err := w.listAll(ctx, top, false); err != nil {
		return nil, err
	}
	if len(w.objs) == 0 {
		return nil, fmt.Errorf("%s%s: %w", rootURL, top, ErrNoObjects)
	}
	res.Objects = w.objs
	return res, nil
}

type bucketWalk struct {
	env     *Env
	st      *store.Store
	rootURL string
	take    manifest.Take
	max     int

	objs       []Object
	seen       map[string]bool
	arrays     []string // prefixes ("a/b/") of selected arrays
	levels     int      // multiscale levels seen
	selected   int      // of which selected
	levelNames []string
}

// listLevel lists one level below prefix (delimited): objects and sub-prefixes.
func (w *bucketWalk) listLevel(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	var out []store.ObjectInfo
	err := w.st.List(ctx, prefix, "/", func(oi store.ObjectInfo) error {
		if len(out) >= w.max {
			return fmt.Errorf("more than %d entries under %s%s", w.max, w.rootURL, prefix)
		}
		out = append(out, oi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s%s: %w", w.rootURL, prefix, err)
	}
	return out, nil
}

// add records one object; metadata objects bypass take (a store without its
// metadata is unreadable).
func (w *bucketWalk) add(oi store.ObjectInfo) error {
	k, err := store.CleanKey(oi.Key)
	if err != nil || k == "" {
		return fmt.Errorf("%s: listing returned unsafe key %q", w.rootURL, oi.Key)
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	if w.seen[k] {
		return nil
	}
	w.seen[k] = true
	if len(w.objs) >= w.max {
		return fmt.Errorf("%s: more than %d objects; narrow the URL or take.scales", w.rootURL, w.max)
	}
	src := w.rootURL + escapeRel(k)
	if u, ok := store.As[store.URLDriver](w.st.Driver()); ok {
		src = u.URL(k)
	}
	o := Object{StoreURL: w.rootURL, Key: k, SourceURL: src, Path: k}
	fillInfo(&o, oi)
	w.objs = append(w.objs, o)
	return nil
}

// listAll lists everything under prefix; with keepMeta, zarr metadata files
// are kept whatever take says.
func (w *bucketWalk) listAll(ctx context.Context, prefix string, keepMeta bool) error {
	err := w.st.List(ctx, prefix, "", func(oi store.ObjectInfo) error {
		if oi.IsDir {
			return nil
		}
		if !(keepMeta && w.isMeta(oi.Key)) && !w.take.Match(strings.TrimPrefix(oi.Key, "/")) {
			return nil
		}
		return w.add(oi)
	})
	if err != nil {
		return fmt.Errorf("list %s%s: %w", w.rootURL, prefix, err)
	}
	return nil
}

// zarrWalkNames are the objects that make a listing level a Zarr node the
// walk can read (nodeMeta parses them); which objects a filter must keep is
// the registry's answer, Env.StoreMeta.
var zarrWalkNames = map[string]bool{".zgroup": true, ".zattrs": true, ".zarray": true, "zarr.json": true, ".zmetadata": true}

// isMeta reports whether key names store metadata that take must not drop.
func (w *bucketWalk) isMeta(key string) bool {
	name := path.Base(key)
	if w.env.StoreMeta != nil {
		return w.env.StoreMeta(name)
	}
	return zarrWalkNames[name]
}

func isZarrLevel(es []store.ObjectInfo) bool {
	for _, e := range es {
		if !e.IsDir && zarrWalkNames[path.Base(e.Key)] {
			return true
		}
	}
	return false
}

// walkZarr visits a zarr node whose one-level listing is es.
func (w *bucketWalk) walkZarr(ctx context.Context, prefix string, es []store.ObjectInfo, depth int) error {
	if depth > maxZarrDepth {
		return fmt.Errorf("%s%s: zarr hierarchy deeper than %d", w.rootURL, prefix, maxZarrDepth)
	}
	var files, dirs []store.ObjectInfo
	byName := map[string]store.ObjectInfo{}
	for _, e := range es {
		if e.IsDir {
			dirs = append(dirs, e)
		} else {
			files = append(files, e)
			byName[path.Base(e.Key)] = e
		}
	}
	attrs, isArray, err := w.nodeMeta(ctx, prefix, byName)
	if err != nil {
		return err
	}
	if isArray {
		w.arrays = append(w.arrays, prefix)
		return nil
	}
	for _, f := range files {
		if w.isMeta(f.Key) || w.take.Match(f.Key) {
			if err := w.add(f); err != nil {
				return err
			}
		}
	}
	levels := multiscalePaths(attrs)
	for _, lp := range levels {
		w.levels++
		w.levelNames = append(w.levelNames, prefix+lp)
	}
	for _, d := range dirs {
		child := strings.TrimSuffix(strings.TrimPrefix(d.Key, prefix), "/")
		if child == "" || strings.Contains(child, "/") {
			continue
		}
		sub := prefix + child + "/"
		if idx := indexOf(levels, child); idx >= 0 {
			if !scaleSelected(w.take.Scales, child, idx) {
				continue
			}
			w.selected++
		}
		ces, err := w.listLevel(ctx, sub)
		if err != nil {
			return err
		}
		if !isZarrLevel(ces) {
			// A chunk directory of a v2 array with "/" separators, or an
			// unrelated folder: only descend into zarr nodes.
			continue
		}
		if err := w.walkZarr(ctx, sub, ces, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// nodeMeta reads a node's attributes (.zattrs or zarr.json attributes) and
// whether it is an array.
func (w *bucketWalk) nodeMeta(ctx context.Context, prefix string, byName map[string]store.ObjectInfo) (map[string]any, bool, error) {
	if _, ok := byName[".zarray"]; ok {
		return nil, true, nil
	}
	if _, ok := byName["zarr.json"]; ok {
		b, err := w.st.ReadAll(ctx, prefix+"zarr.json", maxMetaBytes)
		if err != nil {
			return nil, false, fmt.Errorf("%s%szarr.json: %w", w.rootURL, prefix, err)
		}
		var z struct {
			NodeType   string         `json:"node_type"`
			Attributes map[string]any `json:"attributes"`
		}
		if err := json.Unmarshal(b, &z); err != nil {
			return nil, false, fmt.Errorf("%s%szarr.json: %w", w.rootURL, prefix, err)
		}
		return z.Attributes, z.NodeType == "array", nil
	}
	if _, ok := byName[".zattrs"]; ok {
		b, err := w.st.ReadAll(ctx, prefix+".zattrs", maxMetaBytes)
		if err != nil {
			return nil, false, fmt.Errorf("%s%s.zattrs: %w", w.rootURL, prefix, err)
		}
		var a map[string]any
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, false, fmt.Errorf("%s%s.zattrs: %w", w.rootURL, prefix, err)
		}
		return a, false, nil
	}
	return nil, false, nil
}

// multiscalePaths returns the dataset paths of NGFF multiscales (0.4 at the
// top level, 0.5 under "ome").
func multiscalePaths(attrs map[string]any) []string {
	ms, ok := attrs["multiscales"]
	if !ok {
		if ome, ok2 := attrs["ome"].(map[string]any); ok2 {
			ms = ome["multiscales"]
		}
	}
	list, _ := ms.([]any)
	var out []string
	for _, m := range list {
		mm, _ := m.(map[string]any)
		dsl, _ := mm["datasets"].([]any)
		for _, d := range dsl {
			dm, _ := d.(map[string]any)
			if p, ok := dm["path"].(string); ok && p != "" && indexOf(out, p) < 0 {
				out = append(out, strings.Trim(p, "/"))
			}
		}
	}
	return out
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// scaleSelected reports whether a level (by path name or index) is in scales;
// no scales means all.
func scaleSelected(scales []string, name string, idx int) bool {
	if len(scales) == 0 {
		return true
	}
	for _, s := range scales {
		if s == name || s == strconv.Itoa(idx) {
			return true
		}
	}
	return false
}
