package precomputed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// compressed_segmentation (neuroglancer): per channel, the chunk is cut into
// blocks; each block stores a lookup table of its distinct values and packed
// indices into that table. Block and volume sizes are not stored in the data:
// they come from the info and the chunk position. Shapes here are x, y, z.

var errCSeg = errors.New("corrupt compressed_segmentation chunk")

// csegValidBits reports whether n is an allowed encodedBits value.
func csegValidBits(n uint32) bool {
	switch n {
	case 0, 1, 2, 4, 8, 16, 32:
		return true
	}
	return false
}

// decodeCSeg decodes a multi-channel compressed_segmentation chunk of the given
// x, y, z shape into out, laid out channel-slowest, x-fastest (C order c, z, y, x)
// with es-byte little-endian elements (es is 4 for uint32, 8 for uint64).
func decodeCSeg(data []byte, shape, block [3]int64, nc, es int, out []byte) error {
	if es != 4 && es != 8 {
		return fmt.Errorf("%w: element size %d (need uint32 or uint64)", errCSeg, es)
	}
	for d := 0; d < 3; d++ {
		if shape[d] < 0 || block[d] <= 0 {
			return fmt.Errorf("%w: shape %v block %v", errCSeg, shape, block)
		}
	}
	nvox := shape[0] * shape[1] * shape[2]
	if int64(len(out)) != nvox*int64(nc)*int64(es) {
		return fmt.Errorf("%w: output buffer %d bytes for %v×%d", errCSeg, len(out), shape, nc)
	}
	nwords := int64(len(data) / 4)
	word := func(i int64) uint32 { return binary.LittleEndian.Uint32(data[4*i:]) }
	if nwords < int64(nc) {
		return fmt.Errorf("%w: %d bytes cannot hold %d channel offsets", errCSeg, len(data), nc)
	}
	var grid [3]int64
	for d := 0; d < 3; d++ {
		grid[d] = (shape[d] + block[d] - 1) / block[d]
	}
	nblocks := grid[0] * grid[1] * grid[2]
	wpe := int64(es / 4) // words per lookup-table entry
	for c := 0; c < nc; c++ {
		base := int64(word(int64(c)))
		if base < int64(nc) || base > nwords || nwords-base < 2*nblocks {
			return fmt.Errorf("%w: channel %d offset %d with %d block headers beyond %d words", errCSeg, c, base, nblocks, nwords)
		}
		dst := out[int64(c)*nvox*int64(es):]
		for bz := int64(0); bz < grid[2]; bz++ {
			for by := int64(0); by < grid[1]; by++ {
				for bx := int64(0); bx < grid[0]; bx++ {
					h := base + 2*(bx+grid[0]*(by+grid[1]*bz))
					h0, h1 := word(h), word(h+1)
					lut := base + int64(h0&0xffffff)
					nbits := h0 >> 24
					vals := base + int64(h1)
					if !csegValidBits(nbits) {
						return fmt.Errorf("%w: channel %d block (%d,%d,%d): encodedBits %d", errCSeg, c, bx, by, bz, nbits)
					}
					mask := uint32(1)<<nbits - 1
					x0, y0, z0 := bx*block[0], by*block[1], bz*block[2]
					x1, y1, z1 := min(x0+block[0], shape[0]), min(y0+block[1], shape[1]), min(z0+block[2], shape[2])
					for z := z0; z < z1; z++ {
						for y := y0; y < y1; y++ {
							row := ((z*shape[1] + y) * shape[0])
							for x := x0; x < x1; x++ {
								var idx int64
								if nbits > 0 {
									bit := int64(nbits) * ((x - x0) + block[0]*((y-y0)+block[1]*(z-z0)))
									w := vals + bit/32
									if w >= nwords {
										return fmt.Errorf("%w: channel %d block (%d,%d,%d): encoded values past end", errCSeg, c, bx, by, bz)
									}
									idx = int64(word(w) >> uint(bit%32) & mask)
								}
								e := lut + idx*wpe
								if e+wpe > nwords {
									return fmt.Errorf("%w: channel %d block (%d,%d,%d): lookup table index %d past end", errCSeg, c, bx, by, bz, idx)
								}
								o := (row + x) * int64(es)
								copy(dst[o:o+int64(es)], data[4*e:4*(e+wpe)])
							}
						}
					}
				}
			}
		}
	}
	return nil
}

// encodeCSeg encodes in (C order c, z, y, x; es-byte LE elements) of the given
// x, y, z shape as a multi-channel compressed_segmentation chunk. Identical
// lookup tables within a channel are stored once, as neuroglancer's encoder does.
func encodeCSeg(in []byte, shape, block [3]int64, nc, es int) ([]byte, error) {
	if es != 4 && es != 8 {
		return nil, fmt.Errorf("compressed_segmentation: element size %d (need uint32 or uint64)", es)
	}
	nvox := shape[0] * shape[1] * shape[2]
	if int64(len(in)) != nvox*int64(nc)*int64(es) {
		return nil, fmt.Errorf("compressed_segmentation: input %d bytes for %v×%d", len(in), shape, nc)
	}
	var grid [3]int64
	for d := 0; d < 3; d++ {
		if block[d] <= 0 {
			return nil, fmt.Errorf("compressed_segmentation: block size %v", block)
		}
		grid[d] = (shape[d] + block[d] - 1) / block[d]
	}
	nblocks := grid[0] * grid[1] * grid[2]
	blockVox := block[0] * block[1] * block[2]
	get := func(src []byte, i int64) uint64 {
		if es == 4 {
			return uint64(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return binary.LittleEndian.Uint64(src[8*i:])
	}
	words := make([]uint32, nc) // channel offsets, filled below
	var vals, uniq []uint64
	idx := make([]uint32, blockVox)
	for c := 0; c < nc; c++ {
		base := len(words)
		words[c] = uint32(base)
		src := in[int64(c)*nvox*int64(es):]
		words = append(words, make([]uint32, 2*nblocks)...)
		tables := map[string]uint32{}
		for bz := int64(0); bz < grid[2]; bz++ {
			for by := int64(0); by < grid[1]; by++ {
				for bx := int64(0); bx < grid[0]; bx++ {
					x0, y0, z0 := bx*block[0], by*block[1], bz*block[2]
					x1, y1, z1 := min(x0+block[0], shape[0]), min(y0+block[1], shape[1]), min(z0+block[2], shape[2])
					vals = vals[:0]
					for z := z0; z < z1; z++ {
						for y := y0; y < y1; y++ {
							row := (z*shape[1] + y) * shape[0]
							for x := x0; x < x1; x++ {
								vals = append(vals, get(src, row+x))
							}
						}
					}
					uniq = append(uniq[:0], vals...)
					slices.Sort(uniq)
					uniq = slices.Compact(uniq)
					nbits := uint32(0)
					for _, b := range []uint32{0, 1, 2, 4, 8, 16, 32} {
						nbits = b
						if uint64(len(uniq)) <= uint64(1)<<b {
							break
						}
					}
					// Indices for the whole (padded) block; padding points at entry 0.
					clear(idx)
					k := 0
					for z := z0; z < z1; z++ {
						for y := y0; y < y1; y++ {
							for x := x0; x < x1; x++ {
								i, _ := slices.BinarySearch(uniq, vals[k])
								idx[(x-x0)+block[0]*((y-y0)+block[1]*(z-z0))] = uint32(i)
								k++
							}
						}
					}
					valOff := len(words) - base
					if nbits > 0 {
						packed := make([]uint32, (int64(nbits)*blockVox+31)/32)
						for i, v := range idx {
							bit := int64(nbits) * int64(i)
							packed[bit/32] |= v << uint(bit%32)
						}
						words = append(words, packed...)
					}
					tb := make([]byte, 0, len(uniq)*es)
					for _, u := range uniq {
						if es == 4 {
							tb = binary.LittleEndian.AppendUint32(tb, uint32(u))
						} else {
							tb = binary.LittleEndian.AppendUint64(tb, u)
						}
					}
					lutOff, ok := tables[string(tb)]
					if !ok {
						lutOff = uint32(len(words) - base)
						for i := 0; i < len(tb); i += 4 {
							words = append(words, binary.LittleEndian.Uint32(tb[i:]))
						}
						tables[string(tb)] = lutOff
					}
					if len(words)-base >= 1<<24 {
						return nil, fmt.Errorf("compressed_segmentation: channel %d exceeds the 24-bit table offset range", c)
					}
					h := base + int(2*(bx+grid[0]*(by+grid[1]*bz)))
					words[h] = lutOff | nbits<<24
					words[h+1] = uint32(valOff)
				}
			}
		}
	}
	out := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out, nil
}
