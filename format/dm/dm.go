// Package dm reads Gatan DigitalMicrograph DM3 and DM4 files (formats.md §3)
// as volumes, lazily: opening walks the tag tree with range reads and skips
// the pixel data, which ReadRegion later fetches row span by row span. It also
// writes small but real DM3 files for the demo's sample data (WriteDM3).
package dm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// maxRank bounds the dimensions of one image; DM itself stops at 4.
const maxRank = 8

// Format implements format.Format for DM3/DM4.
type Format struct{}

var _ format.Format = Format{}

// Name implements format.Format.
func (Format) Name() string { return "dm" }

// Detect implements format.Format: a version word of 3 or 4 followed by a
// byte-order word of 0 or 1 and a plausible root group; without a head, the
// .dm3/.dm4 extension decides.
func (Format) Detect(_ context.Context, _ *store.Store, key string, head []byte) bool {
	if len(head) < 16 {
		ext := strings.ToLower(path.Ext(key))
		return head == nil && (ext == ".dm3" || ext == ".dm4")
	}
	h, err := parseHeader(head)
	if err != nil || int64(len(head)) < h.rootAt+2 {
		return false
	}
	// is_sorted and is_open of the root group are booleans.
	return head[h.rootAt] <= 1 && head[h.rootAt+1] <= 1
}

// Open implements format.Format: every image that is not a thumbnail becomes
// one volume.
func (Format) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	_, vols, err := open(ctx, st, key, info.Size)
	return vols, err
}

// ReadTags parses the tag tree of a DM file without reading its pixel data.
func ReadTags(ctx context.Context, st *store.Store, key string) (*Tag, error) {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	_, root, err := parseTags(ctx, st, key, info.Size)
	if err != nil {
		return nil, fmt.Errorf("dm %q: %w", key, err)
	}
	return root, nil
}

func open(ctx context.Context, st *store.Store, key string, size int64) (*Tag, []volume.Volume, error) {
	h, root, err := parseTags(ctx, st, key, size)
	if err != nil {
		return nil, nil, fmt.Errorf("dm %q: %w", key, err)
	}
	list := root.Lookup("ImageList")
	if list == nil || len(list.Children) == 0 {
		return root, nil, fmt.Errorf("dm %q: %w: no ImageList", key, ErrFormat)
	}
	pick := realImages(root, list)
	var vols []*dmVolume
	var skipped []string
	var firstErr error
	for _, i := range pick {
		v, err := newVolume(st, key, h, list.Children[i], i, len(pick) > 1)
		if err != nil {
			err = fmt.Errorf("dm %q: ImageList.%d: %w", key, i, err)
			if firstErr == nil {
				firstErr = err
			}
			if !errors.Is(err, format.ErrNotSupported) {
				return root, nil, err
			}
			skipped = append(skipped, err.Error())
			continue
		}
		vols = append(vols, v)
	}
	if len(vols) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("dm %q: %w: no image", key, ErrFormat)
		}
		return root, nil, firstErr
	}
	for _, v := range vols {
		v.info.Metadata["dm_version"] = h.version
		if len(skipped) > 0 {
			v.info.Metadata["skipped_images"] = skipped
		}
	}
	out := make([]volume.Volume, len(vols))
	for i, v := range vols {
		out[i] = v
	}
	return root, out, nil
}

// realImages returns the ImageList positions that are not thumbnails: those
// listed in the root Thumbnails.*.ImageIndex (rsciio), or, when that tag is
// missing, the 2-D RGB images if any other image exists (formats.md §3.3).
func realImages(root, list *Tag) []int {
	thumb := map[int]bool{}
	if th := root.Lookup("Thumbnails"); th != nil {
		for _, c := range th.Children {
			if f, ok := c.Float("ImageIndex"); ok {
				thumb[int(f)] = true
			}
		}
	} else {
		for i, im := range list.Children {
			code, _ := im.Float("ImageData.DataType")
			dims := im.Lookup("ImageData.Dimensions")
			if (code == 8 || code == 23) && dims != nil && len(dims.Children) == 2 {
				thumb[i] = true
			}
		}
		if len(thumb) == len(list.Children) {
			clear(thumb)
		}
	}
	var out []int
	for i, im := range list.Children {
		if !thumb[i] && im.Lookup("ImageData.Data") != nil {
			out = append(out, i)
		}
	}
	return out
}

// dtypeOf maps ImageData.DataType to a dtype (formats.md §3.3).
func dtypeOf(code int) (volume.DType, error) {
	switch code {
	case 1:
		return volume.Int16, nil
	case 2:
		return volume.Float32, nil
	case 3, 27:
		return volume.Complex64, nil
	case 6:
		return volume.Uint8, nil
	case 7:
		return volume.Int32, nil
	case 8, 23:
		return volume.RGBA8, nil
	case 9:
		return volume.Int8, nil
	case 10:
		return volume.Uint16, nil
	case 11:
		return volume.Uint32, nil
	case 12:
		return volume.Float64, nil
	case 13, 28:
		return volume.Complex128, nil
	case 14:
		return volume.Bool, nil
	case 5:
		// The old packed FFT layout: no sample file exists to check an
		// unpacking against, so it is not guessed at.
		return "", fmt.Errorf("old packed complex data type 5: %w", format.ErrNotSupported)
	}
	return "", fmt.Errorf("data type %d: %w", code, format.ErrNotSupported)
}

// isPacked reports whether a DataType is the packed FFT layout that stores
// only the non-redundant half of a real image's spectrum.
func isPacked(code int) bool { return code == 27 || code == 28 }

// packedWidth is the number of complex values per row that the packed layout
// stores for an image width w: the half plane of frequencies 0 to w/2.
func packedWidth(w int64) int64 { return w/2 + 1 }

// unpackedWidth is the row length rosettasciio unpacks a stored half plane
// of pw values into: the half plane mirrored, then the conjugates of its
// inner columns. That is the image width for even widths and one less for
// odd ones (rsciio drops the conjugate of the last stored column there).
func unpackedWidth(pw int64) int64 { return pw + max(pw-2, 0) }

// isSpectrumImage applies rosettasciio's rule for moving the spectral axis
// last: the image is tagged as a spectrum image (Meta Data.Format, or an
// Orsay "spim" group) and has more than two dimensions.
func isSpectrumImage(im *Tag, rank int) bool {
	if rank <= 2 {
		return false
	}
	f, _ := im.String("ImageTags.Meta Data.Format")
	return f == "Spectrum image" || im.Lookup("ImageTags.spim") != nil
}

func newVolume(st *store.Store, key string, h header, im *Tag, index int, multi bool) (*dmVolume, error) {
	codeF, ok := im.Float("ImageData.DataType")
	if !ok {
		return nil, fmt.Errorf("%w: no ImageData.DataType", ErrFormat)
	}
	code := int(codeF)
	dt, err := dtypeOf(code)
	if err != nil {
		return nil, err
	}
	arr, ok := im.Lookup("ImageData.Data").Value.(*Array)
	if !ok {
		return nil, fmt.Errorf("%w: ImageData.Data is not an array", ErrFormat)
	}
	dims := im.Lookup("ImageData.Dimensions")
	if dims == nil || len(dims.Children) == 0 || len(dims.Children) > maxRank {
		return nil, fmt.Errorf("%w: ImageData.Dimensions missing or of rank > %d", ErrFormat, maxRank)
	}
	rank := len(dims.Children)
	shape := make([]int64, rank)
	n, tooBig := int64(1), false
	for i, d := range dims.Children {
		f, ok := d.Float("")
		if !ok || f < 0 || f > 1<<40 {
			return nil, fmt.Errorf("%w: dimension %d is %v", ErrFormat, i, d.Value)
		}
		shape[rank-1-i] = int64(f)
		switch {
		case f == 0:
			n = 0
		case n > math.MaxInt64/int64(f):
			tooBig = true
		default:
			n *= int64(f)
		}
	}
	size := int64(dt.Size())
	// base is the array as the file defines it, before the spectral axis
	// moves and size-1 axes go: the stored shape, or the unpacked one.
	base := shape
	var pw int64
	if isPacked(code) {
		if rank != 2 {
			return nil, fmt.Errorf("packed complex data of rank %d: %w", rank, format.ErrNotSupported)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: packed complex image of shape %v", ErrFormat, shape)
		}
		// The stored half plane has no more elements than the image (n),
		// so its size cannot overflow when n's does not.
		pw = packedWidth(shape[1])
		if tooBig {
			return nil, fmt.Errorf("%w: packed dimensions %v overflow", ErrFormat, shape)
		}
		if stored := shape[0] * pw; stored > arr.Length/size || stored*size != arr.Length {
			return nil, fmt.Errorf("%w: packed dimensions %v (%d x %d stored) of %s do not match the %d data bytes",
				ErrFormat, shape, shape[0], pw, dt, arr.Length)
		}
		base = []int64{shape[0], unpackedWidth(pw)}
	} else if tooBig || n > arr.Length/size || n*size != arr.Length {
		return nil, fmt.Errorf("%w: dimensions %v of %s do not match the %d data bytes", ErrFormat, shape, dt, arr.Length)
	}
	baseAxes := axes(im, base)
	spectral := isSpectrumImage(im, rank)
	moved, movedAxes := base, baseAxes
	if spectral {
		// DM keeps the spectrum as the last dimension (slowest); rsciio
		// presents a spectrum image as (..., y, x, spectrum).
		moved = append(append([]int64(nil), base[1:]...), base[0])
		movedAxes = append(append([]volume.Axis(nil), baseAxes[1:]...), baseAxes[0])
		movedAxes[rank-1].Name = "c"
	}
	// Like rsciio, drop every size-1 axis, but keep one axis of a 1x1 image.
	var keep []int
	for i, s := range moved {
		if s != 1 {
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		keep = []int{rank - 1}
	}
	final := make([]int64, len(keep))
	finalAxes := make([]volume.Axis, len(keep))
	for i, k := range keep {
		final[i], finalAxes[i] = moved[k], movedAxes[k]
	}

	name, _ := im.String("Name")
	title := name
	if title == "" {
		title = strings.TrimSuffix(path.Base(key), path.Ext(key))
		if multi {
			title += "#" + strconv.Itoa(index)
		}
	}
	v := &dmVolume{st: st, key: key, off: arr.Offset, order: h.order, code: code,
		base: base, spectral: spectral, keep: keep, packedWidth: pw}
	v.info = volume.Info{
		Name:        title,
		Shape:       final,
		DType:       dt,
		Axes:        finalAxes,
		Compression: "none",
		Acquisition: acquisition(im, shape),
		Metadata:    metadata(im, shape),
	}
	md := v.info.Metadata
	md["title"] = title
	if name == "" {
		md["title_source"] = "filename"
	} else {
		md["title_source"] = "ImageList." + strconv.Itoa(index) + ".Name"
	}
	md["image_index"] = index
	md["data_type_code"] = code
	md["byte_order"] = byteOrderName(h.order)
	if len(keep) != rank || spectral || pw > 0 {
		md["dm_shape"] = shape // C order of ImageData.Dimensions
	}
	if len(keep) != rank {
		md["squeezed"] = "size-1 axes of the stored shape dropped, as rosettasciio does"
	}
	if spectral {
		md["spectral_axis_moved"] = "stored first (slowest), presented last, as rosettasciio does for spectrum images"
	}
	if pw > 0 {
		md["packed_complex"] = map[string]any{
			"stored_half_plane": []int64{shape[0], pw},
			"unpacking": "rosettasciio's: each stored row reversed, then the conjugates of its inner values; " +
				"an odd width yields one column less than the image width",
		}
	}
	if err := v.info.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

func byteOrderName(o binary.ByteOrder) string {
	if o == binary.BigEndian {
		return "big"
	}
	return "little"
}

// axes builds the C-order axes from ImageData.Calibrations.Dimension, which is
// in DM order (X first) and may hold fewer entries than there are dimensions.
func axes(im *Tag, shape []int64) []volume.Axis {
	rank := len(shape)
	names := []string{"x", "y", "z", "t"}
	cal := im.Lookup("ImageData.Calibrations.Dimension")
	out := make([]volume.Axis, rank)
	for i := 0; i < rank; i++ { // i is the DM dimension index
		a := volume.Axis{Size: shape[rank-1-i], Scale: 1}
		if i < len(names) {
			a.Name = names[i]
		} else {
			a.Name = "d" + strconv.Itoa(i)
		}
		if cal != nil && i < len(cal.Children) {
			c := cal.Children[i]
			if s, ok := c.Float("Scale"); ok {
				a.Scale = s
			}
			origin, _ := c.Float("Origin")
			if origin != 0 {
				a.Offset = -origin * a.Scale
			}
			a.Unit, _ = c.String("Units")
			a.ScaleKnown = a.Unit != "" || a.Scale != 1
		}
		out[rank-1-i] = a
	}
	return out
}
