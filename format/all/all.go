// Package all assembles the registry of every format imgdataset reads.
package all

import (
	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/format/dm"
	"github.com/imgdataset/imgdataset/format/n5"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/format/zarr"
)

// Registry returns a new registry with every format, in detection order:
// directory-like stores first (their prefixes have no bytes of their own),
// then files by magic number. The formats that meet JPEG share one decoder,
// the one $IMGDATASET_JPEG asks for (see codec/jpeg).
func Registry() *format.Registry {
	dec := jpeg.Default()
	return format.NewRegistry(
		zarr.Format{},
		precomputed.Format{JPEG: dec},
		n5.Format{},
		tiff.Format{JPEG: dec},
		dm.Format{},
	)
}
