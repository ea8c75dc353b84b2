package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/manifest"
)

// tree is a tiny Apache-like server: directories answer fancy indexes built
// from their page text, files are served with HEAD/Range/ETag.
type tree struct {
	pages map[string]string // "/dir/" → index HTML
	files map[string][]byte // "/dir/file" → content
	heads atomic.Int64
	mu    sync.Mutex
	seen  map[string]bool // paths requested
}

func (tr *tree) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		tr.heads.Add(1)
	}
	tr.mu.Lock()
	if tr.seen == nil {
		tr.seen = map[string]bool{}
	}
	tr.seen[r.URL.Path] = true
	tr.mu.Unlock()
	if p, ok := tr.pages[r.URL.Path]; ok {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, p)
		return
	}
	if b, ok := tr.files[r.URL.Path]; ok {
		w.Header().Set("ETag", fmt.Sprintf(`"%x-%d"`, len(r.URL.Path), len(b)))
		http.ServeContent(w, r, r.URL.Path, time.Unix(1700000000, 0), bytes.NewReader(b))
		return
	}
	http.NotFound(w, r)
}

func objPaths(objs []Object) []string {
	var ps []string
	for _, o := range objs {
		ps = append(ps, o.Path)
	}
	sort.Strings(ps)
	return ps
}

func TestListingWalkHostile(t *testing.T) {
	tr := &tree{
		pages: map[string]string{
			"/d/": apacheIndex("/d/", [][3]string{
				{"a.dm3", "a.dm3", "1K"},
				{"a.dm3", "a.dm3 (again)", "1K"},
				{"notes.txt", "notes.txt", "1K"},
				{"sub/", "sub/", "-"},
				{"trakem2.123/", "trakem2.123/", "-"},
				{"loop/", "loop/", "-"},
				{"../", "up", "-"},
				{"/etc/", "abs", "-"},
				{"http://other.example/d/x.dm3", "other host", "1K"},
				{"..%2Fsecret.dm3", "encoded parent", "1K"},
				{"with%20space.dm3", "with space.dm3", "5"},
				{"big.dm3", "big.dm3", "4.5M"},
				{"nosize.dm3", "nosize.dm3", "-"},
			}),
			"/d/sub/":         apacheIndex("/d/sub/", [][3]string{{"b.dm3", "b.dm3", "3"}, {"../../x.dm3", "escape", "1"}}),
			"/d/trakem2.123/": apacheIndex("/d/trakem2.123/", [][3]string{{"t.dm3", "t.dm3", "1"}}),
		},
		files: map[string][]byte{
			"/d/a.dm3":              []byte("aaaa"),
			"/d/notes.txt":          []byte("n"),
			"/d/sub/b.dm3":          []byte("bbb"),
			"/d/with space.dm3":     []byte("wwwww"),
			"/d/big.dm3":            []byte("a big file that is small today"),
			"/d/nosize.dm3":         []byte("ns"),
			"/d/trakem2.123/t.dm3":  []byte("t"),
			"/d/loop/loop.dm3":      []byte("l"),
			"/d/loop/loop/loop.dm3": []byte("l"),
		},
	}
	// loop/ lists itself forever: depth bounds the walk.
	loop := apacheIndex("/x/", [][3]string{{"loop/", "loop/", "-"}, {"loop.dm3", "loop.dm3", "1"}})
	for p := "/d/loop/"; len(p) < 200; p += "loop/" {
		tr.pages[p] = loop
	}
	srv := httptest.NewServer(tr)
	defer srv.Close()
	env := &Env{HTTP: srv.Client()}
	take := manifest.Take{Include: []string{"*.dm3"}, Exclude: []string{"trakem2*/**"}}

	l := &Listing{MaxDepth: 2}
	objs, err := l.List(context.Background(), env, srv.URL+"/d", take)
	if err != nil {
		t.Fatal(err)
	}
	got := objPaths(objs)
	want := []string{"a.dm3", "big.dm3", "loop/loop.dm3", "loop/loop/loop.dm3", "nosize.dm3", "sub/b.dm3", "with space.dm3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("paths = %q, want %q", got, want)
	}
	// Small listed sizes stay hints (no HEAD: the download learns the exact
	// size); large or missing ones are replaced by a HEAD's answer.
	heads := 0
	for _, o := range objs {
		switch o.Path {
		case "with space.dm3":
			if o.Size != -1 || o.SizeHint != 5 || o.SourceURL != srv.URL+"/d/with%20space.dm3" || o.ETag != "" {
				t.Errorf("object %+v", o)
			}
		case "sub/b.dm3":
			if o.Size != -1 || o.SizeHint != 3 || o.EstimatedSize() != 3 {
				t.Errorf("sub/b.dm3: size %d hint %d", o.Size, o.SizeHint)
			}
		case "big.dm3", "nosize.dm3":
			heads++
			if o.Size != int64(len(tr.files["/d/"+o.Path])) || o.ETag == "" || o.SizeHint != 0 {
				t.Errorf("%s: size %d hint %d etag %q (HEAD must replace the hint)", o.Path, o.Size, o.SizeHint, o.ETag)
			}
		}
		if o.StoreURL != srv.URL+"/d/" || o.Key != o.Path {
			t.Errorf("object %s: store %s key %s", o.Path, o.StoreURL, o.Key)
		}
	}
	if n := tr.heads.Load(); n != int64(heads) || heads != 2 {
		t.Errorf("%d HEADs, want one for each of the %d large or unsized objects", n, heads)
	}
	// The pruned trakem2 folder was never fetched, so an excluded subtree costs nothing.
	if tr.seen["/d/trakem2.123/"] || tr.seen["/d/loop/loop/loop/"] || tr.seen["/etc/"] {
		t.Errorf("fetched a pruned, too deep or foreign directory: %v", tr.seen)
	}
	res, err := NewResolvers(l).Resolve(context.Background(), env, manifest.Dataset{Name: "x", URL: srv.URL + "/d/", Kind: manifest.KindListing, Take: take})
	if err != nil || len(res.Objects) != len(objs) {
		t.Fatalf("Resolve: %v", err)
	}

	// Entry cap: a huge listing is an error, not a partial dataset.
	_, err = (&Listing{MaxEntries: 5}).List(context.Background(), env, srv.URL+"/d/", manifest.Take{})
	if err == nil || !strings.Contains(err.Error(), "more than 5 entries") {
		t.Errorf("entry cap: %v", err)
	}
	// Nothing selected.
	_, err = l.List(context.Background(), env, srv.URL+"/d/", manifest.Take{Include: []string{"*.mrc"}})
	if !errors.Is(err, ErrNoObjects) {
		t.Errorf("empty selection: %v", err)
	}
	// A large file the index names but the server lacks fails loudly (a small
	// one fails its download, see transfer).
	tr.pages["/e/"] = apacheIndex("/e/", [][3]string{{"gone.dm3", "gone.dm3", "12M"}})
	if _, err := l.List(context.Background(), env, srv.URL+"/e/", manifest.Take{}); err == nil || !strings.Contains(err.Error(), "gone.dm3") {
		t.Errorf("missing file: %v", err)
	}
}

func TestListingHuge(t *testing.T) {
	var b strings.Builder
	b.WriteString("<pre>")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "<a href=\"f%05d.tif\">f</a> 1K\n", i)
	}
	tr := &tree{pages: map[string]string{"/big/": b.String()}}
	srv := httptest.NewServer(tr)
	defer srv.Close()
	_, err := (&Listing{MaxEntries: 1000}).List(context.Background(), &Env{HTTP: srv.Client()}, srv.URL+"/big/", manifest.Take{})
	if err == nil || !strings.Contains(err.Error(), "more than 1000") {
		t.Errorf("huge listing: %v", err)
	}
	if n := tr.heads.Load(); n != 0 {
		t.Errorf("%d HEADs sent for a rejected listing", n)
	}
}

// jsPage is a page whose links exist only after its script runs.
func jsPage(fileHost string) string {
	return `<html><head><title>JS page</title></head><body><article id="post-1"><p>The resolution of each voxel is approximately 5x5x5nm.</p><ul id="l"></ul></article>
<script>
var files = ["volumedata.tif", "training.tif", "volumedata.tif"];
var ul = document.getElementById("l");
files.forEach(function (f) {
  var li = document.createElement("li"), a = document.createElement("a");
  a.href = "` + fileHost + `/www/data/ Dir/" + f; a.textContent = f; li.appendChild(a); ul.appendChild(li);
});
</script></body></html>`
}

func jsServer() *httptest.Server {
	tr := &tree{pages: map[string]string{}, files: map[string][]byte{
		"/www/data/ Dir/volumedata.tif": bytes.Repeat([]byte{1}, 100),
		"/www/data/ Dir/training.tif":   bytes.Repeat([]byte{2}, 50),
	}}
	srv := httptest.NewServer(tr)
	tr.pages["/page/"] = jsPage(srv.URL)
	return srv
}

func TestWebPageRenderHook(t *testing.T) {
	srv := jsServer()
	defer srv.Close()
	env := &Env{HTTP: srv.Client()}
	ds := manifest.Dataset{Name: "js", URL: srv.URL + "/page/", Kind: manifest.KindWebPage}
	rendered := 0
	wp := &WebPage{Render: func(ctx context.Context, env *Env, u string) ([]byte, error) {
		rendered++
		links := `<a href="` + srv.URL + `/www/data/ Dir/volumedata.tif">v</a><a href="` + srv.URL + `/www/data/%20Dir/training.tif">t</a>`
		return []byte(strings.Replace(jsPage(srv.URL), `<ul id="l"></ul>`, "<ul>"+links+"</ul>", 1)), nil
	}}
	res, err := NewResolvers(wp).Resolve(context.Background(), env, ds)
	if err != nil {
		t.Fatal(err)
	}
	if rendered != 1 || len(res.Objects) != 2 || res.Objects[0].Size != 100 || res.Objects[1].Size != 50 {
		t.Errorf("rendered %d, objects %+v", rendered, res.Objects)
	}
	// A renderer that fails (no browser) makes a clear error.
	wp.Render = func(context.Context, *Env, string) ([]byte, error) { return nil, ErrNoChromium }
	if _, err := NewResolvers(wp).Resolve(context.Background(), env, ds); !errors.Is(err, ErrNoChromium) || !strings.Contains(err.Error(), "chromium") {
		t.Errorf("no browser: %v", err)
	}
}

func TestChromiumMissing(t *testing.T) {
	_, err := ChromiumPath(&Env{Chromium: "/nonexistent/chromium-xyz"})
	if !errors.Is(err, ErrNoChromium) || !strings.Contains(err.Error(), "apt-get install chromium") {
		t.Errorf("err = %v", err)
	}
}

// fakeOMERO serves n images in dataset 7 with a server-side page cap of 2,
// so the resolver must follow offsets; failPaths makes original_file_paths fail.
func fakeOMERO(t *testing.T, n int, failPaths bool, files *tree) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/webclient/", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "anon", Path: "/"})
		fmt.Fprint(w, "<html>webclient</html>")
	})
	mux.HandleFunc("/api/v0/m/images/", func(w http.ResponseWriter, r *http.Request) {
		if id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v0/m/images/"), "/"); id != "" {
			// The documentation's list form of a single object.
			fmt.Fprintf(w, `{"data": [{"@id": %s, "Name": "img%s.tif"}]}`, id, id)
			return
		}
		var off, lim int
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		fmt.Sscan(r.URL.Query().Get("limit"), &lim)
		lim = min(lim, 2)
		var items []string
		for i := off; i < n && i < off+lim; i++ {
			items = append(items, fmt.Sprintf(`{"@id": %d, "Name": "img%d.tif", "Pixels": {"SizeX": 3, "SizeY": 2, "SizeZ": 1, "PhysicalSizeX": {"Value": 4, "Unit": "NANOMETER"}, "PhysicalSizeY": {"Value": 4, "Unit": "NANOMETER"}, "PhysicalSizeZ": {"Value": 0.05, "Unit": "MICROMETER"}, "Type": {"value": "uint16"}}}`, 100+i, 100+i))
		}
		fmt.Fprintf(w, `{"data": [%s], "meta": {"totalCount": %d, "limit": %d, "offset": %d, "maxLimit": 2}}`, strings.Join(items, ","), n, lim, off)
	})
	mux.HandleFunc("/webgateway/original_file_paths/", func(w http.ResponseWriter, r *http.Request) {
		if failPaths {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/webgateway/original_file_paths/"), "/")
		fmt.Fprintf(w, `{"repo": ["x"], "client": ["/uod/idr/filesets/idr9999-test/d/img%s.tif"], "fileset": {"id": 1}}`, id)
	})
	mux.HandleFunc("/webgateway/imgData/", http.NotFound) // facts then come from the JSON API
	mux.HandleFunc("/webgateway/render_image/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("render_image requested: %s", r.URL)
	})
	mux.Handle("/tree/", http.StripPrefix("/tree", files))
	return httptest.NewServer(mux)
}

func TestOMEROPaginationAndFailures(t *testing.T) {
	files := &tree{files: map[string][]byte{}}
	for i := 0; i < 5; i++ {
		files.files[fmt.Sprintf("/idr9999-test/d/img%d.tif", 100+i)] = make([]byte, 10+i)
	}
	srv := fakeOMERO(t, 5, false, files)
	defer srv.Close()
	env := &Env{HTTP: srv.Client(), IDRFileTree: srv.URL + "/tree"}
	res, err := Resolve(context.Background(), env, manifest.Dataset{Name: "o", URL: srv.URL + "/webclient/?show=dataset-7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 5 || res.Kind != manifest.KindOMERO {
		t.Fatalf("objects %+v", res.Objects)
	}
	o := res.Objects[4]
	if o.Path != "img104.tif" || o.Size != 14 || o.SourceURL != srv.URL+"/tree/idr9999-test/d/img104.tif" ||
		fmt.Sprint(o.Facts["voxel_size_nm"]) != "[50 4 4]" || o.Facts["dtype"] != "uint16" || fmt.Sprint(o.Facts["shape"]) != "[1 2 3]" {
		t.Errorf("object %+v", o)
	}
	// A single image whose JSON "data" is a list.
	res, err = Resolve(context.Background(), env, manifest.Dataset{Name: "o", URL: srv.URL + "/webclient/img_detail/101/"})
	if err != nil || len(res.Objects) != 1 || res.Objects[0].Path != "img101.tif" {
		t.Errorf("single image: %v %+v", err, res)
	}

	bad := fakeOMERO(t, 2, true, files)
	defer bad.Close()
	_, err = Resolve(context.Background(), &Env{HTTP: bad.Client(), IDRFileTree: srv.URL + "/tree"}, manifest.Dataset{Name: "o", URL: bad.URL + "/webclient/img_detail/100/?dataset=7"})
	if err == nil || !strings.Contains(err.Error(), "original file paths unavailable") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("failing original_file_paths: %v", err)
	}
}

func TestFollowShortLink(t *testing.T) {
	state := `{"layers":[{"type":"image","source":"precomputed://gs://b/em","name":"em #1"}],"dimensions":{"x":[8e-9,"m"],"y":[8e-9,"m"],"z":[8e-9,"m"]}}`
	var srvURL string
	mux := http.NewServeMux()
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/hop", http.StatusFound) })
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) {
		// Raw '#' inside the fragment, as real states carry in shader text.
		w.Header().Set("Location", srvURL+"/ng/#!"+strings.ReplaceAll(state, `"`, "%22"))
		w.WriteHeader(http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	env := &Env{HTTP: srv.Client()}
	res, err := Resolve(context.Background(), env, manifest.Dataset{Name: "ng", URL: srv.URL + "/short", Kind: manifest.KindNeuroglancer})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Volumes[0]; v.StoreURL != "gs://b/em/" || v.Path != "em__1.zarr" {
		t.Errorf("volume %+v", v)
	}
	if _, err := FollowShortLink(context.Background(), srv.Client(), srv.URL+"/loop"); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("loop: %v", err)
	}
	_, err = Resolve(context.Background(), env, manifest.Dataset{Name: "ng", URL: srv.URL + "/plain", Kind: manifest.KindNeuroglancer})
	if err == nil || !strings.Contains(err.Error(), "no Neuroglancer state") {
		t.Errorf("plain page: %v", err)
	}
}

// TestListingManyUnsized: an index without sizes (net/http.FileServer style)
// of more files than maxPlanHEADs costs no HEAD; sizes come with the GETs.
// Up to maxPlanHEADs, each unsized file is HEADed for an exact plan.
func TestListingManyUnsized(t *testing.T) {
	for _, n := range []int{maxPlanHEADs, maxPlanHEADs + 1} {
		tr := &tree{pages: map[string]string{}, files: map[string][]byte{}}
		var rows [][3]string
		for i := range n {
			name := fmt.Sprintf("0.%d", i)
			rows = append(rows, [3]string{name, name, "-"})
			tr.files["/z/"+name] = []byte{byte(i)}
		}
		tr.pages["/z/"] = apacheIndex("/z/", rows)
		srv := httptest.NewServer(tr)
		objs, err := (&Listing{}).List(context.Background(), &Env{HTTP: srv.Client()}, srv.URL+"/z/", manifest.Take{})
		srv.Close()
		if err != nil || len(objs) != n {
			t.Fatalf("%d files: %d objects, %v", n, len(objs), err)
		}
		heads := tr.heads.Load()
		exact := 0
		for _, o := range objs {
			if o.Size == 1 && o.ETag != "" {
				exact++
			} else if o.Size != -1 || o.SizeHint != 0 {
				t.Fatalf("%d files: object %+v", n, o)
			}
		}
		switch {
		case n <= maxPlanHEADs && (heads != int64(n) || exact != n):
			t.Errorf("%d unsized files: %d HEADs, %d exact sizes; want each one HEADed", n, heads, exact)
		case n > maxPlanHEADs && (heads != 0 || exact != 0):
			t.Errorf("%d unsized files: %d HEADs, %d exact sizes; want none", n, heads, exact)
		}
	}
}

// TestWebPageThatIsAnIndex: a URL detected as a web page whose page is a
// file server's directory index is walked as a listing (recursively, every
// file), whether the server titles it (Apache) or not (Go's FileServer).
func TestWebPageThatIsAnIndex(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"0.0": "a", "0.1": "bb", "sub/1.0": "ccc", ".zarray": "{}"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer fs.Close()
	env := &Env{HTTP: fs.Client()}
	res, err := Resolve(context.Background(), env, manifest.Dataset{Name: "z", URL: fs.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := objPaths(res.Objects); res.Kind != manifest.KindListing || strings.Join(got, "|") != ".zarray|0.0|0.1|sub/1.0" {
		t.Errorf("kind %q, paths %q; want the listing of every file", res.Kind, got)
	}

	tr := &tree{pages: map[string]string{"/d/": apacheIndex("/d/", [][3]string{{"x.bin", "x.bin", "1"}})},
		files: map[string][]byte{"/d/x.bin": []byte("x")}}
	srv := httptest.NewServer(tr)
	defer srv.Close()
	res, err = Resolve(context.Background(), &Env{HTTP: srv.Client()}, manifest.Dataset{Name: "d", URL: srv.URL + "/d/"})
	if err != nil || res.Kind != manifest.KindListing || len(res.Objects) != 1 {
		t.Errorf("Apache index as a web page: %v, %+v", err, res)
	}

	// A page that links elsewhere is not an index.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<pre><a href="/data/a.tif">a</a> <a href="https://other.example/b.tif">b</a></pre>`)
	}))
	defer page.Close()
	// Its dead foreign link fails that link's download only (issue #17).
	res, err = Resolve(context.Background(), &Env{HTTP: page.Client()}, manifest.Dataset{Name: "p", URL: page.URL + "/"})
	if err != nil || res.Kind != manifest.KindWebPage || len(res.Objects) != 2 {
		t.Errorf("a page linking elsewhere: %v, %+v; want a web page of 2 objects", err, res)
	}
}
