package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/sample"
)

// TestOutputNames checks that convert and crop write the format the output
// name asks for, and refuse a name no writer takes with exit status 2,
// naming the accepted ones and writing nothing.
func TestOutputNames(t *testing.T) {
	dir := t.TempDir()
	b, err := sample.ImageJTIFF(context.Background(), [3]int64{6, 20, 24}, 1, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "s.tif")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	crop := []string{"crop", src, "--size", "2,4,4", "--origin", "1,2,3"}
	for _, c := range []struct {
		args []string
		code int
		say  string // in stderr
	}{
		{[]string{"convert", src, "-o", filepath.Join(dir, "out.txt")}, exitUsage, ".zarr, .n5, .tif, .tiff, .dm3, .precomputed"},
		{[]string{"convert", src, "-o", filepath.Join(dir, "out.dm4")}, exitUsage, "unknown kind"},
		{append(crop, "-o", filepath.Join(dir, "c.txt")), exitUsage, "unknown kind"},
		{[]string{"convert", src, "-o", filepath.Join(dir, "out.tif"), "--levels", "2"}, exitUsage, "levels"},
		{[]string{"convert", src, "-o", filepath.Join(dir, "out.n5"), "--zarr-version", "3"}, exitUsage, "--zarr-version"},
		{[]string{"convert", src}, exitUsage, "-o OUT"},
		{[]string{"convert", filepath.Join(dir, "missing.tif"), "-o", filepath.Join(dir, "m.zarr")}, exitFailed, "missing.tif"},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.say) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", c.args[:1], code, stderr, c.code, c.say)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("refused commands wrote %v", ents)
	}

	// Accepted names write their format (as inspect detects it).
	for _, c := range []struct{ out, format string }{
		{"a.n5", "n5"}, {"a.dm3", "dm"}, {"a.precomputed", "precomputed"}, {"a.ome.zarr", "zarr"}, {"a.tiff", "tiff"},
	} {
		out := filepath.Join(dir, c.out)
		if code, _, stderr := runCLI(t, append(crop, "-o", out)...); code != 0 {
			t.Fatalf("crop -o %s: exit %d: %s", c.out, code, stderr)
		}
		code, stdout, stderr := runCLI(t, "inspect", out)
		if code != 0 || !strings.HasPrefix(stdout, out+": "+c.format+",") {
			t.Errorf("inspect %s: exit %d %q %s, want format %s", c.out, code, stdout, stderr, c.format)
		}
	}

	for _, cmd := range []string{"convert", "crop"} {
		_, help, _ := runCLI(t, cmd, "--help")
		for _, want := range []string{".ome.zarr", ".n5", ".dm3", ".precomputed", "--zarr-version", "--bigtiff", "exit status 2"} {
			if !strings.Contains(help, want) {
				t.Errorf("%s --help does not mention %s", cmd, want)
			}
		}
	}
}
