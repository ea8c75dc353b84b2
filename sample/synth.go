// Package sample generates small but real files in every source format, with
// known parameters, for the offline demo and for tests: ImageJ TIFF stacks,
// BigTIFF, DM3 sections with calibrations, multi-level OME-Zarr with zstd
// chunks, and sharded JPEG Neuroglancer precomputed volumes. The pixel data is
// synthetic EM-like texture (cells with bright membranes, nuclei, noise), fully
// determined by a seed.
package sample

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/imgdataset/imgdataset/volume"
)

// cell is one synthetic cell: an ellipsoid with a membrane and a nucleus.
type cell struct {
	cz, cy, cx, r float64
}

// Tissue describes where tissue is: the fraction of the volume (an ellipsoid
// centred in the volume) that holds cells; outside it the voxels are 0, like the
// empty resin around a real specimen. 1 fills the whole volume.
type Tissue float64

// EM returns synthetic uint8 EM-like data of shape (z, y, x), C order.
func EM(shape [3]int64, seed uint64, tissue Tissue) []byte {
	f := field(shape, seed, tissue)
	out := make([]byte, len(f))
	for i, v := range f {
		out[i] = uint8(math.Max(0, math.Min(255, v)))
	}
	return out
}

// EMInt16 returns the same texture as signed 16-bit (FIB-SEM detectors), little-endian.
func EMInt16(shape [3]int64, seed uint64) []byte {
	f := field(shape, seed, 1)
	out := make([]byte, 2*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(v*64-4000)))
	}
	return out
}

// Labels returns uint8 labels (1 inside nuclei, 0 elsewhere) for the same cells.
func Labels(shape [3]int64, seed uint64) []byte {
	cells := cells(shape, seed)
	out := make([]byte, shape[0]*shape[1]*shape[2])
	i := 0
	for z := int64(0); z < shape[0]; z++ {
		for y := int64(0); y < shape[1]; y++ {
			for x := int64(0); x < shape[2]; x++ {
				for _, c := range cells {
					d := dist(c, z, y, x)
					if d < 0.4*c.r {
						out[i] = 1
						break
					}
				}
				i++
			}
		}
	}
	return out
}

func cells(shape [3]int64, seed uint64) []cell {
	rng := rand.New(rand.NewPCG(seed, 0xe1))
	n := int(max(3, shape[0]*shape[1]*shape[2]/20000))
	n = min(n, 64)
	cs := make([]cell, n)
	minDim := float64(min(shape[0], shape[1], shape[2]))
	for i := range cs {
		cs[i] = cell{
			cz: rng.Float64() * float64(shape[0]),
			cy: rng.Float64() * float64(shape[1]),
			cx: rng.Float64() * float64(shape[2]),
			r:  minDim * (0.15 + 0.2*rng.Float64()),
		}
	}
	return cs
}

func dist(c cell, z, y, x int64) float64 {
	dz, dy, dx := float64(z)-c.cz, float64(y)-c.cy, float64(x)-c.cx
	return math.Sqrt(dz*dz + dy*dy + dx*dx)
}

func field(shape [3]int64, seed uint64, tissue Tissue) []float64 {
	cs := cells(shape, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]float64, shape[0]*shape[1]*shape[2])
	i := 0
	for z := int64(0); z < shape[0]; z++ {
		for y := int64(0); y < shape[1]; y++ {
			for x := int64(0); x < shape[2]; x++ {
				if tissue < 1 && !inside(shape, z, y, x, float64(tissue)) {
					out[i] = 0
					i++
					continue
				}
				v := 128.0
				for _, c := range cs {
					d := dist(c, z, y, x)
					switch {
					case math.Abs(d-c.r) < 1.5:
						v = 215 // membrane
					case d < 0.4*c.r:
						v = 70 // nucleus
					case d < c.r && v == 128:
						v = 150 // cytoplasm
					}
				}
				v += rng.NormFloat64() * 12
				out[i] = math.Max(1, v) // tissue is never exactly 0
				i++
			}
		}
	}
	return out
}

// inside reports whether (z,y,x) lies in the centred ellipsoid holding the
// tissue; frac sets its semi-axes as a share of the half extents.
func inside(shape [3]int64, z, y, x int64, frac float64) bool {
	s := 0.0
	for i, p := range []int64{z, y, x} {
		h := float64(shape[i]) / 2
		d := (float64(p) + 0.5 - h) / (h * frac)
		s += d * d
	}
	return s <= 1
}

// Mem wraps generated data as a volume with the given axes (C order).
func Mem(name string, dt volume.DType, axes []volume.Axis, data []byte) (*volume.Mem, error) {
	shape := make([]int64, len(axes))
	for i, a := range axes {
		shape[i] = a.Size
	}
	return volume.NewMem(volume.Info{Name: name, Shape: shape, DType: dt, Axes: axes}, data)
}

// ZYX builds calibrated z, y, x axes.
func ZYX(shape [3]int64, scale [3]float64, unit string) []volume.Axis {
	names := [3]string{"z", "y", "x"}
	axes := make([]volume.Axis, 3)
	for i := range axes {
		axes[i] = volume.Axis{Name: names[i], Size: shape[i], Scale: scale[i], Unit: unit, ScaleKnown: scale[i] > 0}
		if scale[i] <= 0 {
			axes[i].Scale = 1
		}
	}
	return axes
}
