package fidelity

import (
	"context"
	_ "embed"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/internal/imagej"
	"github.com/imgdataset/imgdataset/internal/pyoracle"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// oracleScript reads arrays with tifffile, hyperspy and zarr-python; see
// the comment at its top for the requests and answers.
//
//go:embed oracle.py
var oracleScript string

// kind is one volume kind of the corpus and the file that represents it.
type kind struct {
	name    string
	path    string // in the corpus
	reader  string // the source's independent reader (oracle.py); "-meta" ones read metadata only
	array   string // the source's array (a multiscale path, a precomputed scale key); "" the first
	convert []string
	// origin and size of the crop (z, y, x); nil for a 2D source, which a
	// crop (z, y, x by definition) must refuse with a clear error.
	origin, size []int64
}

// kinds lists one representative file per volume kind of the corpus, each
// with a calibration worth keeping where the corpus has one: an ImageJ stack
// in microns, a Micro-Manager OME-TIFF (t, y, x at 5.2304 µm), a DM3 with a
// different unit per axis (µm, nm, pm), a DM4 with Å next to nm, NGFF 0.4
// (Zarr v2) in nm, NGFF 0.6 (Zarr v3, zstd) in µm, n5-java's N5 (no
// calibration: it must stay unknown) and a precomputed info in nm whose
// chunks the corpus lacks (missing chunks read as the fill value 0).
func kinds() []kind {
	all := []string{".zarr", ".ome.zarr", ".tif", ".n5", ".dm3", ".precomputed"}
	flat := []string{".zarr", ".ome.zarr", ".tif", ".n5", ".dm3"} // precomputed is z, y, x only
	return []kind{
		{"tiff-imagej", "tiff/rosettasciio/test_loading_image_saved_with_imageJ_stack.tif", "tiff", "", all, []int64{0, 10, 20}, []int64{2, 16, 24}},
		{"ome-tiff", "tiff/exampletiffs/ometiff/181003_multi_pos_time_course_1_MMStack.ome.tif", "tiff", "", all, []int64{2, 100, 50}, []int64{3, 32, 40}},
		{"dm3", "dm/openncem/dmTest_3D_int16_64_65_66.dm3", "dm", "", all, []int64{3, 5, 7}, []int64{4, 20, 16}},
		{"dm4", "dm/openncem/dmTest_float32_nonSquare_diffPixelSize.dm4", "dm", "", flat, nil, nil},
		{"zarr2-ngff", "zarr/neuroglancer/ome_zarr/simple_0.4", "zarr", "", flat, nil, nil},
		{"zarr3-ngff", "zarr/neuroglancer/ome_zarr/all_0.6/basic/scale.zarr", "zarr3-meta", "", all, []int64{5, 50, 60}, []int64{8, 32, 32}},
		{"n5", "n5/zarr_implementations/n5-java.n5/gzip", "n5", "", all, []int64{100, 200, 0}, []int64{8, 16, 3}},
		{"precomputed", "precomputed/neuroglancer/one_channel", "precomputed-meta", "", all, []int64{4, 2, 1}, []int64{8, 8, 4}},
	}
}

// outputReader is the independent reader of each output name, and the
// relative tolerance of a voxel size read back from it: TIFF stores
// 1/size as a RATIONAL of 32-bit integers, DM a float32.
var outputReader = map[string]struct {
	reader string
	tol    float64
}{
	".zarr":        {"zarr", 1e-12},
	".ome.zarr":    {"zarr3-meta", 1e-12}, // zarr-python 2 reads no Zarr v3: voxels by our reader
	".tif":         {"tiff", 1e-6},
	".n5":          {"n5", 1e-12},
	".dm3":         {"dm", 1e-7},
	".precomputed": {"precomputed-meta", 1e-12}, // no independent reader installed: voxels by our reader
}

// job is one output to write and check.
type job struct {
	name           string // kind/op+ext, the subtest
	k              kind
	src, out       string
	ext            string
	crop           bool
	writeErr       error
	srcReq, outReq int // indexes into the oracle's answers
}

// answer is what oracle.py (or, for metadata-only readers, our reader for
// the voxels) says about one array.
type answer struct {
	SHA   string   `json:"sha"`
	Shape []int64  `json:"shape"`
	DType string   `json:"dtype"`
	Sum   *float64 `json:"sum"`
	Axes  []struct {
		Name string   `json:"name"`
		Unit *string  `json:"unit"`
		NM   *float64 `json:"nm"`
	} `json:"axes"`
	Meta  json.RawMessage `json:"meta"`
	Error string          `json:"error"`
}

// TestConvertAndCropKeepVoxelsAndFrame converts one file of every volume
// kind of the corpus to every output format and crops it to .zarr and .tif,
// then reads source and output with independent readers: the voxels must be
// equal (a crop: equal to the source's region), every calibrated axis must
// keep its size in nm, an uncalibrated one must stay uncalibrated, and the
// spatial axes of an output share one unit. Where no independent reader
// exists (Zarr v3, which zarr-python 2 cannot open, and precomputed) the
// voxels are read with this tool's reader and the calibration from the raw
// zarr.json or info file.
func TestConvertAndCropKeepVoxelsAndFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus conversions skipped in -short mode")
	}
	dir := corpus.Dir(t)
	if out, err := exec.Command(pyoracle.Python, "-W", "ignore", "-c", "import numpy, tifffile, zarr, hyperspy.api").CombinedOutput(); err != nil {
		t.Skipf("oracles unavailable (%s: import numpy, tifffile, zarr, hyperspy.api: %v: %s); install python3-tifffile python3-zarr python3-hyperspy",
			pyoracle.Python, err, strings.TrimSpace(string(out)))
	}
	ctx := context.Background()
	tmp := t.TempDir()

	var jobs []*job
	for _, k := range kinds() {
		src := filepath.Join(dir, k.path)
		for _, ext := range k.convert {
			jobs = append(jobs, &job{name: k.name + "/convert" + ext, k: k, src: src, ext: ext, out: filepath.Join(tmp, k.name, "convert"+ext)})
		}
		for _, ext := range []string{".zarr", ".tif"} {
			jobs = append(jobs, &job{name: k.name + "/crop" + ext, k: k, src: src, ext: ext, crop: true, out: filepath.Join(tmp, k.name, "crop"+ext)})
		}
	}

	// Write every output, then ask the oracles about all of them at once:
	// one Python process, one hyperspy import.
	var reqs []any
	for _, j := range jobs {
		if err := os.MkdirAll(filepath.Dir(j.out), 0o755); err != nil {
			t.Fatal(err)
		}
		if j.crop {
			if j.k.size == nil {
				_, j.writeErr = pipeline.Crop(ctx, j.src, manifest.Crop{Origin: []int64{0, 0, 0}, Size: []int64{1, 1, 1}}, j.out, pipeline.Options{})
				continue
			}
			_, j.writeErr = pipeline.Crop(ctx, j.src, manifest.Crop{Origin: j.k.origin, Size: j.k.size}, j.out, pipeline.Options{})
		} else {
			j.writeErr = pipeline.Convert(ctx, j.src, j.k.array, j.out, pipeline.Options{})
		}
		if j.writeErr != nil {
			continue
		}
		src := map[string]any{"reader": j.k.reader, "path": j.src, "array": j.k.array}
		if j.crop {
			var region [][2]int64
			for i := range j.k.origin {
				region = append(region, [2]int64{j.k.origin[i], j.k.size[i]})
			}
			src["region"] = region
		}
		j.srcReq, j.outReq = len(reqs), len(reqs)+1
		reqs = append(reqs, src, map[string]any{"reader": outputReader[j.ext].reader, "path": j.out})
	}
	var answers []answer
	for _, line := range pyoracle.Answers(t, oracleScript, reqs) {
		var a answer
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("oracle.py printed %q: %v", line, err)
		}
		answers = append(answers, a)
	}

	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			if j.crop && j.k.size == nil {
				// A 2D source: the crop must say it needs z, y, x.
				if j.writeErr == nil || !strings.Contains(j.writeErr.Error(), "z, y, x") || !strings.Contains(j.writeErr.Error(), j.src) {
					t.Errorf("crop of a 2D source: error %v, want one naming the source and that a crop needs z, y, x", j.writeErr)
				}
				return
			}
			if j.writeErr != nil {
				t.Fatalf("write: %v", j.writeErr)
			}
			src, out := answers[j.srcReq], answers[j.outReq]
			if src.Error != "" || out.Error != "" {
				t.Fatalf("oracle: source %s, output %s", src.Error, out.Error)
			}
			// Metadata-only readers: the voxels come from this tool's reader.
			if src.SHA == "" {
				src.SHA, src.Shape = ourVoxels(t, j.src, j.k.array, j.k.origin, j.k.size, j.crop)
			}
			if out.SHA == "" {
				out.SHA, out.Shape = ourVoxels(t, j.out, "", nil, nil, false)
			}
			if out.SHA != src.SHA || !slices.Equal(out.Shape, src.Shape) {
				t.Errorf("voxels %s %v, source %s %v", out.SHA, out.Shape, src.SHA, src.Shape)
			}
			// Equal bytes could hide a change of signedness or width.
			if src.DType != "" && out.DType != "" && src.DType != out.DType {
				t.Errorf("dtype %s, source %s", out.DType, src.DType)
			}
			checkFrame(t, src, out, outputReader[j.ext].tol, j.ext == ".precomputed")
			// A time axis must stay one where the format names axes (DM
			// and precomputed have no names to give).
			if r := outputReader[j.ext].reader; r != "dm" && r != "precomputed-meta" {
				for i, a := range src.Axes {
					if strings.EqualFold(a.Name, "t") && i < len(out.Axes) && !strings.EqualFold(out.Axes[i].Name, "t") {
						t.Errorf("time axis %d read back as %q", i, out.Axes[i].Name)
					}
				}
			}
		})
	}

	t.Run("dm3/convert.tif in ImageJ", func(t *testing.T) {
		for _, j := range jobs {
			if j.name == "dm3/convert.tif" && j.writeErr == nil {
				checkInImageJ(t, j.out, answers[j.srcReq])
				return
			}
		}
		t.Fatal("no dm3/convert.tif written")
	})
}

// checkFrame compares the axes of an output with its source's: every axis
// with a length calibration keeps its size in nm within tol, an axis
// without one gets none (precomputed, whose resolution is always nm, must
// say 1), and the calibrated axes of the output share one unit.
func checkFrame(t *testing.T, src, out answer, tol float64, precomputed bool) {
	t.Helper()
	if len(out.Axes) != len(src.Axes) {
		t.Fatalf("axes %+v, source %+v", out.Axes, src.Axes)
	}
	units := map[string]bool{}
	for i, s := range src.Axes {
		o := out.Axes[i]
		switch {
		case s.NM != nil && o.NM == nil:
			t.Errorf("axis %d (%s, %g nm): output has no length calibration (%s %v)", i, s.Name, *s.NM, o.Name, str(o.Unit))
		case s.NM != nil && !near(*o.NM, *s.NM, tol):
			t.Errorf("axis %d (%s): %.17g nm (%v), source %.17g nm (%v)", i, s.Name, *o.NM, str(o.Unit), *s.NM, str(s.Unit))
		case s.NM == nil && o.NM != nil && !(precomputed && *o.NM == 1):
			t.Errorf("axis %d (%s): uncalibrated in the source, %g nm (%v) in the output", i, s.Name, *o.NM, str(o.Unit))
		}
		if o.NM != nil && s.NM != nil {
			units[str(o.Unit)] = true
		}
	}
	if len(units) > 1 {
		t.Errorf("spatial axes in %d units: %v", len(units), units)
	}
}

// str prints an optional unit.
func str(p *string) string {
	if p == nil {
		return "<none>"
	}
	return *p
}

// optNum prints an optional number.
func optNum(p *float64) string {
	if p == nil {
		return "<none>"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}

// ourVoxels reads an array (by name, or the first) with this tool's readers,
// the region origin+size of it when crop is set, and returns its sha256_16
// and shape.
func ourVoxels(t *testing.T, p, array string, origin, size []int64, crop bool) (string, []int64) {
	t.Helper()
	ctx := context.Background()
	opt := pipeline.Options{}
	opt.Defaults()
	_, vs, err := opt.Formats.Open(ctx, store.New(store.NewFile(filepath.Dir(p))), filepath.Base(p))
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	v := vs[0]
	for _, c := range vs {
		if array != "" && c.Info().Name == array {
			v = c
		}
	}
	if crop {
		if v, err = volume.Window(v, origin, size); err != nil {
			t.Fatalf("%s: region %v+%v: %v", p, origin, size, err)
		}
	}
	sum, err := volume.Checksum16(ctx, v, 64<<20)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return sum, v.Info().Shape
}

// imagejMacro prints, per file of the list given as argument, what ImageJ 1
// sees: size, voxel size and unit, and the sum of all voxels.
const imagejMacro = `
paths = split(File.openAsString(getArgument()), "\n");
for (i = 0; i < paths.length; i++) {
	open(paths[i]);
	getVoxelSize(pw, ph, pd, unit);
	sum = 0;
	for (s = 1; s <= nSlices; s++) {
		setSlice(s);
		// Calibrated values (ImageJ stores int16 as uint16 + 32768); the
		// area getStatistics returns is in physical units, so count pixels.
		getStatistics(area, mean);
		sum = sum + getWidth() * getHeight() * mean;
	}
	f = "%.17g";
	print("RESULT\t" + getWidth() + "\t" + getHeight() + "\t" + nSlices + "\t" + String.format(f, pw) + "\t" + String.format(f, ph) +
		"\t" + String.format(f, pd) + "\t" + unit + "\t" + String.format(f, sum));
	close();
}
`

// checkInImageJ opens a TIFF output in ImageJ 1 and compares what it sees
// with the source as the independent reader read it.
func checkInImageJ(t *testing.T, p string, src answer) {
	out := imagej.Run(t, imagejMacro, []string{p})
	var f []string
	for line := range strings.Lines(out) {
		if g := strings.Split(strings.TrimRight(line, "\r\n"), "\t"); g[0] == "RESULT" && len(g) == 9 {
			f = g
		}
	}
	if f == nil {
		t.Fatalf("ImageJ did not open %s:\n%s", p, out)
	}
	num := func(k int) float64 {
		x, err := strconv.ParseFloat(f[k], 64)
		if err != nil {
			t.Fatalf("ImageJ field %d %q: %v", k, f[k], err)
		}
		return x
	}
	if n := len(src.Shape); n != 3 || num(1) != float64(src.Shape[2]) || num(2) != float64(src.Shape[1]) || num(3) != float64(src.Shape[0]) {
		t.Errorf("ImageJ sees %sx%sx%s, source %v", f[1], f[2], f[3], src.Shape)
	}
	// ImageJ's units as it names them; the oracle's table is not ours.
	per := map[string]float64{"nm": 1, "µm": 1000, "micron": 1000}[f[7]]
	if per == 0 {
		t.Fatalf("ImageJ unit %q", f[7])
	}
	for k, i := range []int{2, 1, 0} { // pw, ph, pd are x, y, z
		if a := src.Axes[i]; a.NM == nil || !near(num(4+k)*per, *a.NM, 1e-6) {
			t.Errorf("ImageJ voxel %s × %s × %s %s, source axis %s %v nm", f[4], f[5], f[6], f[7], a.Name, a.NM)
		}
	}
	if src.Sum == nil || num(8) != *src.Sum {
		t.Errorf("ImageJ voxel sum %s, source %v", f[8], optNum(src.Sum))
	}
}
