package volume

import "math"

// Float16ToFloat64 widens an IEEE 754 binary16 value (exactly: every half
// value is a float64 value).
func Float16ToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// Float16FromFloat64 rounds f to the nearest IEEE 754 binary16 value, ties to
// even (as numpy's astype(float16) does): magnitudes from 65520 up become
// infinity, subnormal halves are kept, and NaN stays a (quiet) NaN.
func Float16FromFloat64(f float64) uint16 {
	sign := uint16(math.Float64bits(f)>>48) & 0x8000
	a := math.Abs(f)
	switch {
	case math.IsNaN(f):
		return sign | 0x7e00
	case a >= 65520: // halfway between 65504, the largest half, and 2^16
		return sign | 0x7c00
	case a < 0x1p-14:
		// Subnormal: a multiple of 2^-24. A result of 1024 is the smallest
		// normal, whose encoding is that same integer.
		return sign | uint16(math.RoundToEven(a*0x1p24))
	}
	_, e := math.Frexp(a) // a = m·2^e, m in [0.5, 1)
	e--
	// Scaling by a power of two and subtracting 1 from a value in [1, 2) are
	// exact, so the only rounding is RoundToEven's.
	m := math.RoundToEven((math.Ldexp(a, -e) - 1) * 1024)
	if m == 1024 {
		m, e = 0, e+1
	}
	return sign | uint16(e+15)<<10 | uint16(m)
}
