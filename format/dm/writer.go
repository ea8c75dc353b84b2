package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/imgdataset/imgdataset/volume"
)

// Image is what WriteDM3 stores: one array with its calibration and tags.
type Image struct {
	// Name is the image title (ImageList.1.Name).
	Name string
	// DType is the element type; see WriteDM3 for the supported ones.
	DType volume.DType
	// Shape is in C order (slowest first), 1 to 4 dimensions.
	Shape []int64
	// Data holds the elements in C order, little-endian (rgba8 as R,G,B,A).
	Data []byte
	// Scales, Units and Origins calibrate each axis in C order; nil means
	// scale 1, no unit, origin 0. Physical position of index k is (k-Origin)*Scale.
	Scales  []float64
	Units   []string
	Origins []float64
	// Tags are ImageTags entries by dotted path ("Microscope Info.Voltage")
	// with float64, float32, int, int32, int16, uint16, uint32, bool or string
	// values. They override the defaults (a DataBar date and time and an FEI
	// Quanta at 1.9 kV, like the EMPIAR-11759 files); a nil value removes one.
	// Names cannot contain dots.
	Tags map[string]any
	// ZSpacing, when positive, is written as the section spacing of a 2-D
	// slice, in "Meta Data.Dimension info.<rank>" (Scale, Units), as 3View does.
	ZSpacing float64
	// ZUnit is the unit of ZSpacing; "nm" when empty.
	ZUnit string
}

// Option adjusts WriteDM3.
type Option func(*writeConfig)

type writeConfig struct {
	order     binary.ByteOrder
	thumbnail bool
	version   int
	// packedWidth, when positive, is the image width of packed FFT data.
	packedWidth int64
	// bare leaves out the default acquisition tags.
	bare bool
}

// BigEndian writes the tag data and pixels big-endian (byte order word 0),
// which real files rarely are; it exists to exercise readers.
func BigEndian() Option { return func(c *writeConfig) { c.order = binary.BigEndian } }

// NoThumbnail leaves out the RGBA thumbnail, so the image is ImageList.0.
func NoThumbnail() Option { return func(c *writeConfig) { c.thumbnail = false } }

// NoDefaultTags leaves out the default acquisition tags (DataBar date and
// time, FEI Quanta at 1.9 kV): a file converted from other data must not
// claim a microscope it never saw.
func NoDefaultTags() Option { return func(c *writeConfig) { c.bare = true } }

// AsDM4 writes the DM4 layout (64-bit structure words and per-tag sizes).
func AsDM4() Option { return func(c *writeConfig) { c.version = 4 } }

// packedFFT declares Data, complex with shape (rows, w/2+1), to be the
// half plane of the spectrum of a w-wide real image, stored in DM's packed
// layout (DataType 27 or 28, X dimension w, a plain float array as Gatan
// writes it). Readers have nothing else to test that layout with.
func packedFFT(w int64) Option { return func(c *writeConfig) { c.packedWidth = w } }

// ErrWrite is wrapped by every error about an Image that cannot be written.
var ErrWrite = errors.New("cannot write DM image")

// dmCode is the ImageData.DataType and the array element type of each dtype.
var dmCode = map[volume.DType][2]int{
	volume.Int16:      {1, typeInt16},
	volume.Float32:    {2, typeFloat32},
	volume.Complex64:  {3, typeFloat32}, // array of struct {float32, float32}
	volume.Uint8:      {6, typeOctet},
	volume.Int32:      {7, typeInt32},
	volume.RGBA8:      {23, typeInt32},
	volume.Int8:       {9, typeInt8},
	volume.Uint16:     {10, typeUint16},
	volume.Uint32:     {11, typeUint32},
	volume.Float64:    {12, typeFloat64},
	volume.Complex128: {13, typeFloat64},
	volume.Bool:       {14, typeBool},
}

// WriteDM3 writes img as a DigitalMicrograph 3 file laid out like the ones
// Gatan software saves: ImageList.0 is a small RGBA thumbnail listed in
// Thumbnails.0.ImageIndex and ImageList.1 is the image, with calibrations,
// ImageTags and Name. Supported dtypes: int8, uint8, int16, uint16, int32,
// uint32, float32, float64, complex64, complex128, bool and rgba8.
func WriteDM3(w io.Writer, img Image, opt ...Option) error {
	cfg := writeConfig{order: binary.LittleEndian, thumbnail: true, version: 3}
	for _, o := range opt {
		o(&cfg)
	}
	e := &encoder{order: cfg.order, version: cfg.version}
	root, err := e.document(img, cfg)
	if err != nil {
		return err
	}
	rootLen := e.groupSize(root)
	hdr := make([]byte, 0, 16)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(cfg.version))
	if cfg.version == 4 {
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(rootLen))
	} else {
		if rootLen > math.MaxUint32 {
			return fmt.Errorf("%w %q: %d bytes exceed DM3's 4 GiB limit", ErrWrite, img.Name, rootLen)
		}
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(rootLen))
	}
	bo := uint32(1)
	if cfg.order == binary.BigEndian {
		bo = 0
	}
	hdr = binary.BigEndian.AppendUint32(hdr, bo)
	bw := &errWriter{w: w}
	bw.write(hdr)
	e.writeGroup(bw, root)
	bw.write(make([]byte, 8)) // Gatan files end with 8 zero bytes
	return bw.err
}

// node is a tag being written: a group with kids, or data with type words
// and a payload already in the output byte order.
type node struct {
	name  string
	group bool
	kids  []*node
	info  []uint64
	data  []byte
}

type encoder struct {
	order   binary.ByteOrder
	version int
}

func (e *encoder) word() int64 {
	if e.version == 4 {
		return 8
	}
	return 4
}

// groupSize is the byte size of a group body: sorted/open, count, entries.
func (e *encoder) groupSize(g *node) int64 {
	n := 2 + e.word()
	for _, k := range g.kids {
		n += e.entrySize(k)
	}
	return n
}

func (e *encoder) bodySize(t *node) int64 {
	if t.group {
		return e.groupSize(t)
	}
	return 4 + e.word()*int64(1+len(t.info)) + int64(len(t.data))
}

func (e *encoder) entrySize(t *node) int64 {
	n := 3 + int64(len(t.name)) + e.bodySize(t)
	if e.version == 4 {
		n += 8
	}
	return n
}

func (e *encoder) putWord(w *errWriter, v uint64) {
	if e.version == 4 {
		w.write(binary.BigEndian.AppendUint64(nil, v))
	} else {
		w.write(binary.BigEndian.AppendUint32(nil, uint32(v)))
	}
}

func (e *encoder) writeGroup(w *errWriter, g *node) {
	w.write([]byte{1, 0}) // sorted, closed
	e.putWord(w, uint64(len(g.kids)))
	for _, k := range g.kids {
		kind := byte(21)
		if k.group {
			kind = 20
		}
		w.write([]byte{kind, byte(len(k.name) >> 8), byte(len(k.name))})
		w.write([]byte(k.name))
		if e.version == 4 {
			w.write(binary.BigEndian.AppendUint64(nil, uint64(e.bodySize(k))))
		}
		if k.group {
			e.writeGroup(w, k)
			continue
		}
		w.write([]byte("%%%%"))
		e.putWord(w, uint64(len(k.info)))
		for _, v := range k.info {
			e.putWord(w, v)
		}
		w.write(k.data)
	}
}

// document builds the root tag group.
func (e *encoder) document(img Image, cfg writeConfig) (*node, error) {
	codes, ok := dmCode[img.DType]
	if !ok {
		return nil, fmt.Errorf("%w %q: dtype %q", ErrWrite, img.Name, img.DType)
	}
	rank := len(img.Shape)
	if rank < 1 || rank > 4 {
		return nil, fmt.Errorf("%w %q: rank %d (want 1 to 4)", ErrWrite, img.Name, rank)
	}
	for _, s := range img.Shape {
		if s < 1 || s > math.MaxUint32 {
			return nil, fmt.Errorf("%w %q: shape %v", ErrWrite, img.Name, img.Shape)
		}
	}
	if want := volume.Prod(img.Shape) * int64(img.DType.Size()); int64(len(img.Data)) != want {
		return nil, fmt.Errorf("%w %q: %d data bytes for %v %s (%d)", ErrWrite, img.Name, len(img.Data), img.Shape, img.DType, want)
	}
	for _, l := range []int{len(img.Scales), len(img.Units), len(img.Origins)} {
		if l != 0 && l != rank {
			return nil, fmt.Errorf("%w %q: %d calibration entries for rank %d", ErrWrite, img.Name, l, rank)
		}
	}
	if cfg.packedWidth > 0 && (img.DType != volume.Complex64 && img.DType != volume.Complex128 ||
		rank != 2 || img.Shape[1] != cfg.packedWidth/2+1) {
		return nil, fmt.Errorf("%w %q: %s%v is not the packed half plane of a %d-wide image", ErrWrite, img.Name, img.DType, img.Shape, cfg.packedWidth)
	}
	tags, err := e.imageTags(img, !cfg.bare)
	if err != nil {
		return nil, err
	}
	dims := make([]int64, rank) // DM order: X first
	cal := make([]*node, rank)
	for i := 0; i < rank; i++ {
		c := rank - 1 - i
		dims[i] = img.Shape[c]
		scale, origin, unit := 1.0, 0.0, ""
		if img.Scales != nil {
			scale = img.Scales[c]
		}
		if img.Origins != nil {
			origin = img.Origins[c]
		}
		if img.Units != nil {
			unit = img.Units[c]
		}
		cal[i] = group("", e.f32("Origin", origin), e.f32("Scale", scale), e.text("Units", unit))
	}
	code, pixels, depth := codes[0], e.pixels(img.DType, codes[1], img.Data), img.DType.Size()
	if cfg.packedWidth > 0 {
		depth /= 2 // Gatan gives the depth of one part for packed data
		code = 27
		if img.DType == volume.Complex128 {
			code = 28
		}
		dims[0] = cfg.packedWidth
		pixels.info = []uint64{typeArray, uint64(codes[1]), uint64(2 * len(img.Data) / img.DType.Size())}
	}
	image := group("",
		group("ImageData",
			group("Calibrations",
				group("Brightness", e.f32("Origin", 0), e.f32("Scale", 1), e.text("Units", "")),
				group("Dimension", cal...),
				e.scalar("DisplayCalibratedUnits", typeBool, 1),
			),
			pixels,
			e.scalar("DataType", typeInt32, uint64(code)),
			e.dimensions(dims),
			e.scalar("PixelDepth", typeUint32, uint64(depth)),
		),
		tags,
		e.text("Name", img.Name),
	)
	list := group("ImageList", image)
	root := group("", list)
	if cfg.thumbnail {
		th, w, h := e.thumbnail(img)
		list.kids = []*node{th, image}
		root.kids = append(root.kids, group("Thumbnails",
			group("", e.scalar("ImageIndex", typeUint32, 0), e.dimensionsNamed("SourceSize_Pixels", []int64{w, h}))))
	}
	return root, nil
}

// imageTags merges the defaults (when asked for), the z spacing and img.Tags
// into a tree.
func (e *encoder) imageTags(img Image, defaults bool) (*node, error) {
	flat := map[string]any{
		"DataBar.Acquisition Date":                "11.06.2018",
		"DataBar.Acquisition Time":                "22:27:16",
		"Microscope Info.Voltage":                 1900.0,
		"Microscope Info.Indicated Magnification": 2159.0,
		"Microscope Info.Microscope":              "FEI Quanta",
	}
	if !defaults {
		clear(flat)
	}
	if img.ZSpacing > 0 {
		unit := img.ZUnit
		if unit == "" {
			unit = "nm"
		}
		p := fmt.Sprintf("Meta Data.Dimension info.%d.", len(img.Shape))
		flat[p+"Scale"] = img.ZSpacing
		flat[p+"Units"] = unit
	}
	for k, v := range img.Tags {
		if v == nil {
			delete(flat, k)
			continue
		}
		flat[k] = v
	}
	root := group("ImageTags")
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		segs := strings.Split(k, ".")
		g := root
		for _, s := range segs[:len(segs)-1] {
			g = g.child(s)
			if g == nil {
				return nil, fmt.Errorf("%w %q: tag %q is both a value and a group", ErrWrite, img.Name, k)
			}
		}
		leaf, err := e.value(segs[len(segs)-1], flat[k])
		if err != nil {
			return nil, fmt.Errorf("%w %q: tag %q: %w", ErrWrite, img.Name, k, err)
		}
		for _, c := range g.kids {
			if c.name == leaf.name {
				return nil, fmt.Errorf("%w %q: tag %q is both a value and a group", ErrWrite, img.Name, k)
			}
		}
		g.kids = append(g.kids, leaf)
	}
	sortTree(root)
	return root, nil
}

// child returns the subgroup name of g, creating it; nil when name is data.
func (g *node) child(name string) *node {
	for _, c := range g.kids {
		if c.name == name {
			if !c.group {
				return nil
			}
			return c
		}
	}
	c := group(name)
	g.kids = append(g.kids, c)
	return c
}

// sortTree orders named entries like DigitalMicrograph (groups are sorted).
func sortTree(g *node) {
	sort.SliceStable(g.kids, func(i, j int) bool { return g.kids[i].name < g.kids[j].name })
	for _, c := range g.kids {
		if c.group {
			sortTree(c)
		}
	}
}

func (e *encoder) value(name string, v any) (*node, error) {
	switch x := v.(type) {
	case string:
		return e.text(name, x), nil
	case float64:
		return e.scalar(name, typeFloat64, math.Float64bits(x)), nil
	case float32:
		return e.scalar(name, typeFloat32, uint64(math.Float32bits(x))), nil
	case int:
		if x < math.MinInt32 || x > math.MaxInt32 {
			return nil, fmt.Errorf("int %d does not fit int32", x)
		}
		return e.scalar(name, typeInt32, uint64(uint32(int32(x)))), nil
	case int32:
		return e.scalar(name, typeInt32, uint64(uint32(x))), nil
	case int16:
		return e.scalar(name, typeInt16, uint64(uint16(x))), nil
	case uint16:
		return e.scalar(name, typeUint16, uint64(x)), nil
	case uint32:
		return e.scalar(name, typeUint32, uint64(x)), nil
	case bool:
		b := uint64(0)
		if x {
			b = 1
		}
		return e.scalar(name, typeBool, b), nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func group(name string, kids ...*node) *node { return &node{name: name, group: true, kids: kids} }

// scalar encodes a simple value from its bit pattern.
func (e *encoder) scalar(name string, typ int, bits uint64) *node {
	b := make([]byte, elemSize(uint64(typ)))
	switch len(b) {
	case 1:
		b[0] = byte(bits)
	case 2:
		e.order.PutUint16(b, uint16(bits))
	case 4:
		e.order.PutUint32(b, uint32(bits))
	case 8:
		e.order.PutUint64(b, bits)
	}
	return &node{name: name, info: []uint64{uint64(typ)}, data: b}
}

func (e *encoder) f32(name string, v float64) *node {
	return e.scalar(name, typeFloat32, uint64(math.Float32bits(float32(v))))
}

// text encodes a string the way DM does: an array of UTF-16 code units.
func (e *encoder) text(name, s string) *node {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		e.order.PutUint16(b[2*i:], c)
	}
	return &node{name: name, info: []uint64{typeArray, typeUint16, uint64(len(u))}, data: b}
}

func (e *encoder) dimensions(dims []int64) *node {
	g := group("Dimensions")
	for _, d := range dims {
		g.kids = append(g.kids, e.scalar("", typeUint32, uint64(d)))
	}
	return g
}

// dimensionsNamed writes a small uint32 array (SourceSize_Pixels).
func (e *encoder) dimensionsNamed(name string, v []int64) *node {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		e.order.PutUint32(b[4*i:], uint32(x))
	}
	return &node{name: name, info: []uint64{typeArray, typeUint32, uint64(len(v))}, data: b}
}

// pixels encodes the Data array; complex data are arrays of 2-field structs.
func (e *encoder) pixels(dt volume.DType, elemType int, data []byte) *node {
	out := data
	word := dt.Size()
	if dt == volume.Complex64 || dt == volume.Complex128 {
		word /= 2
	}
	if dt == volume.RGBA8 {
		// DM keeps colour as bytes B,G,R,A in every byte order.
		out = make([]byte, len(data))
		for i := 0; i+3 < len(data); i += 4 {
			out[i], out[i+1], out[i+2], out[i+3] = data[i+2], data[i+1], data[i], data[i+3]
		}
	} else if e.order == binary.BigEndian && word > 1 {
		out = make([]byte, len(data))
		for i := 0; i+word <= len(data); i += word {
			for j := 0; j < word; j++ {
				out[i+j] = data[i+word-1-j]
			}
		}
	}
	n := &node{name: "Data", data: out}
	count := uint64(len(data) / dt.Size())
	switch dt {
	case volume.Complex64, volume.Complex128:
		n.info = []uint64{typeArray, typeStruct, 0, 2, 0, uint64(elemType), 0, uint64(elemType), count}
	default:
		n.info = []uint64{typeArray, uint64(elemType), count}
	}
	return n
}

// thumbnail renders a small grey RGBA preview of the first plane, as
// ImageList.0, and returns the source size in pixels (X, Y).
func (e *encoder) thumbnail(img Image) (*node, int64, int64) {
	rank := len(img.Shape)
	sx := img.Shape[rank-1]
	sy := int64(1)
	if rank > 1 {
		sy = img.Shape[rank-2]
	}
	tw := min(sx, 64)
	th := max(1, min(64, sy*tw/sx))
	vals := make([]float64, tw*th)
	lo, hi := math.Inf(1), math.Inf(-1)
	elem := int64(img.DType.Size())
	for y := int64(0); y < th; y++ {
		for x := int64(0); x < tw; x++ {
			i := (y*sy/th)*sx + x*sx/tw
			v := sample(img.DType, img.Data[i*elem:(i+1)*elem])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				v = math.NaN()
			} else {
				lo, hi = min(lo, v), max(hi, v)
			}
			vals[y*tw+x] = v
		}
	}
	px := make([]byte, 4*len(vals))
	for i, v := range vals {
		g := byte(0)
		if hi > lo && !math.IsNaN(v) {
			g = byte(255 * (v - lo) / (hi - lo))
		}
		px[4*i], px[4*i+1], px[4*i+2], px[4*i+3] = g, g, g, 255
	}
	im := group("",
		group("ImageData",
			group("Calibrations",
				group("Brightness", e.f32("Origin", 0), e.f32("Scale", 1), e.text("Units", "")),
				group("Dimension",
					group("", e.f32("Origin", 0), e.f32("Scale", 1), e.text("Units", "")),
					group("", e.f32("Origin", 0), e.f32("Scale", 1), e.text("Units", ""))),
			),
			e.pixels(volume.RGBA8, typeInt32, px),
			e.scalar("DataType", typeInt32, 23),
			e.dimensions([]int64{tw, th}),
			e.scalar("PixelDepth", typeUint32, 4),
		),
		group("ImageTags"),
		e.text("Name", "Image Of "+img.Name),
	)
	return im, sx, sy
}

// sample reads one little-endian element as a number, for the thumbnail.
func sample(dt volume.DType, b []byte) float64 {
	switch dt {
	case volume.Complex64:
		dt = volume.Float32 // the real part
	case volume.Complex128:
		dt = volume.Float64
	case volume.RGBA8:
		return (float64(b[0]) + float64(b[1]) + float64(b[2])) / 3
	}
	v, _ := dt.Value(b)
	return v
}

// errWriter keeps the first write error so encoding code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) write(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}
