package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
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
func splitTarget(ctx context.Context, opener *store.Opener, target string) (*store.Store, string, error) {
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
	if path.Ext(base) != "" && !strings.HasSuffix(strings.ToLower(base), ".zarr") && !strings.HasSuffix(strings.ToLower(base), ".n5") {
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
	st, key, err := splitTarget(ctx, opt.Env.Stores, target)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", target, err)
	}
	defer closeStore(st)
	f, vols, err := opt.Formats.Open(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", target, err)
	}
	res := &InspectResult{Path: target, Format: f.Name()}
	for _, v := range vols {
		a := arrayOf(v)
		if checksum {
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
}

// Catalog builds table rows for local trees and remote objects without
// downloading them: every file or store found is opened by header reads only
// (value statistics read a bounded strided sample).
func Catalog(ctx context.Context, targets []string, opt Options) (*CatalogResult, error) {
	opt.Defaults()
	res := &CatalogResult{Volumes: map[string]volume.Volume{}}
	var recs []catalog.Record
	for _, t := range targets {
		items, err := expand(t)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			st, key, err := splitTarget(ctx, opt.Env.Stores, it)
			if err != nil {
				return nil, err
			}
			base := catalog.Record{Dataset: datasetOf(t), LocalPath: it, SourceURL: it}
			f, vols, err := opt.Formats.Open(ctx, st, key)
			if errors.Is(err, format.ErrUnknown) {
				continue
			}
			if f != nil {
				base.Format = f.Name()
			}
			if err != nil {
				r := base
				if errors.Is(err, format.ErrNotSupported) {
					r.Status = "not yet supported: " + err.Error()
				} else {
					r.Status = "error: " + err.Error()
				}
				recs = append(recs, r)
				continue
			}
			for _, v := range vols {
				r := base
				r.Status = "ok"
				budget := opt.SampleBudget
				if strings.Contains(it, "://") {
					// Remote objects are cataloged from headers only; sampling
					// values would read data the user has not chosen to fetch.
					budget = 0
					r.Notes = append(r.Notes, "remote: value statistics not sampled")
				}
				catalog.FromVolume(ctx, &r, v, catalog.Hints{}, budget)
				recs = append(recs, r)
				res.Volumes[catalog.VolumeKey(r)] = v
			}
		}
	}
	catalog.Sort(recs)
	res.Records = recs
	return res, nil
}

// expand turns a local directory into the files and stores it holds; URLs and
// files are returned as they are.
func expand(t string) ([]string, error) {
	if strings.Contains(t, "://") {
		return []string{t}, nil
	}
	fi, err := os.Stat(t)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() || isStoreDir(t) {
		return []string{t}, nil
	}
	var out []string
	err = filepath.WalkDir(t, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".imgdataset") {
				return filepath.SkipDir
			}
			if p != t && isStoreDir(p) {
				out = append(out, p)
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "metadata_table") || d.Name() == "catalog.json" {
			return nil
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

func isStoreDir(p string) bool {
	for _, m := range []string{".zarray", ".zgroup", "zarr.json", "attributes.json", "info"} {
		if _, err := os.Stat(filepath.Join(p, m)); err == nil {
			return true
		}
	}
	return false
}

func datasetOf(t string) string {
	return path.Base(strings.TrimSuffix(filepath.ToSlash(t), "/"))
}

// closeStore releases what a driver holds open (the file driver's handle cache).
func closeStore(st *store.Store) {
	if c, ok := st.Driver().(io.Closer); ok {
		c.Close()
	}
}
