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

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
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
    print(json.dumps({"path": p, "shape": list(s.data.shape), "dtype": str(s.data.dtype),
        "axes": axes, "title": md["General"]["title"],
        "date": md["General"].get("date", ""), "sha": hashlib.sha256(d.astype(d.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16],
        "voltage": md.get("Acquisition_instrument", {}).get("TEM", md.get("Acquisition_instrument", {}).get("SEM", {})).get("beam_energy", 0)}))
`

// hyperspyResult is what hyperspyScript prints for one file.
type hyperspyResult struct {
	Path    string
	Shape   []int64
	DType   string
	Axes    [][]any
	Title   string
	Date    string
	SHA     string
	Voltage float64
}

// runHyperspy loads every path with hyperspy in one process (its first load
// alone costs seconds) and returns the results in path order.
func runHyperspy(t *testing.T, home string, paths []string) []hyperspyResult {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", hyperspyScript}, paths...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "MPLBACKEND=Agg")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("hyperspy failed: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(paths) {
		t.Fatalf("hyperspy printed %d results for %d files:\n%s", len(lines), len(paths), out)
	}
	res := make([]hyperspyResult, len(lines))
	for i, line := range lines {
		if err := json.Unmarshal([]byte(line), &res[i]); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if res[i].Path != paths[i] {
			t.Fatalf("hyperspy result %d is for %s, want %s", i, res[i].Path, paths[i])
		}
	}
	return res
}

// TestHyperspy is the oracle check of the package against hyperspy 1.7.3
// (whose DM reader is rosettasciio's): it must read what WriteDM3 produced,
// and agree with the reader on the shapes and data of packed FFTs, spectrum
// images and size-1 axes.
func TestHyperspy(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import hyperspy").CombinedOutput(); err != nil {
		t.Skipf("hyperspy oracle unavailable (/usr/bin/python3 -c 'import hyperspy': %v: %s); install python3-hyperspy", err, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	imgs := writerImages()
	var paths []string
	for _, img := range imgs {
		p := filepath.Join(dir, img.Name+".dm3")
		if err := os.WriteFile(p, writeImage(t, img), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	layouts := layoutFiles(t, dir)
	res := runHyperspy(t, dir, append(paths, layouts...))
	t.Run("writer", func(t *testing.T) { checkWriterFiles(t, imgs, res[:len(imgs)]) })
	t.Run("layouts", func(t *testing.T) { checkLayouts(t, res[len(imgs):]) })
}

// writerImages are the images TestHyperspy writes with WriteDM3.
func writerImages() []Image {
	imgs := []Image{
		{Name: "slice", DType: volume.Uint8, Shape: []int64{40, 30}, Scales: []float64{0.008, 0.008}, Units: []string{"µm", "µm"}, ZSpacing: 50, ZUnit: "nm"},
		{Name: "stack", DType: volume.Int16, Shape: []int64{4, 5, 6}, Scales: []float64{50, 8, 8}, Units: []string{"nm", "nm", "nm"}, Origins: []float64{0, 1, 2}},
		{Name: "float", DType: volume.Float32, Shape: []int64{7, 9}, Scales: []float64{2, 1}, Units: []string{"Å", "nm"}},
		{Name: "u16", DType: volume.Uint16, Shape: []int64{3, 8}},
		// hyperspy's structured RGBA dtype is volume.RGBA8's name.
		{Name: "rgba", DType: volume.RGBA8, Shape: []int64{3, 5}},
	}
	for i := range imgs {
		imgs[i].Data = ramp(imgs[i].DType, int(volume.Prod(imgs[i].Shape)))
	}
	return imgs
}

// checkWriterFiles compares hyperspy's reading of the written images with
// what was written: shape, dtype, data, title, date, voltage and calibration.
func checkWriterFiles(t *testing.T, imgs []Image, res []hyperspyResult) {
	for i, got := range res {
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
}

// layoutFiles writes packed FFTs of even and odd widths in both precisions,
// spectrum images and images with size-1 axes, and adds the corpus samples
// of each rule when present (read in place: they are GPL, never copied).
func layoutFiles(t *testing.T, dir string) []string {
	files := map[string][]byte{}
	for _, c := range []struct {
		dt      volume.DType
		rows, w int64
	}{{volume.Complex64, 4, 4}, {volume.Complex64, 3, 5}, {volume.Complex128, 3, 6}, {volume.Complex128, 4, 7}} {
		b, _ := packedFile(t, c.dt, c.rows, c.w, AsDM4())
		files[fmt.Sprintf("packed-%s-%dx%d.dm4", c.dt, c.rows, c.w)] = b
	}
	si := map[string]any{"Meta Data.Format": "Spectrum image"}
	for name, img := range map[string]Image{
		"si3":      {DType: volume.Float32, Shape: []int64{7, 3, 4}, Tags: si},
		"si4":      {DType: volume.Int16, Shape: []int64{5, 2, 3, 4}, Tags: si},
		"si-line":  {DType: volume.Float32, Shape: []int64{6, 1, 4}, Tags: si},
		"spectrum": {DType: volume.Float32, Shape: []int64{1, 9}},
	} {
		img.Name = name
		img.Data = ramp(img.DType, int(volume.Prod(img.Shape)))
		files[name+".dm3"] = writeImage(t, img)
	}
	var paths []string
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if root, err := corpus.RepoRoot(); err == nil {
		for _, k := range []string{"dm/rosettasciio/misc/test_fft_packed_complex8.dm4", "dm/rosettasciio/misc/test-MonarcCL_spectrum-SI.dm4", "dm/openncem/08_carbon.dm3"} {
			p := filepath.Join(root, "..", "shared", "testdata", filepath.FromSlash(k))
			if _, err := os.Stat(p); err == nil {
				paths = append(paths, p)
			}
		}
	}
	return paths
}

// checkLayouts compares the reader's shape, dtype and checksum with hyperspy's.
func checkLayouts(t *testing.T, res []hyperspyResult) {
	ctx := context.Background()
	for _, got := range res {
		st := store.New(store.NewFile(filepath.Dir(got.Path)))
		vols, err := Format{}.Open(ctx, st, filepath.Base(got.Path))
		if err != nil {
			t.Errorf("%s: %v", got.Path, err)
			continue
		}
		in := vols[0].Info()
		sum, err := volume.Checksum16(ctx, vols[0], 0)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(in.Shape) != fmt.Sprint(got.Shape) || string(in.DType) != got.DType || sum != got.SHA {
			t.Errorf("%s: hyperspy %v %s sha %s; reader %v %s sha %s", filepath.Base(got.Path), got.Shape, got.DType, got.SHA, in.Shape, in.DType, sum)
		}
	}
	t.Logf("hyperspy agreed on %d files", len(res))
}
