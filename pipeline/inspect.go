package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// InspectAxis is one axis in the inspect contract.
type InspectAxis struct {
	Name   string  `json:"name"`
	Size   int64   `json:"size"`
	Scale  float64 `json:"scale"`
	Offset float64 `json:"offset"`
	Unit   string  `json:"unit"`
}

// InspectArray is one array in the inspect contract.
type InspectArray struct {
	Name        string         `json:"name"`
	Shape       []int64        `json:"shape"`
	DType       string         `json:"dtype"`
	Axes        []InspectAxis  `json:"axes"`
	Chunks      []int64        `json:"chunks"`
	Compression string         `json:"compression"`
	SHA256_16   string         `json:"sha256_16,omitempty"`
	Metadata    map[string]any `json:"metadata"`
}

// InspectResult is the JSON contract of `imgdataset inspect --json`.
type InspectResult struct {
	Path   string         `json:"path"`
	Format string         `json:"format"`
	Arrays []InspectArray `json:"arrays"`
}

// splitTarget turns a path or URL into a store root and a key, so that a single
// file is opened through its directory (formats may need sibling objects) and a
// store directory is opened at its root.
func splitTarget(ctx context.Context, opener *store.Opener, reg *format.Registry, target string) (*store.Store, string, error) {
	if !strings.Contains(target, "://") {
		abs, err := filepath.Abs(target)
		if err != nil {
			return nil, "", err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, "", err
		}
		if fi.IsDir() {
			return store.New(store.NewFile(abs)), "", nil
		}
		return store.New(store.NewFile(filepath.Dir(abs))), filepath.Base(abs), nil
	}
	t := strings.TrimSuffix(target, "/")
	i := strings.LastIndex(t, "/")
	if i < 0 || strings.HasSuffix(t[:i], ":/") {
		st, err := opener.Open(ctx, target)
		return st, "", err
	}
	base := t[i+1:]
	// A name with an extension is a file; otherwise (bucket prefixes, stores) open the prefix itself.
	if path.Ext(base) != "" && !reg.HasStoreName(base) {
		st, err := opener.Open(ctx, t[:i+1])
		return st, base, err
	}
	st, err := opener.Open(ctx, t+"/")
	return st, "", err
}

// Inspect reads the metadata of one file, array or store (local or remote; remote
// reads fetch only headers by range) and, with checksum, hashes the decoded data.
func Inspect(ctx context.Context, target string, checksum bool, opt Options) (*InspectResult, error) {
	opt.Defaults()
	st, key, err := splitTarget(ctx, opt.Env.Stores, opt.Formats, target)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", target, err)
	}
	defer st.Close()
	f, vols, err := opt.Formats.Open(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", target, err)
	}
	res := &InspectResult{Path: target, Format: f.Name()}
	for _, v := range vols {
		a := arrayOf(v)
		if checksum {
			if err := opt.Work.Check(v.Info(), volume.Full(v.Info().Shape)); err != nil {
				return nil, fmt.Errorf("inspect %s: checksum: %w", target, err)
			}
			sum, err := volume.Checksum16(ctx, v, 64<<20)
			switch {
			case errors.Is(err, format.ErrNotSupported):
				// An array with no byte layout to hash (variable-length
				// strings) keeps sha256_16 empty; its metadata says why.
			case err != nil:
				return nil, fmt.Errorf("inspect %s: checksum %s: %w", target, a.Name, err)
			default:
				a.SHA256_16 = sum
			}
		}
		res.Arrays = append(res.Arrays, a)
	}
	return res, nil
}

func arrayOf(v volume.Volume) InspectArray {
	in := v.Info()
	a := InspectArray{Name: in.Name, Shape: in.Shape, DType: string(in.DType), Chunks: in.Chunks, Compression: in.Compression, Metadata: in.Metadata}
	if a.Metadata == nil {
		a.Metadata = map[string]any{}
	}
	if a.Shape == nil {
		a.Shape = []int64{}
	}
	for _, ax := range in.Axes {
		a.Axes = append(a.Axes, InspectAxis{Name: ax.Name, Size: ax.Size, Scale: ax.Scale, Offset: ax.Offset, Unit: ax.Unit})
	}
	return a
}

// CatalogResult is the table of a catalog run and the arrays behind its rows.
type CatalogResult struct {
	Records []catalog.Record
	// Volumes maps catalog.VolumeKey of each readable row to its array (for report.html).
	Volumes map[string]volume.Volume

	dirs   []*scan.Result
	stores []*store.Store
}

// Close releases the files the arrays read through.
func (r *CatalogResult) Close() {
	for _, d := range r.dirs {
		d.Close()
	}
	for _, st := range r.stores {
		st.Close()
	}
	r.dirs, r.stores = nil, nil
}

// Catalog builds table rows for local trees and remote objects without
// downloading them: every file or store found is opened by header reads only
// (value statistics of local arrays read them whole up to 512 MiB decoded,
// else a stated sample of whole chunks; remote ones are not read). A local
// directory is read as scan.Dir reads it: a run's output gives the run's
// table back.
func Catalog(ctx context.Context, targets []string, opt Options) (*CatalogResult, error) {
	opt.Defaults()
	res := &CatalogResult{Volumes: map[string]volume.Volume{}}
	sopt := scan.Options{Formats: opt.Formats, SampleBudget: opt.SampleBudget}
	for _, t := range targets {
		remote := strings.Contains(t, "://")
		if !remote {
			fi, err := os.Stat(t)
			if err != nil {
				res.Close()
				return nil, err
			}
			if fi.IsDir() {
				d, err := scan.Dir(ctx, t, sopt)
				if err != nil {
					res.Close()
					return nil, err
				}
				res.dirs = append(res.dirs, d)
				if len(d.Records) == 0 {
					// Named on the command line: an empty table would
					// look like success.
					res.Close()
					return nil, fmt.Errorf("catalog %s: no file or store in it that a format reads: %w", t, format.ErrUnknown)
				}
				res.Records = append(res.Records, d.Records...)
				maps.Copy(res.Volumes, d.Volumes)
				continue
			}
		}
		st, key, err := splitTarget(ctx, opt.Env.Stores, opt.Formats, t)
		if err != nil {
			res.Close()
			return nil, err
		}
		res.stores = append(res.stores, st)
		base := catalog.Record{Dataset: datasetOf(t), LocalPath: t, SourceURL: t}
		uopt := sopt
		if remote {
			// Remote objects are cataloged from headers only; sampling
			// values would read data the user has not chosen to fetch.
			uopt.SampleBudget = -1
			base.Notes = []string{"remote: value statistics not sampled"}
		}
		rows, vols := scan.Unit(ctx, st, key, base, uopt)
		if len(rows) == 0 {
			// Named on the command line, not found in a walk: a target no
			// format reads is an error that says why, not an empty table.
			// Detect runs again only on this rare path, for its reason.
			if _, err := opt.Formats.Detect(ctx, st, key); errors.Is(err, format.ErrUnknown) {
				res.Close()
				return nil, fmt.Errorf("catalog %s: %w", t, err)
			}
		}
		for i, r := range rows {
			if vols[i] == nil {
				r.Notes = nil // an unreadable unit was not sampled either way
			} else {
				res.Volumes[catalog.VolumeKey(r)] = vols[i]
			}
			res.Records = append(res.Records, r)
		}
	}
	catalog.Sort(res.Records)
	return res, nil
}

func datasetOf(t string) string {
	return path.Base(strings.TrimSuffix(filepath.ToSlash(t), "/"))
}
