package zarr

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// ObjectDType is the Info.DType of a variable-length string array: NumPy's
// name for the object dtype these arrays have in zarr-python. It is not one
// of volume's numeric dtypes (its Size is 0), so such an array cannot be read
// with ReadRegion; it implements StringReader instead.
const ObjectDType volume.DType = "object"

// ErrObjectArray is returned by ReadRegion on a variable-length string
// (object) array, whose elements have no fixed-size byte layout. It wraps
// format.ErrNotSupported.
var ErrObjectArray = fmt.Errorf("variable-length string (object) array has no numeric byte layout: %w", format.ErrNotSupported)

// StringReader is implemented by the volumes of variable-length string
// arrays: Zarr v2 dtype "|O" with the vlen-utf8 or vlen-bytes object codec,
// and Zarr v3 data_type "string" / "bytes" with the codec of the same name.
type StringReader interface {
	// ReadStrings returns the elements of box in C order. vlen-bytes
	// elements are returned byte for byte as Go strings. Absent chunks read
	// as the fill value (see Info.Metadata["fill_string"]).
	ReadStrings(ctx context.Context, box volume.Box) ([]string, error)
}

// Limits for object arrays: their decoded chunk size is not known from the
// metadata, so the codec output is capped, and one ReadStrings call returns
// at most maxStringsPerRead elements.
const (
	maxObjectChunkBytes = 256 << 20
	maxStringsPerRead   = 1 << 24
)

// Object codec ids, v2 filter ids and v3 codec names alike.
const (
	vlenUTF8  = "vlen-utf8"
	vlenBytes = "vlen-bytes"
)

// checksumNote explains, in Metadata["checksum"], why an object array has
// no sha256_16: that checksum is defined over C-order little-endian element
// bytes, which variable-length strings do not have.
const checksumNote = "sha256_16 not computed: variable-length strings have no fixed-size byte layout; read the elements with zarr.StringReader"

// objectSpec is what an array of ObjectDType needs beyond array.
type objectSpec struct {
	codec       string // vlenUTF8 or vlenBytes
	fill        string
	fOrder      bool  // v2 order "F": a chunk's items are listed in Fortran order
	unsupported error // a recognised object layout this reader does not decode
	// load returns the vlen-encoded bytes of chunk idx and a function that
	// releases them, or nil bytes when the chunk is absent.
	load func(ctx context.Context, idx []int64) (data []byte, release func(), err error)
}

// objectArray is the volume of an object array: a StringReader whose
// ReadRegion fails with ErrObjectArray.
type objectArray struct {
	*array
}

var _ StringReader = (*objectArray)(nil)

// ReadRegion implements volume.Volume; it always fails (after the usual
// argument checks) with an error wrapping ErrObjectArray.
func (o *objectArray) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(o.info, box, dst); err != nil {
		return err
	}
	return fmt.Errorf("zarr %q (%s, %s): %w; use ReadStrings (zarr.StringReader)", o.info.Name, o.dt.zarr, o.obj.codec, ErrObjectArray)
}

// ReadStrings implements StringReader: the chunks the box touches are read
// and decoded concurrently (at most maxInFlight at a time).
func (o *objectArray) ReadStrings(ctx context.Context, box volume.Box) ([]string, error) {
	if err := box.Within(o.info.Shape); err != nil {
		return nil, fmt.Errorf("zarr %q: %w", o.info.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := box.NumElements()
	if n > maxStringsPerRead {
		return nil, fmt.Errorf("zarr %q: box %v holds %d elements, more than the %d one ReadStrings returns", o.info.Name, box, n, maxStringsPerRead)
	}
	if o.obj.unsupported != nil {
		return nil, fmt.Errorf("zarr %q: %w", o.info.Name, o.obj.unsupported)
	}
	out := make([]string, n)
	if n == 0 {
		return out, nil
	}
	cellN := int(volume.Prod(o.grid))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxInFlight)
	err := volume.Grid(o.info.Shape, o.grid, box, func(idx []int64, region volume.Box) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			cell, err := o.readCell(gctx, idx, cellN)
			if err != nil {
				return fmt.Errorf("zarr %q: %w", o.info.Name, err)
			}
			copyStrings(out, box, cell, idx, o.grid, region, o.obj.fOrder, o.obj.fill)
			return nil
		})
		return nil
	})
	if werr := g.Wait(); werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readCell decodes chunk idx into its n elements in storage order, or nil
// when the chunk is absent.
func (o *objectArray) readCell(ctx context.Context, idx []int64, n int) ([]string, error) {
	data, release, err := o.obj.load(ctx, idx)
	if err != nil || data == nil {
		return nil, err
	}
	defer release()
	cell, err := decodeVLen(data, n, o.obj.codec == vlenUTF8)
	if err != nil {
		return nil, fmt.Errorf("chunk %v: %s: %w", idx, o.obj.codec, err)
	}
	return cell, nil
}

// copyStrings stores the elements of region (part of the chunk at grid
// index idx, whose items are cell in C or Fortran order, or absent when cell
// is nil) at their places in out, laid out in C order over box.
func copyStrings(out []string, box volume.Box, cell []string, idx, grid []int64, region volume.Box, fOrder bool, fill string) {
	n := len(idx)
	if n == 0 {
		if cell != nil {
			out[0] = cell[0]
		} else {
			out[0] = fill
		}
		return
	}
	ostr := make([]int64, n) // out strides over box
	cstr := make([]int64, n) // cell strides in storage order
	acc := int64(1)
	for i := n - 1; i >= 0; i-- {
		ostr[i] = acc
		acc *= box.Stop[i] - box.Start[i]
	}
	acc = 1
	if fOrder {
		for i := 0; i < n; i++ {
			cstr[i] = acc
			acc *= grid[i]
		}
	} else {
		for i := n - 1; i >= 0; i-- {
			cstr[i] = acc
			acc *= grid[i]
		}
	}
	volume.Each(region, func(p []int64) error {
		var o, c int64
		for i := 0; i < n; i++ {
			o += (p[i] - box.Start[i]) * ostr[i]
			c += (p[i] - idx[i]*grid[i]) * cstr[i]
		}
		if cell != nil {
			out[o] = cell[c]
		} else {
			out[o] = fill
		}
		return nil
	})
}

// decodeVLen decodes the numcodecs VLenUTF8 / VLenBytes layout: a uint32
// little-endian item count, then per item a uint32 little-endian length and
// that many bytes. The count must be n (a chunk's element count) and the
// items must use up b exactly; with checkUTF8 every item must be valid UTF-8.
// Every count and length is checked against the bytes that remain before
// anything is allocated for it.
func decodeVLen(b []byte, n int, checkUTF8 bool) ([]string, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%d bytes, short of the 4-byte item count", len(b))
	}
	count := binary.LittleEndian.Uint32(b)
	if uint64(count) != uint64(n) {
		return nil, fmt.Errorf("holds %d items, the chunk has %d elements", count, n)
	}
	if uint64(count) > uint64(len(b)-4)/4 {
		return nil, fmt.Errorf("%d items cannot fit their lengths in %d bytes", count, len(b)-4)
	}
	out := make([]string, n)
	off := 4
	for i := range out {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("item %d: length missing at offset %d of %d", i, off, len(b))
		}
		l := binary.LittleEndian.Uint32(b[off:])
		off += 4
		if uint64(l) > uint64(len(b)-off) {
			return nil, fmt.Errorf("item %d: length %d at offset %d overruns the %d-byte chunk", i, l, off-4, len(b))
		}
		s := b[off : off+int(l)]
		off += int(l)
		if checkUTF8 && !utf8.Valid(s) {
			return nil, fmt.Errorf("item %d: not valid UTF-8", i)
		}
		out[i] = string(s)
	}
	if off != len(b) {
		return nil, fmt.Errorf("%d bytes after the last of %d items", len(b)-off, n)
	}
	return out, nil
}

// objectChunkLimit is the largest decoded chunk accepted for an object
// array whose chunks hold elems elements; it errs when even empty strings
// would not fit.
func objectChunkLimit(elems int64) (int, error) {
	min := 4 + 4*elems
	if elems > maxObjectChunkBytes/4 || min > maxObjectChunkBytes {
		return 0, fmt.Errorf("chunks of %d object elements exceed the %d-byte object chunk limit", elems, maxObjectChunkBytes)
	}
	return maxObjectChunkBytes, nil
}

// parseObjectFill turns an object array's fill_value into the string absent
// elements read as. null (numcodecs' None) reads as "" as VLenUTF8 encodes
// None; a JSON string is the fill itself, base64-decoded for v3 byte
// strings (zarr-python 3); any other JSON value (zarr-python 2 writes the
// number 0 when no fill is given) reads as its JSON text.
func parseObjectFill(raw json.RawMessage, base64Bytes bool) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("fill_value %s: %w", compact(raw), err)
		}
		return string(raw), nil
	}
	if base64Bytes {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("fill_value %q: not base64: %w", s, err)
		}
		return string(b), nil
	}
	return s, nil
}

// objectMetadata adds what an object array's Metadata says about it.
func objectMetadata(a *array) {
	md := a.info.Metadata
	md["object_codec"] = a.obj.codec
	md["fill_string"] = a.obj.fill
	md["checksum"] = checksumNote
	if a.obj.unsupported != nil {
		md["unsupported"] = a.obj.unsupported.Error()
	}
}

// setupV2Object makes a (opened from .zarray with dtype "|O") read its
// object codec from the filters: exactly one, vlen-utf8 or vlen-bytes.
// Other object codecs (json2, pickle, msgpack2, vlen-array) leave the array
// listed but unreadable.
func setupV2Object(a *array, z *zarray, comp *compressor, prefix string) error {
	a.info.DType = ObjectDType
	a.obj = &objectSpec{fOrder: z.Order == "F" && len(z.Shape) > 1}
	var list []struct {
		ID string `json:"id"`
	}
	if f := bytes.TrimSpace(z.Filters); len(f) > 0 && string(f) != "null" {
		if err := json.Unmarshal(f, &list); err != nil {
			return fmt.Errorf("filters %s: %w", compact(f), err)
		}
		a.info.Metadata["filters"] = compact(f)
	}
	switch {
	case len(list) == 0:
		a.obj.unsupported = fmt.Errorf("dtype |O without an object codec in filters: %w", format.ErrNotSupported)
	case list[0].ID != vlenUTF8 && list[0].ID != vlenBytes:
		a.obj.unsupported = fmt.Errorf("object codec %q (only vlen-utf8 and vlen-bytes are read): %w", list[0].ID, format.ErrNotSupported)
	case len(list) > 1:
		a.obj.unsupported = fmt.Errorf("filters after the object codec %q: %w", list[0].ID, format.ErrNotSupported)
	default:
		a.obj.codec = list[0].ID
	}
	if a.obj.codec == "" && len(list) > 0 {
		a.obj.codec = list[0].ID
	}
	fill, err := parseObjectFill(z.FillValue, false)
	if err != nil {
		return err
	}
	a.obj.fill = fill
	limit, err := objectChunkLimit(volume.Prod(z.Chunks))
	if err != nil {
		return err
	}
	a.obj.load = func(ctx context.Context, idx []int64) ([]byte, func(), error) {
		key := join(prefix, chunkName(idx, z.DimensionSeparator))
		bp := a.rawBuf()
		release := func() { a.raws.Put(bp) }
		raw, err := readChunk(ctx, a.st, key, storedLimit(limit), bp)
		if raw == nil || err != nil {
			release()
			return nil, nil, err
		}
		if codec.Canonical(comp.ID) == "raw" {
			return raw, release, nil
		}
		defer release()
		out, err := runCodec(a.codecs, comp.ID, key, raw, limit)
		return out, func() {}, err
	}
	objectMetadata(a)
	return nil
}

// parseV3ObjectDType recognises the variable-length v3 data types and
// returns the codec each needs: "string" (vlen-utf8) and "bytes" (vlen-bytes;
// zarr-python 3.0 named it "variable_length_bytes").
func parseV3ObjectDType(name string) (string, bool) {
	switch name {
	case "string", "variable_length_utf8":
		return vlenUTF8, true
	case "bytes", "variable_length_bytes":
		return vlenBytes, true
	}
	return "", false
}

// setupV3Object makes a (a v3 array of a variable-length data type) read
// its chunks: the first codec must be the data type's vlen codec, and the
// rest bytes→bytes codecs (gzip, zstd, blosc, crc32c). Sharding and
// transpose leave the array listed but unreadable.
func setupV3Object(a *array, z *zarrJSON, want string, keyOf func([]int64) string) error {
	a.info.DType = ObjectDType
	a.obj = &objectSpec{codec: want}
	var names, bb []string
	for _, raw := range z.Codecs {
		name, _, err := extName(raw)
		if err != nil {
			return fmt.Errorf("codecs: %w", err)
		}
		names = append(names, name)
	}
	a.info.Metadata["codecs"] = names
	if len(names) == 0 || names[0] != want {
		a.obj.unsupported = fmt.Errorf("data_type %s with codecs %v (want %s first): %w", a.dt.zarr, names, want, format.ErrNotSupported)
	}
	a.info.Compression = "none"
	for _, name := range names[min(1, len(names)):] {
		switch name {
		case "gzip", "zstd", "blosc", "crc32c":
			bb = append(bb, name)
			if name != "crc32c" && a.info.Compression == "none" {
				a.info.Compression = name
			}
		default:
			if a.obj.unsupported == nil {
				a.obj.unsupported = fmt.Errorf("codec %q after %s: %w", name, want, format.ErrNotSupported)
			}
		}
	}
	fill, err := parseObjectFill(z.FillValue, want == vlenBytes)
	if err != nil {
		return err
	}
	a.obj.fill = fill
	limit, err := objectChunkLimit(volume.Prod(a.grid))
	if err != nil {
		return err
	}
	a.obj.load = func(ctx context.Context, idx []int64) ([]byte, func(), error) {
		key := keyOf(idx)
		bp := a.rawBuf()
		release := func() { a.raws.Put(bp) }
		raw, err := readChunk(ctx, a.st, key, storedLimit(limit), bp)
		if raw == nil || err != nil {
			release()
			return nil, nil, err
		}
		b := raw
		for i := len(bb) - 1; i >= 0; i-- {
			if bb[i] == "crc32c" {
				if b, err = checkCRC32C(key, b); err != nil {
					release()
					return nil, nil, err
				}
				continue
			}
			if b, err = runCodec(a.codecs, bb[i], key, b, limit); err != nil {
				release()
				return nil, nil, err
			}
		}
		return b, release, nil
	}
	objectMetadata(a)
	return nil
}

// checkCRC32C strips and verifies the crc32c codec's 4-byte trailer.
func checkCRC32C(key string, b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("chunk %q: too short for its crc32c", key)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return nil, fmt.Errorf("chunk %q: crc32c mismatch", key)
	}
	return body, nil
}

// asVolume wraps string arrays, variable-length and fixed-size, so that
// they are StringReaders.
func asVolume(a *array) volume.Volume {
	switch {
	case a.obj != nil:
		return &objectArray{a}
	case a.dt.chars > 0:
		return &fixedStringArray{a}
	}
	return a
}
