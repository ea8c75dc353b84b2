package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// catalogFile is the document `imgdataset run` writes into its output directory.
const catalogFile = "catalog.json"

// maxCatalogBytes bounds catalog.json before it is read into memory.
const maxCatalogBytes = 256 << 20

// Skipped is a catalog row the server does not serve, and why.
type Skipped struct {
	Key    string `json:"key"` // catalog.VolumeKey
	Reason string `json:"reason"`
}

// loaded is what Open found in a directory.
type loaded struct {
	recs    []catalog.Record
	vols    []volume.Volume // parallel to recs
	skipped []Skipped
	closers []*store.Store
	stamp   string // identifies this state of the directory, for ETags
}

// load finds the volumes of dir: the rows of its catalog.json, each opened
// through the format registry over a file store rooted at dir; without a
// catalog.json, every file and store under dir as `imgdataset catalog` finds
// them (pipeline.Catalog).
func load(ctx context.Context, dir string, reg *format.Registry) (*loaded, error) {
	st := store.New(store.NewFile(dir))
	b, err := st.ReadAll(ctx, catalogFile, maxCatalogBytes)
	if errors.Is(err, store.ErrNotExist) {
		closeStore(st)
		return scan(ctx, dir, reg)
	}
	if err != nil {
		closeStore(st)
		return nil, fmt.Errorf("serve %s: %w", dir, err)
	}
	doc, err := catalog.ReadDocument(b)
	if err != nil {
		closeStore(st)
		return nil, fmt.Errorf("serve %s: %w", dir, err)
	}
	l := &loaded{closers: []*store.Store{st}, stamp: statStamp(filepath.Join(dir, catalogFile))}
	// Rows of one file or store share a unit: open it once.
	type unit struct {
		vols []volume.Volume
		err  error
	}
	units := map[string]*unit{}
	for _, rec := range doc.Records {
		key := catalog.VolumeKey(rec)
		if rec.Status != "ok" {
			l.skipped = append(l.skipped, Skipped{Key: key, Reason: "catalog status: " + rec.Status})
			continue
		}
		lp, err := store.CleanKey(rec.LocalPath)
		if err != nil || lp == "" {
			l.skipped = append(l.skipped, Skipped{Key: key, Reason: fmt.Sprintf("local_path %q is not a path inside %s", rec.LocalPath, dir)})
			continue
		}
		u, ok := units[lp]
		if !ok {
			u = &unit{}
			_, u.vols, u.err = reg.Open(ctx, st, lp)
			units[lp] = u
		}
		if u.err != nil {
			if ctx.Err() != nil {
				l.close()
				return nil, ctx.Err()
			}
			l.skipped = append(l.skipped, Skipped{Key: key, Reason: fmt.Sprintf("open %s: %v", lp, u.err)})
			continue
		}
		v := matchVolume(lp, rec, u.vols)
		if v == nil {
			l.skipped = append(l.skipped, Skipped{Key: key, Reason: fmt.Sprintf("%s no longer holds array %q", lp, rec.Array)})
			continue
		}
		l.recs = append(l.recs, rec)
		l.vols = append(l.vols, v)
	}
	return l, nil
}

// scan catalogs a directory that has no catalog.json.
func scan(ctx context.Context, dir string, reg *format.Registry) (*loaded, error) {
	res, err := pipeline.Catalog(ctx, []string{dir}, pipeline.Options{Formats: reg})
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", dir, err)
	}
	l := &loaded{stamp: statStamp(dir)}
	for _, rec := range res.Records {
		key := catalog.VolumeKey(rec)
		v, ok := res.Volumes[key]
		if rel, err := filepath.Rel(dir, rec.LocalPath); err == nil && !strings.HasPrefix(rel, "..") {
			rec.LocalPath = filepath.ToSlash(rel)
		}
		if !ok {
			l.skipped = append(l.skipped, Skipped{Key: catalog.VolumeKey(rec), Reason: rec.Status})
			continue
		}
		l.recs = append(l.recs, rec)
		l.vols = append(l.vols, v)
	}
	return l, nil
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

// assignIDs gives every record a short URL-safe id derived from its dataset,
// path and array, stable across restarts; a collision (or an over-long name)
// gets a hash of the full key appended.
func assignIDs(recs []catalog.Record) []string {
	ids := make([]string, len(recs))
	seen := map[string]int{}
	for i, r := range recs {
		label := r.LocalPath
		base := path.Base(r.LocalPath)
		if a := r.Array; a != "" && a != base && a != strings.TrimSuffix(base, path.Ext(base)) {
			label += "/" + a
		}
		if !strings.HasPrefix(label, r.Dataset+"/") {
			label = r.Dataset + "/" + label
		}
		ids[i] = slug(label)
		seen[ids[i]]++
	}
	for i, r := range recs {
		if seen[ids[i]] > 1 || len(ids[i]) > maxIDLen-17 || !validID(ids[i]) {
			h := sha256.Sum256([]byte(catalog.VolumeKey(r)))
			s := ids[i]
			if len(s) > maxIDLen-17 {
				s = s[:maxIDLen-17]
			}
			ids[i] = s + "-" + hex.EncodeToString(h[:8])
		}
	}
	return ids
}

// slug maps s to [A-Za-z0-9._-], turning path separators and everything else
// into "_", without leading dots.
func slug(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !idByte(c) {
			b[i] = '_'
		}
	}
	return strings.TrimLeft(string(b), ".")
}

// statStamp identifies the current version of a file or directory by its size
// and modification time (rewriting the catalog or a store changes it).
func statStamp(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return "none"
	}
	return fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano())
}

// etagOf is the base ETag of a served volume: the directory's stamp, the
// catalog's sha256 of the file (when it has one), the row's key and the
// file's or store root's own stamp.
func etagOf(dir, stamp string, rec catalog.Record) string {
	h := sha256.New()
	for _, s := range []string{stamp, catalog.VolumeKey(rec), rec.SHA256, statStamp(filepath.Join(dir, filepath.FromSlash(rec.LocalPath)))} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (l *loaded) close() {
	for _, st := range l.closers {
		closeStore(st)
	}
}

func closeStore(st *store.Store) {
	if c, ok := st.Driver().(interface{ Close() error }); ok {
		c.Close()
	}
}
