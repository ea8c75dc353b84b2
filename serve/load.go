package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/volume"
)

// catalogFile is the document `imgdataset run` writes into its output directory.
const catalogFile = scan.CatalogFile

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
	res     *scan.Result
	stamp   string // identifies this state of the directory, for ETags
}

// load finds the volumes of dir as `imgdataset catalog` does (scan.Dir): the
// rows of its catalog.json, or without one every file and store under dir.
func load(ctx context.Context, dir string, reg *format.Registry) (*loaded, error) {
	res, err := scan.Dir(ctx, dir, scan.Options{Formats: reg})
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", dir, err)
	}
	l := &loaded{res: res, stamp: statStamp(dir)}
	if res.FromRun {
		l.stamp = statStamp(filepath.Join(dir, catalogFile))
	}
	for _, rec := range res.Records {
		v, ok := res.Volumes[catalog.VolumeKey(rec)]
		if !ok {
			l.skipped = append(l.skipped, Skipped{Key: catalog.VolumeKey(rec), Reason: "catalog status: " + rec.Status})
			continue
		}
		l.recs = append(l.recs, rec)
		l.vols = append(l.vols, v)
	}
	return l, nil
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

func (l *loaded) close() { l.res.Close() }
