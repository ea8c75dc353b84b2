package pipeline

import (
	"context"
	"os"
	"testing"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
)

// `imgdataset run URL...` works without a manifest: each URL is a dataset whose
// kind is detected from the URL alone.
func TestRunURLsWithoutManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run skipped in -short mode")
	}
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
	urls := []string{
		m.IDRImageURL(sample.IDRImageXY, sample.IDRDataset),
		m.EMPIAREntryURL(),
		m.EPFLPageURL(false),
		"s3://" + sample.CosemBucket + "/" + sample.CosemStore,
	}
	man, err := manifest.FromURLs(urls)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{OutDir: t.TempDir()}
	opt.Defaults()
	opt.Env.Stores = &store.Opener{HTTP: opt.StoreHTTP, S3Endpoint: m.S3, GCSEndpoint: m.GCS}
	opt.Env.IDRFileTree = m.EBIFTP + "/pub/databases/IDR/"
	rep, err := Run(ctx, man, opt)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds := []string{manifest.KindOMERO, manifest.KindEMPIAR, manifest.KindWebPage, manifest.KindS3}
	for i, d := range rep.Datasets {
		if d.Status != "ok" || d.Arrays == 0 {
			t.Errorf("%s (%s): %s, %d arrays, %v", d.Name, urls[i], d.Status, d.Arrays, d.Errors)
		}
		if d.Kind != wantKinds[i] {
			t.Errorf("%s: detected kind %q, want %q", urls[i], d.Kind, wantKinds[i])
		}
	}
	// Idempotent: a second run over the same directory downloads nothing new
	// and yields the same table.
	first, err := os.ReadFile(opt.OutDir + "/metadata_table.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, man, opt); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(opt.OutDir + "/metadata_table.csv")
	if string(first) != string(second) {
		t.Error("second run produced a different table")
	}
}
