package codec

import (
	"bytes"
	"testing"
)

func TestSwapBytes(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	for _, width := range []int{0, 1, 2, 3, 4, 8, 16} {
		b := append([]byte(nil), src...)
		SwapBytes(b, width)
		want := append([]byte(nil), src...)
		if width > 1 {
			for i := 0; i+width <= len(want); i += width {
				for k := 0; k < width; k++ {
					want[i+k] = src[i+width-1-k]
				}
			}
		}
		if !bytes.Equal(b, want) {
			t.Errorf("width %d: %v, want %v", width, b, want)
		}
		SwapBytes(b, width)
		if !bytes.Equal(b, src) {
			t.Errorf("width %d: not its own inverse: %v", width, b)
		}
	}
}
