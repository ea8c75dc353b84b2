// Package scan catalogs what lies on disk: it finds the files and stores of a
// local tree, opens each through the format registry (header reads only) and
// builds one catalog.Record per array. The catalog and inspect commands (through
// package pipeline) and the block server (package serve) read trees through
// it, so they agree on what a tree holds.
package scan

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// CatalogFile is the document `imgdataset run` writes into its output directory.
const CatalogFile = "catalog.json"

// CopiesDir is the directory of a dataset (<out>/<dataset>/ome-zarr/) where
// `imgdataset run` writes its OME-Zarr copies of the originals.
const CopiesDir = "ome-zarr"

// DefaultSampleBudget bounds the bytes read per array for value statistics
// when Options leaves it zero.
const DefaultSampleBudget = 8 << 20

// Options configure a scan.
type Options struct {
	// Formats reads files; nil = every format the tool knows.
	Formats *format.Registry
	// SampleBudget bounds the bytes read per array for value statistics
	// (0 = DefaultSampleBudget, negative = none).
	SampleBudget int64
}

func (o *Options) defaults() {
	if o.Formats == nil {
		o.Formats = all.Registry()
	}
	if o.SampleBudget == 0 {
		o.SampleBudget = DefaultSampleBudget
	}
}

// Unit opens key of st (a file or a store) and returns one row per array, each
// a copy of base with the array's columns filled in, and the arrays, parallel
// to the rows. A unit that cannot be read gives one row whose status says why
// and a nil array; a key no format recognises gives no rows.
func Unit(ctx context.Context, st *store.Store, key string, base catalog.Record, opt Options) ([]catalog.Record, []volume.Volume) {
	opt.defaults()
	f, vols, err := opt.Formats.Open(ctx, st, key)
	if errors.Is(err, format.ErrUnknown) {
		return nil, nil
	}
	if f != nil {
		base.Format = f.Name()
	}
	if err != nil {
		r := base
		r.Status = catalog.StatusOf(err)
		return []catalog.Record{r}, []volume.Volume{nil}
	}
	recs := make([]catalog.Record, 0, len(vols))
	for _, v := range vols {
		r := base
		r.Notes = append([]string(nil), base.Notes...) // rows must not share a backing array
		r.Status = catalog.StatusOK
		catalog.FromVolume(ctx, &r, v, catalog.Hints{}, max(opt.SampleBudget, 0))
		r.Array = ArrayName(key, v.Info().Name)
		recs = append(recs, r)
	}
	return recs, vols
}

// ArrayName names an array relative to its unit (the file or store at
// unitKey), the way every table of the tool names arrays:
// "recon-2/em/fibsem-int16/s0" inside a store, the file name for a file's
// main series.
func ArrayName(unitKey, name string) string {
	if name == unitKey {
		return path.Base(unitKey)
	}
	if rel, ok := strings.CutPrefix(name, unitKey+"/"); ok {
		return rel
	}
	if rel, ok := strings.CutPrefix(name, unitKey); ok && strings.HasPrefix(rel, "#") {
		return path.Base(unitKey) + rel
	}
	return name
}

// statusOf is the status column of a unit that failed to open.
// walk returns the units (files and stores) under the local directory dir as
// slash paths relative to it: "" when dir itself is a store, else every store
// directory (not descended into) and every file, less hidden files and
// folders (the run's .imgdataset among them), the tool's tables (metadata_table.*,
// catalog.json) and its OME-Zarr copies (see isCopy).
func walk(ctx context.Context, reg *format.Registry, dir string, st *store.Store) ([]string, error) {
	if reg.HasStoreName(filepath.ToSlash(dir)) || reg.IsStore(ctx, st, "") {
		return []string{""}, nil
	}
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // .imgdataset (the run's journal and partial files), .git, …
			}
			if reg.IsStore(ctx, st, rel) {
				if !isCopy(rel) {
					out = append(out, rel)
				}
				return filepath.SkipDir
			}
			return ctx.Err()
		}
		if strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "metadata_table") || d.Name() == CatalogFile {
			return nil
		}
		out = append(out, rel)
		return nil
	})
	return out, err
}

// isCopy reports whether a store at rel (relative to the directory being
// cataloged) is one of the tool's OME-Zarr copies: <dataset>/ome-zarr/<name>.zarr,
// or ome-zarr/<name>.zarr when the directory is one dataset's. The run writes
// nothing else there, and an original at that place would collide with the
// run's own copies, so the layout alone tells them apart.
func isCopy(rel string) bool {
	segs := strings.Split(rel, "/")
	n := len(segs)
	return (n == 2 || n == 3) && segs[n-2] == CopiesDir && strings.HasSuffix(strings.ToLower(segs[n-1]), ".zarr")
}
