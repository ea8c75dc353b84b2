package mirror

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strings"
)

// shortLink stands in for tinyurl.com/hemibrain-ng: a 301 to a Neuroglancer
// URL whose fragment is "!" + the percent-encoded state, and the tiny viewer
// page at /ng/ the redirect lands on.
type shortLink struct {
	target string // full Location
}

// newShortLink compacts the wire-sample state (key order kept) and encodes it
// the way the real hemibrain links are (see wire-samples/
// hemibrain-ng-url.dvid-io-blog-2020-01.txt): unreserved characters and
// ":/#=" stay literal, so the shader's "#uicontrol" keeps its '#' and the
// fragment must be split on the first "#!".
func newShortLink(base string) (*shortLink, error) {
	raw, err := templates.ReadFile("templates/hemibrain-ng-state.json")
	if err != nil {
		return nil, fmt.Errorf("mirror: Neuroglancer state template: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("mirror: Neuroglancer state template: %w", err)
	}
	return &shortLink{target: base + "/ng/#!" + ngEscape(compact.String())}, nil
}

// ngEscape percent-encodes every byte but A-Z a-z 0-9 - _ . ~ : / # =.
func ngEscape(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~:/#=", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

func (s *shortLink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	switch r.URL.Path {
	case "/hemibrain-ng":
		w.Header().Set("Location", s.target)
		body := fmt.Sprintf("<html><body>Redirecting to <a href=\"%s\">%s</a></body></html>\n", html.EscapeString(s.target), html.EscapeString(s.target))
		writeBody(w, r, http.StatusMovedPermanently, "text/html; charset=UTF-8", []byte(body))
	case "/ng/", "/ng/index.html":
		body := "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>neuroglancer</title></head>\n<body><div id=\"neuroglancer-container\"></div><script src=\"main.bundle.js\"></script></body>\n</html>\n"
		writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", []byte(body))
	default:
		writeBody(w, r, http.StatusNotFound, "text/html; charset=UTF-8", []byte("<html><body>Not found</body></html>\n"))
	}
}

// openOrganelle is the dataset page. The real one is a JavaScript app whose
// static HTML carries no store URL; resolvers map the name to
// s3://janelia-cosem-datasets/<name>/<name>.zarr by convention. Like a
// single-page app it answers 200 for any dataset name.
type openOrganelle struct{}

func (openOrganelle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/datasets/")
	name = strings.TrimSuffix(name, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		writeBody(w, r, http.StatusNotFound, "text/html; charset=utf-8", []byte("<!doctype html><title>Not found</title>\n"))
		return
	}
	body := fmt.Sprintf("<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>OpenOrganelle: %s</title>\n"+
		"<meta name=\"description\" content=\"Explore the %s dataset\"></head>\n"+
		"<body><noscript>You need to enable JavaScript to run this app.</noscript><div id=\"root\"></div>"+
		"<script src=\"/static/js/main.js\"></script></body>\n</html>\n", html.EscapeString(name), html.EscapeString(name))
	writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", []byte(body))
}
