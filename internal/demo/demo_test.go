package demo

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/sample"
)

// TestDemoEndToEnd runs the whole demo (mirrors, resolve, transfer, read,
// crop, convert, catalog) and checks the table against the generators' known
// parameters.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo skipped in -short mode")
	}
	out, rep := runDemo(t)
	for _, d := range rep.Datasets {
		if d.Status != "ok" {
			t.Errorf("dataset %s: %s %v", d.Name, d.Status, d.Errors)
		}
	}
	rows := readTable(t, filepath.Join(out, "metadata_table.csv"))
	// One row per array: 2 IDR stacks, 16 sections + their stack, 6 EPFL stacks,
	// every OpenOrganelle level (EM and labels) and one crop.
	if want := 2 + sample.EMPIARSections + 1 + len(sample.EPFLFiles) + sample.CosemLevels + 2 + 1; len(rows) != want {
		t.Errorf("table has %d rows, want %d", len(rows), want)
	}
	by := map[string][]map[string]string{}
	for _, r := range rows {
		by[r["dataset"]] = append(by[r["dataset"]], r)
		if r["status"] != "ok" {
			t.Errorf("row %s %s: status %q", r["dataset"], r["local_path"], r["status"])
		}
		if strings.HasPrefix(r["local_path"], "/") {
			t.Errorf("local_path %q must be relative to the output directory", r["local_path"])
		}
	}

	// IDR: two ImageJ stacks, voxel size from the files (20 nm), API agrees.
	idr := by["idr-9846137"]
	if len(idr) != 2 {
		t.Fatalf("idr rows: %d, want 2", len(idr))
	}
	for _, r := range idr {
		wantNum(t, r, "voxel_size_x_nm", 20)
		wantNum(t, r, "voxel_size_z_nm", 20)
		wantStr(t, r, "voxel_size_source", "file")
		wantStr(t, r, "format", "tiff")
		wantStr(t, r, "conflicts", "")
		if r["sha256"] == "" {
			t.Errorf("idr %s: no sha256", r["local_path"])
		}
	}

	// EMPIAR: 16 DM3 sections (x/y from the calibration, z from Meta Data) and their stack.
	em := by["empiar-11759"]
	var sections, stacks int
	for _, r := range em {
		switch r["format"] {
		case "dm":
			sections++
			// The REST API's numbers disagree with the files, as they do for the
			// real entry (5628×5632 at 80 Å vs 5496×5500 at 7.998 nm): the file
			// wins and the row says what disagreed and with whom.
			for _, c := range []string{"voxel_size_x: file 7.998 nm, api (EMPIAR REST API + entry XML) 8 nm", "shape (y,x): file 100×96, api (EMPIAR REST API + entry XML) 5632×5628", "y 100≠5632", "x 96≠5628"} {
				if !strings.Contains(r["conflicts"], c) {
					t.Errorf("empiar %s: conflicts %q lack %q", r["array"], r["conflicts"], c)
				}
			}
			wantStr(t, r, "doi", "10.6019/EMPIAR-11759")
			wantStr(t, r, "acquisition_date", "2018-06-11T22:27:16")
			wantNum(t, r, "shape_y", float64(sample.EMPIARShape[0]))
			wantNum(t, r, "voxel_size_x_nm", sample.EMPIARPixelUM*1000)
			wantNum(t, r, "voxel_size_z_nm", sample.EMPIARZSpacingNM)
			wantStr(t, r, "microscope", "FEI Quanta")
		case "zarr":
			stacks++
			wantNum(t, r, "shape_z", sample.EMPIARSections)
			wantNum(t, r, "voxel_size_z_nm", sample.EMPIARZSpacingNM)
		}
	}
	if sections != sample.EMPIARSections || stacks != 1 {
		t.Errorf("empiar: %d sections and %d stacks, want %d and 1", sections, stacks, sample.EMPIARSections)
	}

	// EPFL: six TIFFs without calibration; 5 nm comes from the web page and says so.
	ep := by["epfl-hippocampus"]
	if len(ep) != len(sample.EPFLFiles) {
		t.Errorf("epfl rows: %d, want %d", len(ep), len(sample.EPFLFiles))
	}
	for _, r := range ep {
		wantNum(t, r, "voxel_size_x_nm", sample.EPFLVoxelNM)
		wantStr(t, r, "voxel_size_source", "web page")
	}

	// OpenOrganelle: every level of the EM pyramid and of the labels, NGFF scales.
	oo := by["openorganelle-jrc-mus-nacc-2"]
	if len(oo) != sample.CosemLevels+2 {
		t.Errorf("openorganelle rows: %d, want %d", len(oo), sample.CosemLevels+2)
	}
	for _, r := range oo {
		if strings.HasSuffix(r["array"], "fibsem-int16/s1") {
			wantNum(t, r, "voxel_size_z_nm", 2*sample.CosemScaleNM[0])
			wantNum(t, r, "voxel_size_x_nm", 2*sample.CosemScaleNM[2])
			wantStr(t, r, "dtype", "int16")
		}
	}

	// Hemibrain: one crop of the requested size, seeded, 8 nm, from the remote sharded JPEG volume.
	hb := by["hemibrain-crop"]
	if len(hb) != 1 {
		t.Fatalf("hemibrain rows: %d, want 1", len(hb))
	}
	wantNum(t, hb[0], "shape_z", float64(CropSize[0]))
	wantNum(t, hb[0], "voxel_size_x_nm", sample.HemibrainVoxelNM)
	wantNum(t, hb[0], "crop_seed", Seed)
	wantStr(t, hb[0], "array", "s0") // named by where it is in its store, not by the source scale
	if hb[0]["crop_origin_z"] == "" {
		t.Error("hemibrain crop has no origin recorded")
	}

	// Downloaded originals exist for the four file-based kinds.
	for _, want := range []string{"idr-9846137", "empiar-11759", "epfl-hippocampus", "openorganelle-jrc-mus-nacc-2", "hemibrain-crop"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("no output directory for %s: %v", want, err)
		}
	}
}

func readTable(t *testing.T, p string) []map[string]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

func wantNum(t *testing.T, r map[string]string, col string, want float64) {
	t.Helper()
	got, err := strconv.ParseFloat(r[col], 64)
	if err != nil || math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s %s %s: %s = %q, want %g", r["dataset"], r["local_path"], r["array"], col, r[col], want)
	}
}

func wantStr(t *testing.T, r map[string]string, col, want string) {
	t.Helper()
	if r[col] != want {
		t.Errorf("%s %s %s: %s = %q, want %q", r["dataset"], r["local_path"], r["array"], col, r[col], want)
	}
}
