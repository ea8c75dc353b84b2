package mirror

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// memFile is one served file.
type memFile struct {
	data []byte
	mod  time.Time
}

// contentType picks the type the real hosts send for the extensions we serve.
// ".gz" is sent as application/x-gzip with no Content-Encoding so clients
// store the bytes as they are.
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".tif", ".tiff":
		return "image/tiff"
	case ".gz":
		return "application/x-gzip"
	case ".xml":
		return "text/xml"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain"
	case ".html":
		return "text/html"
	}
	return "application/octet-stream"
}

// apacheETag is Apache's default ETag form: size and mtime in hex.
func apacheETag(f memFile) string {
	return fmt.Sprintf(`"%x-%x"`, len(f.data), f.mod.UnixMicro())
}

// serveFile answers GET/HEAD for one file with Range, If-None-Match, If-Range,
// Last-Modified and Accept-Ranges, all done by http.ServeContent.
func serveFile(w http.ResponseWriter, r *http.Request, name string, f memFile) {
	w.Header().Set("ETag", apacheETag(f))
	w.Header().Set("Content-Type", contentType(name))
	http.ServeContent(w, r, name, f.mod, bytes.NewReader(f.data))
}

// fileTree is an in-memory directory tree keyed by absolute slash paths.
// Directory keys end in "/".
type fileTree struct {
	files map[string]memFile
	dirs  map[string]map[string]bool // dir → child names ("sub/" for dirs)
}

func newFileTree() *fileTree {
	return &fileTree{files: map[string]memFile{}, dirs: map[string]map[string]bool{"/": {}}}
}

// add puts a file at p (absolute) and creates its parents.
func (t *fileTree) add(p string, f memFile) {
	p = path.Clean("/" + p)
	t.files[p] = f
	t.link(path.Dir(p), path.Base(p))
}

// addDir creates the directory p and its parents.
func (t *fileTree) addDir(p string) {
	p = path.Clean("/" + p)
	if p == "/" {
		return
	}
	key := p + "/"
	if t.dirs[key] == nil {
		t.dirs[key] = map[string]bool{}
	}
	t.link(path.Dir(p), path.Base(p)+"/")
}

// link records child (a name, "sub/" for directories) in dir and dir in its
// parents, up to the root.
func (t *fileTree) link(dir, child string) {
	for {
		key := strings.TrimSuffix(dir, "/") + "/"
		if t.dirs[key] == nil {
			t.dirs[key] = map[string]bool{}
		}
		t.dirs[key][child] = true
		if dir == "/" {
			return
		}
		child = path.Base(dir) + "/"
		dir = path.Dir(dir)
	}
}

// mod is a directory's time: its newest file's.
func (t *fileTree) mod(dir string) time.Time {
	var m time.Time
	for p, f := range t.files {
		if strings.HasPrefix(p, dir) && f.mod.After(m) {
			m = f.mod
		}
	}
	if m.IsZero() {
		return empiarFileTime // an empty folder: any fixed time will do
	}
	return m
}

// apacheIndex serves a tree the way Apache httpd's mod_autoindex does with
// FancyIndexing and HTMLTable (the form peers' scrapers and the README's
// third-party fixtures describe for ftp.ebi.ac.uk; no genuine page was
// captured, see wire-samples/README.md "Not found").
type apacheIndex struct{ t *fileTree }

func (a apacheIndex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	p := r.URL.Path
	if strings.Contains(p, "\x00") || !strings.HasPrefix(p, "/") {
		apacheError(w, r, http.StatusBadRequest)
		return
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") {
		dir := strings.TrimSuffix(clean, "/") + "/"
		if _, ok := a.t.dirs[dir]; ok && dir == p {
			a.index(w, r, dir)
			return
		}
		apacheError(w, r, http.StatusNotFound)
		return
	}
	if f, ok := a.t.files[p]; ok && clean == p {
		serveFile(w, r, path.Base(p), f)
		return
	}
	if _, ok := a.t.dirs[p+"/"]; ok && clean == p {
		// Apache's mod_dir adds the slash with a 301.
		loc := (&url.URL{Path: p + "/", RawQuery: r.URL.RawQuery}).String()
		w.Header().Set("Location", loc)
		apacheError(w, r, http.StatusMovedPermanently)
		return
	}
	apacheError(w, r, http.StatusNotFound)
}

func apacheError(w http.ResponseWriter, r *http.Request, code int) {
	text := http.StatusText(code)
	msg := "The requested URL was not found on this server."
	switch code {
	case http.StatusMovedPermanently:
		msg = fmt.Sprintf(`The document has moved <a href="%s">here</a>.`, html.EscapeString(w.Header().Get("Location")))
	case http.StatusForbidden:
		msg = "You don't have permission to access this resource."
	case http.StatusBadRequest:
		msg = "Your browser sent a request that this server could not understand."
	}
	body := fmt.Sprintf("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>%d %s</title>\n</head><body>\n<h1>%s</h1>\n<p>%s</p>\n</body></html>\n",
		code, text, text, msg)
	writeBody(w, r, code, "text/html; charset=iso-8859-1", []byte(body))
}

type indexEntry struct {
	name string // "sub/" for directories
	dir  bool
	size int64
	mod  time.Time
}

// sortSpec parses Apache's "C=N;O=D" query (semicolon separated, which
// net/url refuses to parse).
func sortSpec(raw string) (col, order byte) {
	col, order = 'N', 'A'
	for _, kv := range strings.FieldsFunc(raw, func(r rune) bool { return r == ';' || r == '&' }) {
		k, v, _ := strings.Cut(kv, "=")
		if len(v) != 1 {
			continue
		}
		switch {
		case k == "C" && strings.ContainsRune("NMSD", rune(v[0])):
			col = v[0]
		case k == "O" && (v == "A" || v == "D"):
			order = v[0]
		}
	}
	return col, order
}

func (a apacheIndex) index(w http.ResponseWriter, r *http.Request, dir string) {
	var ents []indexEntry
	for name := range a.t.dirs[dir] {
		if strings.HasSuffix(name, "/") {
			ents = append(ents, indexEntry{name: name, dir: true, size: -1, mod: a.t.mod(dir + name)})
			continue
		}
		f := a.t.files[dir+name]
		ents = append(ents, indexEntry{name: name, size: int64(len(f.data)), mod: f.mod})
	}
	col, order := sortSpec(r.URL.RawQuery)
	sort.Slice(ents, func(i, j int) bool {
		x, y := ents[i], ents[j]
		if order == 'D' {
			x, y = y, x
		}
		switch col {
		case 'M':
			if !x.mod.Equal(y.mod) {
				return x.mod.Before(y.mod)
			}
		case 'S':
			if x.size != y.size {
				return x.size < y.size
			}
		}
		return x.name < y.name
	})
	title := html.EscapeString(strings.TrimSuffix(dir, "/"))
	if dir == "/" {
		title = "/"
	}
	head := func(c byte, label string) string {
		o := "A"
		if c == col && order == 'A' {
			o = "D"
		}
		return fmt.Sprintf(`<th><a href="?C=%c;O=%s">%s</a></th>`, c, o, label)
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n <head>\n")
	fmt.Fprintf(&b, "  <title>Index of %s</title>\n </head>\n <body>\n<h1>Index of %s</h1>\n  <table>\n", title, title)
	fmt.Fprintf(&b, "   <tr><th valign=\"top\"><img src=\"/icons/blank.gif\" alt=\"[ICO]\"></th>%s%s%s%s</tr>\n",
		head('N', "Name"), head('M', "Last modified"), head('S', "Size"), head('D', "Description"))
	b.WriteString("   <tr><th colspan=\"5\"><hr></th></tr>\n")
	if dir != "/" {
		parent := path.Dir(strings.TrimSuffix(dir, "/"))
		parent = strings.TrimSuffix(parent, "/") + "/"
		fmt.Fprintf(&b, "<tr><td valign=\"top\"><img src=\"/icons/back.gif\" alt=\"[PARENTDIR]\"></td><td><a href=\"%s\">Parent Directory</a></td><td>&nbsp;</td><td align=\"right\">  - </td><td>&nbsp;</td></tr>\n",
			html.EscapeString((&url.URL{Path: parent}).EscapedPath()))
	}
	for _, e := range ents {
		icon, alt, size := "/icons/unknown.gif", "[   ]", apacheSize(e.size)
		if e.dir {
			icon, alt, size = "/icons/folder.gif", "[DIR]", "  - "
		}
		href := (&url.URL{Path: e.name}).EscapedPath()
		fmt.Fprintf(&b, "<tr><td valign=\"top\"><img src=\"%s\" alt=\"%s\"></td><td><a href=\"%s\">%s</a></td><td align=\"right\">%s  </td><td align=\"right\">%s</td><td>&nbsp;</td></tr>\n",
			icon, alt, html.EscapeString(href), html.EscapeString(e.name), e.mod.UTC().Format("2006-01-02 15:04"), size)
	}
	b.WriteString("   <tr><th colspan=\"5\"><hr></th></tr>\n</table>\n</body></html>\n")
	writeBody(w, r, http.StatusOK, "text/html;charset=ISO-8859-1", []byte(b.String()))
}

// apacheSize formats a size like APR's apr_strfsize, which mod_autoindex
// uses: "  0 ", "973 " → "1.0K", "29M", "1.2G".
func apacheSize(size int64) string {
	if size < 0 {
		return "  - "
	}
	if size < 973 {
		return fmt.Sprintf("%3d ", size)
	}
	const units = "KMGTPE"
	for i := 0; ; i++ {
		remain := size & 1023
		size >>= 10
		if size >= 973 && i < len(units)-1 {
			continue
		}
		if size < 9 || (size == 9 && remain < 973) {
			r := (remain*5 + 256) / 512
			if r >= 10 {
				size++
				r = 0
			}
			return fmt.Sprintf("%d.%d%c", size, r, units[i])
		}
		if remain >= 512 {
			size++
		}
		return fmt.Sprintf("%3d%c", size, units[i])
	}
}
