package demo

import (
	"context"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
)

// The whole pipeline survives servers that answer 503 and 429 (with
// Retry-After) to a share of all requests: resolvers, listings and downloads
// retry, and the table comes out as without faults.
func TestDemoSurvivesBusyServers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run skipped in -short mode")
	}
	ctx := context.Background()
	content, err := sample.Content(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.Start(ctx, *content, mirror.Options{Faults: &mirror.FaultConfig{Seed: 11, Status503Prob: 0.08, Status429Prob: 0.04}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	opt := pipeline.Options{OutDir: t.TempDir(), Convert: true}
	opt.Transfer.RetryDelay = time.Millisecond // the faults carry Retry-After: 0; keep the test quick
	opt.Defaults()
	opt.Env.Stores = &store.Opener{HTTP: opt.StoreHTTP, S3Endpoint: m.S3, GCSEndpoint: m.GCS, Retry: 8}
	opt.Env.IDRFileTree = m.EBIFTP + "/pub/databases/IDR/"
	rep, err := pipeline.Run(ctx, Manifest(m), opt)
	if err != nil {
		t.Fatal(err)
	}
	var faults int64
	for _, f := range m.Faults {
		faults += f.Requests()
	}
	rows := 0
	for _, d := range rep.Datasets {
		if d.Status != "ok" {
			t.Errorf("%s: %s %v", d.Name, d.Status, d.Errors)
		}
		rows += d.Arrays
		t.Logf("%s: %d objects, %d arrays", d.Name, d.Objects, d.Arrays)
	}
	if want := 2 + sample.EMPIARSections + 1 + len(sample.EPFLFiles) + sample.CosemLevels + 2 + 1; rows != want {
		t.Errorf("%d arrays, want %d", rows, want)
	}
	if faults == 0 {
		t.Fatal("no request went through the fault injector")
	}
}
