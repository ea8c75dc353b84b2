package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxCatalogBytes bounds catalog.json before it is read into memory.
const maxCatalogBytes = 256 << 20

// Result is the table of a directory and the arrays behind its readable rows.
// The arrays read through stores the Result holds open: Close it when done.
type Result struct {
	Records []catalog.Record
	// Volumes maps catalog.VolumeKey of each readable row to its array; a row
	// without one has a status other than "ok" saying why.
	Volumes map[string]volume.Volume
	// FromRun reports that the rows are those of the directory's catalog.json.
	FromRun bool

	stores []*store.Store
}

// Close releases the stores the arrays read through.
func (r *Result) Close() {
	for _, st := range r.stores {
		closeStore(st)
	}
	r.stores = nil
}

// Dir catalogs the local directory dir: the rows of its catalog.json when it
// has one (an output directory of `imgdataset run`), each with its array
// opened; else every file and store under it. Local paths are relative to dir.
func Dir(ctx context.Context, dir string, opt Options) (*Result, error) {
	opt.defaults()
	st := store.New(store.NewFile(dir))
	b, err := st.ReadAll(ctx, CatalogFile, maxCatalogBytes)
	if errors.Is(err, store.ErrNotExist) {
		closeStore(st)
		return tree(ctx, dir, opt)
	}
	if err != nil {
		closeStore(st)
		return nil, fmt.Errorf("catalog %s: %w", dir, err)
	}
	doc, err := catalog.ReadDocument(b)
	if err != nil {
		closeStore(st)
		return nil, fmt.Errorf("catalog %s: %w", dir, err)
	}
	res := &Result{Volumes: map[string]volume.Volume{}, FromRun: true, stores: []*store.Store{st}}
	if err := res.runRows(ctx, dir, st, doc.Records, opt); err != nil {
		res.Close()
		return nil, err
	}
	return res, nil
}

// runRows opens the arrays of a run's rows through st, rooted at the run's
// output directory. A row that cannot be served keeps its place in the table
// with a status saying why.
func (r *Result) runRows(ctx context.Context, dir string, st *store.Store, rows []catalog.Record, opt Options) error {
	// Rows of one file or store share a unit: open it once.
	type unit struct {
		vols []volume.Volume
		err  error
	}
	units := map[string]*unit{}
	for _, rec := range rows {
		if rec.Status != "ok" {
			r.Records = append(r.Records, rec)
			continue
		}
		lp, err := store.CleanKey(rec.LocalPath)
		if err != nil || lp == "" {
			rec.Status = fmt.Sprintf("error: local_path %q is not a path inside %s", rec.LocalPath, dir)
			r.Records = append(r.Records, rec)
			continue
		}
		u, ok := units[lp]
		if !ok {
			u = &unit{}
			_, u.vols, u.err = opt.Formats.Open(ctx, st, lp)
			units[lp] = u
		}
		if u.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rec.Status = fmt.Sprintf("error: open %s: %v", lp, u.err)
			r.Records = append(r.Records, rec)
			continue
		}
		v := matchVolume(lp, rec, u.vols)
		if v == nil {
			rec.Status = fmt.Sprintf("error: %s no longer holds array %q", lp, rec.Array)
			r.Records = append(r.Records, rec)
			continue
		}
		r.Records = append(r.Records, rec)
		r.Volumes[catalog.VolumeKey(rec)] = v
	}
	return nil
}

// tree catalogs a directory that has no catalog.json.
func tree(ctx context.Context, dir string, opt Options) (*Result, error) {
	items, err := Walk(ctx, opt.Formats, dir)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", dir, err)
	}
	res := &Result{Volumes: map[string]volume.Volume{}}
	dataset := path.Base(strings.TrimSuffix(filepath.ToSlash(dir), "/"))
	for _, it := range items {
		// A file is opened through its directory: formats may need siblings.
		st, key := store.New(store.NewFile(it)), ""
		if it != dir && !isDir(it) {
			st, key = store.New(store.NewFile(filepath.Dir(it))), filepath.Base(it)
		}
		res.stores = append(res.stores, st)
		rel, err := filepath.Rel(dir, it)
		if err != nil {
			res.Close()
			return nil, err
		}
		recs, vols := Unit(ctx, st, key, catalog.Record{Dataset: dataset, LocalPath: filepath.ToSlash(rel), SourceURL: it}, opt)
		for i, rec := range recs {
			res.Records = append(res.Records, rec)
			if vols[i] != nil {
				res.Volumes[catalog.VolumeKey(rec)] = vols[i]
			}
		}
	}
	if err := ctx.Err(); err != nil {
		res.Close()
		return nil, err
	}
	catalog.Sort(res.Records)
	return res, nil
}

// matchVolume finds the array a catalog row describes among the arrays of
// its file or store. `imgdataset run` names rows relative to the unit (the
// file name for a file's main image, the array path inside a store), and a crop
// row carries the name of the array it was cut from; so: by name first, then
// the only array with the row's dtype and element count.
func matchVolume(unitKey string, rec catalog.Record, vols []volume.Volume) volume.Volume {
	for _, v := range vols {
		n := v.Info().Name
		if n == rec.Array || n == unitKey+"/"+rec.Array || n == path.Join(path.Dir(unitKey), rec.Array) {
			return v
		}
	}
	want := int64(1)
	for _, s := range []int64{rec.ShapeZ, rec.ShapeY, rec.ShapeX, rec.ShapeC, rec.ShapeT} {
		if s > 0 {
			want *= s
		}
	}
	var found volume.Volume
	for _, v := range vols {
		in := v.Info()
		if string(in.DType) == rec.DType && in.NumElements() == want {
			if found != nil {
				return nil // ambiguous: serve nothing rather than the wrong array
			}
			found = v
		}
	}
	return found
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
