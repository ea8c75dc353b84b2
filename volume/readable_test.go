package volume

import (
	"math"
	"testing"
)

func TestReadable(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{7.998250424861908, "7.998"},
		{4.4399999999999995, "4.44"},
		{8, "8"},
		{0, "0"},
		{-2.5, "-2.5"},
		{0.1 + 0.2, "0.3"},
		{999.96, "1000"},
		{1234.5678, "1235"},
		{12345.6, "12346"},
		{0.0123456, "0.01235"},
		{0.00012345, "0.0001234"},
		{3e20, "3e+20"},
		{math.NaN(), "NaN"},
		{math.Inf(-1), "-Inf"},
	} {
		if got := Readable(c.in); got != c.want {
			t.Errorf("Readable(%v) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := ReadableNM(7.998250424861908); got != "7.998 nm" {
		t.Errorf("ReadableNM = %q", got)
	}
}

func TestReadableShape(t *testing.T) {
	for _, tc := range []struct {
		in   []int64
		want string
	}{
		{[]int64{24, 40, 56}, "24 × 40 × 56"},
		{[]int64{100, 96}, "100 × 96"},
		{[]int64{7}, "7"},
		{nil, ""},
	} {
		if got := ReadableShape(tc.in); got != tc.want {
			t.Errorf("ReadableShape(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := ReadablePoint([]int64{0, 0, 64}), "0,0,64"; got != want {
		t.Errorf("ReadablePoint = %q, want %q", got, want)
	}
}
