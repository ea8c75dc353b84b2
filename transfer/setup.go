package transfer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/imgdataset/imgdataset/store"
)

// This file turns the jobs into the datasets, objects, hosts and lanes a run
// schedules, and opens the stores they are read from.

type dsState struct {
	idx        int
	name       string
	objs       []*object
	unsettled  int
	dispatched int64 // bytes handed to workers: the fairness clock
	total      int64 // known bytes
	failed     bool
	lanes      map[*host]*lane
}

func newRun(ctx context.Context, jobs []Job, opt Options) (*run, error) {
	out, err := filepath.Abs(opt.OutDir)
	if err != nil {
		return nil, fmt.Errorf("transfer: output directory %q: %w", opt.OutDir, err)
	}
	r := &run{
		opt:      opt,
		out:      out,
		partsDir: filepath.Join(out, stateDir, "parts"),
		ckpt:     max(opt.PartSize/8, 64<<10),
		hosts:    map[string]*host{},
		active:   map[*object]bool{},
		results:  make(chan *taskResult, opt.Total),
		notes:    make(chan note, opt.Total),
		commits:  make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		events:   make(chan Event, 256),
	}
	r.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	if err := os.MkdirAll(r.partsDir, 0o755); err != nil {
		return nil, fmt.Errorf("transfer: output directory: %w", err)
	}
	if !opt.Locked {
		if r.lock, err = lockDir(filepath.Join(out, stateDir, "lock")); err != nil {
			return nil, err
		}
	}
	jname := mainJournal
	if opt.Journal != "" {
		if jname, err = cleanRel("journal", opt.Journal); err != nil {
			r.closeLock()
			return nil, fmt.Errorf("transfer: %w", err)
		}
	}
	jpath := filepath.Join(out, stateDir, filepath.FromSlash(jname))
	if err := os.MkdirAll(filepath.Dir(jpath), 0o755); err != nil {
		r.closeLock()
		return nil, fmt.Errorf("transfer: output directory: %w", err)
	}
	if r.j, err = openJournal(jpath); err != nil {
		r.closeLock()
		return nil, fmt.Errorf("transfer: %w", err)
	}
	r.stores = map[string]*store.Store{}
	storeErrs := map[string]error{}
	seenDS := map[string]bool{}
	finals := map[string]string{} // final file → dataset/path that claimed it
	for i, job := range jobs {
		ds := &dsState{idx: i, name: job.Dataset, lanes: map[*host]*lane{}}
		r.datasets = append(r.datasets, ds)
		dsName, dsErr := cleanDataset(job.Dataset)
		if dsErr == nil {
			ds.name = dsName
			if seenDS[dsName] {
				dsErr = fmt.Errorf("dataset %q appears twice", job.Dataset)
			}
			seenDS[dsName] = true
		}
		seen := map[string]bool{}
		for k, src := range job.Objects {
			o := &object{
				placement:   placement{ds: ds, idx: k, src: src, key: src.Key},
				expectation: expectation{size: src.Size, etag: store.CleanETag(src.ETag)},
			}
			o.res = Result{Dataset: job.Dataset, Path: src.Path, SourceURL: src.SourceURL, Size: src.Size}
			ds.objs = append(ds.objs, o)
			ds.unsettled++
			if o.size < 0 {
				o.size = -1
				o.hint = max(src.SizeHint, 0)
				ds.total += o.hint // for progress only
			} else {
				ds.total += o.size
			}
			if len(src.MD5) == 16 {
				o.md5 = src.MD5
			}
			o.crc, o.hasCRC = src.CRC32C, src.HasCRC
			if dsErr != nil {
				o.res.Err = dsErr
				continue
			}
			p, err := cleanRel("object path", src.Path)
			if err != nil {
				o.res.Err = err
				continue
			}
			if seen[p] {
				o.res.Err = fmt.Errorf("object path %q appears twice in the dataset", src.Path)
				continue
			}
			seen[p] = true
			final := filepath.Join(out, filepath.FromSlash(ds.name), filepath.FromSlash(p))
			if other, dup := finals[final]; dup {
				// Nested dataset names can make two objects share one file.
				o.res.Err = fmt.Errorf("object path %q: same local file as %s", src.Path, other)
				continue
			}
			finals[final] = ds.name + "/" + p
			o.path = p
			o.final = final
			o.partPath = filepath.Join(r.partsDir, partName(ds.name, p))
			o.res.File = o.final
			st, ok := r.stores[src.StoreURL]
			if !ok && storeErrs[src.StoreURL] == nil {
				st, err = opt.Stores.Open(ctx, src.StoreURL)
				if err != nil {
					storeErrs[src.StoreURL] = err
				} else {
					r.stores[src.StoreURL] = st
				}
			}
			if st == nil {
				o.res.Err = fmt.Errorf("open %s: %w", src.StoreURL, storeErrs[src.StoreURL])
				continue
			}
			o.st = st
			info := st.Host()
			o.etagIsMD5 = info.ETagIsMD5
			h := r.hosts[info.Name]
			if h == nil {
				h = newHost(info, opt.PerHost, time.Now())
				r.hosts[info.Name] = h
			}
			o.host = h
			o.lane = ds.lanes[h]
			if o.lane == nil {
				o.lane = &lane{ds: ds, host: h}
				ds.lanes[h] = o.lane
				r.lanes = append(r.lanes, o.lane)
			}
		}
	}
	return r, nil
}
