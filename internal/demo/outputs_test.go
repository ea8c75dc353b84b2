package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/internal/imagej"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/pipeline/pipelinetest"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// demoRun is the one demo run the tests of this package share: every test
// only reads its output, and one run instead of one per test saves a run
// (mirrors, transfer, copies, table) per test.
var demoRun struct {
	once  sync.Once
	dir   string
	rep   *pipeline.Report
	err   error
	shown pipelinetest.Display // what the run showed of its long phases
}

// TestMain removes the shared demo output once every test is done with it.
func TestMain(m *testing.M) {
	code := m.Run()
	if demoRun.dir != "" {
		os.RemoveAll(demoRun.dir)
	}
	os.Exit(code)
}

// runDemo returns the output directory and report of the offline demo, run
// once for the whole package: the one place the tests start it.
func runDemo(t *testing.T) (string, *pipeline.Report) {
	t.Helper()
	demoRun.once.Do(func() {
		demoRun.dir, demoRun.err = os.MkdirTemp("", "imgdataset-demo-test-")
		if demoRun.err != nil {
			return
		}
		demoRun.rep, demoRun.err = Run(context.Background(), pipeline.Options{OutDir: demoRun.dir, Convert: true, Display: &demoRun.shown})
	})
	if demoRun.err != nil {
		t.Fatalf("demo run in %s: %v", demoRun.dir, demoRun.err)
	}
	return demoRun.dir, demoRun.rep
}

// pythonOracle returns /usr/bin/python3 when it imports modules, or skips
// the (sub)test saying why.
func pythonOracle(t *testing.T, modules string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import "+modules).CombinedOutput(); err != nil {
		t.Skipf("oracle unavailable (%s -c 'import %s': %v: %s)", py, modules, err, strings.TrimSpace(string(out)))
	}
	return py
}

// pyRead reads outputs of one kind with an independent Python reader and
// prints, per output, its sha256_16 (C order, little-endian, as
// volume.Checksum16), shape and what the format says about units and
// provenance.
const pyRead = `
import sys, json, hashlib, warnings
warnings.simplefilter("ignore")
import numpy as np
def read(kind, p):
  meta = {}
  if kind == "tiff":
      import tifffile
      with tifffile.TiffFile(p) as t:
          a = t.asarray()
          meta = {"bigtiff": t.is_bigtiff, "imagej": t.imagej_metadata,
                  "xres": list(t.pages[0].tags["XResolution"].value) if "XResolution" in t.pages[0].tags else None}
  elif kind == "zarr":
      import zarr
      g = zarr.open_group(p, mode="r")
      ms = g.attrs["multiscales"][0]
      ct = ms["datasets"][0]["coordinateTransformations"]
      scale = [c["scale"] for c in ct if c["type"] == "scale"][0]
      tr = ([c["translation"] for c in ct if c["type"] == "translation"] or [[0] * len(scale)])[0]
      a = g[ms["datasets"][0]["path"]][...]
      meta = {"units": [ax.get("unit") for ax in ms["axes"]], "types": [ax.get("type") for ax in ms["axes"]],
              "scale": scale, "translation": tr, "imgdataset": g.attrs.get("imgdataset")}
  elif kind == "n5":
      import zarr
      z = zarr.open(zarr.N5Store(p), mode="r")
      a = z[...]
      meta = dict(z.attrs)
  c = np.ascontiguousarray(a)
  c = c.astype(c.dtype.newbyteorder("<"))
  return {"sha": hashlib.sha256(c.tobytes()).hexdigest()[:16], "shape": list(a.shape), "meta": meta}
kind = sys.argv[1]
for p in sys.argv[2:]:
  print(json.dumps(read(kind, p), default=str))
`

type pyResult struct {
	SHA   string          `json:"sha"`
	Shape []int64         `json:"shape"`
	Meta  json.RawMessage `json:"meta"`
}

// readWithPython reads paths, all of one kind, in one Python process.
func readWithPython(t *testing.T, py, kind string, paths ...string) []pyResult {
	t.Helper()
	out, err := exec.Command(py, append([]string{"-c", pyRead, kind}, paths...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s reader on %v: %v\n%s", kind, paths, err, ee.Stderr)
		}
		t.Fatalf("%s reader on %v: %v", kind, paths, err)
	}
	var res []pyResult
	for line := range strings.Lines(string(out)) {
		var r pyResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s reader: %v\n%s", kind, err, out)
		}
		res = append(res, r)
	}
	if len(res) != len(paths) {
		t.Fatalf("%s reader printed %d results for %d outputs:\n%s", kind, len(res), len(paths), out)
	}
	return res
}

// ngffMeta is what pyRead reports about an OME-Zarr.
type ngffMeta struct {
	Units       []string       `json:"units"`
	Scale       []float64      `json:"scale"`
	Translation []float64      `json:"translation"`
	Imgdataset  map[string]any `json:"imgdataset"`
}

// nmPerUDUnit is the nanometres per UDUNITS length unit NGFF outputs use.
func nmPerUDUnit(t *testing.T, u string) float64 {
	t.Helper()
	switch u {
	case "nanometer":
		return 1
	case "micrometer":
		return 1000
	}
	t.Fatalf("unit %q is not one an output should have", u)
	return 0
}

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))+1e-12
}

// openOutput opens an output with the tool's readers and checks the format.
func openOutput(t *testing.T, p, wantFormat string) volume.Volume {
	t.Helper()
	opt := pipeline.Options{}
	opt.Defaults()
	f, vs, err := opt.Formats.Open(context.Background(), store.New(store.NewFile(filepath.Dir(p))), filepath.Base(p))
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	if f.Name() != wantFormat {
		t.Fatalf("%s reads as %s, want %s", p, f.Name(), wantFormat)
	}
	return vs[0]
}

func checksum(t *testing.T, v volume.Volume) string {
	t.Helper()
	s, err := volume.Checksum16(context.Background(), v, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// voxelNM returns the z, y, x voxel sizes of v in nm, and their offsets.
func voxelNM(t *testing.T, v volume.Volume) (scale, offset [3]float64) {
	t.Helper()
	axes := v.Info().Axes
	for i, a := range axes[len(axes)-3:] {
		f, ok := volume.NanometresPer(a.Unit)
		if !a.ScaleKnown || !ok {
			t.Fatalf("%s axis %s has no length calibration: %+v", v.Info().Name, a.Name, a)
		}
		scale[i], offset[i] = a.Scale*f, a.Offset*f
	}
	return scale, offset
}

// TestOutputsInTheirFrame checks issue #12 on the demo's outputs: every
// OME-Zarr the run writes has one unit across its spatial axes, the voxel
// size of its table row and an attribute naming where that came from; a
// converted EMPIAR stack opens in ImageJ 1 and tifffile as a classic TIFF
// with z = 50 nm and x = y = the DM calibration, in one unit; convert writes
// the format each output name asks for.
func TestOutputsInTheirFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("demo outputs skipped in -short mode")
	}
	out, rep := runDemo(t)
	rows := readTable(t, filepath.Join(out, "metadata_table.csv"))
	stack := filepath.Join(out, "empiar-11759", "ome-zarr", "stack.zarr")

	t.Run("run outputs with zarr-python", func(t *testing.T) {
		py := pythonOracle(t, "zarr, numpy")
		checkRunOutputs(t, py, out, rep, rows)
	})
	t.Run("EMPIAR stack in ImageJ and tifffile", func(t *testing.T) {
		checkStackInImageJ(t, stack)
	})
	t.Run("every output name", func(t *testing.T) {
		checkEveryOutput(t, stack)
	})
}

// checkRunOutputs compares every OME-Zarr of the run, read by zarr-python,
// with the table row it belongs to.
func checkRunOutputs(t *testing.T, py, out string, rep *pipeline.Report, rows []map[string]string) {
	// The row an output's frame comes from: its own (stack, crop), or the
	// one of the file it is a copy of.
	rowOf := map[string]map[string]string{}
	for _, r := range rows {
		rowOf[r["local_path"]] = r
		if strings.Contains(r["format"], "tiff") || r["format"] == "dm" {
			// The demo's file names need none of the pipeline's sanitising.
			name := strings.TrimSuffix(path.Base(r["local_path"]), path.Ext(r["local_path"]))
			rowOf[path.Join(r["dataset"], "ome-zarr", name+".zarr")] = r
		}
	}
	var keys, paths, datasets []string
	for _, d := range rep.Datasets {
		for _, key := range d.Outputs {
			keys, datasets = append(keys, key), append(datasets, d.Name)
			paths = append(paths, filepath.Join(out, key))
		}
	}
	read := readWithPython(t, py, "zarr", paths...)
	seenEPFL := 0
	for k, key := range keys {
		row, ok := rowOf[key]
		if !ok {
			t.Errorf("output %s has no table row to compare with", key)
			continue
		}
		got := read[k]
		var m ngffMeta
		if err := json.Unmarshal(got.Meta, &m); err != nil {
			t.Fatal(err)
		}
		n := len(m.Units)
		if n < 3 || m.Units[n-1] != m.Units[n-2] || m.Units[n-2] != m.Units[n-3] {
			t.Errorf("%s: spatial units %v, want one", key, m.Units)
			continue
		}
		per := nmPerUDUnit(t, m.Units[n-1])
		for i, col := range []string{"voxel_size_z_nm", "voxel_size_y_nm", "voxel_size_x_nm"} {
			want, err := strconv.ParseFloat(row[col], 64)
			if err != nil || !near(m.Scale[n-3+i]*per, want, 1e-12) {
				t.Errorf("%s: scale %v %s, table row %s says %s = %q", key, m.Scale, m.Units[n-1], row["local_path"], col, row[col])
			}
			if o := row["crop_origin_"+col[11:12]]; o != "" {
				// A crop sits at its origin × the voxel size.
				org, _ := strconv.ParseFloat(o, 64)
				if !near(m.Translation[n-3+i]*per, org*want, 1e-12) {
					t.Errorf("%s: translation %v, origin %s × %g nm", key, m.Translation, o, want)
				}
			}
		}
		if src, _ := m.Imgdataset["voxel_size_source"].(string); src == "" || src != row["voxel_size_source"] {
			t.Errorf("%s: attributes say the voxel size is from %q, the table %q", key, src, row["voxel_size_source"])
		}
		if datasets[k] == "epfl-hippocampus" {
			seenEPFL++
			if m.Scale[n-1]*per != sample.EPFLVoxelNM || m.Imgdataset["voxel_size_source"] != "web page" {
				t.Errorf("%s: scale %v %s from %v, want %g nm from the web page", key, m.Scale, m.Units[n-1], m.Imgdataset["voxel_size_source"], sample.EPFLVoxelNM)
			}
		}
	}
	if seenEPFL != len(sample.EPFLFiles) {
		t.Errorf("checked %d EPFL copies, want %d", seenEPFL, len(sample.EPFLFiles))
	}
}

// imagejFrameMacro prints, per file of the list given as argument, what
// ImageJ sees: size, voxel size, unit (as UTF-16 code units), the physical
// position of voxel (0, 0, 0) and the sum of all voxels.
const imagejFrameMacro = `
paths = split(File.openAsString(getArgument()), "\n");
for (i = 0; i < paths.length; i++) {
	open(paths[i]);
	getVoxelSize(pw, ph, pd, unit);
	codes = "";
	for (k = 0; k < lengthOf(unit); k++) codes = codes + charCodeAt(unit, k) + " ";
	x = 0; y = 0; z = 0;
	toScaled(x, y, z);
	sum = 0;
	for (s = 1; s <= nSlices; s++) {
		setSlice(s);
		getRawStatistics(n, mean);
		sum = sum + n * mean;
	}
	f = "%.17g";
	print("RESULT\t" + i + "\t" + getWidth() + "\t" + getHeight() + "\t" + nSlices + "\t" + String.format(f, pw) + "\t" + String.format(f, ph) +
		"\t" + String.format(f, pd) + "\t" + codes + "\t" + String.format(f, x) + "\t" + String.format(f, y) + "\t" + String.format(f, z) + "\t" + String.format(f, sum));
	close();
}
`

// imagejResults runs macro over paths in ImageJ 1 and returns the
// tab-separated fields of its RESULT lines by index; every path must have one.
func imagejResults(t *testing.T, macro string, paths []string) map[int][]string {
	t.Helper()
	out := imagej.Run(t, macro, paths)
	res := map[int][]string{}
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if f[0] == "RESULT" && len(f) > 1 {
			i, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("ImageJ line %q", line)
			}
			res[i] = f
		}
	}
	for i, p := range paths {
		if _, ok := res[i]; !ok {
			t.Fatalf("ImageJ did not open %s; its output:\n%s", p, out)
		}
	}
	return res
}

// voxelSum adds up every voxel of a real-valued volume.
func voxelSum(t *testing.T, v volume.Volume) float64 {
	t.Helper()
	in := v.Info()
	buf := make([]byte, in.NumBytes())
	if err := v.ReadRegion(context.Background(), volume.Full(in.Shape), buf); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i := 0; i < len(buf); i += in.DType.Size() {
		x, _ := in.DType.Value(buf[i:])
		sum += x
	}
	return sum
}

// checkStackInImageJ converts the demo's EMPIAR stack, and a crop of it, to
// TIFF and reads them with ImageJ 1 and tifffile.
func checkStackInImageJ(t *testing.T, stack string) {
	ctx := context.Background()
	dir := t.TempDir()
	whole, crop := filepath.Join(dir, "stack.tif"), filepath.Join(dir, "crop.tif")
	if err := pipeline.Convert(ctx, stack, "", whole, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	origin, size := []int64{2, 10, 20}, []int64{4, 50, 40}
	if _, err := pipeline.Crop(ctx, stack, manifest.Crop{Origin: origin, Size: size}, crop, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	src := openOutput(t, stack, "zarr")
	cropSrc, err := volume.Window(src, origin, size)
	if err != nil {
		t.Fatal(err)
	}
	pixelNM := sample.EMPIARPixelUM * 1000 // the DM calibration
	wantPos := [3]float64{float64(origin[2]) * pixelNM, float64(origin[1]) * pixelNM, float64(origin[0]) * sample.EMPIARZSpacingNM}
	cases := []struct {
		path  string
		src   volume.Volume
		shape []int64
		pos   [3]float64 // x, y, z of voxel 0
	}{{whole, src, src.Info().Shape, [3]float64{}}, {crop, cropSrc, size, wantPos}}

	for _, c := range cases {
		// Ours: classic TIFF, one unit, the same voxels and frame.
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:4]) != "II*\x00" {
			t.Errorf("%s: header % x, want a classic TIFF", c.path, b[:4])
		}
		v := openOutput(t, c.path, "tiff")
		if got, want := checksum(t, v), checksum(t, c.src); got != want {
			t.Errorf("%s: voxels %s, source %s", c.path, got, want)
		}
		scale, off := voxelNM(t, v)
		if !near(scale[0], sample.EMPIARZSpacingNM, 1e-9) || !near(scale[1], pixelNM, 1e-6) || !near(scale[2], pixelNM, 1e-6) ||
			!near(off[2], c.pos[0], 1e-6) || !near(off[1], c.pos[1], 1e-6) || !near(off[0], c.pos[2], 1e-6) {
			t.Errorf("%s: read back voxel %v nm at %v, want (%g, %g, %g) at z,y,x %v", c.path, scale, off, sample.EMPIARZSpacingNM, pixelNM, pixelNM, [3]float64{c.pos[2], c.pos[1], c.pos[0]})
		}
	}

	t.Run("ImageJ", func(t *testing.T) {
		res := imagejResults(t, imagejFrameMacro, []string{whole, crop})
		for i, c := range cases {
			f := res[i]
			if len(f) != 13 {
				t.Fatalf("ImageJ line %v", f)
			}
			num := func(k int) float64 {
				x, err := strconv.ParseFloat(f[k], 64)
				if err != nil {
					t.Fatalf("ImageJ field %d %q: %v", k, f[k], err)
				}
				return x
			}
			var unit []rune
			for _, s := range strings.Fields(f[8]) {
				r, _ := strconv.Atoi(s)
				unit = append(unit, rune(r))
			}
			if w, h, n := num(2), num(3), num(4); w != float64(c.shape[2]) || h != float64(c.shape[1]) || n != float64(c.shape[0]) {
				t.Errorf("%s: ImageJ sees %gx%gx%g, wrote %v", c.path, w, h, n, c.shape)
			}
			// ImageJ reads the pixel size back from the RATIONAL resolution.
			if string(unit) != "nm" || !near(num(7), sample.EMPIARZSpacingNM, 1e-9) || !near(num(5), pixelNM, 1e-6) || !near(num(6), pixelNM, 1e-6) {
				t.Errorf("%s: ImageJ voxel %s × %s × %s %q, want z = %g nm, x = y = %g nm", c.path, f[5], f[6], f[7], string(unit), sample.EMPIARZSpacingNM, pixelNM)
			}
			for k := 0; k < 3; k++ {
				if !near(num(9+k), c.pos[k], 1e-6) {
					t.Errorf("%s: ImageJ places voxel 0 at %s, %s, %s, want %v", c.path, f[9], f[10], f[11], c.pos)
					break
				}
			}
			if got, want := num(12), voxelSum(t, c.src); got != want {
				t.Errorf("%s: ImageJ voxel sum %g, source %g", c.path, got, want)
			}
		}
	})
	t.Run("tifffile", func(t *testing.T) {
		py := pythonOracle(t, "tifffile, numpy")
		read := readWithPython(t, py, "tiff", whole, crop)
		for i, c := range cases {
			got := read[i]
			var m struct {
				BigTIFF bool           `json:"bigtiff"`
				ImageJ  map[string]any `json:"imagej"`
			}
			if err := json.Unmarshal(got.Meta, &m); err != nil {
				t.Fatal(err)
			}
			if want := checksum(t, c.src); m.BigTIFF || got.SHA != want || fmt.Sprint(got.Shape) != fmt.Sprint(c.shape) {
				t.Errorf("%s: tifffile reads BigTIFF %v, %v sha %s; wrote classic %v sha %s", c.path, m.BigTIFF, got.Shape, got.SHA, c.shape, want)
			}
			if m.ImageJ["unit"] != "nm" || m.ImageJ["spacing"] != sample.EMPIARZSpacingNM || m.ImageJ["imgdataset_voxel_size_source"] != "file" {
				t.Errorf("%s: tifffile ImageJ metadata %v", c.path, m.ImageJ)
			}
		}
	})
}

// checkEveryOutput converts the stack to every output name and reads each
// back with the tool and, where one is installed, an independent reader.
func checkEveryOutput(t *testing.T, stack string) {
	ctx := context.Background()
	src := openOutput(t, stack, "zarr")
	want := checksum(t, src)
	wantScale, _ := voxelNM(t, src)
	for _, c := range []struct {
		name     string
		format   string
		opt      pipeline.OutputOptions
		oracle   string // kind for pyRead; "" when no independent reader is installed
		scaleTol float64
	}{
		{"s.zarr", "zarr", pipeline.OutputOptions{}, "zarr", 1e-12},
		{"s.ome.zarr", "zarr", pipeline.OutputOptions{}, "", 1e-12}, // zarr-python 2 reads no Zarr v3
		{"v3.zarr", "zarr", pipeline.OutputOptions{ZarrVersion: 3}, "", 1e-12},
		{"s.n5", "n5", pipeline.OutputOptions{Chunk: 32}, "n5", 1e-12},
		{"s.tif", "tiff", pipeline.OutputOptions{}, "tiff", 1e-6},
		{"big.TIFF", "tiff", pipeline.OutputOptions{BigTIFF: true}, "tiff", 1e-6},
		{"s.dm3", "dm", pipeline.OutputOptions{}, "", 1e-6}, // DM calibrations are float32; hyperspy checks the writer in format/dm
		{"s.precomputed", "precomputed", pipeline.OutputOptions{Chunk: 32}, "", 1e-12},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), c.name)
			if err := pipeline.Convert(ctx, stack, "", p, pipeline.Options{Output: c.opt}); err != nil {
				t.Fatal(err)
			}
			v := openOutput(t, p, c.format)
			if got := checksum(t, v); got != want {
				t.Errorf("voxels %s, source %s", got, want)
			}
			scale, _ := voxelNM(t, v)
			for i := range scale {
				if !near(scale[i], wantScale[i], c.scaleTol) {
					t.Errorf("voxel size %v nm, source %v nm", scale, wantScale)
				}
			}
			switch {
			case strings.HasSuffix(c.name, ".ome.zarr") || c.opt.ZarrVersion == 3:
				b, err := os.ReadFile(filepath.Join(p, "s0", "zarr.json"))
				if err != nil || !strings.Contains(string(b), `"zarr_format": 3`) || !strings.Contains(string(b), "sharding_indexed") {
					t.Errorf("not a sharded Zarr v3 array (%v): %s", err, b)
				}
			case c.format == "tiff":
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if big := b[2] == 43; big != c.opt.BigTIFF {
					t.Errorf("header % x: BigTIFF %v, asked %v", b[:4], big, c.opt.BigTIFF)
				}
			}
			if c.oracle == "" {
				return
			}
			py := pythonOracle(t, map[string]string{"tiff": "tifffile, numpy", "zarr": "zarr, numpy", "n5": "zarr, numpy"}[c.oracle])
			got := readWithPython(t, py, c.oracle, p)[0]
			if got.SHA != want {
				t.Errorf("%s reader: sha %s %v, source %s", c.oracle, got.SHA, got.Shape, want)
			}
			var units struct {
				Units      []string       `json:"units"`
				Imgdataset map[string]any `json:"imgdataset"`
			}
			if c.oracle != "tiff" {
				if err := json.Unmarshal(got.Meta, &units); err != nil {
					t.Fatal(err)
				}
				u := strings.Join(units.Units, ",")
				if (u != "nanometer,nanometer,nanometer" && u != "nm,nm,nm") || units.Imgdataset["voxel_size_source"] != "file" {
					t.Errorf("%s reader: units %v, imgdataset %v", c.oracle, units.Units, units.Imgdataset)
				}
			}
		})
	}
}
