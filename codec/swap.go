package codec

import "encoding/binary"

// SwapBytes reverses every width-byte group of b in place: the endianness
// conversion of an array of width-byte elements (it is its own inverse).
// Widths 0 and 1 leave b as it is; a trailing partial group is left alone.
func SwapBytes(b []byte, width int) {
	switch width {
	case 0, 1:
	case 2:
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	case 4:
		for i := 0; i+3 < len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], binary.BigEndian.Uint32(b[i:]))
		}
	case 8:
		for i := 0; i+7 < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.BigEndian.Uint64(b[i:]))
		}
	default:
		for i := 0; i+width <= len(b); i += width {
			for a, z := i, i+width-1; a < z; a, z = a+1, z-1 {
				b[a], b[z] = b[z], b[a]
			}
		}
	}
}
