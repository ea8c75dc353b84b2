// Package precomputed reads and writes Neuroglancer precomputed volumes: an
// "info" JSON at the root and one directory of chunks per scale, unsharded
// (one object per chunk) or sharded (neuroglancer_uint64_sharded_v1), with
// raw, jpeg, png or compressed_segmentation chunks. Each scale opens as one
// volume in C order (c,) z, y, x with nanometre axes.
//
// A sharded ReadRegion costs, on a cold volume, one request per touched shard
// for its whole shard index (up to 16 MiB, else one 16-byte entry per
// minishard), one per touched minishard index, and the chunk data of each
// shard in ranges merged across gaps under 1 MiB; indexes stay cached per
// volume.
package precomputed

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Format is the precomputed format.Format.
type Format struct {
	// JPEG decodes jpeg chunks; nil means jpeg.Default(). A registry
	// shares one between the formats.
	JPEG *jpeg.Decoder
}

var _ format.Format = Format{}

// Name implements format.Format.
func (Format) Name() string { return "precomputed" }

var _ format.StoreLayout = Format{}

// StoreSuffixes implements format.StoreLayout.
func (Format) StoreSuffixes() []string { return []string{".precomputed"} }

// StoreMarkers implements format.StoreLayout: a volume's root holds its "info".
func (Format) StoreMarkers() []string { return []string{"info"} }

// isInfoKey reports whether key names an info object.
func isInfoKey(key string) bool { return key == "info" || strings.HasSuffix(key, "/info") }

// Detect implements format.Format: key is an "info" object that looks like
// JSON, or a prefix holding an info with "scales".
func (Format) Detect(ctx context.Context, st *store.Store, key string, head []byte) bool {
	if isInfoKey(key) {
		if head == nil {
			return false
		}
		t := bytes.TrimLeft(head, " \t\r\n")
		return len(t) > 0 && t[0] == '{'
	}
	if head != nil {
		return false // an object that is not an info
	}
	_, infoKey := splitKey(key)
	b, err := st.ReadAll(ctx, infoKey, maxInfoBytes)
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(`"scales"`))
}

// splitKey returns the volume root and the info key for key (a root prefix or its info).
func splitKey(key string) (dir, infoKey string) {
	key = strings.TrimSuffix(key, "/")
	if isInfoKey(key) {
		dir = path.Dir(key)
		if dir == "." {
			dir = ""
		}
		return dir, key
	}
	if key == "" {
		return "", "info"
	}
	return key, key + "/info"
}

// ReadInfo reads and validates the info of the volume at key (root or info key).
func ReadInfo(ctx context.Context, st *store.Store, key string) (*Info, error) {
	_, infoKey := splitKey(key)
	b, err := st.ReadAll(ctx, infoKey, maxInfoBytes)
	if err != nil {
		return nil, fmt.Errorf("precomputed %q: %w", infoKey, err)
	}
	in, err := ParseInfo(b)
	if err != nil {
		return nil, fmt.Errorf("precomputed %q: %w", infoKey, err)
	}
	return in, nil
}

// Open implements format.Format: one volume per scale, in info order.
func (f Format) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	dec := f.JPEG
	if dec == nil {
		dec = jpeg.Default()
	}
	dir, infoKey := splitKey(key)
	in, err := ReadInfo(ctx, st, key)
	if err != nil {
		return nil, err
	}
	vs := make([]volume.Volume, 0, len(in.Scales))
	for i := range in.Scales {
		sdir, err := scaleDir(dir, in.Scales[i].Key)
		if err != nil {
			return nil, fmt.Errorf("precomputed %q: scale %d: %w", infoKey, i, err)
		}
		vs = append(vs, newScaleVolume(st, sdir, in, i).withJPEG(dec))
	}
	return vs, nil
}

// scaleDir resolves a scale key relative to the volume root. Keys may use ".."
// but must stay inside the store.
func scaleDir(dir, key string) (string, error) {
	if strings.Contains(key, "://") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("scale key %q is not a relative path", key)
	}
	j := path.Join(dir, key)
	c, err := store.CleanKey(j)
	if err != nil {
		return "", fmt.Errorf("scale key %q leaves the volume's store", key)
	}
	return c, nil
}
