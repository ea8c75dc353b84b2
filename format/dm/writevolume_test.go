package dm

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// calibratedStack is a (z, y, x) int16 stack with z in nm and the plane in
// µm, placed away from the origin, as a crop of the EMPIAR stack would be.
func calibratedStack(t *testing.T) *volume.Mem {
	t.Helper()
	shape := []int64{3, 5, 7}
	in := volume.Info{Name: "stack", Shape: shape, DType: volume.Int16, Axes: []volume.Axis{
		{Name: "z", Size: 3, Scale: 50, Offset: 100, Unit: "nm", ScaleKnown: true},
		{Name: "y", Size: 5, Scale: 0.008, Offset: 0.016, Unit: "µm", ScaleKnown: true},
		{Name: "x", Size: 7, Scale: 0.008, Unit: "µm", ScaleKnown: true},
	}}
	m, err := volume.NewMem(in, ramp(volume.Int16, int(volume.Prod(shape))))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWriteVolume writes a stack in mixed units and reads it back with this
// package and, when installed, hyperspy: same pixels, one unit (nm), the
// same physical frame, the given tags, no invented acquisition tags.
func TestWriteVolume(t *testing.T) {
	src := calibratedStack(t)
	var buf bytes.Buffer
	tags := map[string]any{"imgdataset.voxel_size_source": "file"}
	if err := WriteVolume(context.Background(), &buf, src, tags); err != nil {
		t.Fatal(err)
	}
	vs, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"s.dm3": buf.Bytes()}), "s.dm3")
	if err != nil {
		t.Fatal(err)
	}
	in := vs[0].Info()
	volumetest.Run(t, vs[0], src.Bytes(), 0)
	want := []struct{ scale, offset float64 }{{50, 100}, {8, 16}, {8, 0}}
	for i, a := range in.Axes {
		// DM stores calibrations as float32.
		if a.Unit != "nm" || !a.ScaleKnown || math.Abs(a.Scale-want[i].scale) > 1e-5*want[i].scale || math.Abs(a.Offset-want[i].offset) > 1e-4 {
			t.Errorf("axis %s: %+v, want scale %g offset %g nm", a.Name, a, want[i].scale, want[i].offset)
		}
	}
	if _, ok := in.Metadata["microscope"]; ok {
		t.Errorf("a converted file claims a microscope: %v", in.Metadata["microscope"])
	}
	if !bytes.Contains(buf.Bytes(), []byte("voxel_size_source")) {
		t.Error("the provenance tag is missing")
	}

	if out, err := exec.Command("/usr/bin/python3", "-c", "import hyperspy").CombinedOutput(); err != nil {
		t.Logf("hyperspy oracle unavailable (/usr/bin/python3 -c 'import hyperspy': %v: %s); cross-check skipped", err, strings.TrimSpace(string(out)))
		return
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "stack.dm3")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	hs := runHyperspy(t, dir, []string{p})[0]
	sum, err := volume.Checksum16(context.Background(), src, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if hs.SHA != sum || len(hs.Axes) != 3 {
		t.Fatalf("hyperspy reads %v %s sha %s with axes %v, wrote sha %s", hs.Shape, hs.DType, hs.SHA, hs.Axes, sum)
	}
	for i, a := range hs.Axes { // hyperspy lists axes slowest first, as numpy does
		scale, _ := a[2].(float64)
		offset, _ := a[3].(float64)
		if a[4] != "nm" || math.Abs(scale-want[i].scale) > 1e-5*want[i].scale || math.Abs(offset-want[i].offset) > 1e-4 {
			t.Errorf("hyperspy axis %d: %v, want scale %g offset %g nm", i, a, want[i].scale, want[i].offset)
		}
	}
}

func TestWriteVolumeRejects(t *testing.T) {
	big := volume.Info{Name: "big", Shape: []int64{2048, 1024, 1024}, DType: volume.Uint8}
	u64 := volume.Info{Name: "u64", Shape: []int64{2, 2}, DType: volume.Uint64}
	for _, in := range []volume.Info{big, u64} {
		for range in.Shape {
			in.Axes = append(in.Axes, volume.Axis{Scale: 1})
		}
		err := WriteVolume(context.Background(), &bytes.Buffer{}, unread{in}, nil)
		if !errors.Is(err, ErrWrite) {
			t.Errorf("%s: %v, want ErrWrite", in.Name, err)
		}
	}
}

// unread is a volume WriteVolume must refuse before reading it.
type unread struct{ info volume.Info }

func (u unread) Info() volume.Info { return u.info }
func (u unread) ReadRegion(context.Context, volume.Box, []byte) error {
	return errors.New("read before the checks")
}
