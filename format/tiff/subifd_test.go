package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// pyramid returns n top-level pages of w×h, each with SubIFDs halving the
// size levels-1 times, every page with distinct pixels.
func pyramid(n, w, h, levels int, res uint32) []*tPage {
	var pages []*tPage
	for i := range n {
		p := &tPage{w: w, h: h, base: byte(10 * i), res: res, pad: 5 + 37*i}
		for l := 1; l < levels; l++ {
			p.subs = append(p.subs, &tPage{w: w >> l, h: h >> l, base: byte(10*i + 100*l)})
		}
		pages = append(pages, p)
	}
	return pages
}

// patchU32 replaces the first little-endian occurrence of old in b with v.
func patchU32(t *testing.T, b []byte, old, v uint32) {
	t.Helper()
	o := binary.LittleEndian.AppendUint32(nil, old)
	i := bytes.Index(b, o)
	if i < 0 {
		t.Fatalf("placeholder %#x not found", old)
	}
	binary.LittleEndian.PutUint32(b[i:], v)
}

func openBytes(t *testing.T, b []byte) []volume.Volume {
	t.Helper()
	vs, err := open(context.Background(), memStore(t, b), "f.tif", defaultMaxChunk)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestSubIFDPyramid(t *testing.T) {
	ctx := context.Background()
	pages := pyramid(3, 64, 48, 3, 20000) // 0.5 µm pixels, stated per cm
	vs := openBytes(t, buildTIFF(pages, 0))
	if len(vs) != 3 {
		t.Fatalf("%d volumes, want the series and 2 levels", len(vs))
	}
	want := []struct {
		name  string
		shape []int64
		level int
		ds    float64
	}{
		{"f.tif", []int64{3, 48, 64}, 0, 1},
		{"f.tif#level1", []int64{3, 24, 32}, 1, 2},
		{"f.tif#level2", []int64{3, 12, 16}, 2, 4},
	}
	for i, w := range want {
		in := vs[i].Info()
		if in.Name != w.name || !eqShape(in.Shape, w.shape) {
			t.Errorf("volume %d: %s %v, want %s %v", i, in.Name, in.Shape, w.name, w.shape)
			continue
		}
		var lv []*tPage
		for _, p := range pages {
			if w.level == 0 {
				lv = append(lv, p)
			} else {
				lv = append(lv, p.subs[w.level-1])
			}
		}
		got, err := readAll(ctx, vs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, stackPixels(lv...)) {
			t.Errorf("%s: pixels differ", in.Name)
		}
		x := in.Axes[2]
		if !x.ScaleKnown || x.Unit != "cm" || math.Abs(x.Scale-w.ds*5e-5) > 1e-15 {
			t.Errorf("%s: x axis %+v, want %g cm", in.Name, x, w.ds*5e-5)
		}
		if w.level == 0 {
			if in.Metadata["pyramid_levels"] != 3 {
				t.Errorf("pyramid_levels %v", in.Metadata["pyramid_levels"])
			}
			continue
		}
		ds, _ := in.Metadata["downsampling"].([]float64)
		if in.Metadata["level"] != w.level || len(ds) != 3 || ds[0] != 1 || ds[1] != w.ds || ds[2] != w.ds || in.Metadata["level_of"] != "f.tif" {
			t.Errorf("%s: level %v downsampling %v level_of %v", in.Name, in.Metadata["level"], ds, in.Metadata["level_of"])
		}
	}
	volumetest.Run(t, vs[1], stackPixels(pages[0].subs[0], pages[1].subs[0], pages[2].subs[0]), 0)
}

// TestSubIFDSameSize checks tifffile's generic rule on image-tiff's
// subsubifds.tif shape: SubIFDs the size of their parent join its series,
// in file order (page, its SubIFDs, next page).
func TestSubIFDSameSize(t *testing.T) {
	p0 := &tPage{w: 8, h: 4, base: 1}
	p1 := &tPage{w: 8, h: 4, base: 2, subs: []*tPage{{w: 8, h: 4, base: 3}, {w: 8, h: 4, base: 4}}}
	p2 := &tPage{w: 8, h: 4, base: 5}
	vs := openBytes(t, buildTIFF([]*tPage{p0, p1, p2}, 0))
	if len(vs) != 1 || !eqShape(vs[0].Info().Shape, []int64{5, 4, 8}) {
		t.Fatalf("%d volumes, shape %v; want one of [5 4 8]", len(vs), vs[0].Info().Shape)
	}
	got, err := readAll(context.Background(), vs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, stackPixels(p0, p1, p1.subs[0], p1.subs[1], p2)) {
		t.Error("pages are not in tifffile's order")
	}
}

// TestSubIFDHostile feeds SubIFD trees that loop, nest, repeat and point
// outside the file: Open must end quickly with what it can read.
func TestSubIFDHostile(t *testing.T) {
	const hole = 0xDEAD0001
	cases := []struct {
		name  string
		build func(t *testing.T) []byte
		want  [][]int64 // shapes of the volumes
	}{
		{"self loop", func(t *testing.T) []byte {
			p := &tPage{w: 8, h: 8, rawSubs: []uint32{hole}}
			b := buildTIFF([]*tPage{p}, 0)
			patchU32(t, b, hole, uint32(p.off))
			return b
		}, [][]int64{{8, 8}}},
		{"sub points at its parent and the next page", func(t *testing.T) []byte {
			s := &tPage{w: 4, h: 4, rawSubs: []uint32{hole}}
			p0 := &tPage{w: 8, h: 8, subs: []*tPage{s}, rawSubs: []uint32{hole + 1}}
			p1 := &tPage{w: 8, h: 8, base: 9}
			b := buildTIFF([]*tPage{p0, p1}, 0)
			patchU32(t, b, hole, uint32(p0.off))
			patchU32(t, b, hole+1, uint32(p1.off))
			return b
		}, [][]int64{{2, 8, 8}, {4, 4}}},
		{"nested SubIFDs are not followed", func(t *testing.T) []byte {
			deep := &tPage{w: 2, h: 2}
			mid := &tPage{w: 4, h: 4, subs: []*tPage{deep}}
			return buildTIFF([]*tPage{{w: 8, h: 8, subs: []*tPage{mid}}}, 0)
		}, [][]int64{{8, 8}, {4, 4}}},
		{"offsets outside the file and into pixels", func(t *testing.T) []byte {
			p := &tPage{w: 8, h: 8, base: 0xff, rawSubs: []uint32{1 << 30, 3, 20}}
			return buildTIFF([]*tPage{p}, 0)
		}, [][]int64{{8, 8}}},
		{"a huge SubIFD count", func(t *testing.T) []byte {
			p := &tPage{w: 8, h: 8, rawSubs: make([]uint32, 2000)}
			for i := range p.rawSubs {
				p.rawSubs[i] = hole
			}
			b := buildTIFF([]*tPage{p}, 0)
			for range p.rawSubs {
				patchU32(t, b, hole, 8)
			}
			return b
		}, [][]int64{{8, 8}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := openBytes(t, c.build(t))
			var got [][]int64
			for _, v := range vs {
				got = append(got, v.Info().Shape)
				if _, err := readAll(context.Background(), v); err != nil {
					t.Errorf("%s: %v", v.Info().Name, err)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("shapes %v, want %v", got, c.want)
			}
			for i := range got {
				if !eqShape(got[i], c.want[i]) {
					t.Errorf("shapes %v, want %v", got, c.want)
				}
			}
		})
	}
}

// The oracle writes a pyramid with tifffile (subifds=) and reports the
// shape and checksum of every level of series 0.
const tifffilePyramid = `
import sys, json, hashlib
import numpy as np, tifffile
path = sys.argv[1]
kw = dict(metadata={'axes': 'ZYX'}) if path.endswith('.ome.tif') else {}
rng = np.random.default_rng(7)
data = rng.integers(0, 65535, (3, 96, 80), dtype=np.uint16)
with tifffile.TiffWriter(path) as w:
    w.write(data, subifds=2, tile=(32, 32), compression='zlib', resolution=(4.0, 4.0), resolutionunit='CENTIMETER', **kw)
    w.write(data[:, ::2, ::2], subfiletype=1, tile=(32, 32), compression='zlib')
    w.write(data[:, ::4, ::4], subfiletype=1, tile=(32, 32), compression='zlib')
out = []
with tifffile.TiffFile(path) as t:
    for lv in t.series[0].levels:
        a = np.ascontiguousarray(lv.asarray().astype('<u2'))
        out.append(dict(shape=list(a.shape), sha=hashlib.sha256(a.tobytes()).hexdigest()[:16]))
print(json.dumps(dict(levels=out, n_series=len(t.series))))
`

func TestSubIFDPyramidTifffile(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import tifffile, numpy, zlib").CombinedOutput(); err != nil {
		t.Skipf("tifffile oracle unavailable (%v): %s; install python3-tifffile", err, out)
	}
	for _, name := range []string{"pyramid.tif", "pyramid.ome.tif"} {
		t.Run(name, func(t *testing.T) { checkTifffilePyramid(t, py, filepath.Join(t.TempDir(), name)) })
	}
}

func checkTifffilePyramid(t *testing.T, py, path string) {
	out, err := exec.CommandContext(context.Background(), py, "-c", tifffilePyramid, path).Output()
	if err != nil {
		t.Fatalf("tifffile: %v", err)
	}
	var want struct {
		Levels []struct {
			Shape []int64 `json:"shape"`
			SHA   string  `json:"sha"`
		} `json:"levels"`
		NSeries int `json:"n_series"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("tifffile output %q: %v", out, err)
	}
	if len(want.Levels) != 3 {
		t.Fatalf("tifffile sees %d levels: %s", len(want.Levels), out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vs := openBytes(t, b)
	if len(vs) != 3 {
		t.Fatalf("%d volumes, want 3 (tifffile: %d series, %d levels)", len(vs), want.NSeries, len(want.Levels))
	}
	ctx := context.Background()
	for i, w := range want.Levels {
		in := vs[i].Info()
		got, err := readAll(ctx, vs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !eqShape(in.Shape, w.Shape) || sha16(got) != w.SHA {
			t.Errorf("level %d (%s): %v %s, tifffile %v %s", i, in.Name, in.Shape, sha16(got), w.Shape, w.SHA)
		}
		if i > 0 && in.Metadata["level"] != i {
			t.Errorf("level %d: metadata level %v", i, in.Metadata["level"])
		}
	}
	if strings.HasSuffix(path, ".ome.tif") {
		if vs[0].Info().Metadata["ome"] != true {
			t.Error("OME-TIFF not read as OME")
		}
		return
	}
	// 4 pixels per cm at level 0: 0.25 cm, doubled per level.
	if x := vs[2].Info().Axes[2]; !x.ScaleKnown || math.Abs(x.Scale-1) > 1e-12 || x.Unit != "cm" {
		t.Errorf("level 2 x axis %+v, want 1 cm", x)
	}
}
