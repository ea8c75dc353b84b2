package mirror

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStartCloseNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 2 {
		start := time.Now()
		m, err := Start(t.Context(), testContent(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second { // generous: the brief asks < 1 s on an idle machine
			t.Errorf("Start took %v", d)
		}
		tr := &http.Transport{}
		c := &http.Client{Transport: tr}
		for _, u := range []string{m.EMPIARFilesURL(), m.EPFLPageURL(false), m.IDR + "/api/", m.S3 + "/" + S3Bucket + "?list-type=2",
			m.GCS + "/storage/v1/b/" + GCSBucket + "/o", m.ShortLink + "/ng/", m.OpenOrganelleURL("jrc_mus-nacc-2"), m.EMPIAREntryURL()} {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", u, resp.StatusCode)
			}
		}
		m.Close()
		tr.CloseIdleConnections()
	}
	if n := settleGoroutines(before); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after Close\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestEBIIndex(t *testing.T) {
	m := startMirrors(t, Options{})
	c := newClient(t)
	r := get(t, c, m.EMPIARFilesURL()+"data/")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d type %q", r.status, r.header.Get("Content-Type"))
	}
	doc := parseHTML(t, r.body)
	if got := text(findAll(doc, "title")[0]); got != "Index of /empiar/world_availability/11759/data" {
		t.Errorf("title %q", got)
	}
	hs := hrefs(doc)
	wantSort := []string{"?C=N;O=D", "?C=M;O=A", "?C=S;O=A", "?C=D;O=A"}
	if !slices.Equal(hs[:4], wantSort) {
		t.Errorf("sort links %q, want %q", hs[:4], wantSort)
	}
	if hs[4] != "/empiar/world_availability/11759/" {
		t.Errorf("parent link %q", hs[4])
	}
	want := []string{"F57-8_test1.xml.gz", "F57-8_test1_3VBSED_slice_0000.dm3", "F57-8_test1_3VBSED_slice_0001.dm3",
		"F57-8_test1_3VBSED_slice_0002.dm3", "trakem2.1528909664283.981147357.856576865/"}
	if !slices.Equal(hs[5:], want) {
		t.Errorf("entries %q, want %q", hs[5:], want)
	}
	// Each row: name link, date, human size (directories "-").
	rows := findAll(doc, "tr")
	var sizes []string
	for _, row := range rows {
		tds := findAll(row, "td")
		if len(tds) == 5 {
			sizes = append(sizes, strings.TrimSpace(text(tds[3])))
			if d := text(tds[2]); d != "\u00a0" && !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d  $`).MatchString(d) {
				t.Errorf("date cell %q", d)
			}
		}
	}
	if want := []string{"-", "1.2K", "2.9K", "3.9K", "4.9K", "-"}; !slices.Equal(sizes, want) {
		t.Errorf("sizes %q, want %q", sizes, want)
	}
	// Sorting by size, descending; the header link for S flips to ascending.
	doc = parseHTML(t, get(t, c, m.EMPIARFilesURL()+"data/?C=S;O=D").body)
	hs = hrefs(doc)
	if hs[2] != "?C=S;O=A" || hs[0] != "?C=N;O=A" {
		t.Errorf("header links after C=S;O=D: %q", hs[:4])
	}
	if !slices.Equal(hs[5:9], []string{"F57-8_test1_3VBSED_slice_0002.dm3", "F57-8_test1_3VBSED_slice_0001.dm3", "F57-8_test1_3VBSED_slice_0000.dm3", "F57-8_test1.xml.gz"}) {
		t.Errorf("size order %q", hs[5:])
	}
	// Nested folders list too, a folder without its slash redirects.
	doc = parseHTML(t, get(t, c, m.EMPIARFilesURL()+trakem2+"trakem2.mipmaps/").body)
	if hs := hrefs(doc); !slices.Equal(hs[4:], []string{"/empiar/world_availability/11759/data/trakem2.1528909664283.981147357.856576865/", "0/", "1/"}) {
		t.Errorf("nested listing %q", hs[4:])
	}
	noFollow := &http.Client{Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r = get(t, noFollow, m.EMPIARFilesURL()+"data")
	if r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/empiar/world_availability/11759/data/" {
		t.Errorf("no-slash folder: %d Location %q", r.status, r.header.Get("Location"))
	}
	if r := get(t, c, m.EBIFTP+"/empiar/world_availability/11759/nothing"); r.status != 404 {
		t.Errorf("missing file: %d", r.status)
	}
	// The IDR tree.
	doc = parseHTML(t, get(t, c, m.IDRFileTreeURL()+"idr0086-miron-micrographs/20200610-ftp/experimentD/Miron_FIB-SEM/Miron_FIB-SEM_processed/").body)
	if hs := hrefs(doc); !slices.Equal(hs[5:], []string{"Figure_S3A_FIB-SEM_HeLa_G2_20x20x20nm_xy.tif", "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif", "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif"}) {
		t.Errorf("IDR listing %q", hs[5:])
	}
	doc = parseHTML(t, get(t, c, m.EBIFTP+"/").body)
	if hs := hrefs(doc); !slices.Equal(hs[4:], []string{"empiar/", "pub/"}) {
		t.Errorf("root listing %q (no parent row at the root)", hs[4:])
	}
}

func TestApacheSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{-1, "  - "}, {0, "  0 "}, {27, " 27 "}, {972, "972 "}, {973, "1.0K"}, {1200, "1.2K"}, {9 * 1024, "9.0K"},
		{10 * 1024, " 10K"}, {339 * 1024, "339K"}, {30396050, " 29M"}, {159_900_000, "152M"}, {1288490189, "1.2G"},
		{3353674357, "3.1G"},
	} {
		if got := apacheSize(tc.n); got != tc.want {
			t.Errorf("apacheSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// fileCase is one file served by one mirror, for the common HTTP checks.
type fileCase struct {
	name string
	url  string
	data []byte
}

func fileCases(m *Mirrors, c Content) []fileCase {
	dm3 := "data/F57-8_test1_3VBSED_slice_0001.dm3"
	shard := ngRoot + "8.0x8.0x8.0/0.shard"
	key := strings.TrimPrefix(shard, GCSBucket+"/")
	return []fileCase{
		{"ebi-empiar", m.EMPIARFilesURL() + dm3, c.EMPIARFiles[dm3]},
		{"ebi-idr", m.IDRFileTreeURL() + "idr0086-miron-micrographs/20200610-ftp/experimentD/Miron_FIB-SEM/Miron_FIB-SEM_processed/Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif", c.IDR[0].Data},
		{"epfl-docs", m.EPFLFileURL("training.tif"), c.EPFLFiles["training.tif"]},
		{"s3", m.S3 + "/" + zarrRoot + "recon-2/em/fibsem-int16/s0/0/0/0", c.S3[zarrRoot+"recon-2/em/fibsem-int16/s0/0/0/0"]},
		{"gcs-xml-path", m.GCS + "/" + shard, c.GCS[shard]},
		{"gcs-json-media", m.GCS + "/storage/v1/b/" + GCSBucket + "/o/" + url.PathEscape(key) + "?alt=media", c.GCS[shard]},
		{"gcs-download", m.GCS + "/download/storage/v1/b/" + GCSBucket + "/o/" + url.PathEscape(key) + "?alt=media", c.GCS[shard]},
	}
}

func TestFileServing(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{})
	c := newClient(t)
	for _, fc := range fileCases(m, content) {
		t.Run(fc.name, func(t *testing.T) {
			n := len(fc.data)
			h := do(t, c, http.MethodHead, fc.url)
			if h.status != 200 || h.header.Get("Content-Length") != strconv.Itoa(n) || h.header.Get("Accept-Ranges") != "bytes" || len(h.body) != 0 {
				t.Fatalf("HEAD: %d len=%q ranges=%q body=%d", h.status, h.header.Get("Content-Length"), h.header.Get("Accept-Ranges"), len(h.body))
			}
			etag := h.header.Get("ETag")
			if etag == "" {
				t.Fatal("HEAD: no ETag")
			}
			full := get(t, c, fc.url)
			if full.status != 200 || !bytes.Equal(full.body, fc.data) || full.header.Get("ETag") != etag {
				t.Fatalf("GET: %d, %d bytes, ETag %q vs %q", full.status, len(full.body), full.header.Get("ETag"), etag)
			}
			r := get(t, c, fc.url, "Range", "bytes=10-14")
			if r.status != 206 || !bytes.Equal(r.body, fc.data[10:15]) || r.header.Get("Content-Range") != fmt.Sprintf("bytes 10-14/%d", n) {
				t.Errorf("Range 10-14: %d %q body %v", r.status, r.header.Get("Content-Range"), r.body)
			}
			r = get(t, c, fc.url, "Range", fmt.Sprintf("bytes=%d-", n-7))
			if r.status != 206 || !bytes.Equal(r.body, fc.data[n-7:]) {
				t.Errorf("open Range: %d, %d bytes", r.status, len(r.body))
			}
			r = get(t, c, fc.url, "Range", fmt.Sprintf("bytes=%d-", n+100))
			if r.status != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("unsatisfiable Range: %d", r.status)
			}
			r = get(t, c, fc.url, "If-None-Match", etag)
			if r.status != http.StatusNotModified || len(r.body) != 0 {
				t.Errorf("If-None-Match current: %d, %d bytes", r.status, len(r.body))
			}
			r = get(t, c, fc.url, "If-None-Match", `"other"`)
			if r.status != 200 || len(r.body) != n {
				t.Errorf("If-None-Match other: %d", r.status)
			}
		})
	}
}

func TestEPFL(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{})
	c := newClient(t)
	doc := parseHTML(t, get(t, c, m.EPFLPageURL(false)).body)
	var article []string
	var articleText string
	for _, a := range findAll(doc, "article") {
		if id, _ := attr(a, "id"); id == "post-2138" {
			article = hrefs(a)
			articleText = text(a)
			if cls, _ := attr(a, "class"); !strings.Contains(cls, "post-2138") {
				t.Errorf("article class %q", cls)
			}
		}
	}
	if len(article) != 10 {
		t.Fatalf("article#post-2138 has %d links, want 10: %q", len(article), article)
	}
	raw, enc := 0, 0
	for _, h := range article {
		if !strings.HasPrefix(h, m.EPFLDocs+"/groups/c/cv/cvlab-unit/www/data/") {
			t.Errorf("link %q not on the docs mirror", h)
		}
		switch {
		case strings.Contains(h, "/data/ ElectronMicroscopy_Hippocampus/"):
			raw++
		case strings.Contains(h, "/data/%20ElectronMicroscopy_Hippocampus/"):
			enc++
		}
	}
	if raw != 9 || enc != 1 {
		t.Errorf("%d raw-space and %d %%20 links, want 9 and 1", raw, enc)
	}
	if !strings.HasSuffix(article[3], "/training.tif") || !strings.HasSuffix(article[0], "/volumedata.tif") {
		t.Errorf("order or duplicates lost: %q", article)
	}
	for _, s := range []string{"corresponding to a 1065x2048x1536 volume", "approximately 5x5x5nm"} {
		if !strings.Contains(articleText, s) {
			t.Errorf("description lacks %q", s)
		}
	}
	// Every link, raw space and all, reaches its file.
	for _, h := range article {
		u, err := url.Parse(h)
		if err != nil {
			t.Fatalf("parse %q: %v", h, err)
		}
		r := get(t, c, u.String())
		name := h[strings.LastIndex(h, "/")+1:]
		if r.status != 200 || !bytes.Equal(r.body, content.EPFLFiles[name]) {
			t.Errorf("GET %q: %d, %d bytes", h, r.status, len(r.body))
		}
	}
	// The docs host does not list folders.
	if r := get(t, c, m.EPFLDocs+"/groups/c/cv/cvlab-unit/www/data/%20ElectronMicroscopy_Hippocampus/"); r.status != http.StatusForbidden {
		t.Errorf("folder listing: %d, want 403", r.status)
	}
	if r := get(t, c, m.EPFLFileURL("nope.tif")); r.status != 404 {
		t.Errorf("missing file: %d", r.status)
	}

	// The JS variant: no file links in the static HTML, a script that makes them.
	body := get(t, c, m.EPFLPageURL(true)).body
	doc = parseHTML(t, body)
	for _, h := range hrefs(doc) {
		if strings.Contains(h, ".tif") {
			t.Errorf("static JS page carries %q", h)
		}
	}
	if bytes.Contains(body, []byte("ElectronMicroscopy_Hippocampus")) {
		t.Error("static JS page text names the files")
	}
	scripts := findAll(doc, "script")
	if len(scripts) != 1 {
		t.Fatalf("%d scripts", len(scripts))
	}
	mt := regexp.MustCompile(`atob\("([A-Za-z0-9+/=]+)"\)`).FindStringSubmatch(text(scripts[0]))
	if mt == nil {
		t.Fatal("script has no atob payload")
	}
	dec, _ := base64.StdEncoding.DecodeString(mt[1])
	var links []string
	if err := json.Unmarshal(dec, &links); err != nil || !slices.Equal(links, article) {
		t.Errorf("script links %q (err %v), want the static page's", links, err)
	}
}

func TestIDR(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{})
	c := newClient(t)
	r := get(t, c, m.IDR+"/webclient/?experimenter=-1")
	u, _ := url.Parse(m.IDR)
	var sid string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "sessionid" {
			sid = ck.Value
		}
	}
	if r.status != 200 || sid == "" {
		t.Fatalf("session: %d sessionid %q", r.status, sid)
	}
	var api struct {
		Data []map[string]string `json:"data"`
	}
	decode(t, get(t, c, m.IDR+"/api/").body, &api)
	if len(api.Data) != 1 || api.Data[0]["url:base"] != m.IDR+"/api/v0/" {
		t.Errorf("/api/: %+v", api)
	}
	var v0 map[string]string
	decode(t, get(t, c, m.IDR+"/api/v0/").body, &v0)
	if v0["url:images"] != m.IDR+"/api/v0/m/images/" || v0["url:schema"] != omeSchema {
		t.Errorf("/api/v0/: %v", v0)
	}

	// Single image: an object, not a list; sizes from the content or the TIFF.
	var one struct {
		Data struct {
			ID     int64  `json:"@id"`
			Type   string `json:"@type"`
			Name   string `json:"Name"`
			Pixels struct {
				SizeX, SizeY, SizeZ, SizeC, SizeT int
				PhysicalSizeX                     *struct {
					Value  float64
					Unit   string
					Symbol string
				}
				PhysicalSizeZ *struct{ Value float64 }
				Type          struct{ Value string }
				Channels      []map[string]any
			}
		} `json:"data"`
	}
	decode(t, get(t, c, m.IDR+"/api/v0/m/images/9846137/").body, &one)
	p := one.Data.Pixels
	if one.Data.ID != 9846137 || one.Data.Name != "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif" || !strings.HasSuffix(one.Data.Type, "#Image") ||
		p.SizeX != 13 || p.SizeY != 9 || p.SizeZ != 6 || p.SizeC != 1 || p.SizeT != 1 || p.Type.Value != "uint8" || len(p.Channels) != 1 ||
		p.PhysicalSizeX == nil || p.PhysicalSizeX.Value != 0.02 || p.PhysicalSizeX.Unit != "MICROMETER" || p.PhysicalSizeX.Symbol != "µm" {
		t.Errorf("image JSON: %+v", one.Data)
	}
	// Sizes left zero come from the TIFF; unknown physical sizes are omitted.
	one.Data.Pixels.PhysicalSizeX, one.Data.Pixels.PhysicalSizeZ = nil, nil
	decode(t, get(t, c, m.IDR+"/api/v0/m/images/9846200/").body, &one)
	if one.Data.Pixels.SizeX != 4 || one.Data.Pixels.SizeZ != 2 || one.Data.Pixels.PhysicalSizeZ != nil {
		t.Errorf("image from TIFF: %+v", one.Data.Pixels)
	}
	if r := get(t, c, m.IDR+"/api/v0/m/images/1/"); r.status != 404 {
		t.Errorf("missing image: %d", r.status)
	}

	// Pagination on both list routes.
	type page struct {
		Data []struct {
			ID   int64  `json:"@id"`
			Name string `json:"Name"`
		} `json:"data"`
		Meta struct{ TotalCount, Limit, Offset, MaxLimit int } `json:"meta"`
	}
	for _, route := range []string{"/api/v0/m/images/?dataset=10740&", "/api/v0/m/datasets/10740/images/?"} {
		var ids []int64
		for off := 0; off < 5; off++ {
			var pg page
			decode(t, get(t, c, fmt.Sprintf("%s%slimit=1&offset=%d", m.IDR, route, off)).body, &pg)
			if pg.Meta.TotalCount != 2 || pg.Meta.Limit != 1 || pg.Meta.Offset != off || pg.Meta.MaxLimit != 500 {
				t.Errorf("%s offset %d meta %+v", route, off, pg.Meta)
			}
			if len(pg.Data) == 0 {
				break
			}
			ids = append(ids, pg.Data[0].ID)
		}
		if !slices.Equal(ids, []int64{9846137, 9846138}) {
			t.Errorf("%s paged ids %v", route, ids)
		}
	}
	var pg page
	decode(t, get(t, c, m.IDR+"/api/v0/m/images/?limit=9999").body, &pg)
	if pg.Meta.Limit != 500 || pg.Meta.TotalCount != 3 {
		t.Errorf("limit clamp / all images: %+v", pg.Meta)
	}
	var ds struct {
		Data map[string]any `json:"data"`
	}
	decode(t, get(t, c, m.IDR+"/api/v0/m/datasets/10740/").body, &ds)
	if ds.Data["Name"] != "U2OS_chromatin" || ds.Data["url:images"] != m.IDR+"/api/v0/m/datasets/10740/images/" {
		t.Errorf("dataset: %v", ds.Data)
	}

	// imgData has exactly the keys of the real 9762957 body.
	var tmpl map[string]any
	if err := loadTemplate("idr-webclient-imgData-9762957.json", &tmpl); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"/webclient/imgData/9846137/", "/webgateway/imgData/9846137/"} {
		var got map[string]any
		decode(t, get(t, c, m.IDR+route).body, &got)
		if k1, k2 := keys(got), keys(tmpl); !slices.Equal(k1, k2) {
			t.Errorf("%s keys %q, want %q", route, k1, k2)
		}
		if k1, k2 := keys(got["meta"].(map[string]any)), keys(tmpl["meta"].(map[string]any)); !slices.Equal(k1, k2) {
			t.Errorf("%s meta keys %q, want %q", route, k1, k2)
		}
		meta := got["meta"].(map[string]any)
		size := got["size"].(map[string]any)
		ps := got["pixel_size"].(map[string]any)
		if meta["projectName"] != "idr0086-miron-micrographs/experimentD" || meta["pixelsType"] != "uint8" || meta["imageAuthor"] != "Public data" ||
			size["width"] != 13.0 || size["height"] != 9.0 || size["z"] != 6.0 || size["c"] != 1.0 || ps["x"] != 0.02 || ps["z"] != 0.02 {
			t.Errorf("%s values: meta %v size %v pixel_size %v", route, meta, size, ps)
		}
	}

	// original_file_paths → the FTP mirror path serves the same bytes.
	var ofp struct {
		Repo    []string
		Client  []string
		Fileset struct{ ID int64 } `json:"fileset"`
	}
	decode(t, get(t, c, m.IDR+"/webgateway/original_file_paths/9846137/").body, &ofp)
	if len(ofp.Client) != 1 || len(ofp.Repo) != 1 || ofp.Fileset.ID == 0 || !strings.HasPrefix(ofp.Client[0], idr0086Processed) {
		t.Fatalf("original_file_paths: %+v", ofp)
	}
	ftp := m.IDRFileTreeURL() + strings.TrimPrefix(ofp.Client[0], "/uod/idr/filesets/")
	if r := get(t, c, ftp); r.status != 200 || !bytes.Equal(r.body, content.IDR[0].Data) {
		t.Errorf("FTP copy of the client path: %d", r.status)
	}

	// render_image: a JPEG of the plane, close to the TIFF values.
	r = get(t, c, m.IDR+"/webgateway/render_image/9846137/4/0/")
	if r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("render_image: %d %q", r.status, r.header.Get("Content-Type"))
	}
	img, err := jpeg.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 13 || b.Dy() != 9 {
		t.Fatalf("render size %v", b)
	}
	var diff, nonzero int
	for y := range 9 {
		for x := range 13 {
			g, _, _, _ := img.At(x, y).RGBA()
			want := int(byte(x*7 + y*3 + 4*11))
			diff += abs(int(g>>8) - want)
			if g != 0 {
				nonzero++
			}
		}
	}
	if nonzero == 0 || diff/(9*13) > 24 {
		t.Errorf("rendered plane differs from z=4: mean abs diff %d", diff/(9*13))
	}
	if r := get(t, c, m.IDR+"/webgateway/render_image/9846137/6/0/"); r.status != 400 {
		t.Errorf("z out of range: %d", r.status)
	}
	doc := parseHTML(t, get(t, c, m.IDRImageURL(9846137, 10740)).body)
	if got := text(findAll(doc, "title")[0]); got != "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif" {
		t.Errorf("img_detail title %q", got)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %.200s: %v", b, err)
	}
}

func TestEMPIAR(t *testing.T) {
	m := startMirrors(t, Options{})
	c := newClient(t)
	var first []byte
	for _, id := range []string{"11759", "EMPIAR-11759", "11759/"} {
		r := get(t, c, m.EMPIAR+"/empiar/api/entry/"+strings.TrimSuffix(id, "/")+"/")
		if r.status != 200 {
			t.Fatalf("entry %s: %d", id, r.status)
		}
		if first == nil {
			first = r.body
		} else if !bytes.Equal(first, r.body) {
			t.Errorf("entry %s differs", id)
		}
	}
	var top map[string]map[string]json.RawMessage
	decode(t, first, &top)
	e, ok := top["EMPIAR-11759"]
	if len(top) != 1 || !ok {
		t.Fatalf("keys %v", top)
	}
	var sets []map[string]json.RawMessage
	decode(t, e["imagesets"], &sets)
	for k, want := range map[string]string{"image_width": `"5628"`, "image_height": `"5632"`, "pixel_width": "80.0", "num_images_or_tilt_series": "3", "directory": `"data"`} {
		if got := string(sets[0][k]); got != want {
			t.Errorf("imagesets[0].%s = %s, want %s", k, got, want)
		}
	}
	if string(e["dataset_size"]) != `"13.9 kB"` || string(e["title"]) != `"Developing retina in zebrafish 55 hpf larval eye."` {
		t.Errorf("dataset_size %s title %s", e["dataset_size"], e["title"])
	}
	if r := get(t, c, m.EMPIAR+"/empiar/api/entry/99999/"); r.status != 404 {
		t.Errorf("unknown entry: %d", r.status)
	}
	doc := parseHTML(t, get(t, c, m.EMPIAREntryURL()).body)
	var ftp, csrf string
	for _, n := range findAll(doc, "") {
		if v, ok := attr(n, "public-archive-ftp-url"); ok {
			ftp = v
		}
		if v, ok := attr(n, "csrf-token"); ok {
			csrf = v
		}
	}
	if ftp != strings.TrimSuffix(m.EMPIARFilesURL(), "/") || len(csrf) < 32 {
		t.Errorf("entry page: ftp %q csrf %q", ftp, csrf)
	}
	// The harvesters' rule: the attribute + "/" lists the entry's files.
	if hs := hrefs(parseHTML(t, get(t, c, ftp+"/").body)); !slices.Contains(hs, "data/") {
		t.Errorf("ftp url listing %q", hs)
	}
}

func TestEMPIAREntryOverride(t *testing.T) {
	ct := testContent()
	ct.EMPIAREntry = []byte(`{"EMPIAR-11759":{"title":"given"}}`)
	m, err := Start(t.Context(), ct, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := newClient(t)
	if r := get(t, c, m.EMPIAR+"/empiar/api/entry/11759/"); !bytes.Equal(r.body, ct.EMPIAREntry) {
		t.Errorf("override not served: %s", r.body)
	}
}

// s3List is the ListObjectsV2 result.
type s3List struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	KeyCount              int
	IsTruncated           bool
	ContinuationToken     string
	NextContinuationToken string
	Contents              []struct{ Key string }
	CommonPrefixes        []struct{ Prefix string }
}

func TestS3ListPaging(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{})
	c := newClient(t)
	var want []string
	for k := range content.S3 {
		want = append(want, strings.TrimPrefix(k, S3Bucket+"/"))
	}
	sort.Strings(want)
	var got []string
	token := ""
	for range 20 {
		q := url.Values{"list-type": {"2"}, "max-keys": {"1"}, "prefix": {"jrc_mus-nacc-2/"}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		r := get(t, c, m.S3+"/"+S3Bucket+"?"+q.Encode())
		var l s3List
		if err := xml.Unmarshal(r.body, &l); err != nil || r.status != 200 {
			t.Fatalf("%d %v: %s", r.status, err, r.body)
		}
		if l.ContinuationToken != token || len(l.Contents) != 1 || l.KeyCount != 1 {
			t.Errorf("page after %q: %+v", token, l)
		}
		for _, ct := range l.Contents {
			got = append(got, ct.Key)
		}
		if !l.IsTruncated {
			break
		}
		token = l.NextContinuationToken
		if token == "" {
			t.Fatal("truncated without NextContinuationToken")
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged keys %q, want %q", got, want)
	}
	// Delimiter listing: folders as CommonPrefixes.
	r := get(t, c, m.S3+"/"+S3Bucket+"?list-type=2&delimiter=%2F&prefix=jrc_mus-nacc-2%2Fjrc_mus-nacc-2.zarr%2F")
	var l s3List
	if err := xml.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Contents) != 1 || l.Contents[0].Key != "jrc_mus-nacc-2/jrc_mus-nacc-2.zarr/.zgroup" ||
		len(l.CommonPrefixes) != 1 || l.CommonPrefixes[0].Prefix != "jrc_mus-nacc-2/jrc_mus-nacc-2.zarr/recon-2/" {
		t.Errorf("delimiter listing %+v", l)
	}
}

func TestGCSListPaging(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{})
	c := newClient(t)
	var want []string
	for k := range content.GCS {
		want = append(want, strings.TrimPrefix(k, GCSBucket+"/"))
	}
	sort.Strings(want)
	var got []string
	token := ""
	for range 20 {
		q := url.Values{"maxResults": {"1"}, "prefix": {"emdata/"}, "pageToken": {token}, "prettyPrint": {"false"}}
		r := get(t, c, m.GCS+"/storage/v1/b/"+GCSBucket+"/o?"+q.Encode())
		var l struct {
			Kind          string
			NextPageToken string
			Items         []struct {
				Name, Bucket, Size, Md5Hash, Crc32c string
			}
		}
		decode(t, r.body, &l)
		if len(l.Items) != 1 || l.Kind != "storage#objects" {
			t.Fatalf("page after %q: %+v", token, l)
		}
		it := l.Items[0]
		if it.Bucket != GCSBucket || it.Size != strconv.Itoa(len(content.GCS[GCSBucket+"/"+it.Name])) || it.Md5Hash == "" {
			t.Errorf("item %+v", it)
		}
		got = append(got, it.Name)
		if l.NextPageToken == "" {
			break
		}
		token = l.NextPageToken
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged names %q, want %q", got, want)
	}
	// Delimiter listing gives prefixes, also with every parameter the real
	// client sends (wire-samples/gcs-exchanges.http.txt).
	for _, q := range []string{
		"delimiter=%2F&prefix=emdata%2Fclahe_yz%2Fjpeg%2F",
		"alt=json&delimiter=%2F&endOffset=&includeFoldersAsPrefixes=false&includeTrailingDelimiter=false&matchGlob=&maxResults=1000&pageToken=&prefix=emdata%2Fclahe_yz%2Fjpeg%2F&prettyPrint=false&projection=full&startOffset=&versions=false",
	} {
		var l struct {
			Prefixes []string
			Items    []struct{ Name string }
		}
		decode(t, get(t, c, m.GCS+"/storage/v1/b/"+GCSBucket+"/o?"+q).body, &l)
		if !slices.Equal(l.Prefixes, []string{"emdata/clahe_yz/jpeg/8.0x8.0x8.0/"}) || len(l.Items) != 1 || l.Items[0].Name != "emdata/clahe_yz/jpeg/info" {
			t.Errorf("?%s: %+v", q, l)
		}
	}
	// Ranged read headers as the real service sends them.
	r := get(t, c, m.GCS+"/"+ngRoot+"info", "Range", "bytes=2-5")
	if r.status != 206 || !strings.Contains(r.header.Get("X-Goog-Hash"), "crc32c=") || r.header.Get("X-Goog-Stored-Content-Encoding") != "identity" {
		t.Errorf("GCS ranged read headers: %d %v", r.status, r.header)
	}
}

func TestShortLink(t *testing.T) {
	m := startMirrors(t, Options{})
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := get(t, c, m.ShortLinkURL())
	loc := r.header.Get("Location")
	if r.status != http.StatusMovedPermanently || !strings.HasPrefix(loc, m.ShortLink+"/ng/#!") {
		t.Fatalf("%d Location %q", r.status, loc)
	}
	_, frag, _ := strings.Cut(loc, "#!")
	if !strings.Contains(frag, "#uicontrol") {
		t.Error("fragment lost the literal '#' of the shader")
	}
	dec, err := url.PathUnescape(frag)
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Dimensions map[string][]any
		Layout     string
		Layers     []struct {
			Type   string
			Source any
			Name   string
		}
	}
	decode(t, []byte(dec), &state)
	if state.Layout != "4panel" || len(state.Layers) != 6 || state.Layers[0].Type != "image" ||
		state.Layers[0].Source != "precomputed://gs://neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg" || state.Dimensions["x"][0] != 8e-9 {
		t.Errorf("state %+v", state)
	}
	// Following it lands on the viewer page.
	c.CheckRedirect = nil
	if r := get(t, c, m.ShortLinkURL()); r.status != 200 || !bytes.Contains(r.body, []byte("neuroglancer")) {
		t.Errorf("followed: %d", r.status)
	}
}

func TestOpenOrganelle(t *testing.T) {
	m := startMirrors(t, Options{})
	c := newClient(t)
	doc := parseHTML(t, get(t, c, m.OpenOrganelleURL("jrc_mus-nacc-2")).body)
	if got := text(findAll(doc, "title")[0]); got != "OpenOrganelle: jrc_mus-nacc-2" {
		t.Errorf("title %q", got)
	}
	if r := get(t, c, m.OpenOrganelle+"/other"); r.status != 404 {
		t.Errorf("other path: %d", r.status)
	}
}

func TestCounter(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{})
	c := newClient(t)
	cnt := m.Counters[NameEPFLDocs]
	u := m.EPFLFileURL("testing.tif")
	n := int64(len(content.EPFLFiles["testing.tif"]))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(u)
			if err != nil {
				t.Error(err)
				return
			}
			buf := new(bytes.Buffer)
			buf.ReadFrom(resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	get(t, c, u, "Range", "bytes=0-9")
	path := EPFLDocsDir + "testing.tif"
	if cnt.Requests() != 9 || cnt.Bytes() != 8*n+10 {
		t.Errorf("requests %d bytes %d, want 9 and %d", cnt.Requests(), cnt.Bytes(), 8*n+10)
	}
	if pc := cnt.Path(path); pc.Requests != 9 || pc.Bytes != 8*n+10 {
		t.Errorf("path %q: %+v (paths %q)", path, pc, cnt.PathNames())
	}
	if m.Counters[NameIDR].Requests() != 0 {
		t.Error("another server's counter moved")
	}
	cnt.Reset()
	if cnt.Requests() != 0 || cnt.Bytes() != 0 || len(cnt.Paths()) != 0 {
		t.Error("Reset left counts")
	}
}

func TestMirrorFaults(t *testing.T) {
	content := testContent()
	m := startMirrors(t, Options{Faults: &FaultConfig{Status429Every: 2, RetryAfter: 1500 * time.Millisecond}})
	c := newClient(t)
	u := m.S3 + "/" + zarrRoot + ".zgroup"
	if r := get(t, c, u); r.status != 200 || !bytes.Equal(r.body, content.S3[zarrRoot+".zgroup"]) {
		t.Fatalf("first: %d", r.status)
	}
	r := get(t, c, u)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" {
		t.Errorf("second: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	// Per-server control: truncate every GCS read from now on.
	m.Faults[NameGCS].Set(FaultConfig{TruncateEvery: 1})
	shard := ngRoot + "8.0x8.0x8.0/0.shard"
	rr := do(t, c, http.MethodGet, m.GCS+"/"+shard)
	if rr.err == nil || !errors.Is(rr.err, io.ErrUnexpectedEOF) || len(rr.body) >= len(content.GCS[shard]) || rr.header.Get("Content-Length") != strconv.Itoa(len(content.GCS[shard])) {
		t.Errorf("truncated GCS read: err %v, %d of %s bytes", rr.err, len(rr.body), rr.header.Get("Content-Length"))
	}
	if got := m.Counters[NameGCS].Path("/" + shard).Bytes; got != int64(len(rr.body)) {
		t.Errorf("counter saw %d bytes, client got %d", got, len(rr.body))
	}
	m.Faults[NameGCS].Set(FaultConfig{})
	if r := get(t, c, m.GCS+"/"+shard); r.status != 200 || !bytes.Equal(r.body, content.GCS[shard]) {
		t.Errorf("after clearing faults: %d", r.status)
	}
}
