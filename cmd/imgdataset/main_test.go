package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
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
	cmds := []string{"demo", "run", "plan", "inspect", "catalog", "crop", "convert", "finalize", "status", "serve"}
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

// corruptFiles writes damaged files of the three kinds the tool reads most
// and returns their paths: a multi-page TIFF cut in half, a DM3 cut in its
// pixels, and an OME-Zarr whose first chunk is cut.
func corruptFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	tif, err := sample.PlainTIFF(ctx, [3]int64{8, 24, 32}, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	out["tiff"] = filepath.Join(dir, "half.tif")
	dm3, err := sample.DM3Section([2]int64{40, 48}, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out["dm"] = filepath.Join(dir, "cut.dm3")
	for k, b := range map[string][]byte{"tiff": tif, "dm": dm3} {
		if err := os.WriteFile(out[k], b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := sample.Mem("em", volume.Uint8, sample.ZYX([3]int64{10, 20, 30}, [3]float64{4, 4, 4}, "nanometer"), sample.EM([3]int64{10, 20, 30}, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	out["zarr"] = filepath.Join(dir, "cut.zarr")
	if err := zarr.WriteNGFF(ctx, store.New(store.NewFile(dir)), "cut.zarr", v, zarr.WriteOptions{Chunks: []int64{8, 8, 8}}); err != nil {
		t.Fatal(err)
	}
	chunk := filepath.Join(out["zarr"], "s0", "0", "0", "0")
	fi, err := os.Stat(chunk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(chunk, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	// run takes single files: the same store, zipped (RFC-9 .ozx).
	out["ozx"] = filepath.Join(dir, "cut.ozx")
	zipDir(t, out["zarr"], out["ozx"])
	return out
}

// zipDir stores every file under dir in a new zip archive at dst.
func zipDir(t *testing.T, dir, dst string) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Store})
		if err == nil {
			_, err = w.Write(b)
		}
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptFilesExit1 runs inspect and run on damaged local files: both
// must exit 1 with the cause on stderr, and the table row must say corrupt.
func TestCorruptFilesExit1(t *testing.T) {
	dir := t.TempDir()
	files := corruptFiles(t, dir)
	for _, c := range []struct {
		kind  string
		run   string   // what run is given: run takes files, not folders
		args  []string // inspect flags: a zarr opens from metadata, so --checksum reads the chunk
		cause string
	}{
		{"tiff", "tiff", nil, "past end of file"},
		{"dm", "dm", nil, "bytes declared at offset"},
		{"zarr", "ozx", []string{"--checksum"}, `chunk "s0/0/0/0"`},
	} {
		t.Run(c.kind, func(t *testing.T) {
			path := files[c.kind]
			code, stdout, stderr := runCLI(t, append(append([]string{"inspect"}, c.args...), path)...)
			if code != exitFailed || !strings.Contains(stderr, "corrupt data") || !strings.Contains(stderr, c.cause) {
				t.Errorf("inspect: exit %d, stderr %q, want exit 1 and the cause", code, stderr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 || stdout != "" {
				t.Errorf("inspect: stderr has %d lines, stdout %q: want one line of error only", n+1, stdout)
			}

			out := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr = runCLI(t, "run", files[c.run], "--out", out, "--progress", "none", "--no-convert")
			if code != exitFailed || !strings.Contains(stderr, "failed") || !strings.Contains(stderr, c.cause) {
				t.Fatalf("run: exit %d, want 1 with the cause on stderr\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "failed") {
				t.Errorf("run summary does not say failed:\n%s", stdout)
			}
			rows := tableRows(t, filepath.Join(out, "metadata_table.jsonl"))
			corrupt := 0
			for _, r := range rows {
				if s, _ := r["status"].(string); strings.HasPrefix(s, catalog.StatusCorrupt+": ") && strings.Contains(s, c.cause) {
					corrupt++
				}
			}
			if corrupt == 0 {
				t.Errorf("no table row says corrupt: %v", rows)
			}
		})
	}
}

func tableRows(t *testing.T, p string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// Every command line the README shows names a real command with flags it
// takes and an argument count it accepts, so the README cannot drift from
// the CLI. (It parses them; running them needs the network or data.)
func TestReadmeCommandsParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "go run ./cmd/imgdataset "
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.Index(line, prefix)
		if i < 0 {
			continue
		}
		cmdline := line[i+len(prefix):]
		if j := strings.Index(cmdline, "#"); j >= 0 {
			cmdline = cmdline[:j]
		}
		args := strings.Fields(cmdline)
		n++
		root := newRoot(io.Discard, io.Discard)
		c, rest, err := root.Find(args)
		if err != nil || c == root {
			t.Errorf("README: %q: no such command (%v)", cmdline, err)
			continue
		}
		if err := c.ParseFlags(rest); err != nil {
			t.Errorf("README: %q: %v", cmdline, err)
			continue
		}
		if c.Args != nil {
			if err := c.Args(c, c.Flags().Args()); err != nil {
				t.Errorf("README: %q: %v", cmdline, err)
			}
		}
	}
	if n < 8 {
		t.Fatalf("found %d command lines in README.md; the README's examples moved?", n)
	}
}

// The README, --help and run --help state the same exit codes.
func TestExitCodesAgree(t *testing.T) {
	_, help, _ := runCLI(t, "--help")
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, runHelp, _ := runCLI(t, "run", "--help")
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, c := range []struct{ code, meaning string }{
		{"0", "success"}, {"1", "a dataset failed"}, {"2", "usage error"}, {"130", "interrupted"},
	} {
		want := c.code + " " + c.meaning
		for name, text := range map[string]string{"--help": help, "README.md": string(readme), "run --help": runHelp} {
			if !strings.Contains(flat(text), want) {
				t.Errorf("%s does not say exit code %q", name, want)
			}
		}
	}
	if code := exitAborted; code != 130 || exitUsage != 2 || exitFailed != 1 || exitOK != 0 {
		t.Errorf("exit codes in main.go differ from the documented 0/1/2/130")
	}
}
