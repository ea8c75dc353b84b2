package dm

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// How ReadRegion groups the contiguous runs of a box into range requests: runs
// closer than maxGap share one request (the gap is read and dropped), and one
// request spans at most maxSpan bytes unless a single run is longer.
const (
	maxGap  = 256 << 10
	maxSpan = 16 << 20
	maxRuns = 1 << 16 // bounds the bookkeeping of one request
)

// dmVolume is one image of a DM file; its pixels stay in the store.
type dmVolume struct {
	st    *store.Store
	key   string
	info  volume.Info
	off   int64 // absolute offset of element 0
	order binary.ByteOrder
	code  int // ImageData.DataType
	// base is the C-order shape the file defines (packed data: unpacked);
	// the volume's axes are base's, the first moved last when spectral,
	// then only those listed in keep (the others have size 1).
	base     []int64
	spectral bool
	keep     []int
	// packedWidth is the number of complex values per stored row of packed
	// FFT data, 0 for every other layout.
	packedWidth int64
}

// Info implements volume.Volume.
func (v *dmVolume) Info() volume.Info { return v.info }

// ReadRegion implements volume.Volume.
func (v *dmVolume) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(v.info, box, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if box.Empty() {
		return nil
	}
	// Put the dropped size-1 axes back.
	n := len(v.base)
	b := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
	for i := range b.Stop {
		b.Stop[i] = 1
	}
	for i, k := range v.keep {
		b.Start[k], b.Stop[k] = box.Start[i], box.Stop[i]
	}
	switch {
	case v.packedWidth > 0:
		return v.readPacked(ctx, b, dst)
	case v.spectral:
		// Read the box in storage order, spectral axis first, then move
		// that axis last: a transpose of (spectrum, rest) to (rest, spectrum).
		sb := volume.Box{
			Start: append([]int64{b.Start[n-1]}, b.Start[:n-1]...),
			Stop:  append([]int64{b.Stop[n-1]}, b.Stop[:n-1]...),
		}
		tmp := make([]byte, len(dst))
		if err := v.readStored(ctx, sb, tmp); err != nil {
			return err
		}
		e := int64(v.info.DType.Size())
		c := sb.Stop[0] - sb.Start[0]
		rest := int64(len(dst)) / e / c
		for k := int64(0); k < c; k++ {
			for m := int64(0); m < rest; m++ {
				copy(dst[(m*c+k)*e:][:e], tmp[(k*rest+m)*e:][:e])
			}
		}
		return nil
	}
	return v.readStored(ctx, b, dst)
}

// readStored reads a box of the stored array (shape base). DM data are
// X-fastest, which is C order of the reversed Dimensions, so a box is a set
// of contiguous runs.
func (v *dmVolume) readStored(ctx context.Context, box volume.Box, dst []byte) error {
	shape := v.base
	n := len(shape)
	elem := int64(v.info.DType.Size())
	stride := make([]int64, n)
	acc := elem
	for i := n - 1; i >= 0; i-- {
		stride[i] = acc
		acc *= shape[i]
	}
	// k is the slowest axis below which the box covers whole axes: one run
	// spans the box's extent on k times everything faster.
	k := n - 1
	for k > 0 && box.Start[k] == 0 && box.Stop[k] == shape[k] {
		k--
	}
	runLen := (box.Stop[k] - box.Start[k]) * stride[k]

	var (
		win    *window
		dstOff int64
	)
	// One run per index of the axes slower than k, in C order.
	err := volume.Each(volume.Box{Start: box.Start[:k], Stop: box.Stop[:k]}, func(idx []int64) error {
		start := box.Start[k] * stride[k]
		for j := 0; j < k; j++ {
			start += idx[j] * stride[j]
		}
		if win != nil && (start-win.end() > maxGap || start+runLen-win.start > maxSpan || len(win.runs) >= maxRuns) {
			if err := v.readWindow(ctx, win, dst); err != nil {
				return err
			}
			win = nil
		}
		if win == nil {
			win = &window{start: start}
		}
		win.runs = append(win.runs, run{src: start, dst: dstOff, n: runLen})
		dstOff += runLen
		return nil
	})
	if err != nil {
		return err
	}
	if err := v.readWindow(ctx, win, dst); err != nil {
		return err
	}
	v.toNative(dst)
	return nil
}

// readPacked reads a box of the unpacked (rows, unpackedWidth) array of
// packed FFT data. Output column c of a row holds stored value pw-1-c for
// c < pw (the row reversed) and the conjugate of stored value c-pw+1 after
// that. Rows are fetched whole, at most about maxSpan bytes at a time.
func (v *dmVolume) readPacked(ctx context.Context, box volume.Box, dst []byte) error {
	pw := v.packedWidth
	e := int64(v.info.DType.Size())
	rowBytes := pw * e
	batch := max(1, maxSpan/rowBytes)
	var tmp []byte
	o := int64(0)
	for r0 := box.Start[0]; r0 < box.Stop[0]; r0 += batch {
		r1 := min(r0+batch, box.Stop[0])
		need := (r1 - r0) * rowBytes
		if int64(cap(tmp)) < need {
			tmp = make([]byte, need)
		}
		tmp = tmp[:need]
		w := &window{start: r0 * rowBytes, runs: []run{{src: r0 * rowBytes, n: need}}}
		if err := v.readWindow(ctx, w, tmp); err != nil {
			return err
		}
		v.toNative(tmp)
		for r := r0; r < r1; r++ {
			row := tmp[(r-r0)*rowBytes:][:rowBytes]
			for c := box.Start[1]; c < box.Stop[1]; c++ {
				j, conj := pw-1-c, false
				if c >= pw {
					j, conj = c-pw+1, true
				}
				out := dst[o : o+e]
				copy(out, row[j*e:][:e])
				if conj {
					// Negate the imaginary part: flip the sign bit of its
					// last (most significant, little-endian) byte.
					out[e-1] ^= 0x80
				}
				o += e
			}
		}
	}
	return nil
}

// run is one contiguous stretch of the box: src is relative to element 0.
type run struct{ src, dst, n int64 }

// window is a set of runs fetched with one range request.
type window struct {
	start int64
	runs  []run
}

func (w *window) end() int64 {
	r := w.runs[len(w.runs)-1]
	return r.src + r.n
}

func (v *dmVolume) readWindow(ctx context.Context, w *window, dst []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := v.st.ReadRange(ctx, v.key, v.off+w.start, w.end()-w.start)
	if err != nil {
		return fmt.Errorf("dm %q: %s pixels: %w", v.key, v.info.Name, err)
	}
	defer rc.Close()
	pos := w.start
	for _, r := range w.runs {
		if gap := r.src - pos; gap > 0 {
			if _, err := io.CopyN(io.Discard, rc, gap); err != nil {
				return fmt.Errorf("dm %q: %s pixels at %d: %w", v.key, v.info.Name, v.off+pos, err)
			}
		}
		if _, err := io.ReadFull(rc, dst[r.dst:r.dst+r.n]); err != nil {
			return fmt.Errorf("dm %q: %s pixels at %d: %w", v.key, v.info.Name, v.off+r.src, err)
		}
		pos = r.src + r.n
	}
	return nil
}

// toNative turns file-order elements into the volume's little-endian layout:
// byte swaps for big-endian files, and B,G,R,A → R,G,B,A for colour.
func (v *dmVolume) toNative(b []byte) {
	switch v.info.DType {
	case volume.RGBA8:
		for i := 0; i+3 < len(b); i += 4 {
			b[i], b[i+2] = b[i+2], b[i]
		}
		return
	case volume.Bool, volume.Int8, volume.Uint8:
		return
	}
	if v.order == binary.LittleEndian {
		return
	}
	word := v.info.DType.Size()
	if v.info.DType == volume.Complex64 || v.info.DType == volume.Complex128 {
		word /= 2 // each part separately
	}
	codec.SwapBytes(b, word)
}
