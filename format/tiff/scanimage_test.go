package tiff

import (
	"encoding/binary"
	"testing"
)

func TestScanImageSeries(t *testing.T) {
	r := &reader{key: "si.tif", bo: binary.LittleEndian}
	lay := layout{width: 4, height: 3, spp: 1, bps: 16, sampleFormat: 2, compression: 1, planar: 1, rowsPerStrip: 3, dtype: "int16"}
	pages := func(n int) []*page {
		ps := make([]*page, n)
		for i := range ps {
			ps[i] = &page{layout: lay, src: r}
		}
		return ps
	}
	for _, c := range []struct {
		name     string
		software string
		pages    int
		shape    []int64 // nil: not a ScanImage series
		axes     string
	}{
		{"two-channels", "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 2\nSI.hStackManager.numSlices = 1", 4, []int64{2, 2, 3, 4}, "tcyx"},
		{"slices", "SI.hChannels.channelSave = [1 2 3]\nSI.hStackManager.framesPerSlice = 2", 18, []int64{3, 2, 3, 3, 4}, "ztcyx"},
		{"scalar-channel", "SI.hChannels.channelSave = 1\nSI.hStackManager.framesPerSlice = 5", 5, []int64{5, 3, 4}, "tyx"},
		{"continuous", "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = Inf", 6, []int64{3, 2, 3, 4}, "tcyx"},
		{"continuous-odd", "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = Inf", 5, nil, ""},
		{"too-many-frames", "SI.hChannels.channelSave = [1;2]\nSI.hStackManager.framesPerSlice = 9", 4, nil, ""},
		{"no-channels", "SI.hStackManager.framesPerSlice = 2", 4, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			si := scanImageState(c.software)
			if si == nil {
				t.Fatal("not recognised")
			}
			v, _ := r.scanImageSeries(group{pages: pages(c.pages), meta: &pageMeta{}}, si)
			if c.shape == nil {
				if v != nil {
					t.Fatalf("shape %v, want no ScanImage series", v.info.Shape)
				}
				return
			}
			if v == nil {
				t.Fatal("no series")
			}
			axes := ""
			for _, a := range v.info.Axes {
				axes += a.Name
			}
			if !eqShape(v.info.Shape, c.shape) || axes != c.axes {
				t.Errorf("shape %v axes %s, want %v %s", v.info.Shape, axes, c.shape, c.axes)
			}
		})
	}
	if scanImageState("ImageJ=1.52") != nil {
		t.Error("non-ScanImage software recognised")
	}
}
