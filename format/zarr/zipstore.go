package zarr

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// A zarr hierarchy packed in one zip archive: zarr-python's ZipStore (".zip")
// or an RFC-9 single-file OME-Zarr (".ozx"). The archive is opened as a
// store.ZipDriver over the store holding it, so a remote archive is read by
// ranges like any other store.

// isZipKey reports whether key names a zip archive by its extension.
func isZipKey(key string) bool {
	ext := strings.ToLower(path.Ext(key))
	return ext == ".zip" || ext == ".ozx"
}

// zipMagic reports whether head starts like a zip archive: a local header, or
// the end record of an empty archive.
func zipMagic(head []byte) bool {
	return bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06"))
}

// zipMarkers are the objects that make a zip root (or its single top-level
// directory) a zarr node.
var zipMarkers = []string{"zarr.json", ".zgroup", ".zarray", ".zmetadata", ".zattrs"}

// detectZip reports whether the archive at key holds a zarr hierarchy. An
// ".ozx" archive is OME-Zarr by definition; a ".zip" one is opened and
// probed, since most zip files are something else.
func detectZip(ctx context.Context, st *store.Store, key string, head []byte) bool {
	if head != nil && !zipMagic(head) {
		return false
	}
	if strings.EqualFold(path.Ext(key), ".ozx") {
		return true
	}
	zst, err := store.NewZip(ctx, st, key)
	if err != nil {
		return false
	}
	_, ok := zipRoot(ctx, zst)
	return ok
}

// zipRoot finds the zarr root inside an archive: the archive's root, or its
// only top-level directory (an archive made by zipping a "name.zarr" folder).
func zipRoot(ctx context.Context, zst *store.Store) (string, bool) {
	has := func(prefix string) bool {
		for _, m := range zipMarkers {
			if _, err := zst.Stat(ctx, join(prefix, m)); err == nil {
				return true
			}
		}
		return false
	}
	if has("") {
		return "", true
	}
	var dirs []string
	err := zst.List(ctx, "", "/", func(oi store.ObjectInfo) error {
		if oi.IsDir {
			dirs = append(dirs, strings.TrimSuffix(oi.Key, "/"))
		}
		return nil
	})
	if err == nil && len(dirs) == 1 && has(dirs[0]) {
		return dirs[0], true
	}
	return "", false
}

// openZip opens the zarr hierarchy in the archive at key. Volumes are named
// by the archive's key joined with their path inside it.
func openZip(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	zst, err := store.NewZip(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("zarr: %w", err)
	}
	root, ok := zipRoot(ctx, zst)
	if !ok {
		return nil, fmt.Errorf("zarr %s: no zarr.json, .zgroup or .zarray at the archive's root or in its only directory", zst)
	}
	o := newOpener(zst)
	name := func(a *array, inner string) {
		if inner == "" {
			a.info.Name = key
		} else {
			a.info.Name = key + "/" + inner
		}
	}
	var arrs []*array
	if a, ok, err := o.openArray(ctx, root); err != nil {
		return nil, err
	} else if ok {
		name(a, root)
		arrs = []*array{a}
	} else {
		if arrs, err = o.open(ctx, root); err != nil {
			return nil, err
		}
		for _, a := range arrs {
			name(a, a.info.Name)
		}
	}
	vs := make([]volume.Volume, len(arrs))
	for i, a := range arrs {
		vs[i] = asVolume(a)
	}
	return vs, nil
}
