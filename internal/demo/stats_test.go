package demo

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/pyoracle"
)

// numpyStatsScript reads one array per JSON line of stdin ({"format", "path",
// "array"}) with the reader a user would pick — tifffile for TIFF, hyperspy
// for DM, zarr-python for Zarr — and prints one JSON line per array: min, max
// and np.mean in float64 (as float.hex) and the element count, or an error.
const numpyStatsScript = `
import sys, json, warnings
warnings.filterwarnings("ignore")
import numpy as np

def load(fmt, path, array):
    if fmt == "tiff":
        import tifffile
        series = int(array.rsplit("#", 1)[1]) if "#" in array else 0
        with tifffile.TiffFile(path) as tf:
            return tf.series[series].asarray()
    if fmt == "dm":
        import hyperspy.api as hs
        return np.asarray(hs.load(path).data)
    if fmt == "zarr":
        import zarr
        g = zarr.open(path, mode="r")
        if array in g:
            return g[array][:]
        # A crop is named after the scale it came from; it is the group's
        # only multiscale dataset.
        return g[g.attrs["multiscales"][0]["datasets"][0]["path"]][:]
    raise ValueError("no numpy reader for format %r" % fmt)

for line in sys.stdin:
    req = json.loads(line)
    try:
        a = load(req["format"], req["path"], req["array"]).astype(np.float64)
        print(json.dumps({"min": float.hex(float(a.min())), "max": float.hex(float(a.max())),
                          "mean": float.hex(float(np.mean(a))), "size": int(a.size)}))
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.stdout.flush()
`

// TestDemoStatsMatchNumpy runs the demo and checks value_min, value_max and
// value_mean of every row of its table against numpy reading the same file
// with tifffile, hyperspy or zarr-python. Every demo array is small enough to
// be read whole, so value_sample must say so, and the demo's arrays are
// integers whose sums float64 holds exactly: np.mean is then the exactly
// rounded mean, as value_mean is, and all three must be equal.
func TestDemoStatsMatchNumpy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo skipped in -short mode")
	}
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("numpy oracle unavailable (%s -c 'import numpy': %v: %s); install python3-numpy", py, err, strings.TrimSpace(string(out)))
	}
	readers := map[string]string{"tiff": "tifffile", "dm": "hyperspy.api", "zarr": "zarr"}
	missing := map[string]string{}
	for f, mod := range readers {
		if out, err := exec.Command(py, "-W", "ignore", "-c", "import "+mod).CombinedOutput(); err != nil {
			missing[f] = fmt.Sprintf("%s (%v: %s)", mod, err, strings.TrimSpace(string(out)))
		}
	}
	dir, _ := runDemo(t)
	rows := readTable(t, filepath.Join(dir, "metadata_table.csv"))
	var reqs []any
	var checked []map[string]string
	var skipped []string
	for _, r := range rows {
		if _, ok := readers[r["format"]]; !ok {
			t.Errorf("%s %s: no numpy reader for format %q in this test", r["local_path"], r["array"], r["format"])
			continue
		}
		if why, ok := missing[r["format"]]; ok {
			skipped = append(skipped, r["local_path"]+": "+why)
			continue
		}
		reqs = append(reqs, map[string]string{"format": r["format"], "path": filepath.Join(dir, r["local_path"]), "array": r["array"]})
		checked = append(checked, r)
	}
	lines := pyoracle.Answers(t, numpyStatsScript, reqs)
	for i, r := range checked {
		var got struct {
			Min, Max, Mean string
			Size           int64
			Error          string
		}
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil || got.Error != "" {
			t.Errorf("%s %s: numpy: %v %s", r["local_path"], r["array"], err, got.Error)
			continue
		}
		for _, c := range []struct{ col, np string }{{"value_min", got.Min}, {"value_max", got.Max}, {"value_mean", got.Mean}} {
			want, err := strconv.ParseFloat(c.np, 64)
			if err != nil {
				t.Fatalf("numpy printed %q: %v", c.np, err)
			}
			if v, err := strconv.ParseFloat(r[c.col], 64); err != nil || v != want {
				t.Errorf("%s %s: %s = %q, numpy %v", r["local_path"], r["array"], c.col, r[c.col], want)
			}
		}
		if want := fmt.Sprintf("all %d voxels", got.Size); r["value_sample"] != want {
			t.Errorf("%s %s: value_sample %q, want %q", r["local_path"], r["array"], r["value_sample"], want)
		}
	}
	t.Logf("value_min/max/mean of %d rows equal numpy's", len(checked))
	if len(skipped) > 0 {
		t.Skipf("rows not checked, their Python reader missing:\n%s", strings.Join(skipped, "\n"))
	}
}
