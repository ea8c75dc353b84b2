package serve

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/demo"
	"github.com/imgdataset/imgdataset/pipeline"
)

// TestDemoDir serves the output of the offline demo (every source format the
// pipeline reads, OME-Zarr conversions and a crop) and checks each volume
// against what `imgdataset inspect --checksum` and the metadata table say.
func TestDemoDir(t *testing.T) {
	if testing.Short() {
		t.Skip("demo output skipped in -short mode")
	}
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := demo.Run(ctx, pipeline.Options{OutDir: dir, Convert: true}); err != nil {
		t.Fatal(err)
	}
	srv, ts := testServer(t, dir, Options{})
	rows := table(t, filepath.Join(dir, "metadata_table.csv"))
	vs := volumesOf(t, ts.URL)
	if len(srv.Skipped()) != 0 {
		t.Errorf("skipped: %+v", srv.Skipped())
	}
	ok := 0
	for _, r := range rows {
		if r["status"] == "ok" {
			ok++
		}
	}
	if len(vs) != ok || ok < 20 {
		t.Fatalf("%d volumes served, the table has %d ok rows", len(vs), ok)
	}
	formats := map[string]bool{}
	inspected := map[string]*pipeline.InspectResult{}
	for _, v := range vs {
		formats[v.Format] = true
		// Voxel sizes are the table's.
		var row map[string]string
		for _, r := range rows {
			if r["dataset"] == v.Dataset && r["local_path"] == v.Path && r["array"] == v.Array {
				row = r
			}
		}
		if row == nil {
			t.Fatalf("%s: no table row %s %s %s", v.ID, v.Dataset, v.Path, v.Array)
		}
		for _, a := range v.Axes {
			col := row["voxel_size_"+a.Name+"_nm"]
			if col == "" {
				continue
			}
			want, _ := strconv.ParseFloat(col, 64)
			if a.VoxelSize == nil || *a.VoxelSize != want || a.Unit != "nanometer" {
				t.Errorf("%s axis %s: voxel %v %s, table %g nm", v.ID, a.Name, a.VoxelSize, a.Unit, want)
			}
		}
		// The whole volume as one block hashes like inspect --checksum.
		resp, b := get(t, ts.URL+v.BlockURL+"?size="+joinInts(v.Shape))
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s %s", v.ID, resp.Status, b)
		}
		sum := sha256.Sum256(b)
		got := hex.EncodeToString(sum[:])[:16]
		res, seen := inspected[v.Path]
		if !seen {
			var err error
			if res, err = pipeline.Inspect(ctx, filepath.Join(dir, v.Path), true, pipeline.Options{}); err != nil {
				t.Fatal(err)
			}
			inspected[v.Path] = res
		}
		match := false
		for _, a := range res.Arrays {
			match = match || a.SHA256_16 == got && fmt.Sprint(a.Shape) == fmt.Sprint(v.Shape) && a.DType == v.DType
		}
		if !match {
			t.Errorf("%s: block sha256_16 %s matches no array of inspect %s", v.ID, got, v.Path)
		}
	}
	for _, f := range []string{"tiff", "dm", "zarr"} {
		if !formats[f] {
			t.Errorf("no %s volume served (formats %v)", f, formats)
		}
	}

	t.Run("python-zarr", func(t *testing.T) { pythonOracle(t, ts.URL, vs) })
}

// pythonOracle reads volumes through zarr-python's FSStore over HTTP (level
// 0 of each volume's group) and
// through numpy.load of the .npy block, and compares checksums with Go's.
func pythonOracle(t *testing.T, base string, vs []VolumeInfo) {
	py := zarrPython(t)
	script := `
import hashlib, io, json, sys, urllib.request
import numpy as np, zarr
from zarr.storage import FSStore
base = sys.argv[1]
out = {}
for vid, size in zip(sys.argv[2::2], sys.argv[3::2]):
    g = zarr.open_group(FSStore(base + "/zarr/" + vid, mode="r"), mode="r")
    a = g["0"]
    d = np.ascontiguousarray(a[...])
    d = d.astype(d.dtype.newbyteorder("<"), copy=False)
    with urllib.request.urlopen(base + "/volumes/" + vid + "/block?format=npy&size=" + size) as r:
        n = np.load(io.BytesIO(r.read()))
    out[vid] = {
        "zarr": hashlib.sha256(d.tobytes()).hexdigest()[:16],
        "npy": hashlib.sha256(np.ascontiguousarray(n).astype(n.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()[:16],
        "shape": list(d.shape), "npy_shape": list(n.shape), "dtype": str(d.dtype), "npy_dtype": str(n.dtype),
        "scale": g.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"],
    }
print(json.dumps(out))
`
	args := []string{"-c", script, base}
	want := map[string]VolumeInfo{}
	for _, v := range vs {
		// One volume of each format and dtype keeps the oracle quick.
		k := v.Format + v.DType + strconv.Itoa(len(v.Shape))
		if _, dup := want[k]; dup {
			continue
		}
		want[k] = v
		args = append(args, v.ID, joinInts(v.Shape))
	}
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("python oracle: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got map[string]struct {
		Zarr     string    `json:"zarr"`
		Npy      string    `json:"npy"`
		Shape    []int64   `json:"shape"`
		NpyShape []int64   `json:"npy_shape"`
		DType    string    `json:"dtype"`
		NpyDType string    `json:"npy_dtype"`
		Scale    []float64 `json:"scale"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python oracle output %q: %v", out, err)
	}
	if len(got) != len(want) {
		t.Fatalf("python read %d volumes, asked for %d", len(got), len(want))
	}
	for _, v := range want {
		g := got[v.ID]
		resp, b := get(t, base+v.BlockURL+"?size="+joinInts(v.Shape))
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
		sum := sha256.Sum256(b)
		goSum := hex.EncodeToString(sum[:])[:16]
		if g.Zarr != goSum || g.Npy != goSum || fmt.Sprint(g.Shape) != fmt.Sprint(v.Shape) || fmt.Sprint(g.NpyShape) != fmt.Sprint(v.Shape) ||
			g.DType != v.DType || g.NpyDType != v.DType {
			t.Errorf("%s: python zarr %s npy %s shape %v/%v dtype %s/%s; Go %s %v %s", v.ID, g.Zarr, g.Npy, g.Shape, g.NpyShape, g.DType, g.NpyDType, goSum, v.Shape, v.DType)
		}
		for i, a := range v.Axes {
			if a.VoxelSize != nil && (i >= len(g.Scale) || g.Scale[i] != *a.VoxelSize) {
				t.Errorf("%s: python sees scale %v, axes say %s = %g", v.ID, g.Scale, a.Name, *a.VoxelSize)
			}
		}
	}
	t.Logf("zarr-python (FSStore over HTTP) and numpy.load agree with Go on %d volumes", len(want))
}

// zarrPython returns Debian's python3 when it imports zarr-python with its
// HTTP store, and skips the test saying what is missing otherwise.
func zarrPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	probe := exec.Command(py, "-c", "import zarr, numpy, fsspec, aiohttp; from zarr.storage import FSStore")
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("python oracle not importable (%s needs zarr, numpy, fsspec, aiohttp): %v %s", py, err, strings.TrimSpace(string(out)))
	}
	return py
}

func table(t *testing.T, p string) []map[string]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}
