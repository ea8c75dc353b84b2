package mirror

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

// epflFileTime is a fixed Last-Modified for the documents host.
var epflFileTime = time.Date(2013, 3, 12, 9, 0, 0, 0, time.UTC)

// epflPage serves the lab page in two variants. The markup is WordPress-like
// but invented: the real page HTML was never captured (wire-samples README,
// "Not found"). What is real: the article id/class post-2138 (WordPress
// post_class), the description text and the hrefs, in their order, with their
// literal spaces, the one %20 form and the duplicates.
type epflPage struct {
	description string
	links       []string // hrefs on the docs mirror
}

func newEPFLPage(files map[string][]byte, docsBase string) (*epflPage, error) {
	var t epflLinks
	if err := loadTemplate("epfl-data-em-links.extracted.json", &t); err != nil {
		return nil, err
	}
	p := &epflPage{description: t.Description}
	listed := map[string]bool{}
	for _, l := range t.Links {
		rest, ok := strings.CutPrefix(l, "https://documents.epfl.ch")
		if !ok {
			return nil, fmt.Errorf("mirror: EPFL template link %q is not on documents.epfl.ch", l)
		}
		name := path.Base(rest)
		listed[name] = true
		if files == nil || files[name] != nil {
			p.links = append(p.links, docsBase+rest)
		}
	}
	var extra []string
	for name := range files {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		p.links = append(p.links, docsBase+EPFLDocsDir+name)
	}
	return p, nil
}

func (p *epflPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	switch r.URL.Path {
	case EPFLPagePath:
		p.render(w, r, false)
	case EPFLJSPagePath:
		p.render(w, r, true)
	case strings.TrimSuffix(EPFLPagePath, "/"), strings.TrimSuffix(EPFLJSPagePath, "/"):
		w.Header().Set("Location", r.URL.Path+"/")
		writeBody(w, r, http.StatusMovedPermanently, "text/html; charset=UTF-8", nil)
	default:
		writeBody(w, r, http.StatusNotFound, "text/html; charset=UTF-8", []byte("<!doctype html>\n<title>Page not found &#8211; EPFL</title>\n<h1>Page not found</h1>\n"))
	}
}

func (p *epflPage) render(w http.ResponseWriter, r *http.Request, js bool) {
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"UTF-8\">\n")
	b.WriteString("<title>Electron Microscopy Dataset &#8211; CVLAB &#8211; EPFL</title>\n")
	b.WriteString("<link rel=\"stylesheet\" href=\"/wp-content/themes/wp-theme-2018/assets/css/base.css\">\n</head>\n")
	b.WriteString("<body class=\"page-template-default page page-id-2138\">\n")
	b.WriteString("<header role=\"banner\"><nav><a href=\"/labs/cvlab/\">CVLAB</a> <a href=\"/labs/cvlab/data/\">Data</a></nav></header>\n")
	b.WriteString("<main id=\"main\" role=\"main\">\n")
	b.WriteString("<article id=\"post-2138\" class=\"post-2138 page type-page status-publish hentry\">\n<div class=\"entry-content\">\n")
	b.WriteString("<h1>Electron Microscopy Dataset</h1>\n")
	fmt.Fprintf(&b, "<p>%s</p>\n", html.EscapeString(p.description))
	if js {
		b.WriteString("<ul id=\"downloads\"></ul>\n")
	} else {
		b.WriteString("<ul>\n")
		for _, l := range p.links {
			fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(l), html.EscapeString(path.Base(l)))
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</div>\n</article>\n</main>\n<footer><a href=\"/about/\">About EPFL</a></footer>\n")
	if js {
		// The links exist only after this runs; base64 keeps them out of
		// the static text so only a browser (or a JS engine) finds them.
		// setAttribute keeps the raw spaces, as the captured DOM had.
		list, _ := json.Marshal(p.links)
		fmt.Fprintf(&b, `<script>
document.addEventListener("DOMContentLoaded", function () {
  var links = JSON.parse(atob("%s"));
  var ul = document.getElementById("downloads");
  links.forEach(function (l) {
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.setAttribute("href", l);
    a.textContent = l.split("/").pop();
    li.appendChild(a);
    ul.appendChild(li);
  });
});
</script>
`, base64.StdEncoding.EncodeToString(list))
	}
	b.WriteString("</body>\n</html>\n")
	writeBody(w, r, http.StatusOK, "text/html; charset=UTF-8", []byte(b.String()))
}

// epflDocs stands in for documents.epfl.ch: files under a folder whose name
// starts with a space; folders are not listable (403).
type epflDocs struct{ files map[string]memFile }

func newEPFLDocs(files map[string][]byte) epflDocs {
	d := epflDocs{files: map[string]memFile{}}
	for name, data := range files {
		d.files[name] = memFile{data: data, mod: epflFileTime}
	}
	return d
}

func (d epflDocs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	p := r.URL.Path
	if name, ok := strings.CutPrefix(p, EPFLDocsDir); ok && name != "" && !strings.Contains(name, "/") {
		if f, ok := d.files[name]; ok {
			serveFile(w, r, name, f)
			return
		}
	}
	if strings.HasSuffix(p, "/") || strings.HasPrefix(EPFLDocsDir, p+"/") {
		apacheError(w, r, http.StatusForbidden)
		return
	}
	apacheError(w, r, http.StatusNotFound)
}
