package demo

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/internal/pyoracle"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// pyCopyVsOriginal reads, per JSON line of stdin, one output with
// zarr-python (its first multiscale level) and its originals with the
// reader a user would pick — tifffile for TIFF, hyperspy for DM (several
// sections stacked along z, as the stack is), zarr-python for Zarr — and
// prints the sha256_16 (C order, little-endian) and shape of both and what
// the output's NGFF metadata says.
const pyCopyVsOriginal = `
import sys, json, hashlib, warnings
warnings.simplefilter("ignore")
import numpy as np
import zarr

def sha(a):
    c = np.ascontiguousarray(a)
    c = c.astype(c.dtype.newbyteorder("<"))
    return hashlib.sha256(c.tobytes()).hexdigest()[:16]

def original(fmt, paths):
    if fmt == "tiff":
        import tifffile
        with tifffile.TiffFile(paths[0]) as t:
            return t.series[0].asarray()
    if fmt == "dm":
        import hyperspy.api as hs
        return np.stack([np.asarray(hs.load(p).data) for p in paths])
    raise ValueError("no reader for %r" % fmt)

for line in sys.stdin:
    req = json.loads(line)
    try:
        g = zarr.open_group(req["out"], mode="r")
        ms = g.attrs["multiscales"][0]
        ds = ms["datasets"][0]
        scale = [c["scale"] for c in ds["coordinateTransformations"] if c["type"] == "scale"][0]
        a = g[ds["path"]][...]
        res = {"out_sha": sha(a), "out_shape": list(a.shape), "scale": scale,
               "units": [ax.get("unit") for ax in ms["axes"]],
               "types": [ax.get("type") for ax in ms["axes"]],
               "imgdataset": g.attrs.get("imgdataset")}
        if req["fmt"]:
            o = original(req["fmt"], req["src"])
            res.update({"src_sha": sha(o), "src_shape": list(o.shape)})
        print(json.dumps(res, default=str))
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.stdout.flush()
`

// demoCopy is one output of the demo run and what it must equal.
type demoCopy struct {
	out  string            // output key, relative to the run's directory
	row  map[string]string // the table row whose frame the output carries
	fmt  string            // format of the originals for pyCopyVsOriginal; "" for the crop
	srcs []string          // the originals, relative to the run's directory
}

// demoCopies lists every output of the run with the table row it belongs
// to: a copy of each TIFF (its own row), the EMPIAR stack of the DM sections
// (the stack's row) and the crop of the remote volume (the crop's row).
func demoCopies(t *testing.T, dir string, rows []map[string]string) []demoCopy {
	t.Helper()
	var copies []demoCopy
	sections := map[string][]string{}
	for _, r := range rows {
		if r["format"] == "dm" {
			sections[r["dataset"]] = append(sections[r["dataset"]], r["local_path"])
		}
	}
	for _, r := range rows {
		switch {
		case r["format"] == "tiff":
			// The demo's file names need none of the pipeline's sanitising.
			name := strings.TrimSuffix(path.Base(r["local_path"]), path.Ext(r["local_path"]))
			copies = append(copies, demoCopy{path.Join(r["dataset"], "ome-zarr", name+".zarr"), r, "tiff", []string{r["local_path"]}})
		case r["crop_origin_z"] != "":
			copies = append(copies, demoCopy{r["local_path"], r, "", nil})
		case r["format"] == "zarr" && path.Base(path.Dir(r["local_path"])) == "ome-zarr":
			// A stack of the dataset's sections, in the order of their names.
			secs := slices.Sorted(slices.Values(sections[r["dataset"]]))
			if len(secs) == 0 {
				t.Fatalf("stack %s: its dataset has no DM sections in the table", r["local_path"])
			}
			copies = append(copies, demoCopy{r["local_path"], r, "dm", secs})
		}
	}
	for _, c := range copies {
		if _, err := os.Stat(filepath.Join(dir, c.out)); err != nil {
			t.Errorf("row %s %s: its output: %v", c.row["local_path"], c.row["array"], err)
		}
	}
	return copies
}

// TestDemoCopiesEqualOriginals checks issue #12 on the whole demo output:
// every OME-Zarr copy, stack and crop the run writes, read by zarr-python,
// holds the voxels of its originals as tifffile and hyperspy read them (the
// EMPIAR stack: the DM sections stacked), the voxel size of its table row in
// one unit across the spatial axes, and names where that voxel size came
// from as the row does. The crop of the remote precomputed volume has no
// independent reader installed (neither cloud-volume nor tensorstore is
// packaged in Debian): it is compared with this tool's precomputed reader on
// the demo's generated content, which checks the crop's window and writer
// but not the precomputed reader.
func TestDemoCopiesEqualOriginals(t *testing.T) {
	if testing.Short() {
		t.Skip("demo outputs skipped in -short mode")
	}
	pythonOracle(t, "zarr, tifffile, hyperspy.api, numpy")
	dir, _ := runDemo(t)
	rows := readTable(t, filepath.Join(dir, "metadata_table.csv"))
	copies := demoCopies(t, dir, rows)
	// 2 IDR and 6 EPFL copies, the EMPIAR stack, the hemibrain crop.
	if want := 2 + len(sample.EPFLFiles) + 1 + 1; len(copies) != want {
		t.Fatalf("%d outputs in the table, want %d", len(copies), want)
	}

	var reqs []any
	for _, c := range copies {
		var srcs []string
		for _, s := range c.srcs {
			srcs = append(srcs, filepath.Join(dir, s))
		}
		reqs = append(reqs, map[string]any{"out": filepath.Join(dir, c.out), "fmt": c.fmt, "src": srcs})
	}
	lines := pyoracle.Answers(t, pyCopyVsOriginal, reqs)
	for i, c := range copies {
		var got struct {
			OutSHA     string         `json:"out_sha"`
			OutShape   []int64        `json:"out_shape"`
			SrcSHA     string         `json:"src_sha"`
			SrcShape   []int64        `json:"src_shape"`
			Scale      []float64      `json:"scale"`
			Units      []string       `json:"units"`
			Types      []string       `json:"types"`
			Imgdataset map[string]any `json:"imgdataset"`
			Error      string         `json:"error"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil || got.Error != "" {
			t.Errorf("%s: python: %v %s", c.out, err, got.Error)
			continue
		}
		if c.fmt == "" {
			got.SrcSHA, got.SrcShape = cropOfGenerated(t, c.row)
		}
		if got.OutSHA != got.SrcSHA || !slices.Equal(got.OutShape, got.SrcShape) {
			t.Errorf("%s: voxels %s %v, original %v %s %v", c.out, got.OutSHA, got.OutShape, c.srcs, got.SrcSHA, got.SrcShape)
		}
		n := len(got.Units)
		if n < 3 || len(got.Scale) != n || got.Types[n-1] != "space" || got.Types[n-2] != "space" || got.Types[n-3] != "space" {
			t.Errorf("%s: axes %v %v, scale %v: want three spatial axes last", c.out, got.Types, got.Units, got.Scale)
			continue
		}
		if u := got.Units[n-3:]; u[0] != u[1] || u[1] != u[2] {
			t.Errorf("%s: spatial units %v, want one", c.out, u)
			continue
		}
		per := nmPerUDUnit(t, got.Units[n-1])
		for k, col := range []string{"voxel_size_z_nm", "voxel_size_y_nm", "voxel_size_x_nm"} {
			want, err := strconv.ParseFloat(c.row[col], 64)
			if err != nil || !near(got.Scale[n-3+k]*per, want, 1e-9) {
				t.Errorf("%s: scale %v %s, table row %s %s: %s = %q", c.out, got.Scale, got.Units[n-1], c.row["local_path"], c.row["array"], col, c.row[col])
			}
		}
		if src, _ := got.Imgdataset["voxel_size_source"].(string); src == "" || src != c.row["voxel_size_source"] {
			t.Errorf("%s: imgdataset.voxel_size_source %q, table row %q", c.out, src, c.row["voxel_size_source"])
		}
	}
	t.Logf("%d outputs equal their originals, frames equal their rows", len(copies))
}

// cropOfGenerated regenerates the demo's content (the generators are
// seeded) and returns the sha256_16 and shape of the region of its hemibrain
// volume the crop row names, read with this tool's precomputed reader.
func cropOfGenerated(t *testing.T, row map[string]string) (string, []int64) {
	t.Helper()
	ctx := context.Background()
	scratch := t.TempDir()
	if _, err := sample.Content(ctx, scratch); err != nil {
		t.Fatal(err)
	}
	st := store.New(store.NewFile(filepath.Join(scratch, "gcs")))
	vs, err := precomputed.Format{}.Open(ctx, st, sample.HemibrainPrefix)
	if err != nil {
		t.Fatalf("generated hemibrain volume: %v", err)
	}
	var origin, size []int64
	for _, a := range []string{"z", "y", "x"} {
		o, err1 := strconv.ParseInt(row["crop_origin_"+a], 10, 64)
		s, err2 := strconv.ParseInt(row["shape_"+a], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("crop row: crop_origin_%s %q, shape_%s %q", a, row["crop_origin_"+a], a, row["shape_"+a])
		}
		origin, size = append(origin, o), append(size, s)
	}
	w, err := volume.Window(vs[0], origin, size)
	if err != nil {
		t.Fatalf("crop region %v+%v of the generated volume %v: %v", origin, size, vs[0].Info().Shape, err)
	}
	return checksum(t, w), size
}
