package dm

import (
	"context"
	"fmt"
	"io"

	"github.com/imgdataset/imgdataset/volume"
)

// MaxVolumeBytes bounds the pixel data WriteVolume reads: DM keeps an image
// in one tag written from one buffer, so the whole array is held in memory.
// Larger arrays belong in a chunked format.
const MaxVolumeBytes = 1 << 30

// WriteVolume writes v as a DM3 file: its pixels, its axes' calibration in
// one unit (volume.OneUnit) with DM origins that place index 0 at each axis
// offset, and tags as ImageTags by dotted path (provenance, say). Unlike
// WriteDM3's defaults it adds no acquisition tags: the file states only
// what v does. Arrays of more than MaxVolumeBytes are refused before
// anything is read.
func WriteVolume(ctx context.Context, w io.Writer, v volume.Volume, tags map[string]any) error {
	in := v.Info()
	if _, ok := dmCode[in.DType]; !ok {
		return fmt.Errorf("%w %q: dtype %s has no DM data type", ErrWrite, in.Name, in.DType)
	}
	if r := len(in.Shape); r < 1 || r > 4 {
		return fmt.Errorf("%w %q: rank %d (want 1 to 4)", ErrWrite, in.Name, r)
	}
	if n := in.NumBytes(); n > MaxVolumeBytes {
		return fmt.Errorf("%w %q: %d bytes of pixels exceed the %d a DM file is written from; write a chunked format", ErrWrite, in.Name, n, int64(MaxVolumeBytes))
	}
	img := Image{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: make([]byte, in.NumBytes()), Tags: tags}
	if err := v.ReadRegion(ctx, volume.Full(in.Shape), img.Data); err != nil {
		return fmt.Errorf("dm write %q: read: %w", in.Name, err)
	}
	for _, a := range volume.OneUnit(in.Axes) {
		scale, origin, unit := 1.0, 0.0, ""
		if a.ScaleKnown && a.Scale != 0 {
			// DM places index k at (k - Origin) × Scale.
			scale, origin, unit = a.Scale, -a.Offset/a.Scale, a.Unit
		}
		img.Scales = append(img.Scales, scale)
		img.Origins = append(img.Origins, origin)
		img.Units = append(img.Units, unit)
	}
	return WriteDM3(w, img, NoDefaultTags())
}
