package volume_test

import (
	"context"
	"math"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

func ax(name string, scale, offset float64, unit string, known bool) volume.Axis {
	return volume.Axis{Name: name, Size: 4, Scale: scale, Offset: offset, Unit: unit, ScaleKnown: known}
}

// sameAxes compares scale, offset, unit and ScaleKnown; lengths to 1e-12.
func sameAxes(t *testing.T, got, want []volume.Axis) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d axes, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Unit != w.Unit || g.ScaleKnown != w.ScaleKnown ||
			math.Abs(g.Scale-w.Scale) > 1e-12*math.Abs(w.Scale) || math.Abs(g.Offset-w.Offset) > 1e-12*math.Abs(w.Offset) {
			t.Errorf("axis %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestOneUnit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []volume.Axis
	}{
		{
			// The EMPIAR stack: z spacing in nm, the DM calibration in µm.
			"mixed nm and µm become nm",
			[]volume.Axis{ax("z", 50, 0, "nanometer", true), ax("y", 0.008, 0.016, "micrometer", true), ax("x", 0.0033, 0, "µm", true)},
			[]volume.Axis{ax("z", 50, 0, "nm", true), ax("y", 8, 16, "nm", true), ax("x", 3.3, 0, "nm", true)},
		},
		{
			"all µm or coarser stay µm",
			[]volume.Axis{ax("z", 0.002, 0, "mm", true), ax("y", 0.5, 1.5, "micron", true), ax("x", 0.5, 0, `\u00B5m`, true)},
			[]volume.Axis{ax("z", 2, 0, "µm", true), ax("y", 0.5, 1.5, "µm", true), ax("x", 0.5, 0, "µm", true)},
		},
		{
			"ångström becomes nm",
			[]volume.Axis{ax("y", 80, 0, "Å", true), ax("x", 80, 0, "angstrom", true)},
			[]volume.Axis{ax("y", 8, 0, "nm", true), ax("x", 8, 0, "nm", true)},
		},
		{
			"channel, time and uncalibrated axes are left alone",
			[]volume.Axis{ax("t", 2, 0, "s", true), ax("c", 1, 0, "", false), ax("z", 1, 3, "", false), ax("y", 1, 0, "µm", true), ax("x", 1, 0, "µm", true)},
			[]volume.Axis{ax("t", 2, 0, "s", true), ax("c", 1, 0, "", false), ax("z", 1, 3, "", false), ax("y", 1, 0, "µm", true), ax("x", 1, 0, "µm", true)},
		},
		{
			"a unit that is no length is kept",
			[]volume.Axis{ax("y", 2, 0, "pixel", true), ax("x", 0.004, 0, "µm", true)},
			[]volume.Axis{ax("y", 2, 0, "pixel", true), ax("x", 0.004, 0, "µm", true)},
		},
		{
			"nothing calibrated",
			[]volume.Axis{ax("y", 1, 0, "", false), ax("x", 1, 0, "", false)},
			[]volume.Axis{ax("y", 1, 0, "", false), ax("x", 1, 0, "", false)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]volume.Axis(nil), tc.in...)
			sameAxes(t, volume.OneUnit(in), tc.want)
			sameAxes(t, in, tc.in) // the argument is not modified
		})
	}
}

func TestFrameApply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    volume.Frame
		in, want []volume.Axis
	}{
		{
			// EPFL: no calibration in the file, 5 nm from the web page; a
			// crop at voxel (2, 0, 7) keeps its position.
			"page fills an uncalibrated file",
			volume.Frame{VoxelNM: [3]float64{5, 5, 5}, Source: "web page"},
			[]volume.Axis{ax("z", 1, 2, "", false), ax("y", 1, 0, "", false), ax("x", 1, 7, "", false)},
			[]volume.Axis{ax("z", 5, 10, "nm", true), ax("y", 5, 0, "nm", true), ax("x", 5, 35, "nm", true)},
		},
		{
			// EMPIAR sections: the API gives only the plane, the file all three.
			"the file's calibration wins and sets the unit",
			volume.Frame{VoxelNM: [3]float64{50, 8, 8}, Source: "file"},
			[]volume.Axis{ax("z", 50, 0, "nm", true), ax("y", 0.008, 0, "µm", true), ax("x", 0.008, 0, "µm", true)},
			[]volume.Axis{ax("z", 50, 0, "nm", true), ax("y", 8, 0, "nm", true), ax("x", 8, 0, "nm", true)},
		},
		{
			"µm file with a z from the manifest becomes nm",
			volume.Frame{VoxelNM: [3]float64{40, 4, 4}, Source: "file+manifest"},
			[]volume.Axis{ax("z", 1, 0, "", false), ax("y", 0.004, 0, "µm", true), ax("x", 0.004, 0, "µm", true)},
			[]volume.Axis{ax("z", 40, 0, "nm", true), ax("y", 4, 0, "nm", true), ax("x", 4, 0, "nm", true)},
		},
		{
			"axes the frame does not cover keep what they had",
			volume.Frame{VoxelNM: [3]float64{0, 6, 6}, Source: "api"},
			[]volume.Axis{ax("c", 1, 0, "", false), ax("z", 1, 0, "", false), ax("y", 1, 0, "", false), ax("x", 3, 0, "pixel", true)},
			[]volume.Axis{ax("c", 1, 0, "", false), ax("z", 1, 0, "", false), ax("y", 6, 0, "nm", true), ax("x", 6, 0, "nm", true)},
		},
		{
			"an unknown frame changes nothing",
			volume.Frame{},
			[]volume.Axis{ax("y", 1, 0, "", false), ax("x", 2, 0, "nm", true)},
			[]volume.Axis{ax("y", 1, 0, "", false), ax("x", 2, 0, "nm", true)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sameAxes(t, tc.frame.Apply(tc.in), tc.want)
		})
	}
}

// TestReframeWindow checks that a window of a reframed volume sits where the
// same window of the original sits, now in nanometres, and reads the same bytes.
func TestReframeWindow(t *testing.T) {
	in := memInfo([]int64{4, 6, 8}, volume.Uint8)
	data := randBytes(in.NumBytes(), 3)
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	r := volume.Reframe(m, volume.Frame{VoxelNM: [3]float64{30, 5, 5}, Source: "web page"})
	w, err := volume.Window(r, []int64{1, 2, 3}, []int64{2, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	wantOff := []float64{30, 10, 15}
	for i, a := range w.Info().Axes {
		if a.Offset != wantOff[i] || a.Unit != volume.Nanometre || !a.ScaleKnown {
			t.Errorf("axis %s: offset %g %s (known %v), want %g nm", a.Name, a.Offset, a.Unit, a.ScaleKnown, wantOff[i])
		}
	}
	got := make([]byte, 8)
	if err := w.ReadRegion(context.Background(), volume.Full([]int64{2, 2, 2}), got); err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		z, y, x := int64(i/4), int64(i/2%2), int64(i%2)
		if want := data[((1+z)*6+2+y)*8+3+x]; b != want {
			t.Fatalf("voxel %d: %d, want %d", i, b, want)
		}
	}
}

func TestSpatialSlot(t *testing.T) {
	for _, tc := range []struct {
		name string
		i, n int
		want int
	}{
		{"z", 0, 3, 0}, {"Y", 1, 3, 1}, {"x", 2, 3, 2}, {"c", 0, 4, -1}, {"time", 0, 4, -1},
		{"dim_0", 0, 3, 0}, {"dim_1", 1, 3, 1}, {"dim_2", 2, 3, 2}, {"d0", 0, 2, 1}, {"d1", 1, 2, 2},
	} {
		if got := volume.SpatialSlot(tc.name, tc.i, tc.n); got != tc.want {
			t.Errorf("SpatialSlot(%q, %d, %d) = %d, want %d", tc.name, tc.i, tc.n, got, tc.want)
		}
	}
}
