// Package transfer downloads the objects of many datasets at once with one
// global scheduler: per-host concurrency caps with ramp-up, a global in-flight
// cap, byte-range splitting of large files, retries with backoff that honour
// Retry-After, verification (size, MD5, CRC32C, sha256 of every file) and a
// crash-safe resume journal.
//
// Output layout: OutDir/<dataset>/<object path> for the files, and
// OutDir/.imgdataset/ for the journal and the part files being assembled.
// Nothing partial ever sits under a final name: a file is fsynced and renamed
// into place only after it has been verified, and the journal only records
// bytes that are already on stable storage, so a run killed at any point can
// be rerun and continues where it stopped; a complete run rerun fetches
// nothing.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

// Job is one dataset's objects.
type Job struct {
	Dataset string
	Objects []source.Object
}

// Options configure Run. Zero values select the defaults.
type Options struct {
	// OutDir receives OutDir/<dataset>/<object.Path>; required.
	OutDir string
	// Stores opens object.StoreURL; required. Opened stores are cached per URL.
	Stores *store.Opener
	// PerHost caps concurrent requests per host. Zero selects what the store
	// says of its server (store.Host.Parallel): 16 for web servers and 64 for
	// object stores (S3, GCS), which are built for many parallel requests: a
	// zarr store's small chunks need them in flight to hide the latency. Each
	// host starts at min(4, cap) and doubles at most every 100 ms while
	// responses arrive (a request counts once its response starts, not when
	// its body ends); a 429 or 503 halves it again. A request's slot is freed
	// once its body is in, before the file is fsynced and committed.
	PerHost int
	// Total caps requests in flight over all hosts (default 128).
	Total int
	// PartSize is the range size for large files (default 32 MiB, minimum
	// 64 KiB). Files larger than 2×PartSize are fetched as several ranges over
	// several connections.
	PartSize int64
	// Retries is the number of retries of one request (default 8). Every
	// failed attempt counts, even one that made progress: its bytes are kept
	// and the retry asks only for the rest (with a Range request), so
	// progress is not lost, and a server that always cuts the body off still
	// ends in an error.
	Retries int
	// RetryDelay is the first backoff delay (default 500 ms); later delays grow
	// exponentially with jitter, up to 60 s, or to the server's Retry-After.
	RetryDelay time.Duration
	// MaxRetryAfter bounds the time the server's Retry-After answers may make
	// one request wait, in all (default 5 minutes): a wait is cut to what is
	// left of this budget, and the host-wide pauses the request sat through
	// count too. Once it is spent, a request the server asks to wait again
	// fails, naming the wait.
	MaxRetryAfter time.Duration
	// StallTimeout is the window of the minimum-rate guard: a request that
	// delivers fewer than MinRate bytes per second over a window of this
	// length (the first one includes the wait for the answer) is aborted and
	// retried (default 2 minutes).
	StallTimeout time.Duration
	// MinRate is the minimum rate in bytes per second (default 1 KiB/s). A
	// byte now and then does not keep a request alive.
	MinRate int64
	// MaxUnknownSize caps an object whose size nobody announced (no listing
	// size, no Content-Length): a body that goes on past it fails the object
	// (default 64 GiB, above any single file of the known EM datasets, and
	// far below a full disk of a data server). An object listed with a
	// rounded size ("3.0M") is capped at that size plus a margin instead.
	MaxUnknownSize int64
	// Events receives progress events, from a single goroutine; nil discards them.
	Events func(Event)
	// NoVerify skips MD5/CRC32C checks (sizes and sha256 are always done).
	NoVerify bool
	// Locked says the caller holds OutDir's lock (LockOutput) for longer
	// than the downloads, so Run must not take it again.
	Locked bool
	// Journal is the journal's file below OutDir/.imgdataset (slash
	// separated); "" means "journal.jsonl". The tasks of a sharded run
	// keep one each ("tasks/2-of-4.journal.jsonl"), since they append at
	// the same time; MergeJournals folds them into the main one.
	Journal string
}

// Result is the outcome of one object.
type Result struct {
	Dataset string `json:"dataset"`
	// Path is the object's path relative to the dataset directory.
	Path string `json:"path"`
	// File is the local file (OutDir/dataset/path); empty when Path was unsafe.
	File      string `json:"file,omitempty"`
	SourceURL string `json:"source_url,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	// Skipped is true when the file was already complete and verified by the journal.
	Skipped bool `json:"skipped,omitempty"`
	// Fetched counts the bytes downloaded for this object in this run.
	Fetched int64 `json:"fetched"`
	Err     error `json:"-"`
}

// DatasetSummary is the outcome of one job.
type DatasetSummary struct {
	Dataset string
	// Results has one entry per object, in job order.
	Results []Result
	// Size is the byte total of the files in place; Fetched what this run downloaded.
	Size, Fetched int64
	// Done, Skipped and Failed count objects.
	Done, Skipped, Failed int
}

// Err lists the failed objects of the dataset, or returns nil.
func (d *DatasetSummary) Err() error {
	var errs []error
	for _, r := range d.Results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("dataset %s: %d of %d objects failed: %w", d.Dataset, len(errs), len(d.Results), errors.Join(errs...))
}

// Summary is what Run did, per dataset in job order.
type Summary struct {
	Datasets []DatasetSummary
	// Fetched is the number of bytes read from the network (including bytes of
	// failed attempts that had to be fetched again).
	Fetched int64
}

// Err joins the errors of every failed dataset, or returns nil.
func (s *Summary) Err() error {
	var errs []error
	for i := range s.Datasets {
		if err := s.Datasets[i].Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Failed returns the results of all failed objects.
func (s *Summary) Failed() []Result {
	var out []Result
	for _, d := range s.Datasets {
		for _, r := range d.Results {
			if r.Err != nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// Event types.
const (
	EventPlan        = "plan"         // a dataset's object count (Objects) and known byte total (Total)
	EventStart       = "start"        // an object's first request is sent
	EventProgress    = "progress"     // Bytes of Total are in place for the object
	EventRetry       = "retry"        // a request failed and will be retried (Err says why)
	EventDone        = "done"         // an object is complete and verified
	EventSkipped     = "skipped"      // an object was already complete
	EventFailed      = "failed"       // an object failed permanently (Err says why)
	EventDatasetDone = "dataset_done" // every object of a dataset is settled; Err is set if any failed
)

// Event is a progress event. It is JSON-serialisable.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Dataset string    `json:"dataset"`
	Path    string    `json:"path,omitempty"`
	// Bytes and Total are bytes in place and expected for the object (or, for
	// dataset events, for the dataset). Total is -1 when unknown.
	Bytes int64 `json:"bytes"`
	Total int64 `json:"total"`
	// Objects is the number of objects of the dataset, on "plan" events.
	Objects int    `json:"objects,omitempty"`
	Err     string `json:"err,omitempty"`
}

func (o *Options) withDefaults() Options {
	c := *o
	if c.Total <= 0 {
		c.Total = 128
	}
	if c.PartSize <= 0 {
		c.PartSize = 32 << 20
	}
	c.PartSize = max(c.PartSize, 64<<10)
	if c.Retries <= 0 {
		c.Retries = 8
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 500 * time.Millisecond
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 2 * time.Minute
	}
	if c.MinRate <= 0 {
		c.MinRate = 1 << 10
	}
	if c.MaxUnknownSize <= 0 {
		c.MaxUnknownSize = 64 << 30
	}
	return c
}

// Run downloads every object of jobs. Per-object and per-dataset failures are
// reported in the Summary (see Summary.Err); the returned error is only for
// problems that stop the whole run (bad options, an unusable output directory
// or journal) or for the cancellation of ctx, in which case the Summary tells
// what was finished.
func Run(ctx context.Context, jobs []Job, opt Options) (*Summary, error) {
	if opt.OutDir == "" {
		return nil, errors.New("transfer: no output directory")
	}
	if opt.Stores == nil {
		return nil, errors.New("transfer: no store opener")
	}
	o := opt.withDefaults()
	r, err := newRun(ctx, jobs, o)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}
