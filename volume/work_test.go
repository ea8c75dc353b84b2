package volume_test

import (
	"errors"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

func TestWorkLimitCheck(t *testing.T) {
	info := func(shape, chunks []int64, dt volume.DType) volume.Info {
		return volume.Info{Name: "a", Shape: shape, Chunks: chunks, DType: dt}
	}
	box := func(start, stop []int64) volume.Box { return volume.Box{Start: start, Stop: stop} }
	tests := []struct {
		name  string
		in    volume.Info
		box   volume.Box
		limit volume.WorkLimit
		want  bool // ErrTooMuchWork expected
	}{
		{"zarr 1e15 of chunk 1", info([]int64{1e15}, []int64{1}, volume.Uint8), volume.Full([]int64{1e15}), volume.WorkLimit{}, true},
		{"n5 2^31 of chunk 1", info([]int64{1 << 31}, []int64{1}, volume.Uint8), volume.Full([]int64{1 << 31}), volume.WorkLimit{}, true},
		{"precomputed 1e6^3 of chunk 1", info([]int64{1e6, 1e6, 1e6}, []int64{1, 1, 1}, volume.Uint8), volume.Full([]int64{1e6, 1e6, 1e6}), volume.WorkLimit{}, true},
		{"product beyond int64 saturates", info([]int64{1e10, 1e10, 1e10}, []int64{1e10, 1e10, 1e10}, volume.Uint64), volume.Full([]int64{1e10, 1e10, 1e10}), volume.WorkLimit{}, true},
		{"real volume 1024^3 in 64^3", info([]int64{1024, 1024, 1024}, []int64{64, 64, 64}, volume.Uint8), volume.Full([]int64{1024, 1024, 1024}), volume.WorkLimit{}, false},
		{"small crop of the hostile array", info([]int64{1e15}, []int64{1}, volume.Uint8), box([]int64{5e14}, []int64{5e14 + 1000}), volume.WorkLimit{}, false},
		{"unaligned box counts partial chunks", info([]int64{100}, []int64{10}, volume.Uint8), box([]int64{5}, []int64{25}), volume.WorkLimit{Chunks: 2}, true},
		{"aligned box within", info([]int64{100}, []int64{10}, volume.Uint8), box([]int64{10}, []int64{30}), volume.WorkLimit{Chunks: 2}, false},
		{"byte limit", info([]int64{1000}, nil, volume.Float64), volume.Full([]int64{1000}), volume.WorkLimit{Bytes: 7999}, true},
		{"negative lifts the bound", info([]int64{1e15}, []int64{1}, volume.Uint8), volume.Full([]int64{1e15}), volume.WorkLimit{Bytes: -1, Chunks: -1}, false},
		{"empty box", info([]int64{0, 1e15}, []int64{1, 1}, volume.Uint8), volume.Full([]int64{0, 1e15}), volume.WorkLimit{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limit.Check(tc.in, tc.box)
			if got := errors.Is(err, volume.ErrTooMuchWork); got != tc.want {
				t.Fatalf("Check: %v; want ErrTooMuchWork %v", err, tc.want)
			}
		})
	}
	if err := (volume.WorkLimit{}).Check(info([]int64{4}, nil, volume.Uint8), volume.Full([]int64{4, 4})); err == nil {
		t.Error("a box of another rank was accepted")
	}
}
