package zarr

import (
	"bytes"
	"fmt"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
)

// compSpec is a resolved WriteOptions compressor: how chunks are encoded and
// how the choice is spelled in Zarr v2 and v3 metadata.
type compSpec struct {
	id    string // codec id as codec.Canonical spells it ("raw" for none)
	level int
	blosc *codec.BloscOptions // set when id is "blosc"
	v2    any                 // .zarray "compressor" (nil: null)
	v3    any                 // v3 bytes→bytes codec (nil: none)
	v3Err error               // why the compressor has no v3 spelling
}

// bloscCName is the internal codec the writer gives Blosc: zstd compresses EM
// data well and every Blosc reader since c-blosc 1.11 has it.
const bloscCName = "zstd"

// compressorSpec resolves opt.Compressor and opt.Level for elements of elem
// bytes. "blosc" and "blosc-zstd" both mean Blosc with zstd and byte shuffle,
// the numcodecs configuration most OME-Zarr writers use; "blosc-lz4" is Blosc
// with lz4 and byte shuffle, the fastest to write and read.
func compressorSpec(cs *codec.Codecs, opt WriteOptions, elem int) (compSpec, error) {
	name := opt.Compressor
	if name == "" {
		name = "zstd"
	}
	cname := bloscCName
	switch name {
	case "blosc-zstd":
		name = "blosc"
	case "blosc-lz4":
		name, cname = "blosc", "lz4"
	}
	c := compSpec{id: codec.Canonical(name), level: opt.Level}
	noV3 := func() {
		c.v3Err = fmt.Errorf("compressor %q has no Zarr v3 codec: %w", opt.Compressor, format.ErrNotSupported)
	}
	switch c.id {
	case "zstd":
		if c.level == 0 {
			c.level = 3
		}
		c.v2 = map[string]any{"id": "zstd", "level": c.level}
		c.v3 = map[string]any{"name": "zstd", "configuration": map[string]any{"level": c.level, "checksum": false}}
	case "gzip", "zlib":
		if c.level == 0 {
			c.level = 6
		}
		c.v2 = map[string]any{"id": c.id, "level": c.level}
		if c.id == "gzip" {
			c.v3 = map[string]any{"name": "gzip", "configuration": map[string]any{"level": c.level}}
		} else {
			noV3()
		}
	case "lz4":
		c.v2 = map[string]any{"id": "lz4", "acceleration": 1}
		noV3()
	case "raw":
	case "blosc":
		if c.level == 0 {
			c.level = 5
		}
		if c.level < 0 || c.level > 9 {
			return c, fmt.Errorf("blosc level %d outside 0-9", c.level)
		}
		c.blosc = &codec.BloscOptions{CName: cname, CLevel: c.level, Shuffle: codec.BloscShuffle, TypeSize: elem}
		if err := checkBlosc(cs, *c.blosc); err != nil {
			return c, err
		}
		c.v2 = map[string]any{"id": "blosc", "cname": cname, "clevel": c.level, "shuffle": codec.BloscShuffle, "blocksize": 0}
		c.v3 = map[string]any{"name": "blosc", "configuration": map[string]any{
			"cname": cname, "clevel": c.level, "shuffle": "shuffle", "typesize": elem, "blocksize": 0,
		}}
	default:
		return c, fmt.Errorf("compressor %q: %w", opt.Compressor, format.ErrNotSupported)
	}
	return c, nil
}

// checkBlosc round-trips a small buffer, so that a codec package without a
// working Blosc encoder (or decoder) fails before any chunk is written rather
// than leaving chunks nobody can read.
func checkBlosc(cs *codec.Codecs, opt codec.BloscOptions) error {
	probe := make([]byte, 4096)
	for i := range probe {
		probe[i] = byte(i / 7)
	}
	enc, err := cs.EncodeBlosc(probe, opt)
	if err != nil {
		return fmt.Errorf("blosc encoder not available: %w", err)
	}
	dec, err := cs.Decode("blosc", enc, len(probe))
	if err != nil {
		return fmt.Errorf("blosc encoder not available: its output does not decode: %w", err)
	}
	if !bytes.Equal(dec, probe) {
		return fmt.Errorf("blosc encoder not available: its output decodes to different bytes")
	}
	return nil
}

// encode compresses one chunk.
func (c compSpec) encode(cs *codec.Codecs, buf []byte) ([]byte, error) {
	if c.blosc != nil {
		return cs.EncodeBlosc(buf, *c.blosc)
	}
	return cs.Encode(c.id, c.level, buf)
}
