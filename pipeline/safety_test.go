package pipeline

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/internal/shardtest"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/transfer"
	"github.com/imgdataset/imgdataset/volume"
)

// serveDir serves dir as a directory index on loopback (Last-Modified, no ETag).
func serveDir(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

// listingManifest names one listing dataset per name → URL.
func listingManifest(t *testing.T, urls map[string]string) *manifest.Manifest {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\ndatasets:\n")
	for _, n := range []string{"one", "two", "three"} {
		if u, ok := urls[n]; ok {
			b.WriteString("  - name: " + n + "\n    url: " + u + "/\n    kind: listing\n")
		}
	}
	m, err := manifest.Parse([]byte(b.String()), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readCatalog(t *testing.T, out string) []catalog.Record {
	t.Helper()
	st := store.New(store.NewFile(out))
	defer st.Close()
	doc, _, err := scan.RunCatalog(context.Background(), st)
	if err != nil || doc == nil {
		t.Fatalf("catalog.json of %s: %v", out, err)
	}
	return doc.Records
}

func rowsOf(recs []catalog.Record, dataset string) []catalog.Record {
	var out []catalog.Record
	for _, r := range recs {
		if r.Dataset == dataset {
			out = append(out, r)
		}
	}
	return out
}

func stale(r catalog.Record) bool {
	for _, n := range r.Notes {
		if strings.HasPrefix(n, catalog.NoteStale) {
			return true
		}
	}
	return false
}

// A run updates its own datasets' rows and keeps every other row of the
// output directory: --only one dataset, or a server that is down, never
// loses the rows of datasets completed earlier.
func TestRunKeepsEarlierDatasets(t *testing.T) {
	ctx := context.Background()
	srcOne, srcTwo := t.TempDir(), t.TempDir()
	uncalibratedTIFF(t, srcOne, "a.tif")
	uncalibratedTIFF(t, srcTwo, "b.tif")
	one, two := serveDir(t, srcOne), serveDir(t, srcTwo)
	m := listingManifest(t, map[string]string{"one": one.URL, "two": two.URL})
	out := t.TempDir()
	run := func(only ...string) *Report {
		t.Helper()
		opt := Options{OutDir: out, Only: only}
		rep, err := Run(ctx, m, opt)
		if err != nil {
			t.Fatalf("run %v: %v", only, err)
		}
		return rep
	}
	steps := []struct {
		name      string
		only      []string
		down      bool // server one closed before the run
		failed    bool
		staleRows bool // dataset one's rows carry the stale note
	}{
		{name: "all", failed: false},
		{name: "only two", only: []string{"two"}},
		{name: "one down", down: true, failed: true, staleRows: true},
	}
	for _, s := range steps {
		if s.down {
			one.Close()
		}
		rep := run(s.only...)
		if rep.Failed() != s.failed {
			t.Fatalf("%s: Failed() = %v, want %v (%+v)", s.name, rep.Failed(), s.failed, rep.Datasets)
		}
		recs := readCatalog(t, out)
		for _, ds := range []string{"one", "two"} {
			rows := rowsOf(recs, ds)
			if len(rows) != 1 {
				t.Fatalf("%s: catalog.json has %d rows of %s, want 1: %+v", s.name, len(rows), ds, recs)
			}
			if rows[0].Status != catalog.StatusOK {
				t.Errorf("%s: %s row status %q", s.name, ds, rows[0].Status)
			}
			if got := stale(rows[0]); got != (s.staleRows && ds == "one") {
				t.Errorf("%s: %s row stale = %v, notes %q", s.name, ds, got, rows[0].Notes)
			}
		}
		csv, err := os.ReadFile(filepath.Join(out, "metadata_table.csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, lp := range []string{"one/a.tif", "two/b.tif"} {
			if !strings.Contains(string(csv), lp) {
				t.Errorf("%s: metadata_table.csv lacks %s", s.name, lp)
			}
		}
		html, err := os.ReadFile(filepath.Join(out, "report.html"))
		if err != nil || !strings.Contains(string(html), "one/a.tif") {
			t.Errorf("%s: report.html lacks one/a.tif (err %v)", s.name, err)
		}
	}
}

// A second run into an output directory that a run is writing fails at once
// with transfer.ErrLocked, before it writes anything; the first run, which
// holds the lock until its tables are written, completes.
func TestRunHoldsOutputLockThroughout(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	uncalibratedTIFF(t, src, "a.tif")
	files := http.FileServer(http.Dir(src))
	entered, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
			<-release // the first request holds the first run inside its resolve step
		default:
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	m := listingManifest(t, map[string]string{"one": srv.URL})
	out := t.TempDir()
	first := make(chan error, 1)
	go func() {
		rep, err := Run(ctx, m, Options{OutDir: out})
		if err == nil && rep.Failed() {
			err = errors.New("first run failed: " + strings.Join(rep.Datasets[0].Errors, "; "))
		}
		first <- err
	}()
	<-entered // the first run holds the lock from its start
	_, err := Run(ctx, m, Options{OutDir: out})
	if !errors.Is(err, transfer.ErrLocked) {
		t.Errorf("second run: want ErrLocked, got %v", err)
	}
	if _, serr := os.Stat(filepath.Join(out, "catalog.json")); serr == nil {
		t.Error("catalog.json written while the first run was still resolving")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if len(rowsOf(readCatalog(t, out), "one")) != 1 {
		t.Error("the first run's row is missing")
	}
	if _, err := Run(ctx, m, Options{OutDir: out}); err != nil {
		t.Errorf("a run after the first finished: %v", err)
	}
}

// hashTree maps every file under dir to its sha256.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums, err := shardtest.Hashes(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// OME-Zarr copies are named by the original's path in the dataset: two files
// of one name in different folders get two copies, and a downloaded store at
// the place of a copy's plain name is left byte for byte as downloaded.
func TestCopiesNeverCollide(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	uncalibratedTIFF(t, src, "a/vol.tif")
	uncalibratedTIFF(t, src, "b/vol.tif")
	uncalibratedTIFF(t, src, "x.tif")
	in := volume.Info{Name: "x", Shape: []int64{2, 3, 4}, DType: volume.Uint16,
		Axes: []volume.Axis{{Name: "z", Size: 2, Scale: 1}, {Name: "y", Size: 3, Scale: 1}, {Name: "x", Size: 4, Scale: 1}}}
	data := make([]byte, in.NumBytes())
	for i := range data {
		data[i] = byte(i)
	}
	mv, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(store.NewFile(src))
	if err := zarr.WriteNGFF(ctx, st, scan.CopiesDir+"/x.zarr", mv, zarr.WriteOptions{Chunks: []int64{2, 3, 4}, Name: "x"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	srv := serveDir(t, src)
	m := listingManifest(t, map[string]string{"one": srv.URL})
	out := t.TempDir()
	for run := 0; run < 2; run++ { // a rerun must not overwrite it either
		rep, err := Run(ctx, m, Options{OutDir: out, Convert: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed() {
			t.Fatalf("run %d failed: %+v", run, rep.Datasets[0].Errors)
		}
		outs := rep.Datasets[0].Outputs
		seen := map[string]bool{}
		for _, o := range outs {
			if seen[o] {
				t.Errorf("run %d: output %s listed twice: %q", run, o, outs)
			}
			seen[o] = true
			if o == "one/"+scan.CopiesDir+"/x.zarr" {
				t.Errorf("run %d: a copy was written into the downloaded store %s", run, o)
			}
		}
		if len(outs) != 3 {
			t.Errorf("run %d: %d copies %q, want 3 (a/vol.tif, b/vol.tif, x.tif)", run, len(outs), outs)
		}
		want := hashTree(t, filepath.Join(src, scan.CopiesDir, "x.zarr"))
		got := hashTree(t, filepath.Join(out, "one", scan.CopiesDir, "x.zarr"))
		if len(got) != len(want) {
			t.Fatalf("run %d: downloaded store has %d files, the server %d", run, len(got), len(want))
		}
		for k, h := range want {
			if got[k] != h {
				t.Errorf("run %d: downloaded %s changed", run, k)
			}
		}
	}
}
