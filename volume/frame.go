package volume

import (
	"context"
	"strings"
)

// Frame is the physical frame resolved for a volume: the voxel size of its z,
// y and x axes in nanometres, taken from the file where it states one and
// otherwise from an outside source (an API, a web page, a manifest), and the
// name of where those sizes came from. Every writer path places its output in
// the frame the metadata table reports, so the two never disagree.
type Frame struct {
	// VoxelNM is the voxel size of z, y and x in nanometres; 0 where no
	// source gives one.
	VoxelNM [3]float64
	// Source says where the sizes came from, as the table's
	// voxel_size_source does ("file", "web page", "file+api (…)", ...).
	Source string
}

// Known reports whether f gives a size for any axis.
func (f Frame) Known() bool { return f.VoxelNM != [3]float64{} }

// Apply returns axes placed in f, in one unit (see OneUnit). A spatial axis
// the file calibrates in a length unit keeps its calibration: the file wins
// when sizes are resolved, so f holds that same value, and the file's unit
// decides whether the output can stay in micrometres. Any other spatial axis
// takes f's size in nanometres when f has one; its offset, counted in voxels
// while the axis had no calibration (the placeholder scale is 1), is scaled
// with it, so a crop keeps its position.
func (f Frame) Apply(axes []Axis) []Axis {
	out := append([]Axis(nil), axes...)
	for i, a := range out {
		s := SpatialSlot(a.Name, i, len(out))
		if s < 0 || f.VoxelNM[s] <= 0 {
			continue
		}
		if _, ok := spatialUnit(a); ok {
			continue
		}
		out[i].Offset = a.Offset * f.VoxelNM[s]
		if a.ScaleKnown {
			// A calibration in a unit that is no length (pixels, an
			// unknown word) says nothing about the frame.
			out[i].Offset = 0
		}
		out[i].Scale, out[i].Unit, out[i].ScaleKnown = f.VoxelNM[s], Nanometre, true
	}
	return OneUnit(out)
}

// SpatialSlot maps axis i of n, named name, to z (0), y (1) or x (2), or -1
// for a channel or time axis. Axes with other names are taken from the end
// (x fastest), the way numpy shapes read. The metadata table maps axes to its
// z, y and x columns the same way.
func SpatialSlot(name string, i, n int) int {
	switch strings.ToLower(name) {
	case "z":
		return 0
	case "y":
		return 1
	case "x":
		return 2
	case "c", "t", "channel", "s", "sample", "time":
		return -1
	}
	return max(0, 3-(n-i)) % 3
}

// reframed is a volume read through another with its axes replaced.
type reframed struct {
	Volume
	info Info
}

// Reframe returns v with its axes placed in f (see Frame.Apply). It reads
// through v.
func Reframe(v Volume, f Frame) Volume {
	in := v.Info()
	in.Axes = f.Apply(in.Axes)
	return &reframed{Volume: v, info: in}
}

func (r *reframed) Info() Info { return r.info }

// Unwrap returns the volume read in the new frame.
func (r *reframed) Unwrap() Volume { return r.Volume }

func (r *reframed) ReadRegion(ctx context.Context, box Box, dst []byte) error {
	return r.Volume.ReadRegion(ctx, box, dst)
}
