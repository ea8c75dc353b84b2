package precomputed

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/imgdataset/imgdataset/volume"
)

// Calibrate sets o.Resolution and o.VoxelOffset from the z, y and x axes of
// in (its last three): the resolution in nanometres, as precomputed requires,
// and the offset in whole voxels. Axes without a calibration in a length unit
// keep the defaults. offsetNM is the offset in nm (x, y, z); whole is false
// when it is not a whole number of voxels, which precomputed cannot express:
// the voxel offset is then rounded and the caller should record offsetNM.
func (o *WriteOptions) Calibrate(in volume.Info) (offsetNM [3]float64, whole bool) {
	whole = true
	n := len(in.Axes)
	if n < 3 {
		return offsetNM, whole
	}
	for d := 0; d < 3; d++ { // d is x, y, z as in the info file
		a := in.Axes[n-1-d]
		if !a.ScaleKnown {
			continue
		}
		res, ok := volume.ToNanometres(a.Scale, a.Unit)
		if !ok || !(res > 0) {
			continue
		}
		off, _ := volume.ToNanometres(a.Offset, a.Unit)
		o.Resolution[d], offsetNM[d] = res, off
		v := off / res
		r := math.Round(v)
		if math.Abs(v-r) > 1e-6 {
			whole = false
		}
		o.VoxelOffset[d] = int64(r)
	}
	if o.Resolution != [3]float64{} {
		// Uncalibrated axes next to calibrated ones: 1 nm, the default.
		for d := range o.Resolution {
			if o.Resolution[d] == 0 {
				o.Resolution[d] = 1
			}
		}
	}
	return offsetNM, whole
}

// checkAttributes refuses extra keys that would replace the format's own.
func checkAttributes(extra map[string]any) error {
	for _, k := range []string{"@type", "type", "data_type", "num_channels", "scales", "mesh", "skeletons", "segment_properties"} {
		if _, ok := extra[k]; ok {
			return fmt.Errorf("attribute %q is a key of the info file", k)
		}
	}
	return nil
}

// withAttributes adds extra top-level keys (checked by checkAttributes) to
// an encoded info.
func withAttributes(info []byte, extra map[string]any) ([]byte, error) {
	if len(extra) == 0 {
		return info, nil
	}
	var m map[string]any
	if err := json.Unmarshal(info, &m); err != nil {
		return nil, err
	}
	for k, v := range extra {
		m[k] = v
	}
	return json.MarshalIndent(m, "", "  ")
}
