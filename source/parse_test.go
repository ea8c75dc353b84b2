package source

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

// wireDir holds response bodies copied from the real services.
const wireDir = "/work/shared/docs/wire-samples"

// wireSample reads a wire sample or skips the test, saying why.
func wireSample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(wireDir, name))
	if err != nil {
		tb.Skipf("wire sample %s not available (%v); skipping", name, err)
	}
	return b
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"s3://janelia-cosem-datasets/jrc_mus-nacc-2/jrc_mus-nacc-2.zarr", manifest.KindS3},
		{"gs://neuroglancer-janelia-flyem-hemibrain/emdata/raw/jpeg", manifest.KindGCS},
		{"precomputed://gs://b/p", manifest.KindPrecomputed},
		{"https://tinyurl.com/hemibrain-ng", manifest.KindNeuroglancer},
		{"http://hemibrain-dot-neuroglancer-demo.appspot.com/#!%7B%22a%22:1%7D", manifest.KindNeuroglancer},
		{"https://idr.openmicroscopy.org/webclient/img_detail/9846137/?dataset=10740", manifest.KindOMERO},
		{"https://idr.openmicroscopy.org/webclient/?show=image-9846137", manifest.KindOMERO},
		{"https://www.ebi.ac.uk/empiar/EMPIAR-11759/", manifest.KindEMPIAR},
		{"https://openorganelle.janelia.org/datasets/jrc_mus-nacc-2", manifest.KindS3},
		{"https://storage.googleapis.com/neuroglancer-janelia-flyem-hemibrain/emdata/raw/jpeg/info", manifest.KindGCS},
		{"https://janelia-cosem-datasets.s3.amazonaws.com/jrc_mus-nacc-2/", manifest.KindS3},
		{"https://s3.amazonaws.com/janelia-cosem-datasets/x", manifest.KindS3},
		{"https://documents.epfl.ch/groups/c/cv/cvlab-unit/www/data/ ElectronMicroscopy_Hippocampus/volumedata.tif", manifest.KindFile},
		{"https://example.org/a/b.DM4", manifest.KindFile},
		{"https://example.org/a/vol.mrc?download=1", manifest.KindFile},
		{"https://ftp.ebi.ac.uk/empiar/world_availability/11759/data/", manifest.KindListing},
		{"https://ftp.ebi.ac.uk/pub/databases/IDR/", manifest.KindListing},
		{"https://www.epfl.ch/labs/cvlab/data/data-em/", manifest.KindWebPage},
		{"https://example.org/data/", manifest.KindWebPage},
		{"/local/file.tif", manifest.KindFile},
	} {
		if got := Detect(tc.url); got != tc.want {
			t.Errorf("Detect(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

// apacheIndex renders an Apache "fancy index" page as the mirror spec describes it.
func apacheIndex(dir string, rows [][3]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head><title>Index of %s</title></head><body>\n", dir)
	fmt.Fprintf(&b, "<h1>Index of %s</h1><table>\n<tr><th><a href=\"?C=N;O=D\">Name</a></th><th><a href=\"?C=M;O=A\">Last modified</a></th><th><a href=\"?C=S;O=A\">Size</a></th></tr>\n", dir)
	fmt.Fprintf(&b, "<tr><td><a href=\"%s\">Parent Directory</a></td><td>&nbsp;</td><td align=\"right\">  - </td></tr>\n", filepath.Dir(strings.TrimSuffix(dir, "/"))+"/")
	for _, r := range rows {
		fmt.Fprintf(&b, "<tr><td><a href=\"%s\">%s</a></td><td align=\"right\">2025-02-07 19:49  </td><td align=\"right\">%s</td></tr>\n", r[0], r[1], r[2])
	}
	b.WriteString("</table></body></html>\n")
	return b.String()
}

func TestParseIndex(t *testing.T) {
	base := mustURL(t, "https://ftp.example.org/empiar/world_availability/11759/data/")
	for _, tc := range []struct {
		name string
		page string
		want []IndexEntry
	}{
		{
			name: "apache fancy index",
			page: apacheIndex("/empiar/world_availability/11759/data/", [][3]string{
				{"F57-8_test1.xml.gz", "F57-8_test1.xml.gz", "12K"},
				{"F57-8_test1_3VBSED_slice_0000.dm3", "F57-8_test1_3VBSED_slice_0000.dm3", "29M"},
				{"trakem2.1528909664283.981147357.856576865/", "trakem2.1528909664283.981147357.856576865/", "-"},
				{"with%20space.tif", "with space.tif", "1.2G"},
			}),
			want: []IndexEntry{
				{"F57-8_test1.xml.gz", false, 12 << 10},
				{"F57-8_test1_3VBSED_slice_0000.dm3", false, 29 << 20},
				{"trakem2.1528909664283.981147357.856576865", true, -1},
				{"with space.tif", false, g12},
			},
		},
		{
			name: "nginx autoindex",
			page: "<html><head><title>Index of /data/</title></head><body><h1>Index of /data/</h1><hr><pre><a href=\"../\">../</a>\n" +
				"<a href=\"sub/\">sub/</a>                                               07-Feb-2025 19:49                   -\n" +
				"<a href=\"a.tif\">a.tif</a>                                              07-Feb-2025 19:49            31876543\n" +
				"<a href=\"b.tif\">b.tif</a>                                              07-Feb-2025 19:49\n" +
				"</pre><hr></body></html>",
			want: []IndexEntry{{"sub", true, -1}, {"a.tif", false, 31876543}, {"b.tif", false, -1}},
		},
		{
			name: "hostile hrefs are dropped",
			page: `<a href="../secret">x</a><a href="/etc/passwd">x</a><a href="https://evil.example/x.tif">x</a>
<a href="//evil.example/y.tif">x</a><a href="a/../../b">x</a><a href="..%2f..%2fetc">x</a><a href="sub/deeper.tif">x</a>
<a href="?C=S;O=A">sort</a><a href="#top">top</a><a href="javascript:alert(1)">js</a><a href="mailto:a@b">m</a>
<a href="..\..\win.tif">w</a><a href="%00nul.tif">n</a><a href="ok.tif">ok</a><a href="ok.tif">dup</a><a href="./dot.tif">d</a>`,
			want: []IndexEntry{{"ok.tif", false, -1}, {"dot.tif", false, -1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseIndex(base, []byte(tc.page))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseIndex:\n got %+v\nwant %+v", got, tc.want)
			}
			for _, e := range got {
				if k, err := store.CleanKey(e.Name); err != nil || k != e.Name {
					t.Errorf("entry %q is not a clean key (%v)", e.Name, err)
				}
			}
		})
	}
}

func TestSizeHint(t *testing.T) {
	for _, tc := range []struct {
		row  string
		want int64
	}{
		{"2025-02-07 19:49 1.2G", g12},
		{"2025-02-07 19:49  - ", -1},
		{"07-Feb-2025 19:49 31876543", 31876543},
		{"2025-02-07 19:49 30M some description", 30 << 20},
		{"", -1},
		{"99999999999P", -1},
	} {
		if got := sizeHint(tc.row); got != tc.want {
			t.Errorf("sizeHint(%q) = %d, want %d", tc.row, got, tc.want)
		}
	}
}

// epflPage builds a WordPress-like page from the extracted EPFL links.
func epflPage(t testing.TB, withArticle bool) (string, []string) {
	var s struct {
		Description string   `json:"dataset_description"`
		Links       []string `json:"download_links"`
	}
	if err := json.Unmarshal(wireSample(t, "epfl-data-em-links.extracted.json"), &s); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`<html><head><title>Electron Microscopy Dataset – CVLAB</title></head><body><nav><a href="/labs/cvlab/">home</a><a href="/other/nav.tif">nav</a></nav>`)
	if withArticle {
		b.WriteString(`<article id="post-2138" class="post-2138 page type-page status-publish hentry">`)
	}
	fmt.Fprintf(&b, "<p>%s</p><ul>", s.Description)
	for _, l := range s.Links {
		fmt.Fprintf(&b, "<li><a href=\"  %s \">%s</a></li>\n", l, filepath.Base(l))
	}
	b.WriteString("</ul>")
	if withArticle {
		b.WriteString("</article>")
	}
	b.WriteString("<footer><a href=\"https://www.epfl.ch/about/\">about</a></footer></body></html>")
	return b.String(), s.Links
}

func TestParsePageEPFL(t *testing.T) {
	page, _ := epflPage(t, true)
	base := mustURL(t, "https://www.epfl.ch/labs/cvlab/data/data-em/")
	p, err := ParsePage(base, []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	objs, notes := pageObjects(p, manifest.Take{Include: []string{"*.tif"}})
	var names []string
	for _, o := range objs {
		names = append(names, o.Path)
		if o.StoreURL != "https://documents.epfl.ch/groups/c/cv/cvlab-unit/www/data/%20ElectronMicroscopy_Hippocampus/" {
			t.Errorf("%s: StoreURL %q", o.Path, o.StoreURL)
		}
		if o.SourceURL != o.StoreURL+o.Key {
			t.Errorf("%s: SourceURL %q", o.Path, o.SourceURL)
		}
	}
	want := []string{"volumedata.tif", "training.tif", "testing.tif", "training_groundtruth.tif", "testing_groundtruth.tif", "results_test.tif"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("files = %v, want %v (notes %v)", names, want, notes)
	}
	f := p.Facts()
	if got := f["voxel_size_nm"]; !reflect.DeepEqual(got, []float64{5, 5, 5}) {
		t.Errorf("voxel_size_nm = %v", got)
	}
	if got := f["page_volume_size"]; got != "1065x2048x1536" {
		t.Errorf("page_volume_size = %v", got)
	}
	if p.HasScript {
		t.Error("HasScript on a page without scripts")
	}
	// Without an article the whole page counts, nav links included.
	page2, _ := epflPage(t, false)
	p2, _ := ParsePage(base, []byte(page2))
	objs2, _ := pageObjects(p2, manifest.Take{})
	if len(objs2) != 7 || objs2[0].Path != "nav.tif" {
		t.Errorf("without article: %d objects, first %+v", len(objs2), objs2[0])
	}
}

func TestResolveHref(t *testing.T) {
	base := mustURL(t, "https://www.example.org/a/page/")
	for _, tc := range []struct{ href, want string }{
		{"https://h.example/x/ dir/f.tif", "https://h.example/x/%20dir/f.tif"},
		{"https://h.example/x/%20dir/f.tif", "https://h.example/x/%20dir/f.tif"},
		{" ../f.tif ", "https://www.example.org/a/f.tif"},
		{"/root.tif", "https://www.example.org/root.tif"},
		{"f.tif#frag", "https://www.example.org/a/page/f.tif"},
		{"#top", ""},
		{"mailto:x@y", ""},
		{"ftp://h/f.tif", ""},
		{"", ""},
	} {
		got := ""
		if u := resolveHref(base, tc.href); u != nil {
			got = u.String()
		}
		if got != tc.want {
			t.Errorf("resolveHref(%q) = %q, want %q", tc.href, got, tc.want)
		}
	}
}

func TestPageFacts(t *testing.T) {
	for _, tc := range []struct {
		text  string
		voxel []float64
		vol   any
	}{
		{"voxel size 4 x 4 x 2.96 nm, a 100x200x300 voxel volume", []float64{2.96, 4, 4}, "100x200x300"},
		{"a 5x5x5µm section", nil, nil},
		{"nothing here", nil, nil},
		{"0x0x0nm", nil, nil},
	} {
		f := (&Page{Text: tc.text}).Facts()
		if v, _ := f["voxel_size_nm"].([]float64); !reflect.DeepEqual(v, tc.voxel) {
			t.Errorf("%q: voxel %v, want %v", tc.text, v, tc.voxel)
		}
		if f["page_volume_size"] != tc.vol {
			t.Errorf("%q: volume %v, want %v", tc.text, f["page_volume_size"], tc.vol)
		}
	}
}

func TestParseOMEROLink(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    OMEROLink
		wantErr bool
	}{
		{"https://idr.openmicroscopy.org/webclient/img_detail/9846137/?dataset=10740", OMEROLink{"https://idr.openmicroscopy.org", 9846137, 10740}, false},
		{"http://127.0.0.1:5000/webclient/img_detail/7/", OMEROLink{"http://127.0.0.1:5000", 7, 0}, false},
		{"https://h.org/omero/webclient/?show=dataset-10740", OMEROLink{"https://h.org/omero", 0, 10740}, false},
		{"https://h.org/webclient/?show=image-5|dataset-6", OMEROLink{"https://h.org", 5, 6}, false},
		{"https://h.org/webclient/img_detail/9/?dataset=abc", OMEROLink{}, true},
		{"https://h.org/webclient/", OMEROLink{}, true},
		{"s3://b/webclient/img_detail/9/", OMEROLink{}, true},
	} {
		got, err := ParseOMEROLink(tc.url)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseOMEROLink(%q) = %+v, %v; want %+v, err %v", tc.url, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestOmeroData(t *testing.T) {
	for _, tc := range []struct {
		body string
		n    int
		err  bool
	}{
		{`{"data": {"@id": 1, "Name": "a"}}`, 1, false},
		{`{"data": [{"@id": 1}, {"@id": 2}], "meta": {"totalCount": 2}}`, 2, false},
		{`{"data": null}`, 0, true},
		{`{"data": 5}`, 0, true},
		{`{}`, 0, true},
		{`[`, 0, true},
	} {
		got, err := omeroData([]byte(tc.body))
		if (err != nil) != tc.err || len(got) != tc.n {
			t.Errorf("omeroData(%s) = %d items, %v", tc.body, len(got), err)
		}
	}
}

func TestMapIDRPath(t *testing.T) {
	const tree = "https://ftp.ebi.ac.uk/pub/databases/IDR/"
	src, rel, err := MapIDRPath(tree, "/uod/idr/filesets/idr0086-miron-micrographs/20200610-ftp/experimentD/Miron_FIB-SEM/Miron_FIB-SEM_processed/Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif")
	if err != nil {
		t.Fatal(err)
	}
	if want := tree + "idr0086-miron-micrographs/20200610-ftp/experimentD/Miron_FIB-SEM/Miron_FIB-SEM_processed/Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif"; src != want {
		t.Errorf("src = %s", src)
	}
	if !strings.HasPrefix(rel, "idr0086-miron-micrographs/") {
		t.Errorf("rel = %s", rel)
	}
	if src, _, _ := MapIDRPath(tree, "/uod/idr/filesets/s/with space#.tif"); src != tree+"s/with%20space%23.tif" {
		t.Errorf("escaping: %s", src)
	}
	for _, bad := range []string{"/data/other/x.tif", "/uod/idr/filesets/../../etc/passwd", "/uod/idr/filesets/a//b", "/uod/idr/filesets/"} {
		if _, _, err := MapIDRPath(tree, bad); err == nil {
			t.Errorf("MapIDRPath(%q) accepted", bad)
		}
	}
}

func TestImageFactsFromImgData(t *testing.T) {
	var md ImgData
	if err := json.Unmarshal(wireSample(t, "idr-webclient-imgData-9762957.json"), &md); err != nil {
		t.Fatal(err)
	}
	f := imageFacts(omeroImage{ID: 9762957, Name: "api name"}, md, true)
	if !reflect.DeepEqual(f["shape"], []int64{1, 493, 659}) {
		t.Errorf("shape %v", f["shape"])
	}
	if f["dtype"] != "uint16" || f["image_name"] != "1988 [Well A-1; Field #1]" {
		t.Errorf("dtype %v name %v", f["dtype"], f["image_name"])
	}
	// z is null in this sample: no 3-D voxel size is claimed.
	if _, ok := f["voxel_size_nm"]; ok {
		t.Errorf("voxel_size_nm %v from a null z", f["voxel_size_nm"])
	}
	if !reflect.DeepEqual(f["pixel_size_nm"], []float64{645.9, 645.9}) {
		t.Errorf("pixel_size_nm %v", f["pixel_size_nm"])
	}
	if _, err := json.Marshal(f); err != nil {
		t.Errorf("facts not JSON-encodable: %v", err)
	}
	// The IDR 9846137 values (fields only): 0.02 µm → 20 nm exactly.
	z := 0.02
	md2 := ImgData{}
	md2.Size.Width, md2.Size.Height, md2.Size.Z = 1121, 775, 184
	md2.PixelSize.X, md2.PixelSize.Y, md2.PixelSize.Z = &z, &z, &z
	f2 := imageFacts(omeroImage{ID: 9846137}, md2, true)
	if !reflect.DeepEqual(f2["voxel_size_nm"], []float64{20, 20, 20}) || !reflect.DeepEqual(f2["shape"], []int64{184, 775, 1121}) {
		t.Errorf("9846137 facts %v", f2)
	}
}

func TestParseEMPIAREntry(t *testing.T) {
	f, err := ParseEMPIAREntry(wireSample(t, "empiar-api-entry-11759.json"), "11759")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"title":        "Developing retina in zebrafish 55 hpf larval eye.",
		"doi":          "10.6019/EMPIAR-11759",
		"modality":     "SBF-SEM",
		"release_date": "2024-01-15",
		"dataset_size": "1.2 GB",
		"num_images":   int64(16),
		"data_format":  "DM3",
	}
	for k, v := range want {
		if !reflect.DeepEqual(f[k], v) {
			t.Errorf("%s = %#v, want %#v", k, f[k], v)
		}
	}
	sets := f["imagesets"].([]map[string]any)
	if len(sets) != 1 || sets[0]["pixel_width_nm"] != 8.0 || sets[0]["image_width"] != int64(5628) || sets[0]["image_height"] != int64(5632) {
		t.Errorf("imagesets %v", sets)
	}
	if !reflect.DeepEqual(f["authors"], []string{"Wilsch-Bräuninger M"}) {
		t.Errorf("authors %v", f["authors"])
	}
	if _, err := ParseEMPIAREntry([]byte(`{"EMPIAR-1": {}, "EMPIAR-2": {}}`), "3"); err == nil {
		t.Error("accepted an answer without the accession")
	}
	if _, err := ParseEMPIAREntry([]byte(`{"EMPIAR-3": {"imagesets": [{"image_width": "x", "num_images_or_tilt_series": 2}]}}`), "3"); err != nil {
		t.Errorf("tolerant parse failed: %v", err)
	}
}

func TestArchiveURL(t *testing.T) {
	page := `<html><body><div id="app"><empiar-entry csrf-token="abc" public-archive-ftp-url="https://ftp.ebi.ac.uk/empiar/world_availability/11759"></empiar-entry></div></body></html>`
	if got := ArchiveURL([]byte(page)); got != "https://ftp.ebi.ac.uk/empiar/world_availability/11759" {
		t.Errorf("ArchiveURL = %q", got)
	}
	if got := ArchiveURL([]byte("<html>none</html>")); got != "" {
		t.Errorf("ArchiveURL = %q", got)
	}
}

func TestParseNGStateHemibrain(t *testing.T) {
	st, err := ParseNGState(wireSample(t, "hemibrain-ng-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Pick("")
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "emdata" || l.Source != "precomputed://gs://neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg" {
		t.Errorf("picked %+v", l)
	}
	v, err := layerVolume(l)
	if err != nil {
		t.Fatal(err)
	}
	if want := (VolumeRef{StoreURL: "gs://neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg/", Format: "precomputed", Path: "emdata.zarr"}); v != want {
		t.Errorf("volume %+v, want %+v", v, want)
	}
	if got := st.VoxelSizeNM(); !reflect.DeepEqual(got, []float64{8, 8, 8}) {
		t.Errorf("voxel %v", got)
	}
	roi, err := st.Pick("roi") // its source is an object {url: …}
	if err != nil || roi.Source != "precomputed://gs://neuroglancer-janelia-flyem-hemibrain/v1.0/rois" {
		t.Errorf("roi %+v %v", roi, err)
	}
	if _, err := st.Pick("nope"); err == nil || !strings.Contains(err.Error(), "emdata") {
		t.Errorf("missing layer error should list layers: %v", err)
	}
}

func TestNGStateFromURL(t *testing.T) {
	raw := strings.TrimSpace(string(wireSample(t, "hemibrain-ng-url.dvid-io-blog-2020-01.txt")))
	_, frag, ok := strings.Cut(raw, "#!")
	if !ok {
		t.Fatal("no #! in sample")
	}
	b, err := stateText(t.Context(), &Env{}, frag)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseNGState(b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Pick("")
	if err != nil || l.Name != "emdata" {
		t.Errorf("picked %+v %v", l, err)
	}
	// Single-quoted JSON, as a harvester's str(dict) would write it.
	sq := `{'layers': [{'type': 'segmentation', 'source': 'precomputed://gs://b/seg', 'name': 'seg'}, {'type': 'image', 'source': {'url': 'gs://b/img'}, 'name': 'em data'}], 'dimensions': {'x': [4e-9, 'm'], 'y': [4e-9, 'm'], 'z': [3.5e-9, 'm']}}`
	st, err = ParseNGState([]byte(sq))
	if err != nil {
		t.Fatal(err)
	}
	l, _ = st.Pick("")
	v, err := layerVolume(l)
	if err != nil || v.StoreURL != "gs://b/img/" || v.Path != "em_data.zarr" {
		t.Errorf("volume %+v %v", v, err)
	}
	if got := st.VoxelSizeNM(); !reflect.DeepEqual(got, []float64{3.5, 4, 4}) {
		t.Errorf("voxel %v", got)
	}
	// Old states keyed layers by name.
	st, err = ParseNGState([]byte(`{"layers": {"raw": {"type": "image", "source": "precomputed://gs://b/raw"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if l, err := st.Pick(""); err != nil || l.Name != "raw" {
		t.Errorf("map layers: %+v %v", l, err)
	}
}

func TestVolumeFromSource(t *testing.T) {
	for _, tc := range []struct {
		src       string
		root, fmt string
		err       bool
	}{
		{"precomputed://gs://b/p", "gs://b/p/", "precomputed", false},
		{"gs://b/p/|neuroglancer-precomputed:", "gs://b/p/", "precomputed", false},
		{"zarr://s3://b/x.zarr", "s3://b/x.zarr/", "zarr", false},
		{"zarr3://https://h/x.zarr", "https://h/x.zarr/", "zarr", false},
		{"n5://gs://b/x.n5", "gs://b/x.n5/", "n5", false},
		{"gs://b/p|graphene:", "", "", true},
		{"precomputed://file:///etc", "", "", true},
		{"precomputed://gs:///p", "", "", true},
		{"", "", "", true},
	} {
		v, err := VolumeFromSource(tc.src)
		if (err != nil) != tc.err || (!tc.err && (v.StoreURL != tc.root || v.Format != tc.fmt)) {
			t.Errorf("VolumeFromSource(%q) = %+v, %v", tc.src, v, err)
		}
	}
}

func TestJoinLocation(t *testing.T) {
	base := mustURL(t, "https://tinyurl.com/hemibrain-ng")
	loc := `https://ng.example/#!{"a":"#x","b":1}`
	if got, err := joinLocation(base, loc); err != nil || got != loc {
		t.Errorf("joinLocation = %q, %v", got, err)
	}
	if got, _ := joinLocation(base, "/ng/#!%7B%7D"); got != "https://tinyurl.com/ng/#!%7B%7D" {
		t.Errorf("relative Location = %q", got)
	}
	if _, err := joinLocation(base, "file:///etc/passwd"); err == nil {
		t.Error("accepted a file: Location")
	}
}

func TestMultiscalePaths(t *testing.T) {
	var attrs map[string]any
	if err := json.Unmarshal(wireSample(t, "openorganelle-fibsem-int16.zattrs.json"), &attrs); err != nil {
		t.Fatal(err)
	}
	got := multiscalePaths(attrs)
	want := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths %v", got)
	}
	v05 := map[string]any{"ome": map[string]any{"multiscales": []any{map[string]any{"datasets": []any{map[string]any{"path": "0"}, map[string]any{"path": "1"}}}}}}
	if got := multiscalePaths(v05); !reflect.DeepEqual(got, []string{"0", "1"}) {
		t.Errorf("v0.5 paths %v", got)
	}
	if got := multiscalePaths(map[string]any{"multiscales": "junk"}); got != nil {
		t.Errorf("junk gave %v", got)
	}
	for _, tc := range []struct {
		scales []string
		name   string
		idx    int
		want   bool
	}{
		{nil, "s0", 0, true}, {[]string{"s3"}, "s3", 3, true}, {[]string{"3"}, "s3", 3, true}, {[]string{"s3"}, "s4", 4, false},
	} {
		if got := scaleSelected(tc.scales, tc.name, tc.idx); got != tc.want {
			t.Errorf("scaleSelected(%v,%s,%d) = %v", tc.scales, tc.name, tc.idx, got)
		}
	}
}

func TestParseBucketURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		any  bool
		want BucketRef
		err  bool
	}{
		{"s3://janelia-cosem-datasets/jrc_mus-nacc-2/jrc_mus-nacc-2.zarr/", false, BucketRef{"s3", "janelia-cosem-datasets", "jrc_mus-nacc-2/jrc_mus-nacc-2.zarr"}, false},
		{"gs://b", false, BucketRef{"gs", "b", ""}, false},
		{"https://storage.googleapis.com/b/p/q", false, BucketRef{"gs", "b", "p/q"}, false},
		{"https://b.s3.amazonaws.com/p", false, BucketRef{"s3", "b", "p"}, false},
		{"https://b.s3.us-west-2.amazonaws.com/p", false, BucketRef{"s3", "b", "p"}, false},
		{"https://s3.amazonaws.com/b/p", false, BucketRef{"s3", "b", "p"}, false},
		{"https://openorganelle.janelia.org/datasets/jrc_mus-nacc-2", false, BucketRef{"s3", OpenOrganelleBucket, "jrc_mus-nacc-2/jrc_mus-nacc-2.zarr"}, false},
		{"http://127.0.0.1:1/datasets/jrc_mus-nacc-2", true, BucketRef{"s3", OpenOrganelleBucket, "jrc_mus-nacc-2/jrc_mus-nacc-2.zarr"}, false},
		{"http://127.0.0.1:1/datasets/jrc_mus-nacc-2", false, BucketRef{}, true},
		{"https://openorganelle.janelia.org/datasets/..", false, BucketRef{}, true},
		{"s3://b/../x", false, BucketRef{}, true},
		{"s3:///x", false, BucketRef{}, true},
	} {
		got, err := ParseBucketURL(tc.url, tc.any)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseBucketURL(%q) = %+v, %v", tc.url, got, err)
		}
	}
}

func TestCheckPaths(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		ok    bool
	}{
		{[]string{"a.tif", "d/b.tif"}, true},
		{[]string{"../a.tif"}, false},
		{[]string{"/abs"}, false},
		{[]string{"a/./b"}, false},
		{[]string{""}, false},
		{[]string{"a", "a"}, false},
	} {
		res := &Resolved{}
		for _, p := range tc.paths {
			res.Objects = append(res.Objects, Object{Path: p})
		}
		if err := checkPaths(res); (err == nil) != tc.ok {
			t.Errorf("checkPaths(%q) = %v", tc.paths, err)
		}
	}
}

// g12 is what an index's "1.2G" column means, truncated.
var g12 = int64(1288490188) // 1.2 × 2³⁰, truncated
