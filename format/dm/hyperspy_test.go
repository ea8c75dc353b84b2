package dm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// hyperspyScript loads each file named on the command line with hyperspy
// and prints one JSON object per file.
const hyperspyScript = `
import hashlib, json, sys, warnings
warnings.simplefilter("ignore")
import hyperspy.api as hs
import numpy as np
for p in sys.argv[1:]:
    s = hs.load(p)
    if isinstance(s, list):
        s = s[0]
    d = np.ascontiguousarray(s.data)
    if d.dtype.names:
        d = d.view(np.uint8)
    md = s.metadata.as_dictionary()
    axes = [[a.name if isinstance(a.name, str) else "", a.size, float(a.scale), float(a.offset), str(a.units)] for a in s.axes_manager._axes]
    print(json.dumps({"path": p, "shape": list(s.data.shape), "dtype": str(s.data.dtype) if not s.data.dtype.names else "rgba",
        "axes": axes, "title": md["General"]["title"],
        "date": md["General"].get("date", ""), "sha": hashlib.sha256(d.astype(d.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16],
        "voltage": md.get("Acquisition_instrument", {}).get("TEM", md.get("Acquisition_instrument", {}).get("SEM", {})).get("beam_energy", 0)}))
`

// TestHyperspyReadsWriter is the oracle check of WriteDM3: hyperspy (rsciio)
// must read what the writer produced with the same shape, dtype, scales and data.
func TestHyperspyReadsWriter(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import hyperspy").CombinedOutput(); err != nil {
		t.Skipf("hyperspy oracle unavailable (/usr/bin/python3 -c 'import hyperspy': %v: %s); install python3-hyperspy", err, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	imgs := []Image{
		{Name: "slice", DType: volume.Uint8, Shape: []int64{40, 30}, Scales: []float64{0.008, 0.008}, Units: []string{"µm", "µm"}, ZSpacing: 50, ZUnit: "nm"},
		{Name: "stack", DType: volume.Int16, Shape: []int64{4, 5, 6}, Scales: []float64{50, 8, 8}, Units: []string{"nm", "nm", "nm"}, Origins: []float64{0, 1, 2}},
		{Name: "float", DType: volume.Float32, Shape: []int64{7, 9}, Scales: []float64{2, 1}, Units: []string{"Å", "nm"}},
		{Name: "u16", DType: volume.Uint16, Shape: []int64{3, 8}},
	}
	var paths []string
	for i := range imgs {
		img := &imgs[i]
		img.Data = ramp(img.DType, int(volume.Prod(img.Shape)))
		p := filepath.Join(dir, img.Name+".dm3")
		if err := os.WriteFile(p, writeImage(t, *img), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", hyperspyScript}, paths...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "MPLBACKEND=Agg")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("hyperspy failed: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(imgs) {
		t.Fatalf("hyperspy printed %d results for %d files:\n%s", len(lines), len(imgs), out)
	}
	for i, line := range lines {
		var got struct {
			Shape   []int64
			DType   string
			Axes    [][]any
			Title   string
			Date    string
			SHA     string
			Voltage float64
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		img := imgs[i]
		in := volume.Info{Name: img.Name, Shape: img.Shape, DType: img.DType}
		for _, s := range img.Shape {
			in.Axes = append(in.Axes, volume.Axis{Size: s})
		}
		m, err := volume.NewMem(in, img.Data)
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := volume.Checksum16(context.Background(), m, 0)
		if fmt.Sprint(got.Shape) != fmt.Sprint(img.Shape) || got.DType != string(img.DType) || got.SHA != sum || got.Title != img.Name {
			t.Errorf("%s: hyperspy %v %s sha %s title %q; wrote %v %s sha %s %q", img.Name, got.Shape, got.DType, got.SHA, got.Title, img.Shape, img.DType, sum, img.Name)
		}
		if got.Date != "2018-11-06" && got.Date != "2018-06-11" {
			t.Errorf("%s: hyperspy date %q", img.Name, got.Date)
		}
		if !near(got.Voltage, 1.9) {
			t.Errorf("%s: hyperspy beam energy %v, want 1.9 kV", img.Name, got.Voltage)
		}
		for j, a := range got.Axes {
			scale, unit, offset := 1.0, "", 0.0
			if img.Scales != nil {
				scale = img.Scales[j]
			}
			if img.Units != nil {
				unit = img.Units[j]
			}
			if img.Origins != nil {
				offset = -img.Origins[j] * float64(float32(scale))
			}
			gs, go_, gu := a[2].(float64), a[3].(float64), a[4].(string)
			if gu == "<undefined>" {
				gu = ""
			}
			if !near(gs, scale) || !near(go_, offset) || gu != unit {
				t.Errorf("%s axis %d: hyperspy %v, want scale %g offset %g unit %q", img.Name, j, a, scale, offset, unit)
			}
		}
	}
	t.Logf("hyperspy read %d writer files:\n%s", len(lines), out)
}
