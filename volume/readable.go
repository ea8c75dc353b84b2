package volume

import (
	"math"
	"strconv"
	"strings"
)

// Readable formats a number for a person to read: four significant digits,
// trailing zeros dropped, no exponent between 0.001 and 10¹⁵ (7.998250424861908
// → "7.998", 4.4399999999999995 → "4.44", 12345.6 → "12346"). Tables meant
// for programs (CSV, JSON Lines, Parquet, catalog.json) keep full precision;
// every text a person reads — summaries, inspect, conflicts, report.html —
// uses this one function so that they agree.
func Readable(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a == 0:
		return "0"
	case a >= 1e4 && a < 1e15:
		// Whole numbers read better than 1.235e+04 and lose nothing a person needs.
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case a >= 1e-3 && a < 1e4:
		digits := max(0, 3-int(math.Floor(math.Log10(a))))
		s := strconv.FormatFloat(v, 'f', digits, 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// ReadableNM formats a length in nanometres for a person, with its unit:
// "7.998 nm". The one unit of every table a person reads is nm.
func ReadableNM(nm float64) string { return Readable(nm) + " nm" }

// ReadableShape formats a shape in voxels for a person, in the volume's
// axis order: "24 × 40 × 56", as report.html writes shapes.
func ReadableShape(s []int64) string { return joinInts(s, " × ") }

// ReadablePoint formats a voxel position as the command line takes one
// (--origin Z,Y,X): "0,0,64", so a person can paste it back.
func ReadablePoint(p []int64) string { return joinInts(p, ",") }

func joinInts(s []int64, sep string) string {
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(parts, sep)
}
