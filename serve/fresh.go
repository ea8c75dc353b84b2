package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/store"
)

// unitMetaFiles are the metadata documents at the top of a directory store
// whose replacement changes what the store holds; a chunk rewritten deep
// inside a store is not seen (stating every chunk per request would cost more
// than the read).
var unitMetaFiles = [...]string{".zarray", ".zattrs", ".zgroup", "zarr.json", "attributes.json", "info"}

// unitStamp identifies the current content of a volume's unit (the file or
// store at rel under dir) by size, modification time, device and inode: a file
// replaced by rename or rewritten gets another stamp, so ETags follow content
// rather than the server's start. A unit that cannot be stated gets "gone".
func unitStamp(dir string, rec catalog.Record) string {
	p := filepath.Join(dir, filepath.FromSlash(rec.LocalPath))
	fi, err := os.Stat(p)
	if err != nil {
		return "gone"
	}
	s := fileStamp(fi)
	if fi.IsDir() {
		// The store's own metadata and its array's (rec.Array is the
		// array's path inside the store, e.g. "s0").
		dirs := []string{p}
		if a, err := store.CleanKey(rec.Array); err == nil && a != "" {
			dirs = append(dirs, filepath.Join(p, filepath.FromSlash(a)))
		}
		for i, d := range dirs {
			for _, m := range unitMetaFiles {
				if mfi, err := os.Stat(filepath.Join(d, m)); err == nil {
					s += fmt.Sprintf("/%d%s:%s", i, m, fileStamp(mfi))
				}
			}
		}
	}
	return s
}

func fileStamp(fi os.FileInfo) string {
	s := fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s += fmt.Sprintf("-%d-%d", st.Dev, st.Ino)
	}
	return s
}

// etagFor is the base ETag of a volume: the catalog's state at start, the
// row's key and sha256, and the unit's current stamp.
func etagFor(catStamp, unit string, rec catalog.Record) string {
	h := sha256.New()
	for _, s := range []string{catStamp, catalog.VolumeKey(rec), rec.SHA256, unit} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// current returns the entry for id as its unit is now: when the file or store
// changed on disk since it was opened, the unit is opened again (its header
// may describe another shape, dtype or layout) and the entry replaced, so no
// request is answered from stale metadata or under a stale ETag.
func (s *Server) current(ctx context.Context, e *entry) (*entry, error) {
	st := unitStamp(s.dir, e.rec)
	if st == e.unit {
		return e, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.byID[e.ID]; cur != e {
		e = cur // another request reopened it meanwhile
		if st == e.unit {
			return e, nil
		}
	}
	ne, err := s.reopen(ctx, e, st)
	if err != nil {
		s.logf("serve: volume %s (%s) changed on disk and cannot be reopened: %v", e.ID, e.rec.LocalPath, err)
		return nil, &httpError{code: http.StatusServiceUnavailable, msg: fmt.Sprintf("volume %s changed on disk since the server started and cannot be read now", e.ID)}
	}
	s.byID[e.ID] = ne
	for i := range s.list {
		if s.list[i] == e {
			s.list[i] = ne
		}
	}
	return ne, nil
}

// reopen opens e's unit again and builds its entry from the array of the same
// name. Called with s.mu held.
func (s *Server) reopen(ctx context.Context, e *entry, stamp string) (*entry, error) {
	_, vols, err := s.opt.Formats.Open(ctx, s.st, e.rec.LocalPath)
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		if scan.ArrayName(e.rec.LocalPath, v.Info().Name) != e.rec.Array {
			continue
		}
		ne, reason := s.newEntry(e.ID, e.rec, v, stamp)
		if ne == nil {
			return nil, errors.New(reason)
		}
		// The groups are fixed at Open; the levels' shapes are checked
		// against each other when a group is read.
		ne.ZarrLevels, ne.Pyramid = e.ZarrLevels, e.Pyramid
		return ne, nil
	}
	return nil, fmt.Errorf("array %q is no longer in it", e.rec.Array)
}
