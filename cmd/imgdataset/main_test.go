package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/sample"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpListsOnlyWorkingCommands(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	cmds := []string{"demo", "run", "plan", "inspect", "catalog", "crop", "convert", "serve"}
	for _, c := range cmds {
		if !strings.Contains(out, "  "+c+" ") {
			t.Errorf("--help does not list %q:\n%s", c, out)
		}
	}
	for _, c := range cmds {
		_, h, _ := runCLI(t, c, "--help")
		if !strings.Contains(h, "Examples:") {
			t.Errorf("%s --help has no example", c)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	if code, _, _ := runCLI(t, "inspect", "--no-such-flag", "x"); code != exitUsage {
		t.Fatalf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLI(t, "inspect"); code != exitUsage {
		t.Fatalf("missing argument: exit %d, want %d", code, exitUsage)
	}
}

func TestInspectCropConvertJSON(t *testing.T) {
	dir := t.TempDir()
	b, err := sample.ImageJTIFF(context.Background(), [3]int64{20, 30, 40}, 1, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "s.tif")
	os.WriteFile(src, b, 0o644)

	code, out, stderr := runCLI(t, "inspect", "--json", "--checksum", src)
	if code != 0 {
		t.Fatalf("inspect exit %d: %s", code, stderr)
	}
	var res pipeline.InspectResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("inspect --json is not the contract: %v\n%s", err, out)
	}
	if res.Format != "tiff" || len(res.Arrays[0].SHA256_16) != 16 || res.Arrays[0].Shape[1] != 30 {
		t.Fatalf("inspect result %+v", res)
	}

	crop := filepath.Join(dir, "c.zarr")
	if code, _, stderr := runCLI(t, "crop", src, "--size", "5,6,7", "--origin", "2,3,4", "-o", crop); code != 0 {
		t.Fatalf("crop exit %d: %s", code, stderr)
	}
	code, out, _ = runCLI(t, "inspect", "--json", crop)
	if code != 0 {
		t.Fatalf("inspect crop exit %d", code)
	}
	var cr pipeline.InspectResult
	json.Unmarshal([]byte(out), &cr)
	a := cr.Arrays[0]
	if a.Shape[0] != 5 || a.Shape[2] != 7 || a.Axes[2].Offset != 4*0.02 {
		t.Fatalf("crop array %+v: want shape [5 6 7] with x offset 0.08 (origin × voxel size)", a)
	}
	attrs, err := os.ReadFile(filepath.Join(crop, ".zattrs"))
	if err != nil || !strings.Contains(string(attrs), `"origin_zyx"`) {
		t.Fatalf("crop provenance missing from .zattrs: %v %s", err, attrs)
	}

	conv := filepath.Join(dir, "v.zarr")
	if code, _, stderr := runCLI(t, "convert", src, "-o", conv, "--levels", "2", "--chunks", "16"); code != 0 {
		t.Fatalf("convert exit %d: %s", code, stderr)
	}
	code, out, _ = runCLI(t, "inspect", "--json", "--checksum", conv)
	var vr pipeline.InspectResult
	json.Unmarshal([]byte(out), &vr)
	if code != 0 || len(vr.Arrays) != 2 || vr.Arrays[0].SHA256_16 != res.Arrays[0].SHA256_16 {
		t.Fatalf("convert: %d levels, checksum %q vs source %q", len(vr.Arrays), vr.Arrays[0].SHA256_16, res.Arrays[0].SHA256_16)
	}
	if code, _, _ := runCLI(t, "convert", src, "-o", conv); code == 0 {
		t.Fatal("convert overwrote an existing output")
	}
}

// run --dry-run resolves and lists, like plan -v, and downloads nothing.
func TestRunDryRun(t *testing.T) {
	dir := t.TempDir()
	b, err := sample.ImageJTIFF(context.Background(), [3]int64{4, 5, 6}, 1, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "s.tif")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "run", "--dry-run", src, "--out", out)
	if code != 0 || !strings.Contains(stdout, "s.tif") || !strings.Contains(stdout, "total: 1 objects") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("dry run created %s: %v", out, err)
	}
}
