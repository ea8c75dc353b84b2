package tiff

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// No JEOL SightX file is public in the corpus: these files are synthetic,
// laid out from rosettasciio's SightX reader (Make "JEOL Ltd.", TemReporter
// XML in ImageDescription, calibration from the resolution tags and the
// magnification). The element values are invented.

// jeolFile describes a synthetic SightX TIFF.
type jeolFile struct {
	make, desc, datetime string
	xres, yres           [2]uint32 // {0, 0}: tag absent
	resUnit              uint16    // 0: tag absent
}

// bytes builds a 4x4 uint8 little-endian classic TIFF.
func (j jeolFile) bytes() []byte {
	le := binary.LittleEndian
	var tail []byte
	const nEntries = 12
	base := uint32(8 + 2 + nEntries*12 + 4)
	put := func(b []byte) uint32 {
		off := base + uint32(len(tail))
		tail = append(tail, b...)
		if len(tail)%2 == 1 {
			tail = append(tail, 0)
		}
		return off
	}
	// An absent tag is written as an empty private tag (fixed up below),
	// so the IFD size, and the offsets computed from it, stay the same.
	text := func(tag uint16, s string) rawEntry {
		if s == "" {
			return rawEntry{}
		}
		return rawEntry{tag, typeASCII, uint32(len(s) + 1), put(append([]byte(s), 0))}
	}
	rat := func(tag uint16, r [2]uint32) rawEntry {
		if r == [2]uint32{} {
			return rawEntry{}
		}
		return rawEntry{tag, typeRational, 1, put(le.AppendUint32(le.AppendUint32(nil, r[0]), r[1]))}
	}
	pix := put([]byte("0123456789abcdef"))
	es := []rawEntry{
		{tagImageWidth, typeShort, 1, 4},
		{tagImageLength, typeShort, 1, 4},
		{tagBitsPerSample, typeShort, 1, 8},
		{tagPhotometric, typeShort, 1, 1},
		text(tagImageDescription, j.desc),
		text(tagMake, j.make),
		{tagStripOffsets, typeLong, 1, pix},
		{tagStripByteCounts, typeLong, 1, 16},
		rat(tagXResolution, j.xres),
		rat(tagYResolution, j.yres),
		{tagResolutionUnit, typeShort, 1, uint32(j.resUnit)},
		text(tagDateTime, j.datetime),
	}
	if j.resUnit == 0 {
		es[10] = rawEntry{}
	}
	for i := range es {
		if es[i].tag == 0 {
			es[i] = rawEntry{uint16(60000 + i), typeShort, 0, 0}
		}
	}
	for i := 1; i < len(es); i++ {
		for k := i; k > 0 && es[k].tag < es[k-1].tag; k-- {
			es[k], es[k-1] = es[k-1], es[k]
		}
	}
	return classic(es, 0, tail)
}

// sightXML is a TemReporter document in the shape rosettasciio reads.
func sightXML(eos, mode, selector string, value float64, unit string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<TemReporter>
  <Instruments>JEM-ARM300F2</Instruments>
  <DateTime>2021-05-18T13:52:35.1234567+09:00</DateTime>
  <ElectronGun>
    <AccelerationVoltage>300000</AccelerationVoltage>
    <BeamCurrent>1250</BeamCurrent>
  </ElectronGun>
  <Eos><EosMode>` + eos + `</EosMode></Eos>
  <IlluminationSystem><ImageField>ifldBright Field</ImageField></IlluminationSystem>
  <ImageFormingSystem>
    <ImageFormingMode>ifmdImaging</ImageFormingMode>
    <ScanningImageFormingMode>sifmBF</ScanningImageFormingMode>
    <ModeString>` + mode + `</ModeString>
    <SelectorString>` + selector + `</SelectorString>
    <SelectorValue>` + fmt.Sprint(value) + `</SelectorValue>
    <SelectorUnitString>` + unit + `</SelectorUnitString>
  </ImageFormingSystem>
  <GonioStage><StagePosition><TX>1.5</TX><TY>-2</TY></StagePosition><MZ>12.25</MZ></GonioStage>
</TemReporter>
`
}

// framed wraps every line of s in the NUL and \x01 bytes rosettasciio
// strips from SightX descriptions.
func framed(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		b.WriteString("\x01" + line + "\x00\r\n")
	}
	return "\x01" + b.String()
}

// jeolCases are the synthetic files shared by the unit test and the
// hyperspy cross-check. scaleNM is the specimen pixel size (0: none).
var jeolCases = []struct {
	name             string
	file             jeolFile
	scaleY, scaleX   float64 // nm
	derived          map[string]any
	parsed, warnings bool
}{
	{
		// 30/20000 cm = 15 µm detector pitch / 50000 = 0.3 nm.
		name: "tem-mag-cm",
		file: jeolFile{make: "JEOL Ltd.", desc: sightXML("eosTEM", "MAG", "x50k", 50000, "x"), datetime: "2021-05-18T13:52:35.1234567+09:00",
			xres: [2]uint32{20000, 30}, yres: [2]uint32{20000, 30}, resUnit: 3},
		scaleY: 0.3, scaleX: 0.3, parsed: true,
		derived: map[string]any{"microscope": "JEM-ARM300F2", "voltage_kv": 300.0, "magnification": 50000.0,
			"acquisition_datetime": "2021-05-18T13:52:35+09:00", "acquisition_mode": "TEM"},
	},
	{
		// 1/25400 inch = 1 µm (x) and 2 µm (y) / 10000.
		name: "tem-mag-inch-anisotropic-framed",
		file: jeolFile{make: "JEOL Ltd.", desc: framed(sightXML("eosTEM", "MAG", "x10k", 10000, "x")), datetime: "2021-05-18T13:52:35.1234567+09:00",
			xres: [2]uint32{25400, 1}, yres: [2]uint32{12700, 1}, resUnit: 2},
		scaleY: 0.2, scaleX: 0.1, parsed: true,
		derived: map[string]any{"microscope": "JEM-ARM300F2", "voltage_kv": 300.0, "magnification": 10000.0,
			"acquisition_datetime": "2021-05-18T13:52:35+09:00", "acquisition_mode": "TEM"},
	},
	{
		name: "tem-diff",
		file: jeolFile{make: "JEOL Ltd.", desc: sightXML("eosTEM", "DIFF", "40cm", 40, "cm"), datetime: "2021-05-18T13:52:35.1234567+09:00",
			xres: [2]uint32{20000, 30}, yres: [2]uint32{20000, 30}, resUnit: 3},
		parsed: true, warnings: true,
		derived: map[string]any{"microscope": "JEM-ARM300F2", "voltage_kv": 300.0, "camera_length": 40.0, "camera_length_unit": "cm",
			"acquisition_datetime": "2021-05-18T13:52:35+09:00", "acquisition_mode": "TEM"},
	},
	{
		name: "stem",
		file: jeolFile{make: "JEOL Ltd.", desc: sightXML("modeASID", "MAG", "x2M", 2e6, "x"), datetime: "2021-05-18T13:52:35.1234567+09:00",
			xres: [2]uint32{20000, 30}, yres: [2]uint32{20000, 30}, resUnit: 3},
		parsed: true, warnings: true,
		derived: map[string]any{"microscope": "JEM-ARM300F2", "voltage_kv": 300.0, "magnification": 2e6,
			"acquisition_datetime": "2021-05-18T13:52:35+09:00", "acquisition_mode": "STEM"},
	},
	{
		name:    "not-jeol-make",
		file:    jeolFile{make: "Other Inc.", desc: sightXML("eosTEM", "MAG", "x50k", 50000, "x"), xres: [2]uint32{20000, 30}, resUnit: 3},
		derived: map[string]any{},
	},
	{
		name:    "jeol-plain-description",
		file:    jeolFile{make: "JEOL Ltd.", desc: "JSM-7800F image"},
		derived: map[string]any{},
	},
	{
		name:     "jeol-broken-xml",
		file:     jeolFile{make: "JEOL Ltd.", desc: "<TemReporter><Instruments>JEM-1400</Instruments><ElectronGun><Acc", xres: [2]uint32{1, 1}, resUnit: 3},
		parsed:   true,
		warnings: true,
		derived:  map[string]any{"microscope": "JEM-1400"},
	},
	{
		// A zero resolution is no calibration, not a division by zero.
		name:   "tem-mag-zero-resolution",
		file:   jeolFile{make: "JEOL Ltd.", desc: sightXML("eosTEM", "MAG", "x50k", 50000, "x"), xres: [2]uint32{0, 1}, resUnit: 3},
		parsed: true, warnings: true,
		derived: map[string]any{"microscope": "JEM-ARM300F2", "voltage_kv": 300.0, "magnification": 50000.0,
			"acquisition_datetime": "2021-05-18T13:52:35+09:00", "acquisition_mode": "TEM"},
	},
}

func TestJEOLSightX(t *testing.T) {
	for _, c := range jeolCases {
		t.Run(c.name, func(t *testing.T) {
			vs, err := open(context.Background(), memStore(t, c.file.bytes()), "f.tif", defaultMaxChunk)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			in := vs[0].Info()
			md := in.Metadata
			leaves, _ := md["jeol_sightx"].(map[string]any)
			if (leaves != nil) != c.parsed {
				t.Fatalf("jeol_sightx = %v, want parsed=%v", md["jeol_sightx"], c.parsed)
			}
			if c.parsed && !c.warnings {
				for k, want := range map[string]any{
					"TemReporter/ElectronGun/BeamCurrent":       1250.0,
					"TemReporter/GonioStage/StagePosition/TX":   1.5,
					"TemReporter/ImageFormingSystem/ModeString": jeolLeaf(leaves, "ImageFormingSystem/ModeString"),
					"TemReporter/IlluminationSystem/ImageField": "ifldBright Field",
				} {
					if got := leaves[k]; got != want || got == nil {
						t.Errorf("jeol_sightx[%q] = %#v, want %#v", k, got, want)
					}
				}
			}
			got := map[string]any{}
			for _, k := range []string{"microscope", "voltage_kv", "magnification", "camera_length", "camera_length_unit", "acquisition_datetime", "acquisition_mode"} {
				if v, ok := md[k]; ok {
					got[k] = v
				}
			}
			if !reflect.DeepEqual(got, c.derived) {
				t.Errorf("derived %v, want %v", got, c.derived)
			}
			// The typed facts are what the metadata shows.
			typed := map[string]any{}
			in.Acquisition.AddTo(typed)
			for _, k := range []string{"camera_length", "camera_length_unit"} {
				if v, ok := md[k]; ok {
					typed[k] = v
				}
			}
			if !reflect.DeepEqual(typed, c.derived) {
				t.Errorf("Info.Acquisition %+v, want %v", in.Acquisition, c.derived)
			}
			if _, ok := md["vendor_warnings"]; ok != c.warnings {
				t.Errorf("vendor_warnings %v, want present=%v", md["vendor_warnings"], c.warnings)
			}
			src, _ := md["voxel_size_source"].(string)
			if c.scaleX == 0 {
				if strings.HasPrefix(src, "JEOL") {
					t.Errorf("voxel_size_source %q for a file with no JEOL calibration", src)
				}
				// Diffraction and STEM: the resolution tags are the detector
				// pitch, so no axis may claim a specimen voxel size.
				if c.name == "tem-diff" || c.name == "stem" {
					for _, a := range in.Axes {
						if a.ScaleKnown {
							t.Errorf("axis %+v known from the detector pitch (source %q)", a, src)
						}
					}
					if note, _ := md["voxel_size_note"].(string); !strings.Contains(note, "detector pitch") {
						t.Errorf("voxel_size_note %q does not say why the tags were ignored", note)
					}
				}
				return
			}
			if !strings.HasPrefix(src, "JEOL SightX") {
				t.Errorf("voxel_size_source %q", src)
			}
			for i, want := range []float64{c.scaleY, c.scaleX} {
				a := in.Axes[i]
				nm, ok := nmOf(a.Scale, a.Unit)
				if !a.ScaleKnown || !ok || math.Abs(nm-want) > 1e-9*want {
					t.Errorf("axis %+v, want %g nm", a, want)
				}
			}
		})
	}
}

// jeolHyperspyScript reads each file with hyperspy's TIFF plugin and applies
// its metadata mapping as hyperspy.io does, without importing hyperspy.api
// (which costs seconds more), and prints the calibration of the y and x
// axes and the mapped values.
const jeolHyperspyScript = `
import json, sys, warnings
warnings.simplefilter("ignore")
from hyperspy.io_plugins import tiff
from hyperspy.misc.utils import DictionaryTreeBrowser
def num(v):
    return None if v is None else float(v)
for p in sys.argv[1:]:
    d = tiff.file_reader(p)[0]
    op = DictionaryTreeBrowser(d["original_metadata"])
    md = DictionaryTreeBrowser(d["metadata"])
    for opattr, (mpattr, function) in d.get("mapping", {}).items():
        if opattr in op:
            v = op.get_item(opattr)
            v = function(v) if function is not None else v
            if v is not None:
                md.set_item(mpattr, v)
    md = md.as_dictionary()
    tem = md.get("Acquisition_instrument", {}).get("TEM", {})
    g = md["General"]
    print(json.dumps({"path": p,
        "axes": [[float(a["scale"]), str(a["units"])] for a in d["axes"][-2:]],
        "beam_energy": num(tem.get("beam_energy")), "magnification": num(tem.get("magnification")),
        "camera_length": num(tem.get("camera_length")), "microscope": tem.get("microscope"),
        "date": g.get("date"), "time": g.get("time"), "time_zone": g.get("time_zone")}))
`

// TestJEOLHyperspy reads the synthetic SightX files with hyperspy 1.7.3
// (Debian's python3-hyperspy, whose SightX reader rosettasciio inherited)
// and checks that both readers agree on them. Both read the same synthetic
// bytes, so this shows we follow the upstream reader, not that real SightX
// files look like this.
func TestJEOLHyperspy(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import hyperspy.io_plugins.tiff, tifffile").CombinedOutput(); err != nil {
		t.Skipf("hyperspy oracle unavailable (%v): %s; install python3-hyperspy and python3-tifffile", err, out)
	}
	dir := t.TempDir()
	var paths []string
	var idx []int
	for i, c := range jeolCases {
		if !strings.HasPrefix(c.name, "tem-") && c.name != "stem" || c.file.xres[0] == 0 {
			continue
		}
		p := filepath.Join(dir, c.name+".tif")
		if err := os.WriteFile(p, c.file.bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths, idx = append(paths, p), append(idx, i)
	}
	cmd := exec.Command(py, append([]string{"-c", jeolHyperspyScript}, paths...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "MPLBACKEND=Agg")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("hyperspy: %v\n%s", err, msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(paths) {
		t.Fatalf("hyperspy printed %d lines for %d files:\n%s", len(lines), len(paths), out)
	}
	for n, line := range lines {
		c := jeolCases[idx[n]]
		t.Run(c.name, func(t *testing.T) {
			var h struct {
				Path          string
				Axes          [][]any
				BeamEnergy    *float64 `json:"beam_energy"`
				Magnification *float64
				CamLen        *float64 `json:"camera_length"`
				Microscope    *string
				Date, Time    *string
				Zone          *string `json:"time_zone"`
			}
			if err := json.Unmarshal([]byte(line), &h); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if h.Path != paths[n] {
				t.Fatalf("result for %s, want %s", h.Path, paths[n])
			}
			vs, err := open(context.Background(), memStore(t, c.file.bytes()), "f.tif", defaultMaxChunk)
			if err != nil {
				t.Fatal(err)
			}
			in := vs[0].Info()
			md := in.Metadata
			if h.BeamEnergy == nil || !near(md["voltage_kv"], *h.BeamEnergy) {
				t.Errorf("voltage_kv %v, hyperspy beam_energy %v keV", md["voltage_kv"], h.BeamEnergy)
			}
			if h.Microscope == nil || md["microscope"] != *h.Microscope {
				t.Errorf("microscope %v, hyperspy %v", md["microscope"], h.Microscope)
			}
			if h.Magnification != nil && !near(md["magnification"], *h.Magnification) || h.Magnification == nil && md["magnification"] != nil {
				t.Errorf("magnification %v, hyperspy %v", md["magnification"], h.Magnification)
			}
			if h.CamLen != nil && !near(md["camera_length"], *h.CamLen) || h.CamLen == nil && md["camera_length"] != nil {
				t.Errorf("camera_length %v, hyperspy %v", md["camera_length"], h.CamLen)
			}
			if h.Date == nil || h.Time == nil || h.Zone == nil {
				t.Errorf("hyperspy read no date: %s", line)
			} else if want := *h.Date + "T" + (*h.Time)[:8] + *h.Zone; md["acquisition_datetime"] != want {
				t.Errorf("acquisition_datetime %v, hyperspy %s", md["acquisition_datetime"], want)
			}
			// hyperspy's units are nm for an image, "1 / nm" for a
			// diffraction pattern (which we leave uncalibrated) and unset
			// for STEM.
			if len(h.Axes) != 2 {
				t.Fatalf("hyperspy axes %v", h.Axes)
			}
			for i := range 2 {
				hs, _ := h.Axes[i][0].(float64)
				unit, _ := h.Axes[i][1].(string)
				ours := in.Axes[i]
				if unit != "nm" {
					if ours.ScaleKnown {
						t.Errorf("hyperspy axis %v has unit %q, but we calibrated %+v (source %v)", i, unit, ours, md["voxel_size_source"])
					}
					continue
				}
				nm, ok := nmOf(ours.Scale, ours.Unit)
				if !ok || math.Abs(nm-hs) > 1e-9*hs {
					t.Errorf("axis %s = %+v, hyperspy %g nm", ours.Name, ours, hs)
				}
			}
		})
	}
	t.Logf("hyperspy agreed on %d synthetic JEOL SightX files", len(paths))
}

// FuzzJEOL runs the SightX path on arbitrary descriptions and calibration
// tags through Open, and the parsers directly.
func FuzzJEOL(f *testing.F) {
	for _, c := range jeolCases {
		f.Add(c.file.make, c.file.desc, c.file.xres[0], c.file.xres[1], c.file.resUnit)
	}
	f.Add("JEOL", "\x01<TemReporter>\x00\n<Eos><EosMode>eosTEM</EosMode></Eos><ImageFormingSystem><ModeString>MAG</ModeString><SelectorValue>1e-300</SelectorValue></ImageFormingSystem></TemReporter>", uint32(1), uint32(4294967295), uint16(2))
	f.Fuzz(func(t *testing.T, mk, desc string, num, den uint32, unit uint16) {
		leaves, _ := parseXMLLeaves(jeolXML(desc))
		jeolDerived(leaves, &volume.Acquisition{}, map[string]any{})
		if s := jeolScale(leaves, [2]uint32{num, den}, [2]uint32{num, den}, uint64(unit)); s != nil {
			if !(s.x > 0) || !(s.y > 0) || math.IsInf(s.x, 0) || math.IsInf(s.y, 0) {
				t.Errorf("jeolScale gave %+v", s)
			}
		}
		if strings.IndexByte(mk, 0) >= 0 || len(mk) > 1000 {
			return // a NUL would end the Make text early; the builder writes plain strings
		}
		b := jeolFile{make: mk, desc: desc, xres: [2]uint32{num, den}, yres: [2]uint32{den, num}, resUnit: unit}.bytes()
		vs, err := open(context.Background(), memStore(t, b), "f.tif", 1<<20)
		if err != nil {
			return
		}
		in := vs[0].Info()
		if _, err := json.Marshal(in.Metadata); err != nil {
			t.Errorf("metadata does not marshal: %v", err)
		}
		for _, a := range in.Axes {
			if a.ScaleKnown && (!(a.Scale > 0) || math.IsInf(a.Scale, 0)) {
				t.Errorf("axis %+v", a)
			}
		}
	})
}
