package tiff

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

func calAxis(name string, scale, offset float64, unit string) volume.Axis {
	return volume.Axis{Name: name, Size: 1, Scale: scale, Offset: offset, Unit: unit, ScaleKnown: unit != ""}
}

// TestCalibrate checks that ImageJ gets one unit for x, y and z, with the
// spacing and origins converted to it.
func TestCalibrate(t *testing.T) {
	for _, c := range []struct {
		name string
		axes []volume.Axis
		ok   bool
		want WriteOptions
	}{
		{
			// The EMPIAR stack: z from DM metadata in nm, the plane in µm.
			"z in nm, plane in µm",
			[]volume.Axis{calAxis("z", 50, 0, "nanometer"), calAxis("y", 0.008, 0, "micrometer"), calAxis("x", 0.008, 0, "micrometer")},
			true, WriteOptions{ImageJ: true, Unit: "nm", Spacing: 50, PixelWidth: 8, PixelHeight: 8},
		},
		{
			"all µm stays µm, with origins",
			[]volume.Axis{calAxis("z", 0.05, 0.1, "µm"), calAxis("y", 0.02, -0.04, "um"), calAxis("x", 0.025, 0.5, "micron")},
			true, WriteOptions{ImageJ: true, Unit: "µm", Spacing: 0.05, PixelWidth: 0.025, PixelHeight: 0.02, XOrigin: -20, YOrigin: 2, ZOrigin: -2},
		},
		{
			"2-D",
			[]volume.Axis{calAxis("y", 4, 0, "nm"), calAxis("x", 3.3, 0, "nm")},
			true, WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 3.3, PixelHeight: 4},
		},
		{
			"uncalibrated z gets no spacing",
			[]volume.Axis{calAxis("z", 1, 0, ""), calAxis("y", 4, 0, "nm"), calAxis("x", 4, 0, "nm")},
			true, WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 4, PixelHeight: 4},
		},
		{
			// Micro-Manager: t, y, x. Frames, not a z-stack; the interval in s.
			"time series",
			[]volume.Axis{calAxis("t", 5000, 0, "millisecond"), calAxis("y", 5.2304, 0, "µm"), calAxis("x", 5.2304, 0, "µm")},
			true, WriteOptions{ImageJ: true, Unit: "µm", Frames: true, FrameInterval: 5, PixelWidth: 5.2304, PixelHeight: 5.2304},
		},
		{
			"time series without an interval",
			[]volume.Axis{calAxis("t", 1, 0, ""), calAxis("y", 4, 0, "nm"), calAxis("x", 4, 0, "nm")},
			true, WriteOptions{ImageJ: true, Unit: "nm", Frames: true, PixelWidth: 4, PixelHeight: 4},
		},
		{"uncalibrated plane", []volume.Axis{calAxis("y", 1, 0, ""), calAxis("x", 1, 0, "")}, false, WriteOptions{}},
		{"plane in pixels", []volume.Axis{calAxis("y", 2, 0, "pixel"), calAxis("x", 2, 0, "pixel")}, false, WriteOptions{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o WriteOptions
			ok := o.Calibrate(volume.Info{Axes: c.axes})
			if ok != c.ok {
				t.Fatalf("Calibrate = %v, want %v", ok, c.ok)
			}
			near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
			if o.ImageJ != c.want.ImageJ || o.Unit != c.want.Unit || !near(o.Spacing, c.want.Spacing) ||
				o.Frames != c.want.Frames || !near(o.FrameInterval, c.want.FrameInterval) ||
				!near(o.PixelWidth, c.want.PixelWidth) || !near(o.PixelHeight, c.want.PixelHeight) ||
				!near(o.XOrigin, c.want.XOrigin) || !near(o.YOrigin, c.want.YOrigin) || !near(o.ZOrigin, c.want.ZOrigin) {
				t.Errorf("options %+v, want %+v", o, c.want)
			}
		})
	}
}

// withAxes returns src with the given axes (their sizes from its shape).
func withAxes(t *testing.T, src *volume.Mem, axes ...volume.Axis) (*volume.Mem, volume.Info) {
	t.Helper()
	in := src.Info()
	in.Axes = axes
	for i := range in.Axes {
		in.Axes[i].Size = in.Shape[i]
	}
	m, err := volume.NewMem(in, src.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return m, in
}

// TestCalibratedRoundTrip writes a stack calibrated in mixed units, with an
// offset and a property, and reads it back: classic TIFF, one unit on every
// axis, the same physical frame, the property in the ImageJ metadata.
func TestCalibratedRoundTrip(t *testing.T) {
	src := testVolume(t, volume.Uint16, 5, 12, 9)
	m, in := withAxes(t, src, calAxis("z", 50, 100, "nm"), calAxis("y", 0.008, 0.08, "µm"), calAxis("x", 0.008, 0.024, "µm"))
	opt := WriteOptions{Properties: map[string]string{"imgdataset_voxel_size_source": "file+api (EMPIAR µ)"}}
	if !opt.Calibrate(in) {
		t.Fatal("not calibrated")
	}
	st, key, file := writeTemp(t, m, opt)
	if string(file[:4]) != "II*\x00" {
		t.Fatalf("header % x, want a classic little-endian TIFF", file[:4])
	}
	vs, err := Format{}.Open(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	got := vs[0].Info()
	want := []struct{ scale, offset float64 }{{50, 100}, {8, 80}, {8, 24}}
	for i, a := range got.Axes {
		if a.Unit != "nm" || !a.ScaleKnown || math.Abs(a.Scale-want[i].scale) > 1e-6*want[i].scale || math.Abs(a.Offset-want[i].offset) > 1e-6*want[i].offset {
			t.Errorf("axis %s: %+v, want scale %g offset %g nm", a.Name, a, want[i].scale, want[i].offset)
		}
	}
	ij, _ := got.Metadata["imagej"].(map[string]any)
	if v, _ := ij["imgdataset_voxel_size_source"].(string); v != `file+api (EMPIAR \u00B5)` {
		t.Errorf("property read back as %q (imagej metadata %v)", v, ij)
	}
}

// TestTimeSeriesRoundTrip writes a t, y, x volume: the ImageJ description
// must call the pages frames with their interval, not slices, so ImageJ and
// tifffile see a time series and this package reads back a t axis in s.
func TestTimeSeriesRoundTrip(t *testing.T) {
	src := testVolume(t, volume.Uint16, 4, 6, 5)
	m, in := withAxes(t, src, calAxis("t", 250, 0, "ms"), calAxis("y", 2, 0, "µm"), calAxis("x", 2, 0, "µm"))
	var opt WriteOptions
	if !opt.Calibrate(in) {
		t.Fatal("not calibrated")
	}
	st, key, _ := writeTemp(t, m, opt)
	vs, err := Format{}.Open(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	got := vs[0].Info()
	ij, _ := got.Metadata["imagej"].(map[string]any)
	if len(got.Axes) != 3 || got.Axes[0].Name != "t" || got.Axes[0].Unit != "s" || math.Abs(got.Axes[0].Scale-0.25) > 1e-12 {
		t.Errorf("axes %+v (imagej metadata %v), want t at 0.25 s first", got.Axes, ij)
	}
	if _, ok := ij["slices"]; ok {
		t.Errorf("a time series written with slices: %v", ij)
	}
	if a := got.Axes[2]; a.Unit != "µm" || math.Abs(a.Scale-2) > 1e-9 {
		t.Errorf("x axis %+v, want 2 µm", a)
	}
}

// sizedVolume has a shape but is never read: Write decides the header
// first. Pages are kept small, as Write holds one in memory.
type sizedVolume struct{ info volume.Info }

func (s sizedVolume) Info() volume.Info { return s.info }
func (s sizedVolume) ReadRegion(context.Context, volume.Box, []byte) error {
	return errors.New("not read in this test")
}

// headerOnly keeps the first bytes written and then fails the write.
type headerOnly struct{ b []byte }

func (h *headerOnly) Write(p []byte) (int, error) {
	if len(h.b) >= 8 {
		return 0, errors.New("enough")
	}
	h.b = append(h.b, p...)
	return len(p), nil
}

// TestBigTIFFOnlyWhenNeeded checks the header Write picks from the size of
// the data: classic up to 4 GiB (ImageJ cannot open BigTIFF), BigTIFF
// beyond or when asked.
func TestBigTIFFOnlyWhenNeeded(t *testing.T) {
	for _, c := range []struct {
		name    string
		shape   []int64
		opt     WriteOptions
		bigTIFF bool
	}{
		{"150 KB", []int64{3, 160, 160}, WriteOptions{}, false},
		{"3.6 GB uncompressed", []int64{3600, 1000, 1000}, WriteOptions{}, false},
		{"4.4 GB", []int64{4400, 1000, 1000}, WriteOptions{}, true},
		{"3.6 GB deflate (room for expansion)", []int64{3600, 1000, 1000}, WriteOptions{Compression: "deflate"}, false},
		{"asked for", []int64{3, 160, 160}, WriteOptions{BigTIFF: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			names := []string{"z", "y", "x"}
			in := volume.Info{Name: c.name, Shape: c.shape, DType: volume.Uint8}
			for i, s := range c.shape {
				in.Axes = append(in.Axes, volume.Axis{Name: names[i], Size: s, Scale: 1})
			}
			var h headerOnly
			_ = Write(context.Background(), &h, sizedVolume{in}, c.opt)
			if len(h.b) < 4 {
				t.Fatalf("no header written")
			}
			if big := !bytes.Equal(h.b[:4], []byte("II*\x00")); big != c.bigTIFF {
				t.Errorf("header % x: BigTIFF %v, want %v", h.b[:4], big, c.bigTIFF)
			}
		})
	}
}

func TestWriteRejectsPropertyKeys(t *testing.T) {
	for _, k := range []string{"", "a=b", "Unit", "x y", "a\nb", "é"} {
		err := Write(context.Background(), &bytes.Buffer{}, testVolume(t, volume.Uint8, 2, 8, 8),
			WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 1, PixelHeight: 1, Properties: map[string]string{k: "v"}})
		if err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}
