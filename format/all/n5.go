package all

import (
	"context"
	"fmt"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// n5Detector recognises N5 containers so they are reported as "not yet
// supported" instead of being silently skipped; the reader is a later issue.
type n5Detector struct{}

func (n5Detector) Name() string { return "n5" }

func (n5Detector) Detect(ctx context.Context, st *store.Store, key string, head []byte) bool {
	if head != nil {
		return false
	}
	k := "attributes.json"
	if key != "" {
		k = key + "/attributes.json"
	}
	_, err := st.Stat(ctx, k)
	return err == nil
}

func (n5Detector) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	return nil, fmt.Errorf("N5 container %q: reader %w", key, format.ErrNotSupported)
}
