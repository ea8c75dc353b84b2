package precomputed

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

func TestCalibrate(t *testing.T) {
	cal := func(name string, scale, offset float64, unit string) volume.Axis {
		return volume.Axis{Name: name, Scale: scale, Offset: offset, Unit: unit, ScaleKnown: unit != ""}
	}
	for _, c := range []struct {
		name  string
		axes  []volume.Axis
		res   [3]float64
		off   [3]int64
		offNM [3]float64
		whole bool
	}{
		{"nm and µm, whole offsets", []volume.Axis{cal("z", 50, 100, "nm"), cal("y", 0.008, 0.016, "µm"), cal("x", 0.008, 0, "micrometer")},
			[3]float64{8, 8, 50}, [3]int64{0, 2, 2}, [3]float64{0, 16, 100}, true},
		{"channels first", []volume.Axis{{Name: "c", Scale: 1}, cal("z", 4, 0, "nm"), cal("y", 4, 0, "nm"), cal("x", 4, -8, "nm")},
			[3]float64{4, 4, 4}, [3]int64{-2, 0, 0}, [3]float64{-8, 0, 0}, true},
		{"half-voxel offset of a pyramid level", []volume.Axis{cal("z", 5.92, 1.48, "nm"), cal("y", 8, 2, "nm"), cal("x", 8, 2, "nm")},
			[3]float64{8, 8, 5.92}, [3]int64{0, 0, 0}, [3]float64{2, 2, 1.48}, false},
		{"uncalibrated z", []volume.Axis{cal("z", 1, 0, ""), cal("y", 6, 0, "nm"), cal("x", 6, 0, "nm")},
			[3]float64{6, 6, 1}, [3]int64{}, [3]float64{}, true},
		{"nothing calibrated", []volume.Axis{cal("z", 1, 0, ""), cal("y", 1, 0, ""), cal("x", 1, 0, "")},
			[3]float64{}, [3]int64{}, [3]float64{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o WriteOptions
			offNM, whole := o.Calibrate(volume.Info{Axes: c.axes})
			for d := 0; d < 3; d++ {
				if math.Abs(o.Resolution[d]-c.res[d]) > 1e-9 || math.Abs(offNM[d]-c.offNM[d]) > 1e-9 {
					t.Errorf("resolution %v offset %v nm, want %v %v", o.Resolution, offNM, c.res, c.offNM)
				}
			}
			if o.VoxelOffset != c.off || whole != c.whole {
				t.Errorf("voxel offset %v whole %v, want %v %v", o.VoxelOffset, whole, c.off, c.whole)
			}
		})
	}
}

// TestWriteAttributes checks that extra keys reach the info and that the
// volume still opens; keys of the format itself are refused before writing.
func TestWriteAttributes(t *testing.T) {
	src := makeSource(t, volume.Uint8, 1, false)
	_, st, vs := writeOpen(t, src, WriteOptions{ChunkSize: testChunk, Attributes: map[string]any{"imgdataset": map[string]any{"voxel_size_source": "web page"}}})
	volumetest.Run(t, vs[0], src.Bytes(), 0)
	b, err := st.ReadAll(context.Background(), "vol/info", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Imgdataset map[string]any `json:"imgdataset"`
		Scales     []any          `json:"scales"`
	}
	if err := json.Unmarshal(b, &info); err != nil || info.Imgdataset["voxel_size_source"] != "web page" || len(info.Scales) != 1 {
		t.Errorf("info %s (%v)", b, err)
	}
	d := newMem(t)
	err = Write(context.Background(), store.New(d), "bad", src, WriteOptions{Attributes: map[string]any{"scales": nil}})
	if err == nil || len(d.keys("bad")) != 0 {
		t.Errorf("Write with a format key: %v, wrote %v", err, d.keys("bad"))
	}
}
