package volume

import (
	"math"
	"testing"
)

func TestFloat16Values(t *testing.T) {
	for _, c := range []struct {
		bits uint16
		want float64
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x7bff, 65504},
		{0x0001, 0x1p-24},
		{0x03ff, 1023 * 0x1p-24},
		{0x0400, 0x1p-14},
		{0x3555, 0.333251953125},
		{0x7c00, math.Inf(1)},
		{0xfc00, math.Inf(-1)},
	} {
		if got := Float16ToFloat64(c.bits); got != c.want {
			t.Errorf("Float16ToFloat64(%#04x) = %v, want %v", c.bits, got, c.want)
		}
		if got := Float16FromFloat64(c.want); got != c.bits {
			t.Errorf("Float16FromFloat64(%v) = %#04x, want %#04x", c.want, got, c.bits)
		}
	}
	if !math.IsNaN(Float16ToFloat64(0x7e00)) || !math.IsNaN(Float16ToFloat64(Float16FromFloat64(math.NaN()))) {
		t.Error("NaN does not survive float16")
	}
	if got := Float16FromFloat64(math.Copysign(0, -1)); got != 0x8000 {
		t.Errorf("-0 → %#04x", got)
	}
	for _, c := range []struct {
		f    float64
		want uint16
	}{
		{65519.99, 0x7bff}, // below the midpoint to 2^16
		{65520, 0x7c00},    // the midpoint rounds to even, which is infinity
		{1e300, 0x7c00},
		{0x1p-25, 0},               // midpoint between 0 and the smallest subnormal
		{0x1p-25 * 1.0001, 0x0001}, // just above it
		{1023.5 * 0x1p-24, 0x0400}, // subnormal midpoint to the smallest normal (even)
		{1 + 0x1p-11, 0x3c00},      // midpoint between 1 and the next half: even is 1
		{1 + 3*0x1p-11, 0x3c02},    // midpoint between 1+2^-10 and 1+2^-9: even is the latter
		{-(1 + 0x1p-11 + 0x1p-30), 0xbc01},
	} {
		if got := Float16FromFloat64(c.f); got != c.want {
			t.Errorf("Float16FromFloat64(%v) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

// TestFloat16RoundTrip checks every half value, and that each midpoint between
// neighbouring finite halves rounds to the one with an even significand.
func TestFloat16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		b := uint16(h)
		f := Float16ToFloat64(b)
		if math.IsNaN(f) {
			continue
		}
		if got := Float16FromFloat64(f); got != b {
			t.Fatalf("%#04x → %v → %#04x", b, f, got)
		}
		if b&0x7fff >= 0x7bff {
			continue // the next value up is infinity (or b is infinite)
		}
		next := b + 1
		mid := (f + Float16ToFloat64(next)) / 2 // exact: halves have 11 significant bits
		want := b
		if b&1 == 1 {
			want = next
		}
		if got := Float16FromFloat64(mid); got != want {
			t.Fatalf("midpoint %v of %#04x and %#04x → %#04x, want %#04x", mid, b, next, got, want)
		}
	}
}
