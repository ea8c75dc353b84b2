package codec

import "encoding/binary"

// BloscLZ is Blosc's own FastLZ-derived codec. A stream is a sequence of
// instructions, each starting with a control byte:
//
//   - ctrl < 32: a literal run of ctrl+1 bytes follows.
//   - ctrl >= 32: a match. k = ctrl>>5 (1..7) gives the length: k+2 bytes for
//     k < 7, else 9 plus the sum of extension bytes (repeated while 255). The
//     biased distance is (ctrl&31)<<8 | next byte; the pair (31, 255) instead
//     announces a far match whose biased distance is 8191 plus a big-endian
//     16-bit value. The real distance is the biased one plus 1.
//
// The first control byte is always a literal run; its top three bits are a
// marker and are ignored.
const (
	blzMaxCopy        = 32
	blzMaxDistance    = 8191
	blzMaxFarDistance = 65535 + blzMaxDistance - 1
)

// blosclzDecompress decodes src into dst and returns the number of bytes
// written, or 0 on malformed input. It mirrors c-blosc's blosclz_decompress,
// including its bounds checks and its quirk of stopping, without copying,
// when the input ends right after a match's code bytes: such a stream then
// decodes short and the caller rejects it, as c-blosc does.
func blosclzDecompress(dst, src []byte) int {
	limit := len(src)
	if limit == 0 {
		return 0
	}
	ip, op := 1, 0
	ctrl := int(src[0] & 31)
	for {
		if ctrl >= 32 {
			n := ctrl>>5 - 1
			ofs := (ctrl & 31) << 8
			if n == 6 {
				for {
					if ip+1 >= limit {
						return 0
					}
					code := src[ip]
					ip++
					n += int(code)
					if code != 255 {
						break
					}
				}
			} else if ip+1 >= limit {
				return 0
			}
			code := int(src[ip])
			ip++
			n += 3
			ref := op - ofs - code
			if code == 255 && ofs == 31<<8 {
				if ip+1 >= limit {
					return 0
				}
				ofs = int(src[ip])<<8 | int(src[ip+1])
				ip += 2
				ref = op - ofs - blzMaxDistance
			}
			if op+n > len(dst) || ref-1 < 0 {
				return 0
			}
			if ip >= limit {
				break
			}
			ctrl = int(src[ip])
			ip++
			ref--
			if op-ref >= n {
				copy(dst[op:op+n], dst[ref:ref+n])
			} else {
				// Overlapping match: the result must equal a byte-by-byte copy,
				// i.e. the period op-ref repeats; copying the already written
				// prefix in doubling steps keeps that period.
				for i := 0; i < n; {
					i += copy(dst[op+i:op+n], dst[ref:op+i])
				}
			}
			op += n
			continue
		}
		n := ctrl + 1
		if op+n > len(dst) || ip+n > limit {
			return 0
		}
		copy(dst[op:op+n], src[ip:ip+n])
		op += n
		ip += n
		if ip >= limit {
			break
		}
		ctrl = int(src[ip])
		ip++
	}
	return op
}

// blosclzCompressor holds the match-finder hash table between calls.
type blosclzCompressor struct {
	htab []int32
}

const blzHashLog = 14

// compress writes a BloscLZ stream for src into dst and returns its length,
// or 0 when src is too short to bother or the stream would not fit in dst.
// The stream always starts and ends with a literal run, so c-blosc's
// decoder (which stops before copying a trailing match) reads it fully.
func (c *blosclzCompressor) compress(dst, src []byte) int {
	n := len(src)
	if n < 16 || len(dst) < 66 {
		return 0
	}
	if c.htab == nil {
		c.htab = make([]int32, 1<<blzHashLog)
	} else {
		clear(c.htab)
	}
	op := 0
	// emitLiterals writes src[from:to] as runs of at most 32 bytes.
	emitLiterals := func(from, to int) bool {
		for from < to {
			k := min(to-from, blzMaxCopy)
			if op+1+k > len(dst) {
				return false
			}
			dst[op] = byte(k - 1)
			copy(dst[op+1:], src[from:from+k])
			op += 1 + k
			from += k
		}
		return true
	}
	lit := 0
	ip := 1 // position 0 is always a literal: the first instruction must be one
	ipLimit := n - 12
	for ip < ipLimit {
		seq := binary.LittleEndian.Uint32(src[ip:])
		h := (seq * 2654435761) >> (32 - blzHashLog)
		ref := int(c.htab[h])
		c.htab[h] = int32(ip)
		dist := ip - ref
		if dist <= 0 || dist >= blzMaxFarDistance || binary.LittleEndian.Uint32(src[ref:]) != seq {
			ip++
			continue
		}
		// Keep at least one trailing literal.
		m, maxm := 4, n-1-ip
		for m < maxm && src[ref+m] == src[ip+m] {
			m++
		}
		d := dist - 1
		if d >= blzMaxDistance && m < 8 {
			// A far match costs 4+ bytes; short ones do not pay.
			ip++
			continue
		}
		if !emitLiterals(lit, ip) {
			return 0
		}
		k := m - 2
		if op+k/255+6 > len(dst) {
			return 0
		}
		var code byte
		if d < blzMaxDistance {
			code = byte(d >> 8)
		} else {
			code = 31
		}
		if k < 7 {
			dst[op] = byte(k<<5) | code
			op++
		} else {
			dst[op] = 7<<5 | code
			op++
			for k -= 7; k >= 255; k -= 255 {
				dst[op] = 255
				op++
			}
			dst[op] = byte(k)
			op++
		}
		if d < blzMaxDistance {
			dst[op] = byte(d)
			op++
		} else {
			d -= blzMaxDistance
			dst[op], dst[op+1], dst[op+2] = 255, byte(d>>8), byte(d)
			op += 3
		}
		ip += m
		lit = ip
		// Seed the table at the match end so runs continue cheaply.
		if ip < ipLimit {
			s := binary.LittleEndian.Uint32(src[ip-1:])
			c.htab[(s*2654435761)>>(32-blzHashLog)] = int32(ip - 1)
		}
	}
	if !emitLiterals(lit, n) {
		return 0
	}
	// c-blosc marks the first control byte; decoders mask it off.
	dst[0] |= 1 << 5
	return op
}
