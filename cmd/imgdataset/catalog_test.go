package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runDemo runs the offline demo into dir: the one place this package's tests
// reach for the demo.
func runDemo(t *testing.T, dir string) {
	t.Helper()
	if code, _, stderr := runCLI(t, "demo", "--out", dir, "--progress", "none"); code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
}

// rowsOf reads a metadata table and keeps, per row, the columns a catalog of
// a run's output must reproduce.
func rowsOf(t *testing.T, p string, cols []string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: no header", p)
	}
	idx := make([]int, len(cols))
	for i, c := range cols {
		if idx[i] = slices.Index(recs[0], c); idx[i] < 0 {
			t.Fatalf("%s: no column %s", p, c)
		}
	}
	var out []string
	for _, r := range recs[1:] {
		var cells []string
		for _, i := range idx {
			cells = append(cells, r[i])
		}
		out = append(out, strings.Join(cells, " | "))
	}
	slices.Sort(out)
	return out
}

// `catalog DIR` of a run's output reproduces the run's own table: the same
// rows with the same datasets, paths, arrays and voxel sizes and their
// sources (web page and API values included), and no row for the OME-Zarr
// copies the run made.
func TestCatalogOfRunOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo skipped in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "out")
	runDemo(t, dir)
	table := filepath.Join(t.TempDir(), "table.csv")
	code, _, stderr := runCLI(t, "catalog", dir, "-o", table)
	if code != 0 {
		t.Fatalf("catalog exit %d: %s", code, stderr)
	}
	cols := []string{"dataset", "local_path", "array", "voxel_size_z_nm", "voxel_size_y_nm", "voxel_size_x_nm", "voxel_size_source"}
	run := rowsOf(t, filepath.Join(dir, "metadata_table.csv"), cols)
	got := rowsOf(t, table, cols)
	if len(run) < 20 {
		t.Fatalf("the run's table has only %d rows", len(run))
	}
	if !slices.Equal(got, run) {
		t.Errorf("catalog of the run's output differs from the run's table\ncatalog (%d rows):\n%s\nrun (%d rows):\n%s",
			len(got), strings.Join(got, "\n"), len(run), strings.Join(run, "\n"))
	}
	// Nothing on disk changed since the run, so no row says it did.
	for _, n := range rowsOf(t, table, []string{"local_path", "notes"}) {
		if strings.Contains(n, "since the run") || strings.Contains(n, "not in the run") {
			t.Errorf("row of an unchanged run output: %s", n)
		}
	}
}
