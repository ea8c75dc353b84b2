package source

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

// addWireSeeds adds the named wire samples as seeds when they are present;
// the synthetic seeds of each target keep it useful without them.
func addWireSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(wireDir, n)); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(apacheIndex("/d/", [][3]string{{"a.tif", "a.tif", "1.2G"}, {"s/", "s/", "-"}})))
	f.Add([]byte(`<pre><a href="../">../</a>` + "\n" + `<a href="x%20y.dm3">x y.dm3</a>  07-Feb-2025 19:49  123` + "\n</pre>"))
	f.Add([]byte(`<a href="../../etc/passwd">p</a><a href="/abs">a</a><a href="http://evil/x">e</a><a href="%2e%2e/x">d</a>`))
	f.Add([]byte(`<table><tr><td><a href="a">a</a></td><td>99999999999999999999P</td></tr></table>`))
	base, _ := url.Parse("https://ftp.example.org/root/dir/")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, e := range ParseIndex(base, b) {
			k, err := store.CleanKey(e.Name)
			if err != nil || k != e.Name || strings.Contains(e.Name, "/") || !safeName(e.Name) {
				t.Fatalf("unsafe entry %q (%v)", e.Name, err)
			}
			if e.SizeHint < -1 {
				t.Fatalf("negative size hint %d", e.SizeHint)
			}
		}
	})
}

func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`<article><p>approximately 5x5x5nm, a 1065x2048x1536 volume</p><a href="https://h/d/ x/a.tif">a</a><a href="https://h/d/%20x/a.tif">b</a></article>`))
	f.Add([]byte(`<html><script>document.write('<a href=x.tif>')</script></html>`))
	f.Add([]byte(`<a href="../../../../x.tif">a</a><a href="https://h/%2e%2e/y.tif">b</a><a href="https://h/%2F/z.tif">c</a>`))
	base, _ := url.Parse("https://www.example.org/labs/page/")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePage(base, b)
		if err != nil {
			return
		}
		objs, _ := pageObjects(p, manifest.Take{})
		for _, o := range objs {
			if !safeName(o.Path) {
				t.Fatalf("unsafe path %q from %s", o.Path, o.SourceURL)
			}
			if _, err := url.Parse(o.StoreURL); err != nil {
				t.Fatalf("bad store URL %q", o.StoreURL)
			}
		}
		if _, err := json.Marshal(p.Facts()); err != nil {
			t.Fatalf("facts not encodable: %v", err)
		}
	})
}

func FuzzParseNGState(f *testing.F) {
	addWireSeeds(f, "hemibrain-ng-state.json")
	f.Add([]byte(`{'layers': [{'type': 'image', 'source': {'url': 'gs://b/img'}, 'name': 'x'}]}`))
	f.Add([]byte(`{"layers": {"raw": {"type": "image", "source": ["precomputed://gs://b/raw"]}}, "dimensions": {"x": [1, "nm"]}}`))
	f.Add([]byte(`{"layers": [null, 1, "x"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseNGState(b)
		if err != nil {
			return
		}
		st.VoxelSizeNM()
		l, err := st.Pick("")
		if err != nil {
			return
		}
		if v, err := layerVolume(l); err == nil {
			if k, err := store.CleanKey(v.Path); err != nil || k != v.Path {
				t.Fatalf("unsafe volume path %q", v.Path)
			}
		}
	})
}

func FuzzParseEMPIARXML(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><entry xmlns="http://pdbe.org/empiar" accessionCode="EMPIAR-1"><admin><title>t</title>` +
		`<datasetSize units="GB">1.2</datasetSize><authorsList><author>A B</author></authorsList></admin>` +
		`<imageSet><numImagesOrTiltSeries>16</numImagesOrTiltSeries><dimensions><imageWidth>5628</imageWidth>` +
		`<pixelWidth>80.0</pixelWidth><imageHeight>5632</imageHeight><pixelHeight>80.0</pixelHeight></dimensions></imageSet></entry>`))
	f.Add([]byte(`<entry accessionCode="EMPIAR-2"/>`))
	f.Add([]byte(`<entry><imageSet><dimensions><pixelWidth>NaN</pixelWidth><imageWidth>1e300</imageWidth></dimensions></imageSet><imageSet/></entry>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := ParseEMPIARXML(b, "1")
		if err != nil {
			return
		}
		if _, err := json.Marshal(fs); err != nil {
			t.Fatalf("facts not encodable: %v", err)
		}
	})
}

func FuzzParseEMPIAREntry(f *testing.F) {
	addWireSeeds(f, "empiar-api-entry-11759.json")
	f.Add([]byte(`{"EMPIAR-1": {"imagesets": [{"image_width": 12.5, "pixel_width": -1, "num_images_or_tilt_series": "x"}]}}`))
	f.Add([]byte(`{"EMPIAR-1": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := ParseEMPIAREntry(b, "1")
		if err != nil {
			return
		}
		if _, err := json.Marshal(fs); err != nil {
			t.Fatalf("facts not encodable: %v", err)
		}
	})
}

func FuzzOMERO(f *testing.F) {
	addWireSeeds(f, "idr-webclient-imgData-9762957.json")
	f.Add([]byte(`{"data": {"@id": 5, "Name": "n", "Pixels": {"SizeX": 2, "SizeY": 3, "SizeZ": 4, "PhysicalSizeX": {"Value": 0.02, "Unit": "MICROMETER"}, "Type": {"value": "uint8"}}}}`))
	f.Add([]byte(`{"data": [{"@id": 1}], "meta": {"totalCount": 1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if list, err := omeroData(b); err == nil {
			for _, raw := range list {
				var im omeroImage
				if json.Unmarshal(raw, &im) == nil {
					if _, err := json.Marshal(imageFacts(im, ImgData{}, false)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		var md ImgData
		if json.Unmarshal(b, &md) == nil {
			if _, err := json.Marshal(imageFacts(omeroImage{}, md, true)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzURLs(f *testing.F) {
	for _, s := range []string{
		"https://idr.openmicroscopy.org/webclient/img_detail/9846137/?dataset=10740",
		"https://www.ebi.ac.uk/empiar/EMPIAR-11759/", "s3://b/p/../q", "gs://b", "precomputed://gs://b/p",
		"https://tinyurl.com/x", "http://h/#!{}", "/uod/idr/filesets/a/b.tif", "https://openorganelle.janelia.org/datasets/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		Detect(s)
		ParseOMEROLink(s)
		if r, err := ParseBucketURL(s, true); err == nil && r.Prefix != "" {
			if k, err := store.CleanKey(r.Prefix); err != nil || k != r.Prefix {
				t.Fatalf("unsafe prefix %q", r.Prefix)
			}
		}
		if v, err := VolumeFromSource(s); err == nil && !strings.HasSuffix(v.StoreURL, "/") {
			t.Fatalf("store URL %q without slash", v.StoreURL)
		}
		if src, rel, err := MapIDRPath("https://t/", s); err == nil {
			if k, err := store.CleanKey(rel); err != nil || k != rel {
				t.Fatalf("unsafe rel %q", rel)
			}
			if _, err := url.Parse(src); err != nil {
				t.Fatalf("bad url %q", src)
			}
		}
		base, _ := url.Parse("https://h/a/")
		joinLocation(base, s)
	})
}
