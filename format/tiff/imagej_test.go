package tiff

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/imagej"
	"github.com/imgdataset/imgdataset/volume"
)

// imagejMacro opens every file named in the list file given as its argument
// and prints one tab-separated line per file: what ImageJ sees (dimensions,
// bit depth, calibration, display range), the unit as UTF-16 code units (so
// the JVM's stdout encoding cannot hide a wrong µ), and a plain and a
// position-weighted sum of every voxel in z, y, x order. A file ImageJ
// cannot open leaves a BEGIN line without its RESULT line.
const imagejMacro = `
print("VERSION\t" + IJ.getFullVersion);
paths = split(File.openAsString(getArgument()), "\n");
for (i = 0; i < paths.length; i++) {
	print("BEGIN\t" + i);
	open(paths[i]);
	Stack.getDimensions(w, h, channels, slices, frames);
	getPixelSize(unit, pw, ph, pd);
	codes = "";
	for (k = 0; k < lengthOf(unit); k++) codes = codes + charCodeAt(unit, k) + " ";
	getMinAndMax(lo, hi);
	sum = 0; wsum = 0;
	for (z = 0; z < nSlices; z++) {
		setSlice(z + 1);
		for (y = 0; y < h; y++) {
			for (x = 0; x < w; x++) {
				v = getPixel(x, y);
				sum = sum + v;
				wsum = wsum + v * ((x*31 + y*17 + z*7) % 101 + 1);
			}
		}
	}
	f = "%.17g";
	print("RESULT\t" + i + "\t" + w + "\t" + h + "\t" + nSlices + "\t" + channels + "\t" + slices + "\t" + frames + "\t" + bitDepth() +
		"\t" + String.format(f, pw) + "\t" + String.format(f, ph) + "\t" + String.format(f, pd) + "\t" + codes +
		"\t" + String.format(f, lo) + "\t" + String.format(f, hi) + "\t" + String.format(f, sum) + "\t" + String.format(f, wsum));
	close();
}
`

// imagejSeen is one RESULT line of imagejMacro.
type imagejSeen struct {
	w, h, n, channels, slices, frames, bitDepth int64
	pw, ph, pd                                  float64
	unit                                        string
	lo, hi, sum, wsum                           float64
}

func parseImageJLine(fields []string) (imagejSeen, error) {
	var s imagejSeen
	if len(fields) != 17 {
		return s, fmt.Errorf("%d fields, want 17", len(fields))
	}
	ints := []*int64{&s.w, &s.h, &s.n, &s.channels, &s.slices, &s.frames, &s.bitDepth}
	for i, p := range ints {
		v, err := strconv.ParseInt(fields[2+i], 10, 64)
		if err != nil {
			return s, err
		}
		*p = v
	}
	floats := map[int]*float64{9: &s.pw, 10: &s.ph, 11: &s.pd, 13: &s.lo, 14: &s.hi, 15: &s.sum, 16: &s.wsum}
	for i, p := range floats {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return s, err
		}
		*p = v
	}
	var u []rune
	for _, c := range strings.Fields(fields[12]) {
		r, err := strconv.Atoi(c)
		if err != nil {
			return s, err
		}
		u = append(u, rune(r))
	}
	s.unit = string(u)
	return s, nil
}

// voxelSums is what imagejMacro computes, from the volume's own bytes.
func voxelSums(m *volume.Mem) (sum, wsum float64) {
	in := m.Info()
	nz, h, w := int64(1), in.Shape[len(in.Shape)-2], in.Shape[len(in.Shape)-1]
	if len(in.Shape) == 3 {
		nz = in.Shape[0]
	}
	data, size := m.Bytes(), int64(in.DType.Size())
	for z := int64(0); z < nz; z++ {
		for y := int64(0); y < h; y++ {
			for x := int64(0); x < w; x++ {
				v, _ := in.DType.Value(data[((z*h+y)*w+x)*size:])
				sum += v
				wsum += v * float64((x*31+y*17+z*7)%101+1)
			}
		}
	}
	return sum, wsum
}

// TestImageJReadsWriterOutput checks that ImageJ 1 — the core of Fiji —
// opens ImageJ-hyperstack files written by Write with the shape, bit depth,
// voxel size, unit, display range and voxel values that were written
// (issue #4).
//
// ImageJ 1.53t reads neither BigTIFF ("Unsupported format"), tiled TIFF
// nor zstd, so only classic TIFFs with strips, uncompressed or deflate, are
// cross-checked here; Fiji opens the others through Bio-Formats, which is
// not packaged. All files go through one JVM run.
func TestImageJReadsWriterOutput(t *testing.T) {
	cases := []struct {
		name  string
		dt    volume.DType
		shape []int64
		opt   WriteOptions
	}{
		{"u8-stack-um", volume.Uint8, []int64{7, 30, 41}, WriteOptions{ImageJ: true, Spacing: 0.05, Unit: "µm", PixelWidth: 0.02, PixelHeight: 0.025}},
		{"u8-stack-greek-mu-strips", volume.Uint8, []int64{4, 33, 20}, WriteOptions{ImageJ: true, Spacing: 1, Unit: "μm", PixelWidth: 0.5, PixelHeight: 0.5, RowsPerStrip: 5}},
		{"u16-stack-nm-MM", volume.Uint16, []int64{5, 40, 33}, WriteOptions{ImageJ: true, Spacing: 40, Unit: "nm", PixelWidth: 4, PixelHeight: 4, ByteOrder: binary.BigEndian}},
		{"u16-stack-nm-deflate", volume.Uint16, []int64{12, 24, 31}, WriteOptions{ImageJ: true, Spacing: 30, Unit: "nm", PixelWidth: 8, PixelHeight: 8, Compression: "deflate", RowsPerStrip: 7}},
		{"f32-stack-um-deflate-MM", volume.Float32, []int64{4, 35, 37}, WriteOptions{ImageJ: true, Spacing: 1.5, Unit: "µm", PixelWidth: 0.5, PixelHeight: 0.75, Compression: "deflate", ByteOrder: binary.BigEndian}},
		{"f32-stack-nm-strips", volume.Float32, []int64{6, 29, 26}, WriteOptions{ImageJ: true, Spacing: 2.5, Unit: "nm", PixelWidth: 3.3, PixelHeight: 3.3, RowsPerStrip: 4}},
		{"u16-2d-um", volume.Uint16, []int64{45, 38}, WriteOptions{ImageJ: true, Unit: "µm", PixelWidth: 0.1, PixelHeight: 0.1}},
		{"f32-2d-nm-MM", volume.Float32, []int64{21, 50}, WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 2, PixelHeight: 2, ByteOrder: binary.BigEndian}},
	}
	dir := t.TempDir()
	var paths []string
	for i, c := range cases {
		_, _, file := writeTemp(t, testVolume(t, c.dt, c.shape...), c.opt)
		p := filepath.Join(dir, fmt.Sprintf("f%02d.tif", i))
		if err := os.WriteFile(p, file, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := imagej.Run(t, imagejMacro, paths)
	seen := map[int]imagejSeen{}
	version := ""
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		switch f[0] {
		case "VERSION":
			version = f[len(f)-1]
		case "RESULT":
			i, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("ImageJ line %q: %v", line, err)
			}
			s, err := parseImageJLine(f)
			if err != nil {
				t.Fatalf("ImageJ line %q: %v", line, err)
			}
			seen[i] = s
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, ok := seen[i]
			if !ok {
				t.Fatalf("ImageJ %s did not read %s; its output:\n%s", version, paths[i], out)
			}
			src := testVolume(t, c.dt, c.shape...)
			nz := int64(1)
			if len(c.shape) == 3 {
				nz = c.shape[0]
			}
			h, w := c.shape[len(c.shape)-2], c.shape[len(c.shape)-1]
			bits := int64(c.dt.Size() * 8)
			if g.w != w || g.h != h || g.n != nz || g.slices != nz || g.channels != 1 || g.frames != 1 || g.bitDepth != bits {
				t.Errorf("ImageJ sees %dx%d, %d images (c=%d z=%d t=%d), %d-bit; wrote %v %s",
					g.w, g.h, g.n, g.channels, g.slices, g.frames, g.bitDepth, c.shape, c.dt)
			}
			// ImageJ reads the pixel size back from the RATIONAL X/YResolution,
			// which keeps about six decimals, as ImageJ's own writer does.
			wantPD := c.opt.Spacing
			if nz == 1 {
				wantPD = 1 // no spacing is written for a single image; ImageJ's default
			}
			for _, p := range []struct {
				name      string
				got, want float64
			}{{"pixelWidth", g.pw, c.opt.PixelWidth}, {"pixelHeight", g.ph, c.opt.PixelHeight}, {"pixelDepth", g.pd, wantPD}} {
				if math.Abs(p.got-p.want) > 1e-6*p.want {
					t.Errorf("ImageJ %s = %.17g, wrote %g", p.name, p.got, p.want)
				}
			}
			if want := strings.ReplaceAll(c.opt.Unit, "μ", "µ"); g.unit != want {
				t.Errorf("ImageJ unit %q %U, wrote %q (want %U)", g.unit, []rune(g.unit), c.opt.Unit, []rune(want))
			}
			lo, hi, err := valueRange(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			if g.lo != lo || g.hi != hi {
				// ImageJ keeps float min/max as written; integer ones exactly.
				if math.Abs(g.lo-lo) > 1e-6*math.Abs(lo)+1e-9 || math.Abs(g.hi-hi) > 1e-6*math.Abs(hi)+1e-9 {
					t.Errorf("ImageJ display range [%g, %g], data range [%g, %g]", g.lo, g.hi, lo, hi)
				}
			}
			sum, wsum := voxelSums(src)
			// Integer sums are exact in float64; float ones are summed in the
			// same order on both sides, so only formatting could differ.
			if math.Abs(g.sum-sum) > 1e-12*math.Abs(sum) || math.Abs(g.wsum-wsum) > 1e-12*math.Abs(wsum) {
				t.Errorf("ImageJ voxel sums %.17g / %.17g, written %.17g / %.17g", g.sum, g.wsum, sum, wsum)
			}
		})
	}
	t.Logf("ImageJ %s agreed on %d files written by Write", version, len(cases))
}
