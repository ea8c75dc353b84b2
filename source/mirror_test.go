package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/store"
)

const (
	idrDataset    = 10740
	idrImageXY    = 9846137
	idrImageXZ    = 9846138
	ooName        = "jrc_mus-nacc-2"
	ooRoot        = mirror.S3Bucket + "/" + ooName + "/" + ooName + ".zarr/"
	hemibrainRoot = mirror.GCSBucket + "/emdata/clahe_yz/jpeg/"
	trakemDir     = "data/trakem2.1528909664283.981147357.856576865/"
)

var epflNames = []string{"volumedata.tif", "training.tif", "testing.tif", "training_groundtruth.tif", "testing_groundtruth.tif", "results_test.tif"}

// mirrorContent is small synthetic content in the real layouts.
func mirrorContent() mirror.Content {
	c := mirror.Content{
		EMPIARID:    "11759",
		EMPIARFiles: map[string][]byte{},
		EPFLFiles:   map[string][]byte{},
		S3:          map[string][]byte{},
		GCS:         map[string][]byte{},
	}
	for i, name := range []string{"Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif", "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif"} {
		c.IDR = append(c.IDR, mirror.IDRImage{
			ID: int64(idrImageXY + i), DatasetID: idrDataset, DatasetName: "U2OS_chromatin",
			ProjectName: "idr0086-miron-micrographs/experimentD", Name: name,
			Data:  bytes.Repeat([]byte{byte(i + 1)}, 1000+i),
			SizeX: 11, SizeY: 7 + i, SizeZ: 5, SizeC: 1, SizeT: 1, PixelsType: "uint8",
			PhysicalSizeUM: [3]float64{0.02, 0.02, 0.02},
		})
	}
	for i := 0; i < 4; i++ {
		c.EMPIARFiles[fmt.Sprintf("data/F57-8_test1_3VBSED_slice_%04d.dm3", i)] = bytes.Repeat([]byte{byte(i)}, 100+i)
	}
	c.EMPIARFiles["data/F57-8_test1.xml.gz"] = []byte("gz")
	c.EMPIARFiles[trakemDir+"trakem2.xml"] = []byte("<x/>")
	c.EMPIARFiles[trakemDir+"trakem2.mipmaps/0/a.dm3"] = []byte("nested")
	for i, n := range epflNames {
		c.EPFLFiles[n] = bytes.Repeat([]byte{byte(i)}, 10*(i+1))
	}
	// An NGFF 0.4 store with two multiscale groups, like jrc_mus-nacc-2.
	zattrs := func(levels ...string) []byte {
		var ds []map[string]any
		for _, l := range levels {
			ds = append(ds, map[string]any{"path": l})
		}
		b, _ := json.Marshal(map[string]any{"multiscales": []any{map[string]any{"version": "0.4", "datasets": ds}}})
		return b
	}
	zarray := []byte(`{"zarr_format": 2, "shape": [4, 4, 4], "chunks": [2, 2, 2], "dtype": "<i2", "order": "C", "compressor": null, "fill_value": 0, "filters": null, "dimension_separator": "/"}`)
	c.S3[ooRoot+".zgroup"] = []byte(`{"zarr_format": 2}`)
	c.S3[ooRoot+"recon-2/.zgroup"] = []byte(`{"zarr_format": 2}`)
	c.S3[ooRoot+"recon-2/em/.zgroup"] = []byte(`{"zarr_format": 2}`)
	em := ooRoot + "recon-2/em/fibsem-int16/"
	c.S3[em+".zgroup"] = []byte(`{"zarr_format": 2}`)
	c.S3[em+".zattrs"] = zattrs("s0", "s1", "s2", "s3", "s4")
	for _, l := range []string{"s0", "s1", "s2", "s3", "s4"} {
		c.S3[em+l+"/.zarray"] = zarray
		for _, ch := range []string{"0/0/0", "0/0/1", "1/1/1"} {
			c.S3[em+l+"/"+ch] = []byte(l + ch)
		}
	}
	nuc := ooRoot + "recon-2/labels/inference/segmentations/nuc/"
	for _, g := range []string{"recon-2/labels/", "recon-2/labels/inference/", "recon-2/labels/inference/segmentations/"} {
		c.S3[ooRoot+g+".zgroup"] = []byte(`{"zarr_format": 2}`)
	}
	c.S3[nuc+".zgroup"] = []byte(`{"zarr_format": 2}`)
	c.S3[nuc+".zattrs"] = zattrs("s0", "s1")
	for _, l := range []string{"s0", "s1"} {
		c.S3[nuc+l+"/.zarray"] = zarray
		c.S3[nuc+l+"/0/0/0"] = []byte("nuc")
	}
	c.S3[mirror.S3Bucket+"/plain/a.tif"] = []byte("aaa")
	c.S3[mirror.S3Bucket+"/plain/sub/b.tif"] = []byte("bb")
	c.S3[mirror.S3Bucket+"/plain/readme.txt"] = []byte("r")
	c.GCS[hemibrainRoot+"info"] = []byte(`{"@type": "neuroglancer_multiscale_volume", "data_type": "uint8", "num_channels": 1, "type": "image", "scales": []}`)
	c.GCS[mirror.GCSBucket+"/plain/x.dm4"] = []byte("dm4dm4")
	return c
}

// startMirrors starts the mirrors and an Env pointing at them, or fails.
func startMirrors(t *testing.T) (*mirror.Mirrors, *Env) {
	t.Helper()
	m, err := mirror.Start(t.Context(), mirrorContent(), mirror.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	client := &http.Client{}
	env := &Env{
		HTTP:        client,
		Stores:      &store.Opener{HTTP: client, S3Endpoint: m.S3, GCSEndpoint: m.GCS},
		IDRFileTree: m.IDRFileTreeURL(),
		Logf:        t.Logf,
	}
	return m, env
}

func resolve(t *testing.T, env *Env, ds manifest.Dataset) *Resolved {
	t.Helper()
	if ds.Name == "" {
		ds.Name = "test"
	}
	res, err := Resolve(context.Background(), env, ds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("resolved not JSON-encodable: %v", err)
	}
	return res
}

func TestMirrorOMERO(t *testing.T) {
	m, env := startMirrors(t)
	res := resolve(t, env, manifest.Dataset{URL: m.IDRImageURL(idrImageXY, idrDataset), Kind: manifest.KindOMERO})
	if got := objPaths(res.Objects); !reflect.DeepEqual(got, []string{"Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif", "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif"}) {
		t.Fatalf("paths %v", got)
	}
	for i, o := range res.Objects {
		if !strings.HasPrefix(o.SourceURL, m.IDRFileTreeURL()+"idr0086-miron-micrographs/") {
			t.Errorf("source %s not in the IDR tree", o.SourceURL)
		}
		if o.Size != int64(1000+i) {
			t.Errorf("%s: size %d", o.Path, o.Size)
		}
		f := o.Facts
		if f["image_id"] != int64(idrImageXY+i) || f["dtype"] != "uint8" ||
			!reflect.DeepEqual(f["voxel_size_nm"], []float64{20, 20, 20}) ||
			!reflect.DeepEqual(f["shape"], []int64{5, int64(7 + i), 11}) ||
			f["dataset_name"] != "U2OS_chromatin" {
			t.Errorf("%s: facts %v", o.Path, f)
		}
	}
	if res.FactsSource != "OMERO JSON API" || res.Facts["image_count"] != 2 {
		t.Errorf("dataset facts %v (%s)", res.Facts, res.FactsSource)
	}
	// No JPEG rendering was used.
	for p := range m.Counters[mirror.NameIDR].Paths() {
		if strings.Contains(p, "render_image") {
			t.Errorf("requested %s", p)
		}
	}
	// Without the dataset parameter only the one image is taken.
	res = resolve(t, env, manifest.Dataset{URL: fmt.Sprintf("%s/webclient/img_detail/%d/", m.IDR, idrImageXZ)})
	if got := objPaths(res.Objects); len(got) != 1 || !strings.HasSuffix(got[0], "_xz.tif") {
		t.Errorf("single image: %v", got)
	}
}

func TestMirrorEMPIAR(t *testing.T) {
	m, env := startMirrors(t)
	ds := manifest.Dataset{URL: m.EMPIAREntryURL(), Kind: manifest.KindEMPIAR,
		Take: manifest.Take{Include: []string{"*.dm3"}, Exclude: []string{"trakem2*/**"}}}
	m.Counters[mirror.NameEBIFTP].Reset()
	res := resolve(t, env, ds)
	want := []string{"F57-8_test1_3VBSED_slice_0000.dm3", "F57-8_test1_3VBSED_slice_0001.dm3", "F57-8_test1_3VBSED_slice_0002.dm3", "F57-8_test1_3VBSED_slice_0003.dm3"}
	if got := objPaths(res.Objects); !reflect.DeepEqual(got, want) {
		t.Errorf("paths %v", got)
	}
	for _, o := range res.Objects {
		// Small files keep the listing's size as a hint; the download checks it.
		if !strings.HasPrefix(o.SourceURL, m.EMPIARFilesURL()+"data/") || o.Size != -1 || o.SizeHint < 100 || o.SizeHint > 103 {
			t.Errorf("object %+v", o)
		}
	}
	if res.FactsSource != "EMPIAR REST API + entry XML" || res.Facts["doi"] != "10.6019/EMPIAR-11759" || res.Facts["modality"] != "SBF-SEM" {
		t.Errorf("facts %v (%s)", res.Facts, res.FactsSource)
	}
	for _, n := range res.Notes {
		if strings.Contains(n, " says ") {
			t.Errorf("API and entry XML of the mirror disagree: %s", n)
		}
	}
	for p := range m.Counters[mirror.NameEBIFTP].Paths() {
		if strings.Contains(p, "trakem2") {
			t.Errorf("walked the excluded folder: %s", p)
		}
	}
	// Everything, nested folder included.
	res = resolve(t, env, manifest.Dataset{URL: m.EMPIAREntryURL(), Kind: manifest.KindEMPIAR})
	got := objPaths(res.Objects)
	if len(got) != 7 || got[len(got)-1] != strings.TrimPrefix(trakemDir, "data/")+"trakem2.xml" {
		t.Errorf("all paths %v", got)
	}
}

// TestMirrorEMPIARXML: the entry XML states what the REST API states, and
// carries the facts alone when the API is down.
func TestMirrorEMPIARXML(t *testing.T) {
	m, env := startMirrors(t)
	ctx := context.Background()
	api, _, err := get(ctx, env.client(), m.EMPIAR+"/empiar/api/entry/11759/", maxPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	xb, _, err := get(ctx, env.client(), m.EMPIARFilesURL()+"11759.xml", maxPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	fa, err := ParseEMPIAREntry(api, "11759")
	if err != nil {
		t.Fatal(err)
	}
	fx, err := ParseEMPIARXML(xb, "11759")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"title", "doi", "modality", "release_date", "deposition_date", "dataset_size", "scale", "authors", "num_images", "pixel_size_nm", "data_format"} {
		if fx[k] == nil || !reflect.DeepEqual(fa[k], fx[k]) {
			t.Errorf("%s: API %v, XML %v", k, fa[k], fx[k])
		}
	}
	xs, as := fx["imagesets"].([]map[string]any), fa["imagesets"].([]map[string]any)
	for _, k := range []string{"image_width", "image_height", "pixel_width_nm", "voxel_type", "num_images"} {
		if xs[0][k] == nil || !reflect.DeepEqual(xs[0][k], as[0][k]) {
			t.Errorf("imageset %s: API %v, XML %v", k, as[0][k], xs[0][k])
		}
	}
	if _, err := ParseEMPIARXML(xb, "10001"); err == nil {
		t.Error("an XML of EMPIAR-11759 accepted as EMPIAR-10001")
	}

	down := *env
	down.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/empiar/api/") {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	res := resolve(t, &down, manifest.Dataset{URL: m.EMPIAREntryURL(), Kind: manifest.KindEMPIAR, Take: manifest.Take{Include: []string{"*.dm3"}, Exclude: []string{"trakem2*/**"}}})
	if res.FactsSource != "EMPIAR entry XML" || res.Facts["doi"] != "10.6019/EMPIAR-11759" || len(res.Objects) != 4 {
		t.Errorf("API down: facts %v (%s), %d objects, notes %q", res.Facts, res.FactsSource, len(res.Objects), res.Notes)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMirrorEPFL(t *testing.T) {
	m, env := startMirrors(t)
	for _, js := range []bool{false, true} {
		t.Run(fmt.Sprintf("js=%v", js), func(t *testing.T) {
			if js {
				if _, err := ChromiumPath(env); err != nil {
					t.Skip("chromium not installed (apt-get install chromium)")
				}
			}
			res := resolve(t, env, manifest.Dataset{URL: m.EPFLPageURL(js), Kind: manifest.KindWebPage, Take: manifest.Take{Include: []string{"*.tif"}}})
			var got []string
			for _, o := range res.Objects {
				got = append(got, o.Path)
				if o.SourceURL != m.EPFLFileURL(o.Path) {
					t.Errorf("source %s, want %s", o.SourceURL, m.EPFLFileURL(o.Path))
				}
				if o.Size != int64(10*(indexOf(epflNames, o.Path)+1)) {
					t.Errorf("%s: size %d", o.Path, o.Size)
				}
			}
			if !reflect.DeepEqual(got, epflNames) {
				t.Errorf("files %v", got)
			}
			if !reflect.DeepEqual(res.Facts["voxel_size_nm"], []float64{5, 5, 5}) || res.Facts["page_volume_size"] != "1065x2048x1536" || res.FactsSource != "web page" {
				t.Errorf("facts %v", res.Facts)
			}
		})
	}
}

// A bucket walk keeps the objects Env.StoreMeta calls store metadata whatever
// take says, and only those: the answer is the caller's (the format registry).
func TestBucketStoreMeta(t *testing.T) {
	m, env := startMirrors(t)
	for _, tc := range []struct {
		name        string
		meta        func(string) bool
		wantZattrs  bool
		wantZgroups bool
	}{
		{"nil keeps the metadata the walk reads", nil, true, true},
		{"the caller's answer", func(n string) bool { return n == ".zgroup" || n == ".zarray" }, false, true},
		{"no metadata at all", func(string) bool { return false }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := *env
			e.StoreMeta = tc.meta
			// The include pattern matches chunks only: metadata survives by StoreMeta alone.
			res := resolve(t, &e, manifest.Dataset{URL: m.OpenOrganelleURL(ooName), Kind: manifest.KindS3,
				Take: manifest.Take{Scales: []string{"s4"}, Include: []string{"**/s4/1/1/1"}}})
			var zattrs, zgroups, chunks int
			for _, p := range objPaths(res.Objects) {
				switch path.Base(p) {
				case ".zattrs":
					zattrs++
				case ".zgroup":
					zgroups++
				case "1":
					chunks++
				}
			}
			if (zattrs > 0) != tc.wantZattrs || (zgroups > 0) != tc.wantZgroups || chunks == 0 {
				t.Errorf("%d .zattrs, %d .zgroup, %d chunks; want .zattrs %v, .zgroup %v, chunks > 0", zattrs, zgroups, chunks, tc.wantZattrs, tc.wantZgroups)
			}
		})
	}
}

func TestMirrorOpenOrganelle(t *testing.T) {
	m, env := startMirrors(t)
	ds := manifest.Dataset{URL: m.OpenOrganelleURL(ooName), Kind: manifest.KindS3, Take: manifest.Take{Scales: []string{"s3", "s4"}}}
	m.Counters[mirror.NameS3].Reset()
	res := resolve(t, env, ds)
	got := objPaths(res.Objects)
	em := ooName + ".zarr/recon-2/em/fibsem-int16/"
	for _, want := range []string{ooName + ".zarr/.zgroup", em + ".zattrs", em + "s3/.zarray", em + "s3/0/0/0", em + "s4/1/1/1",
		ooName + ".zarr/recon-2/labels/inference/segmentations/nuc/.zattrs"} {
		if indexOf(got, want) < 0 {
			t.Errorf("missing %s in %v", want, got)
		}
	}
	for _, p := range got {
		if strings.Contains(p, "/s0/") || strings.Contains(p, "/s1/") || strings.Contains(p, "/s2/") {
			t.Errorf("unselected level object %s", p)
		}
	}
	// 10 group metadata files (8 .zgroup, 2 .zattrs) + 2 levels × (.zarray + 3 chunks).
	if n := len(got); n != 10+8 {
		t.Errorf("%d objects: %v", n, got)
	}
	for _, o := range res.Objects {
		if o.StoreURL != "s3://"+mirror.S3Bucket+"/"+ooName+"/" || o.Key != o.Path || o.Size <= 0 || o.ETag == "" {
			t.Errorf("object %+v", o)
		}
	}
	// Unselected levels were never listed: no request names s0's prefix.
	for p, pc := range m.Counters[mirror.NameS3].Paths() {
		if strings.Contains(p, "/s0") {
			t.Errorf("request for %s (%d)", p, pc.Requests)
		}
	}
	// Select by index and through the s3:// URL.
	res = resolve(t, env, manifest.Dataset{URL: "s3://" + ooRoot, Take: manifest.Take{Scales: []string{"0"}}})
	n := 0
	for _, p := range objPaths(res.Objects) {
		if strings.Contains(p, "/s0/") {
			n++
		}
	}
	if n != 4+2 { // em s0 (.zarray + 3 chunks) and nuc s0 (.zarray + 1 chunk)
		t.Errorf("index selection gave %d s0 objects", n)
	}
	// A level name that exists nowhere is an error naming the levels.
	_, err := Resolve(context.Background(), env, manifest.Dataset{Name: "x", URL: "s3://" + ooRoot, Take: manifest.Take{Scales: []string{"s9"}}})
	if err == nil || !strings.Contains(err.Error(), "s4") {
		t.Errorf("bad scale: %v", err)
	}
}

func TestMirrorBucketPlain(t *testing.T) {
	_, env := startMirrors(t)
	res := resolve(t, env, manifest.Dataset{URL: "s3://" + mirror.S3Bucket + "/plain/", Take: manifest.Take{Include: []string{"*.tif"}}})
	if got := objPaths(res.Objects); !reflect.DeepEqual(got, []string{"plain/a.tif", "plain/sub/b.tif"}) {
		t.Errorf("s3 paths %v", got)
	}
	res = resolve(t, env, manifest.Dataset{URL: "gs://" + mirror.GCSBucket + "/plain"})
	if got := objPaths(res.Objects); !reflect.DeepEqual(got, []string{"plain/x.dm4"}) || res.Objects[0].Size != 6 {
		t.Errorf("gcs objects %+v", res.Objects)
	}
	// One object named directly.
	res = resolve(t, env, manifest.Dataset{URL: "gs://" + mirror.GCSBucket + "/plain/x.dm4", Kind: manifest.KindGCS})
	if len(res.Objects) != 1 || res.Objects[0].Path != "x.dm4" || res.Objects[0].Size != 6 {
		t.Errorf("single object %+v", res.Objects)
	}
	res = resolve(t, env, manifest.Dataset{URL: "s3://" + mirror.S3Bucket + "/plain/readme.txt", Kind: manifest.KindFile})
	if len(res.Objects) != 1 || res.Objects[0].Path != "readme.txt" || res.Objects[0].Size != 1 {
		t.Errorf("file kind %+v", res.Objects)
	}
}

func TestMirrorNeuroglancer(t *testing.T) {
	m, env := startMirrors(t)
	res := resolve(t, env, manifest.Dataset{URL: m.ShortLinkURL(), Kind: manifest.KindNeuroglancer})
	want := VolumeRef{StoreURL: "gs://" + hemibrainRoot, Format: "precomputed", Path: "emdata.zarr"}
	if len(res.Volumes) != 1 || res.Volumes[0] != want {
		t.Errorf("volumes %+v", res.Volumes)
	}
	if res.Facts["layer"] != "emdata" || !reflect.DeepEqual(res.Facts["voxel_size_nm"], []float64{8, 8, 8}) || res.FactsSource != "neuroglancer state" {
		t.Errorf("facts %v", res.Facts)
	}
	if others, _ := res.Facts["other_layers"].([]string); indexOf(others, "segmentation") < 0 {
		t.Errorf("other layers %v", others)
	}
	// A named non-image layer.
	res = resolve(t, env, manifest.Dataset{URL: m.ShortLinkURL(), Kind: manifest.KindNeuroglancer, Layer: "segmentation"})
	if res.Volumes[0].StoreURL != "gs://"+mirror.GCSBucket+"/v1.0/segmentation/" {
		t.Errorf("segmentation volume %+v", res.Volumes[0])
	}
	// The direct volume URL, checked against the bucket.
	res = resolve(t, env, manifest.Dataset{URL: "precomputed://gs://" + hemibrainRoot})
	if res.Volumes[0].StoreURL != "gs://"+hemibrainRoot || res.Volumes[0].Path != "jpeg.zarr" {
		t.Errorf("precomputed %+v", res.Volumes)
	}
	if _, err := Resolve(context.Background(), env, manifest.Dataset{Name: "x", URL: "gs://" + mirror.GCSBucket + "/nothing", Kind: manifest.KindPrecomputed}); err == nil {
		t.Error("precomputed without info accepted")
	}
}

func TestMirrorListingAndFile(t *testing.T) {
	m, env := startMirrors(t)
	res := resolve(t, env, manifest.Dataset{URL: m.EMPIARFilesURL(), Kind: manifest.KindListing, Take: manifest.Take{Include: []string{"*.gz"}}})
	if got := objPaths(res.Objects); !reflect.DeepEqual(got, []string{"data/F57-8_test1.xml.gz"}) || res.Objects[0].EstimatedSize() != 2 {
		t.Errorf("listing %+v", res.Objects)
	}
	res = resolve(t, env, manifest.Dataset{URL: m.EPFLFileURL("training.tif")})
	if len(res.Objects) != 1 || res.Objects[0].Path != "training.tif" || res.Objects[0].Size != 20 || res.Kind != manifest.KindFile {
		t.Errorf("file %+v", res.Objects)
	}
}
