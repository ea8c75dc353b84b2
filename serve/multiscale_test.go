package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/n5"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// pyramidLevels is the number of levels of every pyramid pyramidDir writes.
const pyramidLevels = 3

// pyramidDir writes one pyramid of pyramidLevels levels in each multiscale
// format the server groups: an OME-Zarr, an N5 s0/s1/s2 tree and a
// precomputed volume, all of zarrShape with a 30 nm z and 4 nm y and x.
func pyramidDir(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	defer st.Close()
	src := u16(t, zarrShape)
	if err := zarr.WriteNGFF(ctx, st, "pyr.zarr", src, zarr.WriteOptions{Chunks: []int64{8, 16, 16}, Levels: pyramidLevels, Name: "pyr"}); err != nil {
		t.Fatal(err)
	}
	// Its own store: N5 writes a root attributes.json at the store's root.
	n5st := store.New(store.NewFile(filepath.Join(dir, "pyr.n5")))
	defer n5st.Close()
	var lv volume.Volume = src
	for k := range pyramidLevels {
		if k > 0 {
			var err error
			if lv, err = volume.Downsample(lv, []int64{2, 2, 2}, volume.Mean); err != nil {
				t.Fatal(err)
			}
		}
		if err := n5.Write(ctx, n5st, fmt.Sprintf("s%d", k), lv, n5.WriteOptions{BlockSize: []int64{8, 16, 16}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := precomputed.Write(ctx, st, "pyr.precomputed", src, precomputed.WriteOptions{ChunkSize: [3]int64{16, 16, 8}, Resolution: [3]float64{4, 4, 30}, Scales: pyramidLevels}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ngffAttrs is what the tests read of a group's .zattrs.
type ngffAttrs struct {
	Multiscales []struct {
		Version string
		Axes    []ngffAxis
		// Datasets are the levels.
		Datasets []struct {
			Path                      string
			CoordinateTransformations []struct {
				Type        string
				Scale       []float64
				Translation []float64
			}
		}
	}
}

func getJSON(t *testing.T, url string, v any) []byte {
	t.Helper()
	resp, b := get(t, url)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return b
}

// TestMultiscaleGroups checks that every pyramid is served as one NGFF 0.4
// group whose levels are the volumes of its levels, with their shapes, their
// scales in nanometres and their bytes, and that the coarser levels point to it.
func TestMultiscaleGroups(t *testing.T) {
	srv, ts := testServer(t, pyramidDir(t), Options{MaxBytes: builtMaxBytes})
	vs := volumesOf(t, ts.URL)
	byID := map[string]VolumeInfo{}
	for _, v := range vs {
		byID[v.ID] = v
	}
	formats := map[string]bool{}
	for _, v := range vs {
		if v.Pyramid != "" {
			if base := byID[v.Pyramid]; !strings.Contains(strings.Join(base.ZarrLevels, " "), v.ID) {
				t.Errorf("%s names %s as its pyramid, whose levels are %v", v.ID, v.Pyramid, base.ZarrLevels)
			}
			if len(v.ZarrLevels) != 1 || v.ZarrLevels[0] != v.ID {
				t.Errorf("coarser level %s: its own group has levels %v, want itself", v.ID, v.ZarrLevels)
			}
			continue
		}
		if len(v.ZarrLevels) != pyramidLevels {
			t.Errorf("%s (%s): %d levels %v, want %d", v.ID, v.Format, len(v.ZarrLevels), v.ZarrLevels, pyramidLevels)
			continue
		}
		formats[v.Format] = true
		var attrs ngffAttrs
		b := getJSON(t, ts.URL+v.ZarrURL+"/.zattrs", &attrs)
		if err := zarr.ValidateNGFF(b, "0.4"); err != nil {
			t.Errorf("%s .zattrs: %v\n%s", v.ID, err, b)
		}
		var zg map[string]int
		if getJSON(t, ts.URL+v.ZarrURL+"/.zgroup", &zg); zg["zarr_format"] != 2 {
			t.Errorf("%s .zgroup: %v", v.ID, zg)
		}
		ms := attrs.Multiscales[0]
		if got := axisList(ms.Axes); got != "z,y,x" {
			t.Errorf("%s: axes %s", v.ID, got)
		}
		for _, a := range ms.Axes {
			if a.Type != "space" || a.Unit != "nanometer" {
				t.Errorf("%s: axis %+v, want a space axis in nanometer", v.ID, a)
			}
		}
		var prev []float64
		for k, ds := range ms.Datasets {
			lv := byID[v.ZarrLevels[k]]
			if ds.Path != fmt.Sprint(k) {
				t.Errorf("%s level %d: path %q", v.ID, k, ds.Path)
			}
			scale := ds.CoordinateTransformations[0].Scale
			for i, a := range lv.Axes {
				// The level's own voxel size, as its reader states it.
				if a.VoxelSize == nil || scale[i] != *a.VoxelSize {
					t.Errorf("%s level %d axis %s: scale %g, the level's voxel size %v", v.ID, k, a.Name, scale[i], a.VoxelSize)
				}
				if k > 0 && !(scale[i] > prev[i]) {
					t.Errorf("%s level %d axis %s: scale %g not coarser than %g", v.ID, k, a.Name, scale[i], prev[i])
				}
			}
			if k == 0 && (scale[0] != 30 || scale[1] != 4 || scale[2] != 4) {
				t.Errorf("%s level 0: scale %v, want the anisotropic 30,4,4 nm", v.ID, scale)
			}
			prev = scale
			// The level is the volume: same shape, same bytes.
			var za zarray
			getJSON(t, fmt.Sprintf("%s%s/%d/.zarray", ts.URL, v.ZarrURL, k), &za)
			if fmt.Sprint(za.Shape) != fmt.Sprint(lv.Shape) {
				t.Errorf("%s level %d: shape %v, volume %s has %v", v.ID, k, za.Shape, lv.ID, lv.Shape)
			}
			checkChunk(t, srv, ts, fmt.Sprintf("%s/%d", v.ZarrURL, k), lv.ID, za)
		}
	}
	for _, f := range []string{"zarr", "n5", "precomputed"} {
		if !formats[f] {
			t.Errorf("no %s pyramid served as a group (%v)", f, formats)
		}
	}
	if resp, page := get(t, ts.URL+"/"); resp.StatusCode != 200 || strings.Count(string(page), fmt.Sprintf("(%d levels)", pyramidLevels)) != 3 {
		t.Errorf("index page: %s, does not show the 3 pyramids' levels", resp.Status)
	}
	// A level past the last, or spelled otherwise, is not there.
	v := vs[0]
	for _, p := range []string{fmt.Sprint(len(v.ZarrLevels)), "00", "-1", "+0", "1e0"} {
		if resp, _ := get(t, ts.URL+v.ZarrURL+"/"+p+"/.zarray"); resp.StatusCode != 404 {
			t.Errorf("level %q: %s, want 404", p, resp.Status)
		}
	}
}

// paddedRead reads the zarr chunk chunk of e directly from its volume, as a
// Zarr v2 chunk holds it: whole, the part past the volume's end zero.
func paddedRead(t *testing.T, e *entry, chunk volume.Box) []byte {
	t.Helper()
	elem := int64(e.in.DType.Size())
	region := volume.Box{Start: chunk.Start, Stop: make([]int64, len(chunk.Stop))}
	for i := range chunk.Stop {
		region.Stop[i] = min(chunk.Stop[i], e.Shape[i])
	}
	part := make([]byte, region.NumElements()*elem)
	if err := e.vol.ReadRegion(context.Background(), region, part); err != nil {
		t.Fatal(err)
	}
	full := make([]byte, chunk.NumElements()*elem)
	volume.CopyBox(full, chunk, part, region, region, int(elem))
	return full
}

// checkChunk compares the last chunk of the array at url (an edge chunk when
// the grid does not divide the shape) with a direct read of volume id.
func checkChunk(t *testing.T, srv *Server, ts *httptest.Server, url, id string, za zarray) {
	t.Helper()
	idx := chunkGrid(za.Shape, za.Chunks)
	for i := range idx {
		idx[i]--
	}
	resp, got := get(t, ts.URL+url+"/"+strings.ReplaceAll(joinInts(idx), ",", "."))
	if resp.StatusCode != 200 {
		t.Fatalf("%s chunk %v: %s", url, idx, resp.Status)
	}
	cb := volume.Box{Start: make([]int64, len(idx)), Stop: make([]int64, len(idx))}
	for i := range idx {
		cb.Start[i] = idx[i] * za.Chunks[i]
		cb.Stop[i] = cb.Start[i] + za.Chunks[i]
	}
	want := paddedRead(t, srv.byID[id], cb)
	if string(got) != string(want) {
		t.Errorf("%s chunk %v differs from a direct read of %s", url, idx, id)
	}
}

// TestGroupZarrPython opens every pyramid's group with zarr-python over HTTP
// (zarr.open_group on an fsspec HTTP store, as napari's ome-zarr reader and
// training code do) and checks that it sees the levels 0..n-1 with the
// shapes of the level volumes, the multiscales paths, and the bytes; and
// that zarr.open_consolidated lists the same levels.
func TestGroupZarrPython(t *testing.T) {
	py := zarrPython(t)
	srv, ts := testServer(t, pyramidDir(t), Options{MaxBytes: builtMaxBytes})
	script := `
import hashlib, json, sys
import numpy as np, zarr
from zarr.storage import FSStore
out = {}
for vid in sys.argv[2:]:
    g = zarr.open_group(FSStore(sys.argv[1] + "/zarr/" + vid, mode="r"), mode="r")
    ms = g.attrs["multiscales"][0]
    levels = []
    for d in ms["datasets"]:
        a = g[d["path"]]
        levels.append({"path": d["path"], "shape": list(a.shape), "sha": hashlib.sha256(np.ascontiguousarray(a[...]).astype("<u2").tobytes()).hexdigest()})
    # An HTTP store cannot be listed: the consolidated metadata lists the arrays.
    c = zarr.open_consolidated(FSStore(sys.argv[1] + "/zarr/" + vid, mode="r"), mode="r")
    out[vid] = {"arrays": sorted(k for k, _ in c.arrays()), "levels": levels}
print(json.dumps(out))
`
	var ids []string
	for _, v := range srv.Volumes() {
		if len(v.ZarrLevels) > 1 {
			ids = append(ids, v.ID)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("%d pyramids, want 3", len(ids))
	}
	var got map[string]struct {
		Arrays []string
		Levels []struct {
			Path  string
			Shape []int64
			SHA   string
		}
	}
	outputJSON(t, "zarr-python", exec.Command(py, append([]string{"-c", script, ts.URL}, ids...)...), &got)
	for _, id := range ids {
		g := got[id]
		levels := srv.byID[id].ZarrLevels
		if len(g.Levels) != len(levels) || len(g.Arrays) != len(levels) {
			t.Errorf("%s: zarr-python sees arrays %v and levels %+v, want %d", id, g.Arrays, g.Levels, len(levels))
			continue
		}
		for k, l := range g.Levels {
			e := srv.byID[levels[k]]
			sum := sha256.Sum256(readAll(t, srv, e.ID))
			if l.Path != fmt.Sprint(k) || g.Arrays[k] != l.Path || fmt.Sprint(l.Shape) != fmt.Sprint(e.Shape) || l.SHA != hex.EncodeToString(sum[:]) {
				t.Errorf("%s level %d: zarr-python %+v, want path %d shape %v sha256 %x", id, k, l, k, e.Shape, sum)
			}
		}
	}
}

// TestNGFFAxes checks which axes an NGFF 0.4 multiscales can describe, and
// that those it describes validate against the schema.
func TestNGFFAxes(t *testing.T) {
	for _, tc := range []struct {
		axes string
		ok   bool
	}{
		{"zyx", true},
		{"yx", true},
		{"czyx", true},
		{"tczyx", true},
		{"tyx", true},
		{"x", false},     // one space axis
		{"zcyx", false},  // channel after space
		{"ctzyx", false}, // time after channel
		{"tczyxq", false},
		{"qcyx", false}, // a custom axis and a channel
	} {
		e := &entry{}
		for _, c := range tc.axes {
			e.Axes = append(e.Axes, Axis{Name: string(c), Size: 4})
			e.Shape = append(e.Shape, 4)
		}
		e.ID = "v"
		axes, err := ngffAxes(e)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.axes, err, tc.ok)
			continue
		}
		attrs := groupAttrs([]*entry{e})
		b, jerr := json.Marshal(attrs)
		if jerr != nil {
			t.Fatal(jerr)
		}
		if !tc.ok {
			if _, has := attrs["multiscales"]; has || !strings.Contains(string(b), "no multiscales") {
				t.Errorf("%s: attributes %s, want no multiscales and the reason", tc.axes, b)
			}
			continue
		}
		if len(axes) != len(tc.axes) {
			t.Errorf("%s: %d axes", tc.axes, len(axes))
		}
		if err := zarr.ValidateNGFF(b, "0.4"); err != nil {
			t.Errorf("%s: %v\n%s", tc.axes, err, b)
		}
	}
}

// TestLevelTransform checks the scale and translation of a coarser level:
// its own when its file states them, derived from the finest level's when its
// voxel size came from elsewhere (a web page's size describes the finest
// level) or is unknown.
func TestLevelTransform(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	base := &entry{VolumeInfo: VolumeInfo{Shape: []int64{100, 200}, Axes: []Axis{
		{Name: "y", VoxelSize: f(8), Unit: "nanometer", Offset: 10, Source: "web page"},
		{Name: "x", VoxelSize: f(4), Unit: "nanometer", Source: "file"},
	}}}
	for _, tc := range []struct {
		name         string
		axes         []Axis
		shape        []int64
		scale, trans string
	}{
		{"own", []Axis{{Name: "y", VoxelSize: f(16), Unit: "nanometer", Offset: 14, Source: "file"}, {Name: "x", VoxelSize: f(8), Unit: "nanometer", Offset: 2, Source: "file"}},
			[]int64{50, 100}, "[16 8]", "[14 2]"},
		{"hint", []Axis{{Name: "y", VoxelSize: f(8), Unit: "nanometer", Source: "web page"}, {Name: "x", VoxelSize: f(8), Unit: "nanometer", Offset: 2, Source: "file"}},
			[]int64{25, 100}, "[32 8]", "[22 2]"},
		{"unknown", []Axis{{Name: "y"}, {Name: "x"}}, []int64{50, 51}, "[16 16]", "[14 6]"},
		{"other unit", []Axis{{Name: "y", VoxelSize: f(0.016), Unit: "micrometer", Source: "file"}, {Name: "x", VoxelSize: f(8), Unit: "nanometer", Source: "file"}},
			[]int64{50, 100}, "[16 8]", "[14 0]"},
	} {
		lv := &entry{VolumeInfo: VolumeInfo{Shape: tc.shape, Axes: tc.axes}}
		scale, trans := levelTransform(base, lv, 1)
		if fmt.Sprint(scale) != tc.scale || fmt.Sprint(trans) != tc.trans {
			t.Errorf("%s: scale %v translation %v, want %s %s", tc.name, scale, trans, tc.scale, tc.trans)
		}
	}
	if scale, trans := levelTransform(base, base, 0); fmt.Sprint(scale) != "[8 4]" || fmt.Sprint(trans) != "[10 0]" {
		t.Errorf("level 0: scale %v translation %v", scale, trans)
	}
}

// TestGroupLevels checks which entries form a pyramid, from the metadata
// each reader states.
func TestGroupLevels(t *testing.T) {
	type spec struct {
		id, path, name, dtype string
		shape                 int64
		md                    map[string]any
	}
	for _, tc := range []struct {
		name    string
		entries []spec
		want    string // the groups of more than one level, by id
	}{
		{"ngff", []spec{
			{"a1", "a.zarr", "s1", "|u1", 50, map[string]any{"level": 1, "multiscale_name": "m"}},
			{"a0", "a.zarr", "s0", "|u1", 100, map[string]any{"level": 0, "multiscale_name": "m"}},
			{"b0", "a.zarr", "labels/c/0", "|u1", 100, map[string]any{"level": 0, "multiscale_name": "c"}},
			{"b1", "a.zarr", "labels/c/1", "|u1", 50, map[string]any{"level": 1, "multiscale_name": "c"}},
		}, "[[a0 a1] [b0 b1]]"},
		{"ngff levels in directories of their own", []spec{
			{"i0", "a.zarr", "scale0/image", "|u1", 100, map[string]any{"level": 0, "multiscale_name": "image", "multiscale_group": ""}},
			{"i1", "a.zarr", "scale1/image", "|u1", 50, map[string]any{"level": 1, "multiscale_name": "image", "multiscale_group": ""}},
			{"l0", "a.zarr", "labels/scale0/image", "|u1", 100, map[string]any{"level": 0, "multiscale_name": "image", "multiscale_group": "labels"}},
		}, "[[i0 i1]]"},
		{"precomputed", []spec{
			{"p0", "p", "8x8x8", "<u2", 100, map[string]any{"scale_index": 0, "scale_key": "8x8x8"}},
			{"p1", "p", "16x16x16", "<u2", 50, map[string]any{"scale_index": 1, "scale_key": "16x16x16"}},
		}, "[[p0 p1]]"},
		{"tiff subifds", []spec{
			{"t0", "t.tif", "series0", "|u1", 100, nil},
			{"t1", "t.tif", "series0/1", "|u1", 50, map[string]any{"level": 1, "level_of": "series0"}},
			{"u0", "t.tif", "series1", "|u1", 100, nil},
		}, "[[t0 t1]]"},
		{"another unit", []spec{
			{"x0", "x.n5", "s0", "|u1", 100, map[string]any{"level": 0}},
			{"y1", "y.n5", "s1", "|u1", 50, map[string]any{"level": 1}},
		}, "[]"},
		{"not a downsampling", []spec{
			{"n0", "n.n5", "s0", "|u1", 100, map[string]any{"level": 0}},
			{"n1", "n.n5", "s1", "<u2", 50, map[string]any{"level": 1}},  // another dtype
			{"n2", "n.n5", "s2", "|u1", 100, map[string]any{"level": 2}}, // not smaller
			{"n3", "n.n5", "s3", "|u1", 25, map[string]any{"level": 3}},
			{"n4", "n.n5", "s4", "|u1", 12, map[string]any{"level": 3}}, // a second level 3
		}, "[[n0 n3]]"},
	} {
		var list []*entry
		for _, s := range tc.entries {
			e := &entry{zdt: s.dtype, in: volume.Info{Name: s.name, Metadata: s.md}}
			e.ID, e.Shape = s.id, []int64{s.shape, s.shape}
			e.Axes = []Axis{{Name: "y"}, {Name: "x"}}
			e.rec.Dataset, e.rec.LocalPath = "d", s.path
			list = append(list, e)
		}
		groups := groupLevels(list)
		var multi [][]string
		for _, e := range list {
			if ids := groups[e.ID]; len(ids) > 1 {
				multi = append(multi, ids)
			} else if len(ids) != 1 || ids[0] != e.ID {
				t.Errorf("%s: %s has the group %v", tc.name, e.ID, ids)
			}
		}
		if got := fmt.Sprint(multi); got != tc.want {
			t.Errorf("%s: pyramids %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestCorpusPyramid serves a copy of an NGFF 0.4 pyramid another program
// wrote (neuroglancer's test data, its levels in directories of their own:
// scale0/image, scale1/image) and checks that its group has the levels the
// store holds, in order, with the scales, translations and units the store's
// own multiscales give them.
func TestCorpusPyramid(t *testing.T) {
	const rel = "zarr/neuroglancer/ome_zarr/simple_0.4"
	src := filepath.Join(corpus.Dir(t), filepath.FromSlash(rel))
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "ng", "simple.zarr"), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(src, ".zattrs"))
	if err != nil {
		t.Fatal(err)
	}
	var file ngffAttrs
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	_, ts := testServer(t, dir, Options{})
	var base VolumeInfo
	for _, v := range volumesOf(t, ts.URL) {
		if v.Pyramid == "" && len(v.ZarrLevels) > 1 {
			base = v
		}
	}
	if base.ID == "" {
		t.Fatalf("%s: no pyramid served (%+v)", rel, volumesOf(t, ts.URL))
	}
	var got ngffAttrs
	getJSON(t, ts.URL+base.ZarrURL+"/.zattrs", &got)
	fm, gm := file.Multiscales[0], got.Multiscales[0]
	// The store lists levels it does not hold (scale2/image); the group
	// has those it holds, in the store's order.
	k := 0
	for _, ds := range fm.Datasets {
		if _, err := os.Stat(filepath.Join(src, filepath.FromSlash(ds.Path), ".zarray")); err != nil {
			continue
		}
		if k >= len(gm.Datasets) {
			t.Fatalf("the group has %d levels; the store holds %s too", len(gm.Datasets), ds.Path)
		}
		want, have := ds.CoordinateTransformations, gm.Datasets[k].CoordinateTransformations
		if fmt.Sprint(want) != fmt.Sprint(have) {
			t.Errorf("level %d (%s): transforms %v, the store's %v", k, ds.Path, have, want)
		}
		k++
	}
	if k < 2 || k != len(gm.Datasets) {
		t.Errorf("the group has %d levels, the store holds %d", len(gm.Datasets), k)
	}
	if fmt.Sprint(gm.Axes) != fmt.Sprint(fm.Axes) {
		t.Errorf("axes %v, the store's %v", gm.Axes, fm.Axes)
	}
}
