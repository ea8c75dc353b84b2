package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/html"

	"github.com/imgdataset/imgdataset/manifest"
)

// Default bounds of a recursive listing walk.
const (
	DefaultListingDepth   = 8
	DefaultListingEntries = 200000
)

// Listing resolves an Apache/nginx-style HTML directory index, recursively.
// The zero value uses the default bounds.
type Listing struct {
	// MaxDepth bounds recursion below the start directory (0 = default).
	MaxDepth int
	// MaxEntries bounds the number of index entries read in total; a larger
	// tree is an error rather than a silently partial dataset (0 = default).
	MaxEntries int
}

// Kind implements Resolver.
func (l *Listing) Kind() string { return manifest.KindListing }

// Resolve implements Resolver.
func (l *Listing) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	objs, err := l.List(ctx, env, ds.URL, ds.Take)
	if err != nil {
		return nil, err
	}
	return &Resolved{Objects: objs}, nil
}

// IndexEntry is one child named by a directory index page.
type IndexEntry struct {
	Name     string // decoded, one path segment
	Dir      bool
	SizeHint int64 // from the size column; -1 when absent or unparsable
}

// List walks the index at startURL and returns the files selected by take
// (paths relative to startURL). Files listed with a size above hintOnlyMax
// or none get exact sizes and validators from a HEAD; smaller ones keep the
// listed size as SizeHint (Size -1).
func (l *Listing) List(ctx context.Context, env *Env, startURL string, take manifest.Take) ([]Object, error) {
	maxDepth, maxEntries := l.MaxDepth, l.MaxEntries
	if maxDepth <= 0 {
		maxDepth = DefaultListingDepth
	}
	if maxEntries <= 0 {
		maxEntries = DefaultListingEntries
	}
	start, err := url.Parse(strings.ReplaceAll(strings.TrimSpace(startURL), " ", "%20"))
	if err != nil {
		return nil, fmt.Errorf("listing %q: %w", startURL, err)
	}
	if start.Scheme != "http" && start.Scheme != "https" {
		return nil, fmt.Errorf("listing %s: only http(s) indexes can be listed", startURL)
	}
	start.RawQuery, start.Fragment, start.RawFragment = "", "", ""
	if !strings.HasSuffix(start.Path, "/") {
		start.Path += "/"
		start.RawPath = ""
	}
	root := canonicalURL(start)

	type dir struct {
		rel   string // "" or "a/b/"
		depth int
	}
	queue := []dir{{"", 0}}
	seen := map[string]bool{}
	var objs []Object
	entries := 0
	c := env.client()
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		dirURL := root + escapeRel(d.rel)
		body, _, err := get(ctx, c, dirURL, maxPageBytes)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", dirURL, err)
		}
		base, _ := url.Parse(dirURL) // built from a parsed URL
		es := ParseIndex(base, body)
		entries += len(es)
		if entries > maxEntries {
			return nil, fmt.Errorf("listing %s: more than %d entries; raise the limit or narrow the URL", root, maxEntries)
		}
		for _, e := range es {
			rel := d.rel + e.Name
			if e.Dir {
				rel += "/"
				if seen[rel] || d.depth+1 > maxDepth || prunedDir(take, strings.TrimSuffix(rel, "/")) {
					continue
				}
				seen[rel] = true
				queue = append(queue, dir{rel, d.depth + 1})
				continue
			}
			if seen[rel] || !take.Match(rel) {
				continue
			}
			seen[rel] = true
			objs = append(objs, Object{
				StoreURL:  root,
				Key:       rel,
				SourceURL: root + escapeRel(rel),
				Path:      rel,
				Size:      e.SizeHint,
			})
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("listing %s: %w (%d index entries seen)", root, ErrNoObjects, entries)
	}
	// A HEAD per file would double the requests of a listing of many small
	// files (a zarr store behind an index has millions): their listed size
	// stays a hint and the download learns the exact size and ETag from the
	// GET itself. Larger files and unsized ones are stat'ed so the plan is
	// exact where it matters, unless there are more than maxPlanHEADs of
	// them; the download then learns their sizes from its GETs too (and
	// switches a file that turns out large to ranges).
	var exact []Object
	var at []int
	for i := range objs {
		if h := objs[i].Size; h >= 0 && h <= hintOnlyMax {
			objs[i].Size, objs[i].SizeHint = -1, max(h, 1)
			continue
		}
		exact, at = append(exact, objs[i]), append(at, i)
	}
	if len(exact) > maxPlanHEADs {
		env.logf("listing %s: %d files without a usable size; sizes will come with the downloads", root, len(exact))
		for _, i := range at {
			// The listed size stays as a hint: it bounds the download.
			objs[i].Size, objs[i].SizeHint = -1, max(objs[i].Size, 0)
		}
		return objs, nil
	}
	// One dead link must not fail the dataset: an object whose stat fails
	// keeps its listed size as a hint, and its download fails it alone,
	// naming the cause.
	if failed, err := statObjects(ctx, env, exact, true); err != nil || len(failed) == len(objs) {
		return nil, fmt.Errorf("listing %s: %w", root, errors.Join(append(failed, err)...))
	}
	for j, i := range at {
		objs[i] = exact[j]
	}
	return objs, nil
}

const (
	// hintOnlyMax is the largest listed size taken as a hint without a HEAD.
	hintOnlyMax = 4 << 20
	// maxPlanHEADs bounds the HEADs a listing spends on exact sizes.
	maxPlanHEADs = 1000
)

// prunedDir reports whether an exclude pattern of the form "<glob>/**" rules
// out everything below dir, so the walk need not fetch its index.
func prunedDir(take manifest.Take, dir string) bool {
	for _, g := range take.Exclude {
		if p, ok := strings.CutSuffix(g, "/**"); ok && manifest.Glob(p, dir) && (strings.Contains(p, "/") || !strings.Contains(dir, "/")) {
			return true
		}
	}
	return false
}

// escapeRel percent-encodes each segment of a relative path.
func escapeRel(rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// ParseIndex extracts the children of base from an HTML index page. Only
// relative links naming a direct child survive: sort links (?C=N;O=D),
// fragments, absolute paths, other hosts, parent links and anything with a
// ".." segment are dropped, so a hostile page cannot name a path outside
// base. Duplicates are removed; the order of the page is kept.
func ParseIndex(base *url.URL, body []byte) []IndexEntry {
	var out []IndexEntry
	seen := map[string]bool{}
	z := html.NewTokenizer(bytes.NewReader(body))
	var cur *IndexEntry // the entry whose row text is being read
	var row strings.Builder
	inA := false // anchor text is the name, not a column
	flush := func() {
		if cur != nil {
			if !cur.Dir {
				cur.SizeHint = sizeHint(row.String())
			}
			out = append(out, *cur)
		}
		cur = nil
		row.Reset()
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			flush()
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "a":
				flush()
				inA = tt == html.StartTagToken
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) != "href" {
						continue
					}
					if e, ok := childEntry(base, string(v)); ok && !seen[e.Name+strconv.FormatBool(e.Dir)] {
						seen[e.Name+strconv.FormatBool(e.Dir)] = true
						cur = &e
					}
				}
			case "tr", "br", "p", "li", "div":
				flush()
			}
		case html.EndTagToken:
			switch name, _ := z.TagName(); string(name) {
			case "tr":
				flush()
			case "a":
				inA = false
			}
		case html.TextToken:
			if cur != nil && !inA {
				t := z.Text()
				// nginx/Apache plain indexes put one entry per line.
				if i := bytes.IndexByte(t, '\n'); i >= 0 {
					row.Write(t[:i])
					flush()
					continue
				}
				row.Write(t)
				row.WriteByte(' ')
			}
		}
	}
}

// childEntry decides whether href names a direct child of base.
func childEntry(base *url.URL, href string) (IndexEntry, bool) {
	h := strings.TrimSpace(href)
	if h == "" || strings.ContainsAny(h, "?#\\") || strings.HasPrefix(h, "/") {
		return IndexEntry{}, false
	}
	h = strings.ReplaceAll(h, " ", "%20")
	ref, err := url.Parse(h)
	if err != nil || ref.Scheme != "" || ref.Host != "" || ref.User != nil {
		return IndexEntry{}, false
	}
	for _, seg := range strings.Split(ref.Path, "/") {
		if seg == ".." {
			return IndexEntry{}, false
		}
	}
	p := strings.TrimPrefix(ref.Path, "./")
	dir := strings.HasSuffix(p, "/")
	name := strings.TrimSuffix(p, "/")
	if !safeName(name) {
		return IndexEntry{}, false
	}
	// Resolve as a browser would and check the result really is base's child.
	abs := base.ResolveReference(ref)
	parent := path.Dir(strings.TrimSuffix(abs.Path, "/"))
	if parent != "/" { // the server root is its own parent's spelling
		parent += "/"
	}
	if abs.Host != base.Host || abs.Scheme != base.Scheme || parent != base.Path {
		return IndexEntry{}, false
	}
	return IndexEntry{Name: name, Dir: dir, SizeHint: -1}, true
}

var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)([KMGTP]?)(?:i?B)?$`)

// sizeHint reads the last size-looking field of an index row ("1.2G", "30M",
// "31876543"); the first date/time-looking fields are skipped by taking the last.
func sizeHint(row string) int64 {
	fs := strings.Fields(row)
	for i := len(fs) - 1; i >= 0; i-- {
		f := fs[i]
		if f == "-" {
			return -1
		}
		m := sizeRE.FindStringSubmatch(f)
		if m == nil {
			continue
		}
		if strings.Contains(f, ":") {
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return -1
		}
		mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}[m[2]]
		s := v * mult
		if s > math.MaxInt64/2 {
			return -1
		}
		return int64(s)
	}
	return -1
}
