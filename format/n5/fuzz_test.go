package n5

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/volume"
)

var fuzzCompressions = []string{"raw", "gzip", "bzip2", "lz4", "xz", "zstd", "blosc", "zlib"}

var fuzzTypes = []volume.DType{volume.Uint8, volume.Uint16, volume.Uint32, volume.Uint64}

// corpusFile reads a corpus file for seeding, or nil when absent.
func corpusFile(f *testing.F, rel string) []byte {
	b, err := os.ReadFile(filepath.Join(corpus.Dir(f), filepath.FromSlash(rel)))
	if err != nil {
		return nil
	}
	return b
}

// FuzzBlockHeader decodes arbitrary bytes as a block of a small dataset: the
// header parse, the check against the dataset and every decompressor must
// fail cleanly, never panic or allocate past the declared block size.
func FuzzBlockHeader(f *testing.F) {
	// comp selects the compression, dt the element type (low 2 bits), the
	// rank (bits 4–5) and whether the block is a truncated edge (bit 2).
	f.Add(blockBytes(modeDefault, []uint32{3, 2}, 0, be16(1, 2, 3, 4, 5, 6)), uint8(0), uint8(0x11), uint16(3), uint16(2), uint16(1))
	f.Add(blockBytes(modeVarLength, []uint32{3, 2}, 6, be16(1, 2, 3, 4, 5, 6)), uint8(0), uint8(0x11), uint16(3), uint16(2), uint16(1))
	f.Add(blockBytes(modeDefault, []uint32{4}, 0, []byte{1, 2, 3, 4}), uint8(0), uint8(0x00), uint16(4), uint16(0), uint16(0))
	if enc, err := encodeLZ4Java(make([]byte, 6), 0); err == nil {
		f.Add(blockBytes(modeDefault, []uint32{3, 2}, 0, enc), uint8(3), uint8(0x10), uint16(3), uint16(2), uint16(1))
	}
	cs := codec.New()
	if gz, err := cs.Encode("gzip", 0, make([]byte, 12)); err == nil {
		f.Add(blockBytes(modeDefault, []uint32{3, 2}, 0, gz), uint8(1), uint8(0x11), uint16(3), uint16(2), uint16(1))
	}
	seeds := []struct {
		path     string
		comp, dt uint8
		b        [3]uint16
	}{
		{"n5/tensorstore/gzip/0/0", 1, 0x11, [3]uint16{3, 2, 1}},
		{"n5/tensorstore/gzip/1/1", 1, 0x15, [3]uint16{3, 2, 1}},
		{"n5/tensorstore/raw/1/1", 0, 0x15, [3]uint16{3, 2, 1}},
		{"n5/tensorstore/xz/0/1", 4, 0x11, [3]uint16{3, 2, 1}},
		{"n5/zarr_implementations/n5-java.n5/lz4/0/0/0", 3, 0x20, [3]uint16{1, 100, 100}},
		{"n5/zarr_implementations/n5-java.n5/lz4/0/5/5", 3, 0x24, [3]uint16{1, 100, 100}},
		{"n5/zarr_implementations/n5-java.n5/bzip2/2/5/5", 2, 0x24, [3]uint16{1, 100, 100}},
		{"n5/zarr_implementations/z5py.n5/gzip/1/2/3", 1, 0x20, [3]uint16{1, 100, 100}},
	}
	for _, s := range seeds {
		if b := corpusFile(f, s.path); b != nil {
			f.Add(b, s.comp, s.dt, s.b[0], s.b[1], s.b[2])
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, comp, dt uint8, b0, b1, b2 uint16) {
		rank := 1 + int(dt>>4)%3
		block := []int64{int64(b0%128) + 1, int64(b1%128) + 1, int64(b2%128) + 1}[:rank]
		need := append([]int64(nil), block...)
		if dt&4 != 0 {
			for i := range need {
				need[i] = max(1, need[i]-2)
			}
		}
		c := compression{Type: fuzzCompressions[int(comp)%len(fuzzCompressions)]}
		if c.Type == "zlib" {
			c = compression{Type: "gzip", Zlib: true}
		}
		meta := &datasetAttrs{dims: need, block: block, dtype: fuzzTypes[dt&3], comp: c}
		rawCopy := append([]byte(nil), raw...) // raw blocks are swapped in place
		data, hdims, err := decodeBlock(cs, meta, need, raw)
		// The pooled path decodes into a reused full-block buffer and must
		// agree with the allocating one.
		full := volume.Prod(block) * int64(meta.dtype.Size())
		out := make([]byte, 0, full+decodeSlack)
		data2, _, err2 := decodeBlockInto(cs, meta, need, rawCopy, out)
		if (err == nil) != (err2 == nil) || !bytes.Equal(data, data2) {
			t.Fatalf("decodeBlockInto: %v, decodeBlock: %v (equal data %v)", err2, err, bytes.Equal(data, data2))
		}
		if err != nil {
			return
		}
		area := int64(1)
		for i, d := range hdims {
			if d < need[i] || d > block[i] {
				t.Fatalf("accepted dims %v for need %v block %v", hdims, need, block)
			}
			area *= d
		}
		if int64(len(data)) != area*int64(meta.dtype.Size()) {
			t.Fatalf("decoded %d bytes for dims %v", len(data), hdims)
		}
	})
}

// FuzzAttributes parses arbitrary attributes.json documents as a dataset and
// as calibration: validation must hold before anything is allocated, and
// calibration must always give finite, usable values.
func FuzzAttributes(f *testing.F) {
	for _, s := range []string{
		`{"n5":"2.0.0"}`,
		`{"dimensions":[5,4],"blockSize":[3,2],"dataType":"uint16","compression":{"type":"gzip","level":1,"useZlib":false}}`,
		`{"dimensions":[3,512,512],"blockSize":[1,100,100],"dataType":"uint8","compressionType":"bzip2"}`,
		`{"axes":["x","y"],"units":["nm","s"],"resolution":[10,20],"scales":[[1,1],[2,2],[4,4]]}`,
		`{"dimensions":[8,8,8],"blockSize":[4,4,4],"dataType":"float32","downsamplingFactors":[2,2,1],"pixelResolution":{"unit":"um","dimensions":[0.1,0.1,0.2]}}`,
		`{"dimensions":[8,8],"blockSize":[4,4],"dataType":"int64","pixelResolution":[1,2],"downsamplingFactors":[[1,1],[2,2]]}`,
		`{"dimensions":[1e300],"blockSize":[-1],"dataType":7}`,
		`[]`, `null`, `{"dimensions":null}`,
	} {
		f.Add([]byte(s), uint8(1))
	}
	for _, p := range []string{
		"n5/tensorstore/xz/attributes.json",
		"n5/neuroglancer/n5_viewer_multiscale_deprecated/attributes.json",
		"n5/neuroglancer/n5_viewer_multiscale_deprecated/s1/attributes.json",
		"n5/zarr_implementations/n5-java.n5/lz4/attributes.json",
	} {
		if b := corpusFile(f, p); b != nil {
			f.Add(b, uint8(1))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, level uint8) {
		a, err := parseAttrs(b)
		if err != nil {
			return
		}
		_ = a.isN5()
		m := a.merge(attrs{"n5": json.RawMessage(`"2.0.0"`)})
		n := 3
		if a.isDataset() {
			d, err := parseDataset(a)
			if err == nil {
				n = len(d.dims)
				blockBytes := volume.Prod(d.block) * int64(d.dtype.Size())
				if n == 0 || n > maxRank || blockBytes <= 0 || blockBytes > maxBlockBytes {
					t.Fatalf("accepted dims %v block %v", d.dims, d.block)
				}
				if d.comp.Type == "" || strings.ToLower(d.comp.Type) != d.comp.Type {
					t.Fatalf("compression type %q", d.comp.Type)
				}
			}
		}
		c := parseCalibration(m, n, int(level%8)-1)
		for i := range n {
			if c.known && !(c.scale[i] > 0) {
				t.Fatalf("known scale %v", c.scale)
			}
			if c.scale[i] != c.scale[i] || c.offset[i] != c.offset[i] {
				t.Fatalf("NaN calibration %v %v", c.scale, c.offset)
			}
		}
	})
}
