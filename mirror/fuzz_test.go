package mirror

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
)

// corpusTIFFs returns small TIFFs from the shared corpus whose licence is not
// GPL (fuzz crashers are committed, so GPL bytes must never seed them), or nil
// with the reason when the corpus is absent.
func corpusTIFFs(tb testing.TB) [][]byte {
	dir := os.Getenv("IMGDATASET_CORPUS")
	if dir == "" {
		root, err := corpus.RepoRoot()
		if err != nil {
			tb.Logf("corpus seeds skipped: %v", err)
			return nil
		}
		dir = filepath.Join(root, "..", "shared", "testdata")
	}
	rows, err := corpus.Load(dir)
	if err != nil {
		tb.Logf("corpus seeds skipped (synthetic seeds only): %v", err)
		return nil
	}
	var out [][]byte
	for _, r := range rows {
		if r.Category != "tiff" || r.Kind != "file" || strings.Contains(strings.ToUpper(r.License), "GPL") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, r.Path))
		if err != nil || fi.Size() > 256<<10 {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, r.Path)); err == nil {
			out = append(out, b)
		}
	}
	return out
}

func FuzzParseTIFF(f *testing.F) {
	f.Add(makeTIFF(3, 2, 2))
	f.Add(makeTIFF(13, 9, 6)[:200])
	f.Add([]byte("II*\x00\x08\x00\x00\x00"))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x00\x00\x03\x00\x00\x00\x01\x00\x05\x00\x00\x00\x00\x00\x00"))
	loop := makeTIFF(2, 2, 1)
	binary.LittleEndian.PutUint32(loop[8+2+6*12:], 8) // next IFD = itself
	f.Add(loop)
	for _, b := range corpusTIFFs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ti, err := parseTIFF(b)
		if err != nil {
			return
		}
		for i := range min(len(ti.pages), 3) {
			px, w, h, err := ti.plane(b, i)
			if err == nil && len(px) != w*h {
				t.Fatalf("page %d: %d pixels for %dx%d", i, len(px), w, h)
			}
		}
	})
}

// FuzzHandlers sends arbitrary paths, queries and validators to every
// generated-content handler; none may panic or answer 5xx.
func FuzzHandlers(f *testing.F) {
	c := testContent()
	idr, err := newIDR(c.IDR, "http://idr.invalid")
	if err != nil {
		f.Fatal(err)
	}
	epfl, err := newEPFLPage(c.EPFLFiles, "http://docs.invalid")
	if err != nil {
		f.Fatal(err)
	}
	empiar, err := newEMPIAR(c, "http://ftp.invalid")
	if err != nil {
		f.Fatal(err)
	}
	short, err := newShortLink("http://short.invalid")
	if err != nil {
		f.Fatal(err)
	}
	ebi, err := newEBITree(c, idr.images)
	if err != nil {
		f.Fatal(err)
	}
	handlers := []http.Handler{apacheIndex{ebi}, idr, epfl, newEPFLDocs(c.EPFLFiles), empiar, short, openOrganelle{}}
	for _, s := range []struct {
		h       byte
		p, q, v string
	}{
		{0, "/empiar/world_availability/11759/data/", "C=S;O=D", ""},
		{0, "/empiar/world_availability/11759/data/F57-8_test1.xml.gz", "", `"x-changed"`},
		{0, "/pub/../empiar//", "C=;O", "*"},
		{1, "/api/v0/m/images/", "dataset=10740&limit=1&offset=1", ""},
		{1, "/webgateway/render_image/9846137/3/0/", "c=1|85:153$FF0000&q=0.5", ""},
		{1, "/webgateway/render_image/9846137/", "c=1|9:1", ""},
		{1, "/api/v0/m/datasets/10740/images/", "limit=-1", ""},
		{2, EPFLJSPagePath, "", ""},
		{3, EPFLDocsDir + "training.tif", "", `W/"a", "b"`},
		{4, "/empiar/api/entry/EMPIAR-11759", "", ""},
		{5, "/hemibrain-ng", "", ""},
		{6, "/datasets/jrc_mus-nacc-2/", "", ""},
	} {
		f.Add(s.h, s.p, s.q, s.v)
	}
	f.Fuzz(func(t *testing.T, which byte, p, q, validator string) {
		h := handlers[int(which)%len(handlers)]
		fh := Faults(h, FaultConfig{ChangeETagAfter: 1})
		fh.Now, fh.Sleep = (&fakeClock{}).Now, (&fakeClock{}).Sleep
		for range 2 { // the second request sees "changed" content
			req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: p, RawQuery: q}, Header: http.Header{}, Host: "mirror.invalid"}
			req = req.WithContext(t.Context())
			if validator != "" {
				req.Header.Set("If-None-Match", validator)
				req.Header.Set("If-Range", validator)
				req.Header.Set("Range", "bytes=0-3")
			}
			w := httptest.NewRecorder()
			fh.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("handler %d %q?%q: %d %s", int(which)%len(handlers), p, q, w.Code, w.Body.Bytes())
			}
		}
	})
}
