package serve

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// neuroglancerDir returns the neuroglancer package scripts/neuroglancer-oracle
// installs ($IMGDATASET_NEUROGLANCER, else its default place), and node; the
// test is skipped, saying what is missing, when either is.
func neuroglancerDir(t *testing.T) (dir, node string) {
	t.Helper()
	dir = os.Getenv("IMGDATASET_NEUROGLANCER")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("neuroglancer oracle: no cache directory (%v); set IMGDATASET_NEUROGLANCER", err)
		}
		dir = filepath.Join(cache, "imgdataset", "neuroglancer-2.41.2")
	}
	if _, err := os.Stat(filepath.Join(dir, "lib", "datasource", "zarr", "ome.js")); err != nil {
		t.Skipf("neuroglancer oracle not installed in %s (run scripts/neuroglancer-oracle): %v", dir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("neuroglancer oracle: node not found: %v", err)
	}
	return dir, node
}

// ngParse is neuroglancer's own parser of OME-NGFF metadata
// (parseOmeMetadata of its zarr datasource) applied to a group's .zattrs:
// the coordinate space it shows and, per level, the URL it reads and the
// level's transform into that space.
const ngParse = `
const { parseOmeMetadata } = await import(process.argv[2] + "/lib/datasource/zarr/ome.js");
const r = parseOmeMetadata(process.argv[3], JSON.parse(process.argv[4]), 2);
const cs = r.multiscale.coordinateSpace;
console.log(JSON.stringify({
  names: cs.names, units: cs.units, scales: Array.from(cs.scales),
  levels: r.multiscale.scales.map((s) => ({ url: s.url, transform: Array.from(s.transform) })),
}));
`

// TestNeuroglancerReadsGroups runs neuroglancer's parser on the .zattrs of
// every pyramid's group: it must show the axes z, y, x (not d0, d1, d2) in
// metres with the voxel size of the finest level, read each level at
// ZarrURL/k/, and place level k by the ratio of its voxel size to level 0's.
func TestNeuroglancerReadsGroups(t *testing.T) {
	ng, node := neuroglancerDir(t)
	script := filepath.Join(t.TempDir(), "parse.mjs")
	if err := os.WriteFile(script, []byte(ngParse), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, ts := testServer(t, pyramidDir(t), Options{MaxBytes: builtMaxBytes})
	n := 0
	for _, v := range srv.Volumes() {
		if len(v.ZarrLevels) < 2 {
			continue
		}
		n++
		_, attrs := get(t, ts.URL+v.ZarrURL+"/.zattrs")
		base := ts.URL + v.ZarrURL + "/"
		var got struct {
			Names, Units []string
			Scales       []float64
			Levels       []struct {
				URL       string
				Transform []float64
			}
		}
		outputJSON(t, v.ID+": neuroglancer's parser", exec.Command(node, script, ng, base, string(attrs)), &got)
		if fmt.Sprint(got.Names) != "[z y x]" || fmt.Sprint(got.Units) != "[m m m]" || len(got.Levels) != len(v.ZarrLevels) {
			t.Errorf("%s: neuroglancer shows axes %v in %v with %d levels, want z y x in m with %d", v.ID, got.Names, got.Units, len(got.Levels), len(v.ZarrLevels))
			continue
		}
		for i, a := range v.Axes {
			if want := *a.VoxelSize * 1e-9; math.Abs(got.Scales[i]-want) > want*1e-9 {
				t.Errorf("%s axis %s: neuroglancer scale %g m, voxel size %g nm", v.ID, a.Name, got.Scales[i], *a.VoxelSize)
			}
		}
		for k, l := range got.Levels {
			lv := srv.byID[v.ZarrLevels[k]]
			if l.URL != fmt.Sprintf("%s%d/", base, k) {
				t.Errorf("%s level %d: neuroglancer reads %s", v.ID, k, l.URL)
			}
			// The homogeneous (rank+1)² matrix, column-major: the
			// diagonal is the level's voxel size in level-0 voxels.
			for i, a := range lv.Axes {
				want := *a.VoxelSize / *v.Axes[i].VoxelSize
				if d := l.Transform[i*(len(lv.Axes)+1)+i]; math.Abs(d-want) > 1e-9 {
					t.Errorf("%s level %d axis %s: neuroglancer scales it by %g, want %g", v.ID, k, a.Name, d, want)
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d pyramids checked, want 3", n)
	}
}
