package scan

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// runRows adds the rows of a run's catalog.json, written at written, each
// with its array opened, and returns the units (local paths) they cover.
func (r *Result) runRows(ctx context.Context, dir string, rows []catalog.Record, written time.Time, opt Options) (map[string]bool, error) {
	// Rows of one file or store share a unit: check and open it once.
	var order []string
	byUnit := map[string][]catalog.Record{}
	for _, rec := range rows {
		lp, err := store.CleanKey(rec.LocalPath)
		if err != nil || lp == "" {
			if rec.Status == catalog.StatusOK {
				rec.Status = catalog.StatusError + fmt.Sprintf(": local_path %q is not a path inside %s", rec.LocalPath, dir)
			}
			r.Records = append(r.Records, rec)
			continue
		}
		if _, ok := byUnit[lp]; !ok {
			order = append(order, lp)
		}
		byUnit[lp] = append(byUnit[lp], rec)
	}
	covered := map[string]bool{}
	for _, lp := range order {
		covered[lp] = true
		recs := byUnit[lp]
		ch, err := changed(ctx, filepath.Join(dir, filepath.FromSlash(lp)), recs, written)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			for _, rec := range recs {
				if rec.Status == catalog.StatusOK {
					rec.Status = catalog.StatusError + fmt.Sprintf(": open %s: listed in %s but unreadable on disk: %v", lp, CatalogFile, err)
				}
				r.Records = append(r.Records, rec)
			}
		case ch.why == "":
			r.reopen(ctx, lp, recs, "", opt)
		default:
			r.reread(ctx, lp, recs, ch, opt)
		}
	}
	return covered, ctx.Err()
}

// reopen pairs the rows of a unit with its arrays; the rows stay as the run
// wrote them, plus note when there is one.
func (r *Result) reopen(ctx context.Context, lp string, recs []catalog.Record, note string, opt Options) {
	var vols []volume.Volume
	var err error
	if slices.ContainsFunc(recs, func(rec catalog.Record) bool { return rec.Status == catalog.StatusOK }) {
		_, vols, err = opt.Formats.Open(ctx, r.st, lp)
	}
	for _, rec := range recs {
		if note != "" {
			rec.Notes = append(slices.Clip(rec.Notes), note)
		}
		if rec.Status != catalog.StatusOK {
			r.Records = append(r.Records, rec)
			continue
		}
		if err != nil {
			rec.Status = catalog.StatusError + fmt.Sprintf(": open %s: %v", lp, err)
			r.Records = append(r.Records, rec)
			continue
		}
		i := matchVolume(lp, rec, vols)
		if i < 0 {
			rec.Status = catalog.StatusError + fmt.Sprintf(": %s no longer holds array %q", lp, rec.Array)
			r.Records = append(r.Records, rec)
			continue
		}
		r.Records = append(r.Records, rec)
		r.Volumes[catalog.VolumeKey(rec)] = vols[i]
	}
}

// reread handles a unit that changed on disk since the run. When only its
// modification time says so (a copy of the tree, a touch) and its arrays read
// as the run read them, the run's rows are kept; otherwise they are built from
// its arrays again, keeping what the run knew from elsewhere than the file
// (see Dir).
func (r *Result) reread(ctx context.Context, lp string, old []catalog.Record, ch change, opt Options) {
	f, vols, err := opt.Formats.Open(ctx, r.st, lp)
	if err != nil {
		note := fmt.Sprintf("changed on disk since the run (%s)", ch.why)
		for _, rec := range old {
			rec.Status = catalog.StatusOf(fmt.Errorf("open %s: %w", lp, err))
			rec.Notes = append(slices.Clip(rec.Notes), note)
			r.Records = append(r.Records, rec)
		}
		return
	}
	if !ch.resized {
		// Value statistics are left out of this comparison: they cost reads.
		fresh, _ := rebuild(ctx, lp, old, f.Name(), vols, ch.size, 0)
		if sameArrays(old, fresh) {
			r.reopen(ctx, lp, old, fmt.Sprintf("%s, with the same size and arrays: the run's row is kept, its sha256 and value statistics not verified again", ch.why), opt)
			return
		}
	}
	note := fmt.Sprintf("changed on disk since the run (%s): re-read from the file, facts from the source kept from the run, sha256 not computed", ch.why)
	recs, rvols := rebuild(ctx, lp, old, f.Name(), vols, ch.size, max(opt.SampleBudget, 0))
	for i := range recs {
		recs[i].Notes = append(slices.Clip(recs[i].Notes), note)
	}
	r.add(recs, rvols)
}

// rebuild makes the rows of a unit's arrays vols from the files, each paired
// with the old row that describes it (matchVolume) whose facts from elsewhere
// it keeps. Old rows whose array is gone come back with an error status; old
// error rows are superseded by the arrays the unit now opens. The arrays are
// parallel to the rows (nil for an error row).
func rebuild(ctx context.Context, lp string, old []catalog.Record, formatName string, vols []volume.Volume, size int64, budget int64) ([]catalog.Record, []volume.Volume) {
	var recs []catalog.Record
	var out []volume.Volume
	claimed := make([]int, len(vols)) // old row index + 1; 0 when unclaimed
	for i, rec := range old {
		if j := matchVolume(lp, rec, vols); j >= 0 && claimed[j] == 0 {
			claimed[j] = i + 1
			continue
		}
		if rec.Status == catalog.StatusOK {
			rec.Status = catalog.StatusError + fmt.Sprintf(": %s no longer holds array %q", lp, rec.Array)
			recs, out = append(recs, rec), append(out, nil)
		}
	}
	for j, v := range vols {
		o, paired := old[0], claimed[j] > 0
		if paired {
			o = old[claimed[j]-1]
		}
		rec := catalog.Record{Dataset: o.Dataset, LocalPath: o.LocalPath, SourceURL: o.SourceURL, Format: formatName, Status: catalog.StatusOK,
			FileBytes: &size, Title: o.Title, DOI: o.DOI, License: o.License, Modality: o.Modality, Specimen: o.Specimen,
			MetadataSource: o.MetadataSource}
		catalog.FromVolume(ctx, &rec, v, runHints(ctx, o, v), budget)
		rec.Array = ArrayName(lp, v.Info().Name)
		if paired {
			// The run's own words for this array: its name, the level and
			// crop it was cut at; and what it learnt of the instrument
			// where the file says nothing of it now.
			rec.Array = o.Array
			rec.CropOrigin, rec.CropSeed = o.CropOrigin, o.CropSeed
			if o.ScaleLevel != nil {
				rec.ScaleLevel = o.ScaleLevel
			}
			rec.Microscope = cmp.Or(rec.Microscope, o.Microscope)
			rec.AcquisitionDate = cmp.Or(rec.AcquisitionDate, o.AcquisitionDate)
			rec.VoltageKV = cmp.Or(rec.VoltageKV, o.VoltageKV)
			rec.Magnification = cmp.Or(rec.Magnification, o.Magnification)
			for _, n := range o.Notes {
				if !slices.Contains(rec.Notes, n) {
					rec.Notes = append(rec.Notes, n)
				}
			}
		}
		recs, out = append(recs, rec), append(out, v)
	}
	return recs, out
}

// sameArrays reports whether fresh rows describe the arrays of the old ones
// as the run did: the same arrays, and for each the same type, shape, chunks,
// compression, voxel sizes (and their source) and offsets.
func sameArrays(old, fresh []catalog.Record) bool {
	byArray := map[string]catalog.Record{}
	for _, rec := range fresh {
		if rec.Status != catalog.StatusOK {
			return false
		}
		byArray[rec.Array] = rec
	}
	n := 0
	for _, o := range old {
		if o.Status != catalog.StatusOK {
			continue
		}
		n++
		f, ok := byArray[o.Array]
		if !ok || f.DType != o.DType || f.NDim != o.NDim || f.Compression != o.Compression || f.VoxelSource != o.VoxelSource ||
			[5]int64{f.ShapeZ, f.ShapeY, f.ShapeX, f.ShapeC, f.ShapeT} != [5]int64{o.ShapeZ, o.ShapeY, o.ShapeX, o.ShapeC, o.ShapeT} ||
			[3]int64{f.ChunkZ, f.ChunkY, f.ChunkX} != [3]int64{o.ChunkZ, o.ChunkY, o.ChunkX} {
			return false
		}
		for i, p := range []*float64{f.VoxelZ, f.VoxelY, f.VoxelX, f.OffsetZ, f.OffsetY, f.OffsetX} {
			q := []*float64{o.VoxelZ, o.VoxelY, o.VoxelX, o.OffsetZ, o.OffsetY, o.OffsetX}[i]
			if (p == nil) != (q == nil) || p != nil && *p != *q {
				return false
			}
		}
	}
	return n == len(fresh)
}

// runHints gives back to a re-read row the voxel sizes its run row took from
// elsewhere than the file (a web page, an API, the manifest), so a file that
// still lacks them keeps them, and one that now disagrees gets a conflict.
func runHints(ctx context.Context, old catalog.Record, v volume.Volume) catalog.Hints {
	src, mixed := strings.CutPrefix(old.VoxelSource, catalog.FromFile+"+")
	if !mixed && (src == "" || src == catalog.FromFile) {
		return catalog.Hints{}
	}
	vals := make([]float64, 3)
	for i, p := range []*float64{old.VoxelZ, old.VoxelY, old.VoxelX} {
		if p != nil {
			vals[i] = *p
		}
	}
	if mixed {
		// "file+web page": only the axes the file lacks came from the page.
		var file catalog.Record
		catalog.FromVolume(ctx, &file, v, catalog.Hints{}, 0)
		for i, p := range []*float64{file.VoxelZ, file.VoxelY, file.VoxelX} {
			if p != nil {
				vals[i] = 0
			}
		}
	}
	return catalog.Hints{VoxelNM: vals, VoxelSource: src}
}

// change is how a unit on disk differs from what its run rows say of it.
type change struct {
	why     string // "" when it does not
	resized bool   // its size is not the one the run recorded
	size    int64  // bytes on disk now (a store's: the sum of its files)
}

// changed examines the unit at p. The run records a unit's size; what it does
// not, the unit's modification times tell: anything written after catalog.json
// (written) is newer than the run's table. An error means the unit cannot be
// examined (it is gone).
func changed(ctx context.Context, p string, recs []catalog.Record, written time.Time) (change, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return change{}, err
	}
	size, newest := fi.Size(), fi.ModTime()
	if fi.IsDir() {
		size = 0
		err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				size += info.Size()
			}
			if info.ModTime().After(newest) {
				newest = info.ModTime()
			}
			return nil
		})
		if err != nil {
			return change{}, err
		}
	}
	for _, rec := range recs {
		if rec.FileBytes != nil && *rec.FileBytes != size {
			return change{why: fmt.Sprintf("%d bytes now, %d when cataloged", size, *rec.FileBytes), resized: true, size: size}, nil
		}
	}
	if newest.After(written) {
		return change{why: fmt.Sprintf("modified %s, after %s", newest.UTC().Format(time.RFC3339), CatalogFile), size: size}, nil
	}
	return change{size: size}, nil
}

// matchVolume finds the array a catalog row describes among the arrays of
// its file or store, and returns its index (-1 when none). `imgdataset run`
// names rows relative to the unit (the file name for a file's main image, the
// array path inside a store), and a crop row carries the name of the array it
// was cut from; so: by name first, then the only array with the row's dtype
// and element count.
func matchVolume(unitKey string, rec catalog.Record, vols []volume.Volume) int {
	for i, v := range vols {
		n := v.Info().Name
		if n == rec.Array || n == unitKey+"/"+rec.Array || n == path.Join(path.Dir(unitKey), rec.Array) {
			return i
		}
	}
	want := int64(1)
	for _, s := range []int64{rec.ShapeZ, rec.ShapeY, rec.ShapeX, rec.ShapeC, rec.ShapeT} {
		if s > 0 {
			want *= s
		}
	}
	found := -1
	for i, v := range vols {
		in := v.Info()
		if string(in.DType) == rec.DType && in.NumElements() == want {
			if found >= 0 {
				return -1 // ambiguous: no array rather than the wrong one
			}
			found = i
		}
	}
	return found
}
