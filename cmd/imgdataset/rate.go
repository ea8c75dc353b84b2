package main

import (
	"math"
	"strconv"
	"strings"
)

// rateUnits are the units --rate takes: the IEC units every rate and size
// on the terminal is shown in, so that what is typed is what is printed.
var rateUnits = []struct {
	suffix string
	bytes  float64
}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}}

// parseRate reads a --rate value in bytes per second: a number of MiB/s
// ("50"), or a number with an IEC unit ("50MiB/s", "800 KiB/s", "1GiB").
func parseRate(s string) (float64, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	v = strings.TrimSuffix(v, "/s")
	unit := float64(1 << 20)
	for _, u := range rateUnits {
		if strings.HasSuffix(v, u.suffix) {
			v, unit = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.bytes
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || !(n > 0) || math.IsInf(n, 0) {
		return 0, usagef("--rate %s: want a positive rate in MiB/s (50) or with a unit (800KiB/s, 50MiB/s, 1GiB/s)", s)
	}
	return n * unit, nil
}
