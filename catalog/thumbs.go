package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"math"
	"slices"
	"strconv"

	"github.com/imgdataset/imgdataset/volume"
)

// plane is a strided, downsampled orthogonal slice of a volume.
type plane struct {
	Name     string // "xy", "xz" or "yz"
	Index    int64  // slice position along the plane's normal axis (-1 for a 2-D image)
	RowAxis  int    // volume axis along the image rows (vertical)
	ColAxis  int    // volume axis along the image columns (horizontal)
	Stride   int64  // source voxels per thumbnail pixel, on both axes
	W, H     int    // thumbnail size in pixels
	Values   []float64
	RowSlot  string
	ColSlot  string
	Requests int // ReadRegion calls made, for tests of the read plan
}

// thumbLayout locates the spatial axes of a volume: zyx[i] is the axis index of
// z, y, x (-1 when absent) and base is the index every other axis is held at
// (channel 0; the middle of any other axis, e.g. time).
func thumbLayout(in volume.Info) (zyx [3]int, base []int64, err error) {
	n := len(in.Shape)
	zyx = [3]int{-1, -1, -1}
	slot := map[string]int{"z": 0, "y": 1, "x": 2}
	base = make([]int64, n)
	// From the end: when two axes map to one slot (unnamed leading axes), the
	// trailing one is spatial, the way numpy shapes read.
	for i := n - 1; i >= 0; i-- {
		s := axisSlot(in.Axes[i].Name, i, n)
		if j, ok := slot[s]; ok && zyx[j] < 0 {
			zyx[j] = i
		} else if s != "c" {
			base[i] = in.Shape[i] / 2
		}
	}
	if zyx[1] < 0 || zyx[2] < 0 {
		return zyx, nil, fmt.Errorf("volume %q: no y and x axes to draw", in.Name)
	}
	for i, s := range in.Shape {
		if s <= 0 {
			return zyx, nil, fmt.Errorf("volume %q: empty axis %d", in.Name, i)
		}
	}
	return zyx, base, nil
}

// middlePlanes reads the middle xy, xz and yz slices (xy only for a 2-D image,
// and no xz/yz plane when z has a single slice), each strided to at most
// maxSide pixels per side, with no ReadRegion call larger than capBytes.
func middlePlanes(ctx context.Context, v volume.Volume, maxSide int, capBytes int64) ([]plane, error) {
	in := v.Info()
	zyx, base, err := thumbLayout(in)
	if err != nil {
		return nil, err
	}
	z, y, x := zyx[0], zyx[1], zyx[2]
	type spec struct {
		name             string
		normal, row, col int
		rowSlot, colSlot string
	}
	specs := []spec{{"xy", z, y, x, "y", "x"}}
	if z >= 0 && in.Shape[z] > 1 {
		specs = append(specs, spec{"xz", y, z, x, "z", "x"}, spec{"yz", x, z, y, "z", "y"})
	}
	var out []plane
	for _, s := range specs {
		at := slices.Clone(base)
		idx := int64(-1)
		if s.normal >= 0 {
			idx = in.Shape[s.normal] / 2
			at[s.normal] = idx
		}
		p, err := readPlane(ctx, v, at, s.row, s.col, maxSide, capBytes)
		if err != nil {
			return out, fmt.Errorf("%s slice: %w", s.name, err)
		}
		p.Name, p.Index, p.RowSlot, p.ColSlot = s.name, idx, s.rowSlot, s.colSlot
		out = append(out, p)
	}
	return out, nil
}

// sampled describes a strided set of indices o, o+s, … below n.
type sampled struct{ o, s, count int64 }

func sampleAxis(n, stride int64) sampled {
	o := ((n - 1) % stride) / 2 // centre the lattice
	return sampled{o: o, s: stride, count: (n-1-o)/stride + 1}
}

func (a sampled) at(i int64) int64 { return a.o + i*a.s }

// groups splits the sample indices into runs that fall in the same tile of
// size tile, so each run can be served by one read.
func (a sampled) groups(tile int64) [][2]int64 {
	var g [][2]int64
	for i := int64(0); i < a.count; {
		t := a.at(i) / tile
		j := i + 1
		for j < a.count && a.at(j)/tile == t {
			j++
		}
		g = append(g, [2]int64{i, j})
		i = j
	}
	return g
}

// readPlane reads the 2-D plane spanned by axes ra (rows) and ca (columns)
// through position at, keeping every stride-th voxel so neither side exceeds
// maxSide. A plane that fits in capBytes is one read; otherwise it is read in
// tiles (aligned to the storage chunks when known, no larger than capBytes),
// each trimmed to the sampled rows and columns it holds, so memory stays
// bounded and a huge plane costs at most one read per thumbnail pixel.
func readPlane(ctx context.Context, v volume.Volume, at []int64, ra, ca, maxSide int, capBytes int64) (plane, error) {
	in := v.Info()
	e := int64(in.DType.Size())
	if e == 0 {
		return plane{}, fmt.Errorf("volume %q: unknown dtype %q", in.Name, in.DType)
	}
	if maxSide < 1 || capBytes < e {
		return plane{}, fmt.Errorf("volume %q: thumbnail size %d / read cap %d too small", in.Name, maxSide, capBytes)
	}
	H, W := in.Shape[ra], in.Shape[ca]
	if H <= 0 || W <= 0 {
		return plane{}, fmt.Errorf("volume %q: empty plane %dx%d", in.Name, H, W)
	}
	stride := (max(H, W)-1)/int64(maxSide) + 1
	rows, cols := sampleAxis(H, stride), sampleAxis(W, stride)
	p := plane{RowAxis: ra, ColAxis: ca, Stride: stride, W: int(cols.count), H: int(rows.count)}
	p.Values = make([]float64, p.W*p.H)

	var th, tw int64
	if H <= capBytes/e/W {
		th, tw = H, W
	} else {
		th = 1
		if in.Chunks != nil && len(in.Chunks) == len(in.Shape) {
			th = max(1, in.Chunks[ra])
		}
		th = min(th, max(1, capBytes/e))
		tw = min(W, capBytes/(th*e))
		if in.Chunks != nil && len(in.Chunks) == len(in.Shape) {
			if c := in.Chunks[ca]; c > 1 && tw > c {
				tw -= tw % c
			}
		}
	}
	buf := make([]byte, th*tw*e) // ≤ capBytes by construction
	box := volume.Box{Start: slices.Clone(at), Stop: make([]int64, len(at))}
	for i := range at {
		box.Stop[i] = at[i] + 1
	}
	for _, rg := range rows.groups(th) {
		r0, r1 := rows.at(rg[0]), rows.at(rg[1]-1)+1
		for _, cg := range cols.groups(tw) {
			c0, c1 := cols.at(cg[0]), cols.at(cg[1]-1)+1
			if err := ctx.Err(); err != nil {
				return p, err
			}
			box.Start[ra], box.Stop[ra] = r0, r1
			box.Start[ca], box.Stop[ca] = c0, c1
			bh, bw := r1-r0, c1-c0
			b := buf[:bh*bw*e]
			if err := v.ReadRegion(ctx, box, b); err != nil {
				return p, fmt.Errorf("read %v: %w", box, err)
			}
			p.Requests++
			for i := rg[0]; i < rg[1]; i++ {
				r := rows.at(i) - r0
				for j := cg[0]; j < cg[1]; j++ {
					c := cols.at(j) - c0
					var off int64
					if ra < ca {
						off = r*bw + c
					} else {
						off = c*bh + r
					}
					p.Values[int(i)*p.W+int(j)] = elemValue(in.DType, b[off*e:(off+1)*e])
				}
			}
		}
	}
	return p, nil
}

// elemValue is one element as a number for display: integers and floats as
// they are, float16 widened, complex as magnitude, RGBA as luminance; NaN when
// the dtype has no meaningful scalar.
func elemValue(dt volume.DType, b []byte) float64 {
	le := binary.LittleEndian
	switch dt {
	case volume.Complex64:
		return math.Hypot(float64(math.Float32frombits(le.Uint32(b))), float64(math.Float32frombits(le.Uint32(b[4:]))))
	case volume.Complex128:
		return math.Hypot(math.Float64frombits(le.Uint64(b)), math.Float64frombits(le.Uint64(b[8:])))
	case volume.RGBA8:
		return 0.2126*float64(b[0]) + 0.7152*float64(b[1]) + 0.0722*float64(b[2])
	}
	return decode(dt, b)
}

// decode is one element as a float64, NaN for dtypes without a single real
// value.
func decode(dt volume.DType, b []byte) float64 {
	v, ok := dt.Value(b)
	if !ok {
		return math.NaN()
	}
	return v
}

// percentileWindow returns the lo-th and hi-th percentiles (0–100, linear
// interpolation) of the finite values, the contrast window of a thumbnail.
// ok is false when no value is finite.
func percentileWindow(vals []float64, lo, hi float64) (a, b float64, ok bool) {
	fin := make([]float64, 0, len(vals))
	for _, v := range vals {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			fin = append(fin, v)
		}
	}
	if len(fin) == 0 {
		return 0, 0, false
	}
	slices.Sort(fin)
	q := func(p float64) float64 {
		p = math.Min(100, math.Max(0, p))
		pos := p / 100 * float64(len(fin)-1)
		i := int(pos)
		if i >= len(fin)-1 {
			return fin[len(fin)-1]
		}
		f := pos - float64(i)
		return fin[i]*(1-f) + fin[i+1]*f
	}
	return q(lo), q(hi), true
}

// grayImage maps values linearly from [lo, hi] to 0–255, clipping outside.
// A flat window (lo == hi) maps everything to mid-grey, and NaN to black.
func grayImage(vals []float64, w, h int, lo, hi float64) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range vals[:w*h] {
		var g float64
		switch {
		case math.IsNaN(v):
			g = 0
		case hi <= lo:
			g = 128
		default:
			g = math.Round((v - lo) / (hi - lo) * 255)
		}
		img.Pix[i] = uint8(math.Min(255, math.Max(0, g)))
	}
	return img
}

func encodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// histogram counts finite values in equal-width bins: bin i covers
// [Start+i·Width, Start+(i+1)·Width).
type histogram struct {
	Min, Max     float64 // of the data
	Start, Width float64
	Counts       []int64
	N            int64 // finite values counted
}

// Span is the value range the bins cover.
func (h histogram) Span() float64 { return h.Width * float64(len(h.Counts)) }

// makeHistogram bins the finite values of vals into at most bins bins.
// Integer-valued data whose range is narrower than bins gets one bin per
// integer, centred on it, so bars never straddle two values.
func makeHistogram(vals []float64, bins int) histogram {
	h := histogram{Min: math.Inf(1), Max: math.Inf(-1)}
	integral := true
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
		integral = integral && v == math.Trunc(v)
		h.N++
	}
	if h.N == 0 || bins < 1 {
		return histogram{}
	}
	switch {
	case integral && h.Max-h.Min+1 <= float64(bins):
		bins = int(h.Max-h.Min) + 1
		h.Start, h.Width = h.Min-0.5, 1
	case h.Max == h.Min:
		bins = 1
		h.Start, h.Width = h.Min-0.5, 1
	default:
		h.Start, h.Width = h.Min, (h.Max-h.Min)/float64(bins)
	}
	h.Counts = make([]int64, bins)
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		i := int((v - h.Start) / h.Width)
		h.Counts[min(max(i, 0), bins-1)]++
	}
	return h
}

// scaleBar picks a round physical length (1, 2 or 5 × 10^k nm) whose bar is
// at most a quarter of a widthPx-pixel image with nmPerPx nanometres per
// pixel, and at least 1 pixel long. ok is false without a usable calibration.
func scaleBar(nmPerPx float64, widthPx int) (lengthNM, px float64, label string, ok bool) {
	if !(nmPerPx > 0) || math.IsInf(nmPerPx, 0) || widthPx < 4 {
		return 0, 0, "", false
	}
	limit := nmPerPx * float64(widthPx) / 4
	if !(limit > 0) || math.IsInf(limit, 0) {
		return 0, 0, "", false
	}
	k := math.Floor(math.Log10(limit))
	for e := k; e >= k-1; e-- {
		for _, m := range []float64{5, 2, 1} {
			l := m * math.Pow(10, e)
			if l <= limit*(1+1e-9) && l/nmPerPx >= 1 {
				return l, l / nmPerPx, formatLength(l), true
			}
		}
	}
	return 0, 0, "", false
}

// formatLength writes a length in nanometres with the unit that keeps the
// number between 1 and 1000 (pm, nm, µm, mm, m).
func formatLength(nm float64) string {
	units := []struct {
		name string
		nm   float64
	}{{"m", 1e9}, {"mm", 1e6}, {"µm", 1e3}, {"nm", 1}, {"pm", 1e-3}}
	for _, u := range units {
		if math.Abs(nm) >= u.nm*(1-1e-9) {
			return strconv.FormatFloat(roundSig(nm/u.nm, 6), 'f', -1, 64) + " " + u.name
		}
	}
	return strconv.FormatFloat(nm*1e3, 'g', 6, 64) + " pm"
}

// roundSig rounds to n significant digits, hiding binary noise like 0.30000000000000004.
func roundSig(x float64, n int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', n, 64), 64)
	return f
}
