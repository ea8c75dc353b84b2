package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// sampleValues estimates min/max/mean from a lattice of small blocks spread
// over the array (4 per axis, at most budget bytes in all), so that a 7 GB array
// costs a few reads, not a full pass. The column says how it was sampled.
func sampleValues(ctx context.Context, r *Record, v volume.Volume, budget int64) {
	in := v.Info()
	n := len(in.Shape)
	if n == 0 || in.NumElements() == 0 || budget <= 0 {
		return
	}
	switch in.DType {
	case volume.Complex64, volume.Complex128, volume.RGBA8, volume.Float16:
		return
	}
	const per = 4
	elem := int64(in.DType.Size())
	// Block edge: as large as the budget allows over per^n blocks, capped at 64.
	blocks := int64(math.Pow(per, float64(n)))
	edge := int64(64)
	for edge > 1 && blocks*int64(math.Pow(float64(edge), float64(n)))*elem > budget {
		edge /= 2
	}
	size := make([]int64, n)
	for i := range size {
		size[i] = min(edge, in.Shape[i])
	}
	var (
		minV, maxV = math.Inf(1), math.Inf(-1)
		sum        float64
		count      int64
		nblocks    int
	)
	idx := make([]int64, n)
	buf := make([]byte, volume.Prod(size)*elem)
	for {
		origin := make([]int64, n)
		for i := range origin {
			span := in.Shape[i] - size[i]
			origin[i] = span * (2*idx[i] + 1) / (2 * per)
		}
		box := volume.NewBox(origin, size)
		if err := v.ReadRegion(ctx, box, buf); err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("value sample failed: %v", err))
			if errors.Is(err, format.ErrCorrupt) {
				// Found only now (a chunk table read lazily): the array is
				// as corrupt as one that failed to open.
				r.Status = StatusOf(err)
			}
			return
		}
		nblocks++
		for off := int64(0); off < int64(len(buf)); off += elem {
			x := decode(in.DType, buf[off:off+elem])
			if math.IsNaN(x) {
				continue
			}
			minV = math.Min(minV, x)
			maxV = math.Max(maxV, x)
			sum += x
			count++
		}
		d := n - 1
		for d >= 0 {
			idx[d]++
			if idx[d] < per && in.Shape[d] > size[d] {
				break
			}
			idx[d] = 0
			d--
		}
		if d < 0 {
			break
		}
	}
	if count == 0 {
		return
	}
	mean := sum / float64(count)
	r.ValueMin, r.ValueMax, r.ValueMean = &minV, &maxV, &mean
	if count == in.NumElements() {
		r.ValueSample = "all voxels"
	} else {
		r.ValueSample = fmt.Sprintf("strided sample: %d blocks of %v voxels (%d values)", nblocks, size, count)
	}
}

func decode(dt volume.DType, b []byte) float64 {
	v, ok := dt.Value(b)
	if !ok {
		return math.NaN()
	}
	return v
}
