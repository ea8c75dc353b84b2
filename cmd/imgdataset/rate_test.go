package main

import (
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64 // bytes/s; 0: a usage error
	}{
		{"50", 50 << 20},
		{"2.5", 2.5 * (1 << 20)},
		{"50MiB/s", 50 << 20},
		{"50 MiB/s", 50 << 20},
		{"50mib", 50 << 20},
		{"800KiB/s", 800 << 10},
		{"1GiB/s", 1 << 30},
		{"0", 0},
		{"-5", 0},
		{"NaN", 0},
		{"Inf", 0},
		{"50MB/s", 0}, // decimal units are not what the terminal prints
		{"fast", 0},
		{"", 0},
	} {
		got, err := parseRate(c.in)
		if c.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "MiB/s") {
				t.Errorf("parseRate(%q) = %g, %v; want a usage error naming the unit", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseRate(%q) = %g, %v; want %g", c.in, got, err, c.want)
		}
	}
}

// TestRateUsage checks that a bad --rate exits 2 with one line before any
// work, and that --help says the unit.
func TestRateUsage(t *testing.T) {
	for _, bad := range []string{"50MB/s", "0", "x"} {
		code, _, stderr := runCLI(t, "plan", "--rate", bad)
		if code != exitUsage || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--rate "+bad) {
			t.Errorf("plan --rate %s: exit %d, stderr %q; want exit %d and one line naming the value", bad, code, stderr, exitUsage)
		}
	}
	code, out, _ := runCLI(t, "plan", "--help")
	if code != 0 || !strings.Contains(out, "MiB/s") {
		t.Errorf("plan --help (exit %d) does not say --rate's unit: %s", code, out)
	}
}
