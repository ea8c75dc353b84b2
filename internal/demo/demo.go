// Package demo wires the offline demo: it generates the sample content,
// starts the loopback mirrors and runs the pipeline against them. It lives
// apart from pipeline so that the library packages never link the test
// servers and sample generators; only the command (and tests and benchmarks)
// import it. internal/deps enforces that.
package demo

import (
	"context"
	"fmt"
	"os"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
)

// Seed is the crop seed of the demo manifest.
const Seed = 20200122

// CropSize is the demo's crop (z, y, x): the default manifest asks for
// 1000³ of the real hemibrain; the demo volume is small.
var CropSize = []int64{96, 96, 96}

// Datasets are the demo's datasets but for their URLs, which depend on where
// the mirrors listen: the same five kinds of links and selections as the
// default manifest, a smaller crop. They are enough to check a --only before
// any sample data is generated.
func Datasets() []manifest.Dataset {
	seed := int64(Seed)
	return []manifest.Dataset{
		{Name: "idr-9846137", Kind: manifest.KindOMERO, Title: "IDR idr0086 experimentD (mirror)"},
		{Name: "empiar-11759", Kind: manifest.KindEMPIAR, Title: "EMPIAR-11759 (mirror)",
			Take: manifest.Take{Include: []string{"*.dm3"}, Exclude: []string{"trakem2*/**"}}},
		{Name: "epfl-hippocampus", Kind: manifest.KindWebPage, Title: "EPFL CVLab hippocampus (mirror)",
			Take: manifest.Take{Include: []string{"*.tif"}}},
		{Name: "openorganelle-jrc-mus-nacc-2", Kind: manifest.KindS3, Title: "OpenOrganelle jrc_mus-nacc-2 (mirror)"},
		{Name: "hemibrain-crop", Kind: manifest.KindNeuroglancer, Title: "FlyEM hemibrain crop (mirror)",
			Take: manifest.Take{Crop: &manifest.Crop{Size: CropSize, Seed: &seed, AlignToChunks: true}}},
	}
}

// Manifest is the default manifest pointed at running mirrors.
func Manifest(m *mirror.Mirrors) *manifest.Manifest {
	urls := map[string]string{
		"idr-9846137":                  m.IDRImageURL(sample.IDRImageXY, sample.IDRDataset),
		"empiar-11759":                 m.EMPIAREntryURL(),
		"epfl-hippocampus":             m.EPFLPageURL(false),
		"openorganelle-jrc-mus-nacc-2": m.OpenOrganelleURL("jrc_mus-nacc-2"),
		"hemibrain-crop":               m.ShortLinkURL(),
	}
	ds := Datasets()
	for i := range ds {
		ds[i].URL = urls[ds[i].Name]
	}
	return &manifest.Manifest{Version: 1, Datasets: ds}
}

// Run starts the mirrors on 127.0.0.1, runs the pipeline against them and
// stops them. opt.OutDir receives the result.
func Run(ctx context.Context, opt pipeline.Options) (*pipeline.Report, error) {
	opt.Defaults()
	if opt.OutDir == "" {
		return nil, fmt.Errorf("demo: no output directory")
	}
	m, stop, err := Start(ctx, &opt)
	if err != nil {
		return nil, err
	}
	defer stop()
	return pipeline.Run(ctx, m, opt)
}

// Start generates the sample data, starts the mirrors on 127.0.0.1 and
// points opt (after opt.Defaults) at them; it returns the demo's manifest
// and the function that stops the mirrors and removes the sample data.
// Tests that run the pipeline more than once against one set of mirrors
// (the tasks of a sharded run) use it.
func Start(ctx context.Context, opt *pipeline.Options) (*manifest.Manifest, func(), error) {
	opt.Defaults()
	scratch, err := os.MkdirTemp("", "imgdataset-demo-content-")
	if err != nil {
		return nil, nil, fmt.Errorf("demo: scratch directory for the sample data: %w", err)
	}
	opt.Display.Logf("generating sample data in the real formats")
	content, err := sample.Content(ctx, scratch)
	if err != nil {
		os.RemoveAll(scratch)
		return nil, nil, fmt.Errorf("demo: generate sample data: %w", err)
	}
	mirrors, err := mirror.Start(ctx, *content, mirror.Options{})
	if err != nil {
		os.RemoveAll(scratch)
		return nil, nil, fmt.Errorf("demo: start mirrors: %w", err)
	}
	opt.Display.Logf("mirrors on loopback: listing %s, lab page %s, OMERO %s, EMPIAR %s, S3 %s, GCS %s, short links %s",
		mirrors.EBIFTP, mirrors.EPFL, mirrors.IDR, mirrors.EMPIAR, mirrors.S3, mirrors.GCS, mirrors.ShortLink)
	opt.Env.Stores = &store.Opener{HTTP: opt.StoreHTTP, S3Endpoint: mirrors.S3, GCSEndpoint: mirrors.GCS, Retry: 5}
	opt.Env.IDRFileTree = mirrors.EBIFTP + "/pub/databases/IDR/"
	stop := func() {
		mirrors.Close()
		os.RemoveAll(scratch)
	}
	return Manifest(mirrors), stop, nil
}
