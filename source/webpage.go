package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/imgdataset/imgdataset/manifest"
)

// WebPage resolves a page whose links point at the data files. When the
// static HTML has no data links but has scripts, the page is rendered in
// headless Chromium and harvested again.
type WebPage struct {
	// Render renders a page and returns its DOM as HTML; nil means
	// RenderChromium. Tests replace it.
	Render func(ctx context.Context, env *Env, pageURL string) ([]byte, error)
}

// Kind implements Resolver.
func (w *WebPage) Kind() string { return manifest.KindWebPage }

// Resolve implements Resolver.
func (w *WebPage) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	pageURL := strings.ReplaceAll(strings.TrimSpace(ds.URL), " ", "%20")
	body, final, err := get(ctx, env.client(), pageURL, maxPageBytes)
	if err != nil {
		return nil, err
	}
	page, err := ParsePage(final, body)
	if err != nil {
		return nil, fmt.Errorf("page %s: %w", pageURL, err)
	}
	if isIndexPage(final, page) {
		// A URL detected as a web page that is really a directory index (an
		// Apache/nginx/Go/Python file server): walk it as a listing, which
		// recurses and takes every file rather than only known data types.
		objs, err := (&Listing{}).List(ctx, env, final.String(), ds.Take)
		if err != nil {
			return nil, err
		}
		return &Resolved{Kind: manifest.KindListing, Objects: objs,
			Notes: []string{"the page is a directory index: listed recursively"}}, nil
	}
	res := &Resolved{}
	objs, notes := pageObjects(page, ds.Take)
	if len(objs) == 0 && page.HasScript {
		render := w.Render
		if render == nil {
			render = RenderChromium
		}
		env.logf("page %s: no data links in the static HTML; rendering it with headless Chromium", pageURL)
		dom, err := render(ctx, env, final.String())
		if err != nil {
			return nil, fmt.Errorf("page %s has no data links without JavaScript: %w", pageURL, err)
		}
		rendered, err := ParsePage(final, dom)
		if err != nil {
			return nil, fmt.Errorf("page %s (rendered): %w", pageURL, err)
		}
		rendered.Title = firstNonEmpty(rendered.Title, page.Title)
		page = rendered
		objs, notes = pageObjects(page, ds.Take)
		res.Notes = append(res.Notes, "links found only after rendering the page's JavaScript in headless Chromium")
	}
	res.Notes = append(res.Notes, notes...)
	if len(objs) == 0 {
		return nil, fmt.Errorf("page %s: %w (%d links on the page)", pageURL, ErrNoObjects, len(page.Links))
	}
	if failed, err := statObjects(ctx, env, objs, true); err != nil || len(failed) == len(objs) {
		return nil, fmt.Errorf("page %s: %w", pageURL, errors.Join(append(failed, err)...))
	}
	res.Objects = objs
	res.Facts = page.Facts()
	if len(res.Facts) > 0 {
		res.FactsSource = "web page"
	}
	return res, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Page is what a web page offers: its links and its text.
type Page struct {
	Title string
	// Links are absolute, canonical (spaces as %20), de-duplicated, in page order.
	Links []*url.URL
	// Text is the visible text of the article (or the whole body).
	Text      string
	HasScript bool
	// Article is set when the links and text come from an <article>.
	Article bool
}

// ParsePage harvests links and text from the page's first <article>, or
// from the whole document when there is none. Hrefs are trimmed, raw spaces
// are accepted and relative links resolved against base.
func ParsePage(base *url.URL, body []byte) (*Page, error) {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	p := &Page{}
	var article *html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Script:
				p.HasScript = true
			case atom.Title:
				if p.Title == "" && n.FirstChild != nil {
					p.Title = strings.TrimSpace(n.FirstChild.Data)
				}
			case atom.Article:
				if article == nil {
					article = n
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	scope := doc
	if article != nil {
		scope = article
		p.Article = true
	}
	seen := map[string]bool{}
	var text strings.Builder
	var harvest func(n *html.Node)
	harvest = func(n *html.Node) {
		switch n.Type {
		case html.ElementNode:
			if n.DataAtom == atom.Script || n.DataAtom == atom.Style || n.DataAtom == atom.Noscript {
				return
			}
			if n.DataAtom == atom.A {
				for _, a := range n.Attr {
					if a.Key != "href" {
						continue
					}
					if u := resolveHref(base, a.Val); u != nil && !seen[u.String()] {
						seen[u.String()] = true
						p.Links = append(p.Links, u)
					}
				}
			}
		case html.TextNode:
			if text.Len() < maxPageBytes {
				text.WriteString(n.Data)
				text.WriteByte(' ')
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			harvest(c)
		}
	}
	harvest(scope)
	p.Text = strings.Join(strings.Fields(text.String()), " ")
	return p, nil
}

// resolveHref turns an href as authors write it (raw spaces, %20, relative)
// into a canonical absolute http(s) URL, or nil.
func resolveHref(base *url.URL, href string) *url.URL {
	h := strings.TrimSpace(href)
	if h == "" || strings.HasPrefix(h, "#") {
		return nil
	}
	h = strings.ReplaceAll(h, " ", "%20")
	ref, err := url.Parse(h)
	if err != nil {
		return nil
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil
	}
	c, err := url.Parse(canonicalURL(u))
	if err != nil {
		return nil
	}
	return c
}

// pageObjects keeps the links whose file name is selected by take (default:
// data-file extensions), one object per distinct file name.
func pageObjects(p *Page, take manifest.Take) ([]Object, []string) {
	var objs []Object
	var notes []string
	byName := map[string]string{}
	for _, u := range p.Links {
		dir, name, err := splitURL(u)
		if err != nil {
			continue
		}
		if len(take.Include) == 0 && !isDataExt(name) {
			continue
		}
		if !take.Match(name) {
			continue
		}
		src := u.String()
		if prev, ok := byName[name]; ok {
			if prev != src {
				notes = append(notes, fmt.Sprintf("skipped %s: same file name as %s", src, prev))
			}
			continue
		}
		byName[name] = src
		objs = append(objs, Object{StoreURL: dir, Key: name, SourceURL: src, Path: name, Size: -1})
	}
	return objs, notes
}

var (
	// "approximately 5x5x5nm", "4 x 4 x 2.96 nm": three numbers then nm.
	voxelRE = regexp.MustCompile(`(?i)(\d+(?:\.\d+)?)\s*[x×*]\s*(\d+(?:\.\d+)?)\s*[x×*]\s*(\d+(?:\.\d+)?)\s*(nm|nanomet)`)
	// "a 1065x2048x1536 volume": three integers then (voxels) volume/stack.
	volumeRE = regexp.MustCompile(`(?i)(\d+\s*[x×]\s*\d+\s*[x×]\s*\d+)\s*(?:voxels?\s+|pixels?\s+)?(?:volume|stack)`)
)

// Facts are the values a page states in prose. They are raw claims (the
// files decide), so the volume size is kept as text: pages disagree on axis order.
func (p *Page) Facts() Facts {
	f := Facts{}
	if p.Title != "" {
		f["title"] = p.Title
	}
	if m := voxelRE.FindStringSubmatch(p.Text); m != nil {
		var v []float64
		for _, s := range m[1:4] {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || !(x > 0) {
				v = nil
				break
			}
			v = append(v, x)
		}
		if v != nil {
			// Pages write x×y×z; facts are z,y,x.
			f["voxel_size_nm"] = []float64{v[2], v[1], v[0]}
			f["page_voxel_size"] = m[0]
		}
	}
	if m := volumeRE.FindStringSubmatch(p.Text); m != nil {
		f["page_volume_size"] = strings.Join(strings.Fields(m[1]), "")
	}
	// Without an article the text is mostly navigation: no description.
	if d := p.Text; d != "" && p.Article {
		if len(d) > 2000 {
			d = d[:2000]
		}
		f["description"] = strings.ToValidUTF8(d, "")
	}
	return f
}

// isIndexPage reports whether a page is a file server's directory index:
// titled so by Apache, nginx or Python ("Index of /d/", "Directory listing
// for /d/"), or a bare list whose every link is an entry of this directory
// (Go's http.FileServer: a <pre> of relative names, no title).
func isIndexPage(base *url.URL, p *Page) bool {
	t := strings.ToLower(p.Title)
	if strings.HasPrefix(t, "index of ") || strings.HasPrefix(t, "directory listing for ") {
		return true
	}
	if p.Title != "" || p.Article || p.HasScript || len(p.Links) == 0 {
		return false
	}
	dir := base.Path
	if i := strings.LastIndex(dir, "/"); i >= 0 {
		dir = dir[:i+1]
	}
	for _, l := range p.Links {
		if l.Host != base.Host || l.RawQuery != "" || !strings.HasPrefix(l.Path, dir) {
			return false
		}
		rest := strings.TrimSuffix(l.Path[len(dir):], "/")
		if rest == "" || strings.Contains(rest, "/") {
			return false
		}
	}
	return true
}
