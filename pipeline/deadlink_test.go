package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/sample"
)

// TestRunDeadLinkFailsOnlyItself: a listing whose large file answers 404.
// The good file is downloaded and cataloged, the dataset is reported failed
// naming the dead file (so the command exits 1), issue #17 item 6.
func TestRunDeadLinkFailsOnlyItself(t *testing.T) {
	ctx := context.Background()
	tif, err := sample.ImageJTIFF(ctx, [3]int64{4, 16, 16}, 3, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	index := fmt.Sprintf(`<html><body><pre><a href="good.tif">good.tif</a>   2024-01-01 10:00  %d
<a href="gone.tif">gone.tif</a>   2024-01-01 10:00  12M
</pre></body></html>`, len(tif))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/d/":
			fmt.Fprint(w, index)
		case "/d/good.tif":
			http.ServeContent(w, r, "good.tif", time.Unix(1700000000, 0), bytes.NewReader(tif))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m := &manifest.Manifest{Version: 1, Datasets: []manifest.Dataset{{Name: "d", URL: srv.URL + "/d/", Kind: manifest.KindListing}}}
	opt := Options{OutDir: t.TempDir()}
	rep, err := Run(ctx, m, opt)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Datasets[0]
	if d.Status != "failed" || len(d.Errors) != 1 || !strings.Contains(d.Errors[0], "gone.tif") {
		t.Errorf("status %q, errors %q; want failed naming gone.tif", d.Status, d.Errors)
	}
	if d.Arrays != 1 {
		t.Errorf("%d arrays cataloged, want the good file's", d.Arrays)
	}
	got, err := os.ReadFile(filepath.Join(opt.OutDir, "d", "good.tif"))
	if err != nil || !bytes.Equal(got, tif) {
		t.Errorf("good.tif: %d bytes, %v", len(got), err)
	}
}
