package serve

import (
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// TestForEachSlab checks that slabs tile the box in C order, each contiguous
// in the output and within the element limit, on the chunk grid where a chunk
// fits.
func TestForEachSlab(t *testing.T) {
	for _, tc := range []struct {
		name          string
		start, stop   []int64
		chunks        []int64
		max           int64
		wantSlabs     int
		wantAlignedAt int64 // every inner boundary on axis 0 is a multiple of it (0 = unchecked)
	}{
		{"fits whole", []int64{0, 0, 0}, []int64{4, 5, 6}, nil, 1000, 1, 0},
		{"planes", []int64{0, 0, 0}, []int64{10, 4, 4}, nil, 16, 10, 0},
		{"chunk rows", []int64{3, 0, 0}, []int64{40, 8, 8}, []int64{8, 8, 8}, 64 * 20, 3, 8}, // [3,16) [16,32) [32,40)
		{"row splits", []int64{0, 0, 0}, []int64{2, 3, 100}, nil, 50, 12, 0},
		{"element splits", []int64{1, 1}, []int64{3, 11}, nil, 3, 8, 0},
		{"one element each", []int64{0}, []int64{5}, nil, 1, 5, 0},
		{"scalar", []int64{}, []int64{}, nil, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := volume.Box{Start: tc.start, Stop: tc.stop}
			next := append([]int64(nil), tc.start...) // C-order position expected next
			var slabs int
			err := forEachSlab(box, tc.chunks, tc.max, func(b volume.Box) error {
				slabs++
				if b.NumElements() > tc.max && b.NumElements() > 1 {
					t.Errorf("slab %v has %d elements, limit %d", b, b.NumElements(), tc.max)
				}
				for i := range b.Start {
					if b.Start[i] != next[i] {
						t.Fatalf("slab %d starts at %v, want %v", slabs, b.Start, next)
					}
				}
				// Contiguous: after the first axis longer than 1, every axis is whole.
				split := -1
				for i := range b.Start {
					if split >= 0 && (b.Start[i] != box.Start[i] || b.Stop[i] != box.Stop[i]) {
						t.Errorf("slab %v is not contiguous in C order", b)
					}
					if split < 0 && b.Stop[i]-b.Start[i] > 1 || split < 0 && i == len(b.Start)-1 {
						split = i
					}
				}
				if tc.wantAlignedAt > 0 && b.Stop[0] != box.Stop[0] && b.Stop[0]%tc.wantAlignedAt != 0 {
					t.Errorf("slab %v ends off the chunk grid of %d", b, tc.wantAlignedAt)
				}
				// Advance next past b, carrying like an odometer.
				if len(next) > 0 {
					next[split] = b.Stop[split]
					for i := split; i > 0 && next[i] == box.Stop[i]; i-- {
						next[i] = box.Start[i]
						next[i-1]++
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if slabs != tc.wantSlabs {
				t.Errorf("%d slabs, want %d", slabs, tc.wantSlabs)
			}
			if len(next) > 0 && next[0] != box.Stop[0] {
				t.Errorf("slabs end at %v, want axis 0 at %d", next, box.Stop[0])
			}
		})
	}
}
