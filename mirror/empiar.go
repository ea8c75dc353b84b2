package mirror

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"path"
	"strings"
)

// empiarServer stands in for the EMPIAR part of www.ebi.ac.uk: the REST
// entry and the entry page that points at the FTP tree.
type empiarServer struct {
	id     string
	entry  []byte // API body
	title  string
	ftpURL string // public-archive-ftp-url, no trailing slash like the real one
	csrf   string
}

func newEMPIAR(c Content, ftpBase string) (*empiarServer, error) {
	s := &empiarServer{id: c.EMPIARID, ftpURL: ftpBase + "/empiar/world_availability/" + c.EMPIARID}
	sum := sha256.Sum256([]byte("empiar-csrf-" + c.EMPIARID))
	s.csrf = hex.EncodeToString(sum[:])
	entry := c.EMPIAREntry
	if entry == nil {
		var err error
		if entry, err = buildEMPIAREntry(c); err != nil {
			return nil, err
		}
	}
	s.entry = entry
	var top map[string]struct {
		Title string `json:"title"`
	}
	if json.Unmarshal(entry, &top) == nil {
		s.title = top["EMPIAR-"+c.EMPIARID].Title
	}
	return s, nil
}

// buildEMPIAREntry takes the wire-sample entry of EMPIAR-11759 (numbers as
// written, e.g. 80.0 and the string "5628") and only recounts the images and
// the dataset size from the files served. Its image_width/height stay the
// API's own, which disagree with the files as they do in reality.
func buildEMPIAREntry(c Content) ([]byte, error) {
	raw, err := templates.ReadFile("templates/empiar-api-entry-11759.json")
	if err != nil {
		return nil, fmt.Errorf("mirror: EMPIAR template: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var top map[string]map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("mirror: EMPIAR template: %w", err)
	}
	e := top["EMPIAR-11759"]
	if e == nil {
		return nil, fmt.Errorf("mirror: EMPIAR template lacks EMPIAR-11759")
	}
	acc := "EMPIAR-" + c.EMPIARID
	e["entry_doi"] = "10.6019/" + acc
	var total int64
	for _, d := range c.EMPIARFiles {
		total += int64(len(d))
	}
	e["dataset_size"] = decimalSize(total)
	if sets, ok := e["imagesets"].([]any); ok {
		for _, s := range sets {
			set, ok := s.(map[string]any)
			if !ok {
				continue
			}
			dir, _ := set["directory"].(string)
			format, _ := set["data_format"].(string)
			n := 0
			for rel := range c.EMPIARFiles {
				rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
				if path.Dir(rel) == dir && strings.EqualFold(path.Ext(rel), "."+format) {
					n++
				}
			}
			set["num_images_or_tilt_series"] = n
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{acc: e}); err != nil {
		return nil, fmt.Errorf("mirror: EMPIAR entry: %w", err)
	}
	return buf.Bytes(), nil
}

// decimalSize formats like the API's dataset_size ("1.2 GB").
func decimalSize(n int64) string {
	switch {
	case n >= 1e12:
		return fmt.Sprintf("%.1f TB", float64(n)/1e12)
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func (s *empiarServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	p := r.URL.Path
	acc := "EMPIAR-" + s.id
	if rest, ok := strings.CutPrefix(p, "/empiar/api/entry/"); ok {
		switch strings.TrimSuffix(rest, "/") {
		case s.id, acc:
			writeBody(w, r, http.StatusOK, "application/json", s.entry)
		default:
			// Django REST framework's not-found body.
			writeJSON(w, r, http.StatusNotFound, map[string]string{"detail": "Not found."})
		}
		return
	}
	switch p {
	case "/empiar/" + acc + "/":
		s.page(w, r)
	case "/empiar/" + acc:
		w.Header().Set("Location", p+"/")
		writeBody(w, r, http.StatusMovedPermanently, "text/html; charset=utf-8", nil)
	default:
		writeBody(w, r, http.StatusNotFound, "text/html; charset=utf-8", []byte("<!DOCTYPE html>\n<title>Not found</title>\n<h1>Not found</h1>\n"))
	}
}

// page is the entry page. Its markup is invented (never captured); what peers
// rely on is real: an element carrying public-archive-ftp-url (yuriyzubov
// src/parse_webpages/empiar.py) and a csrf-token attribute (shuchenliu
// src/query/empiar.sh).
func (s *empiarServer) page(w http.ResponseWriter, r *http.Request) {
	acc := "EMPIAR-" + s.id
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	fmt.Fprintf(&b, "<title>%s - %s</title>\n</head>\n<body>\n", acc, html.EscapeString(s.title))
	fmt.Fprintf(&b, "<div id=\"empiar-app\">\n<empiar-entry entry-id=\"%s\" csrf-token=\"%s\" public-archive-ftp-url=\"%s\"></empiar-entry>\n</div>\n",
		acc, s.csrf, html.EscapeString(s.ftpURL))
	fmt.Fprintf(&b, "<h1>%s</h1>\n<h2>%s</h2>\n", acc, html.EscapeString(s.title))
	fmt.Fprintf(&b, "<p><a href=\"/empiar/api/entry/%s/\">API</a></p>\n</body>\n</html>\n", s.id)
	writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", []byte(b.String()))
}
