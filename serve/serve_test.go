package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// zarrShape does not divide into the chunks the server picks under
// builtMaxBytes, so the grid has padded edge chunks on every axis.
var zarrShape = [3]int64{21, 30, 43}

const builtMaxBytes = 4096

// u16 is a uint16 volume whose every voxel differs from its neighbours.
func u16(t *testing.T, shape [3]int64) *volume.Mem {
	t.Helper()
	n := shape[0] * shape[1] * shape[2]
	b := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(i*7919+13))
	}
	m, err := sample.Mem("u16", volume.Uint16, sample.ZYX(shape, [3]float64{30, 4, 4}, "nanometer"), b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// builtDir writes a directory with a small ImageJ TIFF and a small OME-Zarr
// and no catalog.json (the server catalogs it itself).
func builtDir(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	tif, err := sample.ImageJTIFF(ctx, [3]int64{5, 24, 32}, 7, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteAll(ctx, "stack.tif", tif); err != nil {
		t.Fatal(err)
	}
	if err := zarr.WriteNGFF(ctx, st, "vol.zarr", u16(t, zarrShape), zarr.WriteOptions{Chunks: []int64{8, 16, 16}, Name: "u16"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testServer opens dir and serves it on loopback.
func testServer(t *testing.T, dir string, opt Options) (*Server, *httptest.Server) {
	t.Helper()
	srv, err := Open(context.Background(), dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return srv, ts
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func volumesOf(t *testing.T, base string) []VolumeInfo {
	t.Helper()
	resp, b := get(t, base+"/volumes")
	if resp.StatusCode != 200 {
		t.Fatalf("/volumes: %s: %s", resp.Status, b)
	}
	var vs []VolumeInfo
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func find(t *testing.T, vs []VolumeInfo, dtype string, ndim int) VolumeInfo {
	t.Helper()
	for _, v := range vs {
		if v.DType == dtype && len(v.Shape) == ndim {
			return v
		}
	}
	t.Fatalf("no %s %d-d volume among %d", dtype, ndim, len(vs))
	return VolumeInfo{}
}

// readAll reads a whole served volume through the Volume it is served from.
func readAll(t *testing.T, srv *Server, id string) []byte {
	t.Helper()
	e := srv.byID[id]
	buf := make([]byte, e.in.NumBytes())
	if err := e.vol.ReadRegion(context.Background(), volume.Full(e.in.Shape), buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestListVolumes(t *testing.T) {
	_, ts := testServer(t, builtDir(t), Options{MaxBytes: builtMaxBytes})
	vs := volumesOf(t, ts.URL)
	if len(vs) != 2 {
		t.Fatalf("%d volumes, want 2: %+v", len(vs), vs)
	}
	z := find(t, vs, "uint16", 3)
	if fmt.Sprint(z.Shape) != fmt.Sprint(zarrShape[:]) || z.Format != "zarr" || !strings.Contains(z.Path, "vol.zarr") {
		t.Errorf("zarr volume %+v", z)
	}
	if fmt.Sprint(z.Chunks) != "[8 16 16]" {
		t.Errorf("storage chunks %v, want [8 16 16]", z.Chunks)
	}
	want := []float64{30, 4, 4}
	for i, a := range z.Axes {
		if a.Name != "zyx"[i:i+1] || a.VoxelSize == nil || *a.VoxelSize != want[i] || a.Unit != "nanometer" || a.Size != zarrShape[i] {
			t.Errorf("axis %d = %+v, want %s %g nanometer", i, a, "zyx"[i:i+1], want[i])
		}
	}
	tif := find(t, vs, "uint8", 3)
	if fmt.Sprint(tif.Shape) != "[5 24 32]" || tif.Format != "tiff" {
		t.Errorf("tiff volume %+v", tif)
	}
	for _, a := range tif.Axes {
		if a.VoxelSize == nil || *a.VoxelSize != 20 {
			t.Errorf("tiff axis %+v: want 20 nm (0.02 µm in the file)", a)
		}
	}
	// The index links every volume.
	resp, page := get(t, ts.URL+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("index: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, v := range vs {
		if !bytes.Contains(page, []byte(`href="/volumes/`+v.ID+`"`)) {
			t.Errorf("index lacks a link to %s", v.ID)
		}
		resp, b := get(t, ts.URL+"/volumes/"+v.ID)
		var one VolumeInfo
		if resp.StatusCode != 200 || json.Unmarshal(b, &one) != nil || one.ID != v.ID {
			t.Errorf("/volumes/%s: %s %s", v.ID, resp.Status, b)
		}
	}
}

func TestBlocks(t *testing.T) {
	srv, ts := testServer(t, builtDir(t), Options{MaxBytes: builtMaxBytes})
	for _, v := range volumesOf(t, ts.URL) {
		all := readAll(t, srv, v.ID)
		elem := int64(srv.byID[v.ID].in.DType.Size())
		for _, tc := range []struct{ origin, size []int64 }{
			{[]int64{0, 0, 0}, []int64{1, 1, 1}},
			{[]int64{1, 2, 3}, []int64{3, 5, 7}},
			{[]int64{v.Shape[0] - 2, v.Shape[1] - 4, v.Shape[2] - 9}, []int64{2, 4, 9}},
			{[]int64{0, 0, 0}, []int64{1, v.Shape[1], v.Shape[2]}},
		} {
			box := volume.NewBox(tc.origin, tc.size)
			want := make([]byte, box.NumElements()*elem)
			volume.CopyBox(want, box, all, volume.Full(v.Shape), box, int(elem))
			q := fmt.Sprintf("?origin=%s&size=%s", joinInts(tc.origin), joinInts(tc.size))

			resp, raw := get(t, ts.URL+v.BlockURL+q)
			if resp.StatusCode != 200 {
				t.Fatalf("%s%s: %s %s", v.ID, q, resp.Status, raw)
			}
			if !bytes.Equal(raw, want) {
				t.Errorf("%s%s: raw block differs from ReadRegion", v.ID, q)
			}
			if resp.Header.Get("X-Shape") != joinInts(tc.size) || resp.Header.Get("X-DType") != v.DType {
				t.Errorf("%s%s: X-Shape %q X-DType %q", v.ID, q, resp.Header.Get("X-Shape"), resp.Header.Get("X-DType"))
			}

			resp, npy := get(t, ts.URL+v.BlockURL+q+"&format=npy")
			if resp.StatusCode != 200 {
				t.Fatalf("%s%s npy: %s %s", v.ID, q, resp.Status, npy)
			}
			descr, shape, data := parseNPY(t, npy)
			wantDescr, _ := typeStr(volume.DType(v.DType))
			if descr != wantDescr || fmt.Sprint(shape) != fmt.Sprint(tc.size) || !bytes.Equal(data, want) {
				t.Errorf("%s%s npy: descr %q shape %v (%d bytes), want %q %v (%d bytes, equal)", v.ID, q, descr, shape, len(data), wantDescr, tc.size, len(want))
			}
		}
	}
}

// parseNPY reads a version 1.0 .npy file the way numpy's format module does.
func parseNPY(t *testing.T, b []byte) (descr string, shape []int64, data []byte) {
	t.Helper()
	if len(b) < 10 || string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("npy: bad magic/version %q", b[:min(len(b), 8)])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if (10+hl)%64 != 0 || len(b) < 10+hl || b[10+hl-1] != '\n' {
		t.Fatalf("npy: header length %d not 64-aligned or not newline-terminated", hl)
	}
	h := string(b[10 : 10+hl])
	m := regexp.MustCompile(`^\{'descr': '([^']+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n$`).FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("npy: header %q", h)
	}
	for _, p := range strings.Split(m[2], ",") {
		if p = strings.TrimSpace(p); p != "" {
			n, _ := strconv.ParseInt(p, 10, 64)
			shape = append(shape, n)
		}
	}
	return m[1], shape, b[10+hl:]
}

func TestNPYHeader(t *testing.T) {
	for _, tc := range []struct {
		descr string
		shape []int64
		dict  string
	}{
		{"<u2", []int64{2, 3, 4}, "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3, 4), }"},
		{"|u1", []int64{7}, "{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }"},
		{"<f4", nil, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
	} {
		h := npyHeader(tc.descr, tc.shape)
		if len(h)%64 != 0 {
			t.Errorf("%v: header length %d is not a multiple of 64", tc.shape, len(h))
		}
		if got := strings.TrimRight(string(h[10:]), " \n"); got != tc.dict {
			t.Errorf("%v: dict %q, want %q", tc.shape, got, tc.dict)
		}
	}
	for _, tc := range []struct {
		d    volume.DType
		want string
	}{{volume.Uint16, "<u2"}, {volume.Uint8, "|u1"}, {volume.Int16, "<i2"}, {volume.Float32, "<f4"}, {volume.Bool, "|b1"}, {volume.Complex64, "<c8"}, {volume.Float16, "<f2"}} {
		if got, ok := typeStr(tc.d); !ok || got != tc.want {
			t.Errorf("typeStr(%s) = %q %v, want %q", tc.d, got, ok, tc.want)
		}
	}
	if _, ok := typeStr(volume.RGBA8); ok {
		t.Error("rgba8 has no numpy scalar type string")
	}
}

// TestZarrView reads the virtual zarr array of each volume chunk by chunk,
// the way a zarr client does, and reassembles it.
func TestZarrView(t *testing.T) {
	srv, ts := testServer(t, builtDir(t), Options{MaxBytes: builtMaxBytes})
	for _, v := range volumesOf(t, ts.URL) {
		resp, b := get(t, ts.URL+v.ZarrArrayURL+"/.zarray")
		if resp.StatusCode != 200 {
			t.Fatalf("%s .zarray: %s %s", v.ID, resp.Status, b)
		}
		var za struct {
			ZarrFormat int             `json:"zarr_format"`
			Shape      []int64         `json:"shape"`
			Chunks     []int64         `json:"chunks"`
			DType      string          `json:"dtype"`
			Compressor json.RawMessage `json:"compressor"`
			Filters    json.RawMessage `json:"filters"`
			FillValue  json.RawMessage `json:"fill_value"`
			Order      string          `json:"order"`
			Sep        string          `json:"dimension_separator"`
		}
		if err := json.Unmarshal(b, &za); err != nil {
			t.Fatal(err)
		}
		wantDT, _ := typeStr(volume.DType(v.DType))
		if za.ZarrFormat != 2 || fmt.Sprint(za.Shape) != fmt.Sprint(v.Shape) || za.DType != wantDT || string(za.Compressor) != "null" ||
			string(za.Filters) != "null" || string(za.FillValue) != "0" || za.Order != "C" || za.Sep != "." {
			t.Errorf("%s .zarray: %s", v.ID, b)
		}
		elem := int64(volume.DType(v.DType).Size())
		chunkBytes := volume.Prod(za.Chunks) * elem
		if chunkBytes > builtMaxBytes {
			t.Errorf("%s: chunks %v are %d bytes, above the %d cap", v.ID, za.Chunks, chunkBytes, builtMaxBytes)
		}
		got := make([]byte, volume.Prod(v.Shape)*elem)
		full := volume.Full(v.Shape)
		grid := chunkGrid(v.Shape, za.Chunks)
		padded := 0
		err := volume.Grid(v.Shape, za.Chunks, full, func(idx []int64, region volume.Box) error {
			key := joinInts(idx)
			key = strings.ReplaceAll(key, ",", ".")
			resp, c := get(t, ts.URL+v.ZarrArrayURL+"/"+key)
			if resp.StatusCode != 200 || int64(len(c)) != chunkBytes {
				return fmt.Errorf("chunk %s: %s, %d bytes, want %d", key, resp.Status, len(c), chunkBytes)
			}
			cb := volume.Box{Start: make([]int64, 3), Stop: make([]int64, 3)}
			edge := false
			for i := range 3 {
				cb.Start[i] = idx[i] * za.Chunks[i]
				cb.Stop[i] = cb.Start[i] + za.Chunks[i]
				edge = edge || cb.Stop[i] > v.Shape[i]
			}
			volume.CopyBox(got, full, c, cb, region, int(elem))
			if edge {
				padded++
				// Outside the array the chunk holds the fill value.
				inside := make([]byte, len(c))
				volume.CopyBox(inside, cb, c, cb, region, int(elem))
				if !bytes.Equal(inside, c) {
					return fmt.Errorf("edge chunk %s: padding is not zero", key)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", v.ID, err)
		}
		if !bytes.Equal(got, readAll(t, srv, v.ID)) {
			t.Errorf("%s: chunks reassembled differ from the volume", v.ID)
		}
		if v.DType == "uint16" && padded == 0 {
			t.Errorf("%s: grid %v of chunks %v has no edge chunk; the test lost its point", v.ID, grid, za.Chunks)
		}
		resp, b = get(t, ts.URL+v.ZarrURL+"/.zattrs")
		var attrs struct {
			Multiscales []struct {
				Axes []struct {
					Name, Type, Unit string
				}
				Datasets []struct {
					Path                      string
					CoordinateTransformations []struct {
						Type  string
						Scale []float64
					}
				}
			}
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &attrs) != nil || len(attrs.Multiscales) != 1 || len(attrs.Multiscales[0].Datasets) != 1 || attrs.Multiscales[0].Datasets[0].Path != "0" {
			t.Fatalf("%s group .zattrs: %s %s", v.ID, resp.Status, b)
		}
		if err := zarr.ValidateNGFF(b, "0.4"); err != nil {
			t.Errorf("%s group .zattrs: %v\n%s", v.ID, err, b)
		}
		// The group root holds no array: clients would read it as one.
		for _, k := range []string{".zarray", "0.0.0"} {
			resp, msg := get(t, ts.URL+v.ZarrURL+"/"+k)
			if resp.StatusCode != 404 || !strings.Contains(string(msg), v.ZarrArrayURL+"/") {
				t.Errorf("%s/%s: %s %q, want 404 naming %s/", v.ZarrURL, k, resp.Status, msg, v.ZarrArrayURL)
			}
		}
		ms := attrs.Multiscales[0]
		sc := ms.Datasets[0].CoordinateTransformations[0]
		for i, a := range v.Axes {
			if ms.Axes[i].Name != a.Name || ms.Axes[i].Type != "space" || ms.Axes[i].Unit != "nanometer" || sc.Type != "scale" || sc.Scale[i] != *a.VoxelSize {
				t.Errorf("%s .zattrs axis %d: %+v scale %v, want %s %g nanometer", v.ID, i, ms.Axes[i], sc.Scale, a.Name, *a.VoxelSize)
			}
		}
		// Keys that are not there answer 404, as a zarr client expects.
		for _, k := range []string{".zgroup", ".zmetadata", joinInts(grid), strings.Repeat("0.", 3) + "0", "0.0", "00.0.0", "-1.0.0", "+0.0.0", "a.b.c"} {
			if resp, _ := get(t, ts.URL+v.ZarrArrayURL+"/"+strings.ReplaceAll(k, ",", ".")); resp.StatusCode != 404 {
				t.Errorf("%s/%s: %s, want 404", v.ID, k, resp.Status)
			}
		}
	}
}

func TestHeadAndETag(t *testing.T) {
	_, ts := testServer(t, builtDir(t), Options{MaxBytes: builtMaxBytes})
	v := find(t, volumesOf(t, ts.URL), "uint16", 3)
	for _, path := range []string{
		v.ZarrArrayURL + "/.zarray",
		v.ZarrArrayURL + "/1.1.3",
		v.ZarrURL + "/.zattrs",
		v.ZarrURL + "/.zgroup",
		v.BlockURL + "?origin=1,1,1&size=2,3,4",
		v.BlockURL + "?origin=1,1,1&size=2,3,4&format=npy",
	} {
		resp, body := get(t, ts.URL+path)
		tag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || tag == "" {
			t.Fatalf("%s: %s, ETag %q", path, resp.Status, tag)
		}
		req, _ := http.NewRequest(http.MethodHead, ts.URL+path, nil)
		hr, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := io.ReadAll(hr.Body)
		hr.Body.Close()
		if hr.StatusCode != 200 || hr.ContentLength != int64(len(body)) || len(hb) != 0 || hr.Header.Get("ETag") != tag {
			t.Errorf("HEAD %s: %s length %d (GET body %d) ETag %q vs %q", path, hr.Status, hr.ContentLength, len(body), hr.Header.Get("ETag"), tag)
		}
		resp, b := get(t, ts.URL+path, "If-None-Match", tag)
		if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
			t.Errorf("%s If-None-Match: %s, %d bytes", path, resp.Status, len(b))
		}
		if resp, _ := get(t, ts.URL+path, "If-None-Match", `"other"`); resp.StatusCode != 200 {
			t.Errorf("%s with another ETag: %s", path, resp.Status)
		}
	}
	// Different blocks have different tags.
	a, _ := get(t, ts.URL+v.BlockURL+"?origin=0,0,0&size=1,1,1")
	b, _ := get(t, ts.URL+v.BlockURL+"?origin=0,0,1&size=1,1,1")
	if a.Header.Get("ETag") == b.Header.Get("ETag") {
		t.Error("two different blocks share an ETag")
	}
}

// rawRequest sends a request line as written, without any client cleaning
// the path first.
func rawRequest(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target)
	var line string
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, buf, 12)
	line = string(buf[:n])
	code, err := strconv.Atoi(strings.Fields(line)[1])
	if err != nil {
		t.Fatalf("%s: status line %q", target, line)
	}
	return code
}

func TestBadRequests(t *testing.T) {
	dir := builtDir(t)
	_, ts := testServer(t, dir, Options{MaxBytes: builtMaxBytes})
	v := find(t, volumesOf(t, ts.URL), "uint16", 3)
	b := v.BlockURL
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{b + "?origin=0,0,0&size=21,30,44", 400, "reaches past"},
		{b + "?origin=21,0,0&size=1,1,1", 400, "outside the volume"},
		{b + "?origin=-1,0,0&size=1,1,1", 400, "outside the volume"},
		{b + "?origin=0,0,0&size=21,30,43", 400, "limit"}, // 54180 bytes > 4096
		{b + "?origin=0,0,0&size=0,1,1", 400, "positive"},
		{b + "?origin=0,0&size=1,1,1", 400, "3 comma-separated"},
		{b + "?origin=0,0,0&size=1,1", 400, "3 comma-separated"},
		{b + "?origin=0,x,0&size=1,1,1", 400, "not an integer"},
		{b + "?origin=0,0,0&size=1,1,99999999999999999999", 400, "not an integer"},
		{b + "?origin=0,0,0&size=9223372036854775807,9223372036854775807,9223372036854775807", 400, "reaches past"},
		{b + "?origin=0,0,0", 400, "size is required"},
		{b + "?size=1,1,1&size=2,2,2", 400, "2 times"},
		{b + "?size=1,1,1&format=tiff", 400, "raw or npy"},
		{"/volumes/nope/block?size=1,1,1", 404, "no volume"},
		{"/volumes/a%20b/block?size=1,1,1", 400, "not a volume id"},
		{"/volumes/%2e%2e/block?size=1,1,1", 400, "not allowed"},
		{"/volumes/..%2Fetc/block?size=1,1,1", 400, "not allowed"},
		{"/zarr/..%2f..%2fetc/.zarray", 400, "not allowed"},
		{"/zarr/" + v.ID + "/..%2f.zarray", 400, "not allowed"},
		{"/zarr/" + v.ID, 404, "no such resource"},
		{"/elsewhere", 404, "no such resource"},
	} {
		resp, body := get(t, ts.URL+tc.path)
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s: %s %q, want %d containing %q", tc.path, resp.Status, body, tc.code, tc.msg)
		}
	}
	// Paths that a client would clean are rejected when sent as they are.
	addr := strings.TrimPrefix(ts.URL, "http://")
	for _, p := range []string{"/volumes/../volumes", "/zarr/" + v.ID + "/../../catalog.json", "/volumes/./" + v.ID, "/zarr/%2e%2e/%2e%2e/stack.tif"} {
		if code := rawRequest(t, addr, p); code != 400 {
			t.Errorf("raw %s: %d, want 400", p, code)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/volumes", strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s Allow %q", resp.Status, resp.Header.Get("Allow"))
	}

	// A loopback server answers only to loopback names (no DNS rebinding).
	_, lts := testServer(t, dir, Options{Hosts: []string{"127.0.0.1", "localhost", "::1"}})
	if resp, _ := get(t, lts.URL+"/volumes"); resp.StatusCode != 200 {
		t.Errorf("loopback host: %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodGet, lts.URL+"/volumes", nil)
	req.Host = "attacker.example:80"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host: %s, want 421", resp.Status)
	}
}

func TestCORS(t *testing.T) {
	dir := builtDir(t)
	_, ts := testServer(t, dir, Options{})
	if resp, _ := get(t, ts.URL+"/volumes"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header sent without being asked for")
	}
	_, cts := testServer(t, dir, Options{CORSOrigin: "https://viewer.example"})
	if resp, _ := get(t, cts.URL+"/volumes"); resp.Header.Get("Access-Control-Allow-Origin") != "https://viewer.example" {
		t.Errorf("CORS origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// A viewer probes keys that are not there (neuroglancer asks for
	// .zarray and zarr.json at a group's root): the 404 must reach its
	// script, which a response without the CORS header would not.
	v := volumesOf(t, cts.URL)[0]
	if resp, _ := get(t, cts.URL+v.ZarrURL+"/.zarray"); resp.StatusCode != 404 || resp.Header.Get("Access-Control-Allow-Origin") != "https://viewer.example" {
		t.Errorf("missing key: %s, CORS origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	req, _ := http.NewRequest(http.MethodOptions, cts.URL+v.ZarrArrayURL+"/0.0.0", nil)
	req.Header.Set("Origin", "https://viewer.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "range")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Headers") != "range" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %s %v", resp.Status, resp.Header)
	}
	// Without --cors a preflight is an ordinary refused method.
	req.URL, _ = url.Parse(ts.URL + v.ZarrArrayURL + "/0.0.0")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("preflight without CORS: %s", resp.Status)
	}
}

func TestIDs(t *testing.T) {
	dir := builtDir(t)
	a, _ := testServer(t, dir, Options{})
	b, _ := testServer(t, dir, Options{})
	va, vb := a.Volumes(), b.Volumes()
	for i := range va {
		if va[i].ID != vb[i].ID || !validID(va[i].ID) {
			t.Errorf("id %q / %q: not stable or not valid", va[i].ID, vb[i].ID)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, catalogFile)); err == nil {
		t.Fatal("the built directory must not have a catalog.json")
	}
}
