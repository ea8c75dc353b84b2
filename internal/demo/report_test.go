package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/internal/browser"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
)

// TestDemoReportInChromium runs the demo's manifest plus a dataset whose
// file is gone (HTTP 404), opens report.html in headless Chromium at 1280 px
// and checks what a person looks for: the first columns, shape and voxel
// size on screen without scrolling sideways, the failure with its reason,
// each conflict once per dataset, arrays named by their path and no 3D
// wording under 2D images.
func TestDemoReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo skipped in -short mode")
	}
	tab := browser.Open(t, 1280, 800)
	ctx := context.Background()
	content, err := sample.Content(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.Start(ctx, *content, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	man := Manifest(m)
	gone := m.EBIFTP + "/pub/databases/empiar/archive/gone.tif"
	man.Datasets = append(man.Datasets, manifest.Dataset{Name: "gone", URL: gone, Kind: manifest.KindFile})
	out := t.TempDir()
	opt := pipeline.Options{OutDir: out, Convert: true}
	opt.Defaults()
	opt.Env.Stores = &store.Opener{HTTP: opt.StoreHTTP, S3Endpoint: m.S3, GCSEndpoint: m.GCS, Retry: 5}
	opt.Env.IDRFileTree = m.IDRFileTreeURL()
	rep, err := pipeline.Run(ctx, man, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Failed() || len(rep.Failures) != 1 || rep.Failures[0].Dataset != "gone" {
		t.Fatalf("failures %+v; want the one of dataset gone", rep.Failures)
	}

	// catalog.json lists the failure with its status.
	b, err := os.ReadFile(filepath.Join(out, "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := catalog.ReadDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Failures) != 1 || !strings.HasPrefix(doc.Failures[0].Status, catalog.StatusError+": ") || !strings.Contains(doc.Failures[0].Status, "404") {
		t.Errorf("catalog.json failures %+v; want gone's, status error with the 404", doc.Failures)
	}

	if err := chromedp.Do(tab.Ctx, chromedp.Navigate("file://"+filepath.Join(out, "report.html")), chromedp.WaitReady("#catalog")); err != nil {
		t.Fatal(err)
	}
	strs := func(js string) []string {
		t.Helper()
		var out []string
		for _, v := range tab.Eval(t, js).([]any) {
			out = append(out, v.(string))
		}
		return out
	}

	heads := strs(`Array.from(document.querySelectorAll("#catalog thead th")).slice(0, 6).map(th => th.textContent)`)
	if want := []string{"dataset", "array", "shape", "dtype", "voxel size (nm)", "voxel size from"}; strings.Join(heads, "|") != strings.Join(want, "|") {
		t.Errorf("first header cells %q, want %q", heads, want)
	}
	// Shape and voxel size are on screen at 1280 px: their right edges are
	// inside the window and inside the table's scroll box as first shown.
	edges := tab.Eval(t, `(() => {
		const wrap = document.querySelector(".tablewrap").getBoundingClientRect();
		const th = n => document.querySelector('#catalog th[data-col="' + n + '"]').getBoundingClientRect().right;
		return [window.innerWidth, wrap.right, th("shape"), th("voxel_size_nm"), document.documentElement.scrollWidth];
	})()`).([]any)
	win, wrap, shape, vox, page := edges[0].(float64), edges[1].(float64), edges[2].(float64), edges[3].(float64), edges[4].(float64)
	if win != 1280 || shape > wrap || vox > wrap || wrap > win || page > win {
		t.Errorf("window %v, table box right %v, shape right %v, voxel size right %v, page width %v: shape and voxel size must show without horizontal scrolling", win, wrap, shape, vox, page)
	}

	failed := strs(`Array.from(document.querySelectorAll("#failed tbody tr")).map(r => r.textContent)`)
	if len(failed) != 1 || !strings.Contains(failed[0], "gone") || !strings.Contains(failed[0], "404") || strings.Count(failed[0], gone) != 1 {
		t.Errorf("failed section %q; want gone, its 404 and its URL once", failed)
	}

	// Sixteen sections and their stack disagree with the API the same way:
	// one line per conflict, saying how many files.
	conflicts := strs(`Array.from(document.querySelectorAll("#conflicts li")).map(li => li.textContent)`)
	n := 0
	for _, c := range conflicts {
		if strings.HasPrefix(c, "voxel_size_x: file 7.998 nm") {
			n++
			if !strings.Contains(c, "17 files") {
				t.Errorf("conflict %q does not say it concerns 17 files", c)
			}
		}
	}
	if n != 1 {
		t.Errorf("the EMPIAR voxel_size_x conflict is listed %d times, want once:\n%s", n, strings.Join(conflicts, "\n"))
	}

	arrays := strs(`Array.from(document.querySelectorAll("#catalog tbody tr")).map(r => r.cells[0].textContent + " " + r.cells[1].textContent)`)
	for _, want := range []string{"hemibrain-crop emdata.zarr/s0", "openorganelle-jrc-mus-nacc-2 jrc_mus-nacc-2.zarr/recon-2/em/fibsem-int16/s0", "epfl-hippocampus volumedata.tif", "empiar-11759 F57-8_test1_3VBSED_slice_0000.dm3"} {
		if !strings.Contains(strings.Join(arrays, "\n"), want) {
			t.Errorf("no array row %q in\n%s", want, strings.Join(arrays, "\n"))
		}
	}

	// A DM3 section is one image: its histogram is of the image, not of
	// "the three slices".
	caps := strs(`Array.from(document.querySelectorAll(".card")).filter(c => c.querySelector("h3").textContent.endsWith(".dm3")).map(c => c.textContent)`)
	if len(caps) == 0 {
		t.Fatal("no DM3 card")
	}
	for _, c := range caps {
		if strings.Contains(c, "slices") || !strings.Contains(c, "values of the image") {
			t.Errorf("2D card speaks of slices: %q", c)
			break
		}
	}
	if problems := tab.Problems(); len(problems) > 0 {
		t.Errorf("browser reported:\n%s", strings.Join(problems, "\n"))
	}
}
