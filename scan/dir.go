package scan

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxCatalogBytes bounds catalog.json before it is read into memory.
const maxCatalogBytes = 256 << 20

// Result is the table of a directory and the arrays behind its readable rows.
// The arrays read through a store the Result holds open: Close it when done.
type Result struct {
	Records []catalog.Record
	// Volumes maps catalog.VolumeKey of each readable row to its array; a row
	// without one has a status other than "ok" saying why.
	Volumes map[string]volume.Volume
	// FromRun reports that the directory is the output of a run: its rows are
	// those of its catalog.json (see Dir).
	FromRun bool

	st *store.Store
}

// Close releases the store the arrays read through.
func (r *Result) Close() {
	if r.st != nil {
		r.st.Close()
		r.st = nil
	}
}

// Dir catalogs the local directory dir. Local paths are relative to dir, and
// rows are sorted as catalog.Sort does.
//
// The output directory of a run (one with a catalog.json) gives the run's own
// rows, page and API facts included, each with its array opened. A unit (file
// or store) that changed on disk since the run (another size than the run
// recorded, or modified after catalog.json) is read again: its rows get the
// file's values, sampled statistics and current size, keep what the run knew
// from elsewhere (dataset, source URL, voxel sizes taken from a web page or
// API, title, DOI, licence, crop origin…), lose the sha256 of the old bytes,
// and say so in their notes. A unit that is gone, or no longer holds a row's
// array, keeps the row with an error status. Files and stores that no row
// covers are added as in any other tree.
//
// Any other tree gives one row per array of every file and store under it,
// named by the first directory level below dir (files directly in dir by
// dir's own name); the tool's OME-Zarr copies (<dataset>/ome-zarr/*.zarr) are
// left out, since their originals are there.
func Dir(ctx context.Context, dir string, opt Options) (*Result, error) {
	opt.defaults()
	res := &Result{Volumes: map[string]volume.Volume{}, st: store.New(store.NewFile(dir))}
	if err := res.fill(ctx, dir, opt); err != nil {
		res.Close()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		res.Close()
		return nil, err
	}
	catalog.Sort(res.Records)
	return res, nil
}

func (r *Result) fill(ctx context.Context, dir string, opt Options) error {
	covered := map[string]bool{}
	doc, written, err := RunCatalog(ctx, r.st)
	if err != nil {
		return fmt.Errorf("catalog %s: %w", dir, err)
	}
	if doc != nil {
		r.FromRun = true
		if covered, err = r.runRows(ctx, dir, doc.Records, written, opt); err != nil {
			return err
		}
	}
	units, err := walk(ctx, opt.Formats, dir, r.st)
	if err != nil {
		return fmt.Errorf("catalog %s: %w", dir, err)
	}
	for _, key := range units {
		if isCovered(covered, key) {
			continue
		}
		base := catalog.Record{Dataset: datasetOf(dir, key), LocalPath: key, SourceURL: filepath.Join(dir, filepath.FromSlash(key))}
		if key == "" {
			base.LocalPath = "."
		}
		if r.FromRun {
			base.Notes = []string{"not in the run's " + CatalogFile + ": cataloged from the file alone"}
		}
		recs, vols := Unit(ctx, r.st, key, base, opt)
		r.add(recs, vols)
	}
	return nil
}

// Rows checks rows of a run's catalog.json, written at written, against the
// directory dir and opens their arrays, as Dir does with all of them; the
// files and stores no row names are not looked at.
func Rows(ctx context.Context, dir string, rows []catalog.Record, written time.Time, opt Options) (*Result, error) {
	opt.defaults()
	res := &Result{Volumes: map[string]volume.Volume{}, FromRun: true, st: store.New(store.NewFile(dir))}
	if _, err := res.runRows(ctx, dir, rows, written, opt); err != nil {
		res.Close()
		return nil, err
	}
	return res, nil
}

// RunCatalog reads the catalog.json a run wrote into the directory st, and
// when it was written (rows describe the files as they were then). It returns
// a nil document when the directory has none.
func RunCatalog(ctx context.Context, st *store.Store) (*catalog.Document, time.Time, error) {
	b, err := st.ReadAll(ctx, CatalogFile, maxCatalogBytes)
	if errors.Is(err, store.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	doc, err := catalog.ReadDocument(b)
	if err != nil {
		return nil, time.Time{}, err
	}
	info, err := st.Stat(ctx, CatalogFile)
	if err != nil {
		return nil, time.Time{}, err
	}
	return doc, info.ModTime, nil
}

// isCovered reports whether key or a directory above it is a unit of the
// run's rows (a store the run opened whole covers everything in it).
func isCovered(covered map[string]bool, key string) bool {
	for k := key; k != "." && k != ""; k = path.Dir(k) {
		if covered[k] {
			return true
		}
	}
	return false
}

// add appends rows and remembers the arrays behind the readable ones.
func (r *Result) add(recs []catalog.Record, vols []volume.Volume) {
	for i, rec := range recs {
		r.Records = append(r.Records, rec)
		if vols[i] != nil {
			r.Volumes[catalog.VolumeKey(rec)] = vols[i]
		}
	}
}

// datasetOf names the dataset of a unit at key (relative to dir) by its first
// directory level, the layout `imgdataset run` writes.
func datasetOf(dir, key string) string {
	if first, _, ok := strings.Cut(key, "/"); ok {
		return first
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // "." has no name of its own
	}
	return path.Base(filepath.ToSlash(dir))
}
