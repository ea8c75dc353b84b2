package mirror

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// makeTIFF writes a little-endian classic TIFF of z uncompressed 8-bit pages,
// one strip each, pixel (x,y) of page k = (x*7 + y*3 + k*11) mod 256.
func makeTIFF(w, h, z int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("II")
	binary.Write(&b, le, uint16(42))
	binary.Write(&b, le, uint32(8))
	const nent = 6
	ifdSize := 2 + nent*12 + 4
	for k := range z {
		ifd := 8 + k*(ifdSize+w*h)
		data := ifd + ifdSize
		next := uint32(0)
		if k < z-1 {
			next = uint32(data + w*h)
		}
		binary.Write(&b, le, uint16(nent))
		ent := func(tag, typ uint16, v uint32) {
			binary.Write(&b, le, tag)
			binary.Write(&b, le, typ)
			binary.Write(&b, le, uint32(1))
			if typ == 3 {
				binary.Write(&b, le, uint16(v))
				binary.Write(&b, le, uint16(0))
			} else {
				binary.Write(&b, le, v)
			}
		}
		ent(256, 3, uint32(w))
		ent(257, 3, uint32(h))
		ent(258, 3, 8)
		ent(259, 3, 1)
		ent(273, 4, uint32(data))
		ent(279, 4, uint32(w*h))
		binary.Write(&b, le, next)
		for y := range h {
			for x := range w {
				b.WriteByte(byte(x*7 + y*3 + k*11))
			}
		}
	}
	return b.Bytes()
}

// synth returns n deterministic bytes named by seed.
func synth(seed string, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i*31 + len(seed)*17 + int(seed[i%len(seed)]))
	}
	return out
}

const (
	trakem2  = "data/trakem2.1528909664283.981147357.856576865/"
	zarrRoot = "janelia-cosem-datasets/jrc_mus-nacc-2/jrc_mus-nacc-2.zarr/"
	ngRoot   = "neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg/"
)

var epflNames = []string{"volumedata.tif", "training.tif", "testing.tif", "training_groundtruth.tif", "testing_groundtruth.tif", "results_test.tif"}

// testContent is small synthetic content in the real layout.
func testContent() Content {
	c := Content{
		EMPIARID:    "11759",
		EMPIARFiles: map[string][]byte{},
		EPFLFiles:   map[string][]byte{},
		S3:          map[string][]byte{},
		GCS:         map[string][]byte{},
	}
	xy := makeTIFF(13, 9, 6)
	xz := makeTIFF(13, 6, 9)
	c.IDR = []IDRImage{
		{ID: 9846137, DatasetID: 10740, DatasetName: "U2OS_chromatin", ProjectName: "idr0086-miron-micrographs/experimentD",
			Name: "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif", Data: xy, SizeC: 1, SizeT: 1, PixelsType: "uint8",
			PhysicalSizeUM: [3]float64{0.02, 0.02, 0.02}},
		{ID: 9846138, DatasetID: 10740, DatasetName: "U2OS_chromatin", ProjectName: "idr0086-miron-micrographs/experimentD",
			Name: "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif", Data: xz, PhysicalSizeUM: [3]float64{0.02, 0.02, 0.02}},
		{ID: 9846200, DatasetID: 10741, DatasetName: "HeLa_chromatin", ProjectName: "idr0086-miron-micrographs/experimentD",
			Name: "Figure_S3A_FIB-SEM_HeLa_G2_20x20x20nm_xy.tif", Data: makeTIFF(4, 4, 2)},
	}
	for i := range 3 {
		name := fmt.Sprintf("data/F57-8_test1_3VBSED_slice_%04d.dm3", i)
		c.EMPIARFiles[name] = synth(name, 3000+i*1000)
	}
	c.EMPIARFiles["data/F57-8_test1.xml.gz"] = synth("xmlgz", 1200)
	c.EMPIARFiles[trakem2+"trakem2.mipmaps/0/tile_0.jpg"] = synth("tile0", 500)
	c.EMPIARFiles[trakem2+"trakem2.mipmaps/1/tile_0.jpg"] = synth("tile1", 200)
	c.EMPIARFiles[trakem2+"project.xml"] = synth("project", 50)
	for i, n := range epflNames {
		c.EPFLFiles[n] = synth(n, 700+i*100)
	}
	c.S3[zarrRoot+".zgroup"] = []byte(`{"zarr_format":2}`)
	c.S3[zarrRoot+"recon-2/em/fibsem-int16/.zattrs"] = []byte(`{"multiscales":[]}`)
	c.S3[zarrRoot+"recon-2/em/fibsem-int16/s0/.zarray"] = []byte(`{"shape":[4,4,4]}`)
	c.S3[zarrRoot+"recon-2/em/fibsem-int16/s0/0/0/0"] = synth("chunk", 2048)
	c.GCS[ngRoot+"info"] = []byte(`{"@type":"neuroglancer_multiscale_volume"}`)
	c.GCS[ngRoot+"8.0x8.0x8.0/0.shard"] = synth("shard0", 4096)
	c.GCS[ngRoot+"8.0x8.0x8.0/1.shard"] = synth("shard1", 1024)
	return c
}

// startMirrors starts the mirrors for one test and closes them at its end.
func startMirrors(t *testing.T, opt Options) *Mirrors {
	t.Helper()
	m, err := Start(context.Background(), testContent(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// newClient is a client with its own pool (closed at test end) and a cookie jar.
func newClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}
}

type reply struct {
	status int
	header http.Header
	body   []byte
	err    error // body read error
}

func do(t *testing.T, c *http.Client, method, u string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, body, rerr}
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) reply {
	t.Helper()
	r := do(t, c, http.MethodGet, u, hdr...)
	if r.err != nil {
		t.Fatalf("GET %s: body: %v", u, r.err)
	}
	return r
}

// parseHTML parses a page and fails the test on error.
func parseHTML(t *testing.T, b []byte) *html.Node {
	t.Helper()
	n, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// findAll collects element nodes named tag under n (all when tag is "").
func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (tag == "" || n.Data == tag) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func hrefs(n *html.Node) []string {
	var out []string
	for _, a := range findAll(n, "a") {
		if h, ok := attr(a, "href"); ok {
			out = append(out, h)
		}
	}
	return out
}

// settleGoroutines waits (bounded) for the goroutine count to drop to want.
func settleGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 200 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}
