package tiff

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
)

// TestVendorScaleCorpus checks the y/x calibration of the vendor rows of
// the corpus against rosettasciio's (hyperspy's) assertions in MANIFEST.tsv.
func TestVendorScaleCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	cases := []struct {
		file       string
		series     int
		scale      float64 // nm per pixel; 0 = the vendor states none
		xOff, yOff float64 // nm
		source     string  // prefix of voxel_size_source
	}{
		// "units µm; scale 3.3724" ([Scan] PixelWidth 3.3724e-06 m).
		{"tiff/rosettasciio/FEI-Helios-Ebeam-8bits.tif", 0, 3372.4, 0, 0, "FEI tag 34682"},
		// "signal (68,68); units µm; scale 0.16867; offsets x=139.66264 y=128.19276".
		{"tiff/rosettasciio/test_loading_image_saved_with_DM.tif", 0, 168.67469251155853, 139662.6434326172, 128192.76428222656, "DigitalMicrograph"},
		// "[1] uint16 raw calibrated 2.3928e-11 m/pixel, offset 0".
		{"tiff/rosettasciio/olympus_SIS.tif", 1, 0.023927917758761, 0, 0, "Olympus SIS"},
		// Bogus FEI floats: no vendor calibration, the resolution tags stay.
		{"tiff/rosettasciio/FEI-Helios-navcam-with-no-IRBeam-bad-floats.tif", 0, 0, 0, 0, "resolution tags"},
		// DM export without units (65009 = 1.0): not a calibration.
		{"tiff/omeroextractor/TEM_TECNAI_F20_1.tif", 0, 0, 0, 0, "resolution tags"},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			vs, err := openFile(ctx, filepath.Join(dir, filepath.FromSlash(c.file)))
			if err != nil {
				t.Fatal(err)
			}
			in := vs[c.series].Info()
			src, _ := in.Metadata["voxel_size_source"].(string)
			if !strings.HasPrefix(src, c.source) {
				t.Errorf("voxel_size_source %q, want %q…", src, c.source)
			}
			if c.scale == 0 {
				return
			}
			for i, name := range []string{"y", "x"} {
				a := in.Axes[i]
				nm, ok := nmOf(a.Scale, a.Unit)
				off, _ := nmOf(a.Offset, a.Unit)
				wantOff := []float64{c.yOff, c.xOff}[i]
				if a.Name != name || !a.ScaleKnown || !ok || math.Abs(nm-c.scale) > 1e-9*c.scale || math.Abs(off-wantOff) > 1e-6 {
					t.Errorf("%s axis %+v, want %g nm offset %g nm", name, a, c.scale, wantOff)
				}
			}
			if in.Metadata["voxel_size_note"] == nil {
				t.Error("no note that the resolution tags were overridden")
			}
		})
	}
}

func nmOf(v float64, unit string) (float64, bool) {
	switch unit {
	case "nm":
		return v, true
	case "µm":
		return v * 1e3, true
	}
	return 0, false
}

// TestVendorScaleSynthetic covers Zeiss SEM pixel sizes (no corpus file has
// them) and vendor values that must not calibrate.
func TestVendorScaleSynthetic(t *testing.T) {
	zeiss := "\r\nAP_PIXEL_SIZE\r\nPixel Size = 9 nm\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 2.233 nm\r\n"
	cases := []struct {
		name   string
		b      []byte
		scale  float64
		unit   string
		source string
	}{
		{"zeiss image pixel size wins", vendorTIFF(tagCZSEM, typeASCII, []byte(zeiss+"\x00")), 2.233, "nm", "Zeiss tag 34118 AP_IMAGE_PIXEL_SIZE"},
		{"zeiss pixel size", vendorTIFF(tagCZSEM, typeASCII, []byte("AP_PIXEL_SIZE\r\nPixel Size = 1.5 µm\r\n\x00")), 1.5, "µm", "Zeiss tag 34118 AP_PIXEL_SIZE"},
		{"zeiss unknown unit", vendorTIFF(tagCZSEM, typeASCII, []byte("AP_PIXEL_SIZE\r\nPixel Size = 1.5 furlong\r\n\x00")), 1, "", ""},
		{"fei", vendorTIFF(tagFEISFEG, typeASCII, []byte("[Scan]\r\nPixelWidth=4e-09\r\nPixelHeight=5e-09\r\n\x00")), 4, "nm", "FEI tag 34682 [Scan] PixelWidth/PixelHeight"},
		{"fei negative", vendorTIFF(tagFEISFEG, typeASCII, []byte("[Scan]\r\nPixelWidth=-4e-09\r\n\x00")), 1, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := openBytes(t, c.b)
			in := vs[0].Info()
			x := in.Axes[1]
			if math.Abs(x.Scale-c.scale) > 1e-12 || x.Unit != c.unit || x.ScaleKnown != (c.unit != "") {
				t.Errorf("x axis %+v, want %g %s", x, c.scale, c.unit)
			}
			if src, _ := in.Metadata["voxel_size_source"].(string); src != c.source {
				t.Errorf("voxel_size_source %q, want %q", src, c.source)
			}
		})
	}
}
