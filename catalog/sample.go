package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// sampleValues fills value_min, value_max and value_mean with volume.Stats:
// exact for arrays of up to volume.DefaultExactStatsBytes decoded, otherwise
// from a sample of whole chunks of about budget bytes, and value_sample with
// Stats' note of how many voxels were read. The values are those of the
// finite voxels, the only ones every table format can hold; the note says
// how many NaN and infinite voxels were left out. budget <= 0 reads nothing
// (an array cataloged from its headers only); complex and rgba8 arrays get
// no values, having no single one per voxel.
func sampleValues(ctx context.Context, r *Record, v volume.Volume, budget int64) {
	if budget <= 0 {
		return
	}
	s, err := volume.Stats(ctx, v, volume.StatsOptions{SampleBytes: budget})
	if errors.Is(err, volume.ErrNoScalar) {
		return
	}
	if err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("value statistics failed: %v", err))
		if errors.Is(err, format.ErrCorrupt) {
			// Found only now (a chunk table read lazily): the array is as
			// corrupt as one that failed to open.
			r.Status = StatusOf(err)
		}
		return
	}
	r.ValueSample = s.Note()
	if s.Infs > 0 {
		r.ValueSample += fmt.Sprintf("; %d infinite left out", s.Infs)
	}
	if s.Count == s.Infs {
		return // no finite value
	}
	r.ValueMin, r.ValueMax, r.ValueMean = &s.FiniteMin, &s.FiniteMax, &s.FiniteMean
}
