// Package pipeline is the one way through imgdataset: resolve → transfer →
// read → catalog → block outputs. The run, plan and demo commands all call it;
// the demo only differs in where the URLs point.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"time"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/shard"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/transfer"
	"github.com/imgdataset/imgdataset/volume"
)

// Options configure a run.
type Options struct {
	OutDir string
	Only   []string // dataset names; empty = all
	// Convert writes an OME-Zarr copy of every readable volume (block access for ML).
	Convert bool
	// ConvertChunk is the OME-Zarr chunk edge (default 128).
	ConvertChunk int64
	// Env reaches the sources; zero fields get defaults (see Defaults). Its
	// HTTP client retries metadata requests; downloads go through StoreHTTP.
	Env source.Env
	// StoreHTTP is the client of the store drivers (no transport-level retries:
	// the transfer scheduler retries and must see 429s to slow down).
	StoreHTTP *http.Client
	// Transfer tunes the download engine; OutDir and Stores are filled in.
	Transfer transfer.Options
	// Formats reads files; nil = every format the tool knows.
	Formats *format.Registry
	// Log receives human-readable progress lines when Display is nil (nil =
	// discard).
	Log io.Writer
	// Display shows the run to a person: log lines and a bar per long phase
	// (nil: Lines(Log), no bars). Downloads report through Transfer.Events.
	Display Display
	// SampleBudget is about how many decoded bytes the value statistics of
	// an array too large to read whole (volume.DefaultExactStatsBytes) read,
	// in whole chunks; smaller arrays are read whole. Default 64 MiB.
	SampleBudget int64
	// Work bounds a checksum, conversion or crop, judged from the array's
	// declared shape and chunks before anything is read (zero: the
	// volume.WorkLimit defaults), so a hostile header declaring an
	// enormous array fails fast instead of running for days.
	Work volume.WorkLimit
	// Output says how Crop and Convert write.
	Output OutputOptions
	// Shard makes Crop and Convert one task of a sharded write (see
	// Finalize); the zero Spec writes the whole output.
	Shard shard.Spec

	// finalize makes Crop and Convert complete the tasks' output;
	// shownOut is then the output as the tasks were given it.
	finalize bool
	shownOut string
	// locked says the caller holds the output's lock (finalize of a run).
	locked bool
}

// NewHTTPClient returns the shared client: keep-alive pools sized for many
// requests in flight per host, a cookie jar (OMERO sessions), bounded
// redirects that a public server cannot point at a private address
// (store.NetGuard), and no transparent gzip: bytes are stored as sent.
func NewHTTPClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	guard := &store.NetGuard{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: guard.Control}).DialContext
	tr.DisableCompression = true
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 256
	tr.MaxConnsPerHost = 0
	tr.IdleConnTimeout = 90 * time.Second
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{
		Transport:     tr,
		Jar:           jar,
		CheckRedirect: guard.CheckRedirect,
	}
}

// Defaults fills in what the caller left empty.
func (o *Options) Defaults() {
	if o.StoreHTTP == nil {
		o.StoreHTTP = NewHTTPClient()
	}
	if o.Env.HTTP == nil {
		c := *o.StoreHTTP
		c.Transport = &store.RetryTransport{Base: o.StoreHTTP.Transport}
		o.Env.HTTP = &c
	}
	if o.Env.Stores == nil {
		o.Env.Stores = &store.Opener{HTTP: o.StoreHTTP}
	}
	if o.Env.Stores.Retry == 0 {
		o.Env.Stores.Retry = 5
	}
	if o.Formats == nil {
		o.Formats = all.Registry()
	}
	if o.Env.StoreMeta == nil {
		o.Env.StoreMeta = o.Formats.IsStoreMarker
	}
	if o.ConvertChunk <= 0 {
		o.ConvertChunk = 128
	}
	if o.SampleBudget <= 0 {
		o.SampleBudget = scan.DefaultSampleBudget
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Display == nil {
		o.Display = Lines(o.Log)
	}
}

func (o *Options) logf(format string, args ...any) {
	o.display().Logf(format, args...)
}

// display is o.Display, or the lines-only one for Options that missed
// Defaults (internal callers and tests).
func (o *Options) display() Display {
	if o.Display != nil {
		return o.Display
	}
	if o.Log != nil {
		return Lines(o.Log)
	}
	return Lines(io.Discard)
}

// selectDatasets applies Only.
func selectDatasets(m *manifest.Manifest, only []string) ([]manifest.Dataset, error) {
	if len(only) == 0 {
		return m.Datasets, nil
	}
	byName := map[string]manifest.Dataset{}
	for _, d := range m.Datasets {
		byName[d.Name] = d
	}
	var out []manifest.Dataset
	for _, n := range only {
		d, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--only %q: no such dataset in the manifest", n)
		}
		out = append(out, d)
	}
	return out, nil
}

// resolveAll resolves datasets concurrently; a failure is kept per dataset.
func resolveAll(ctx context.Context, env *source.Env, ds []manifest.Dataset) ([]*source.Resolved, []error) {
	res := make([]*source.Resolved, len(ds))
	errs := make([]error, len(ds))
	done := make(chan int, len(ds))
	rs := source.DefaultResolvers()
	for i := range ds {
		go func(i int) {
			r, err := rs.Resolve(ctx, env, ds[i])
			if err != nil {
				err = fmt.Errorf("resolve: %w", err) // the source names the dataset, its kind and URL once
			}
			res[i], errs[i] = r, err
			done <- i
		}(i)
	}
	for range ds {
		<-done
	}
	return res, errs
}
