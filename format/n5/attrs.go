package n5

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

const (
	// maxAttrBytes bounds one attributes.json; real ones are a few KiB, but
	// some containers keep sizeable user metadata next to the dataset keys.
	maxAttrBytes = 16 << 20
	// maxRank bounds the number of dimensions a dataset may declare.
	maxRank = 32
	// maxBlockBytes bounds one decoded block, so a hostile blockSize cannot
	// make a reader allocate gigabytes.
	maxBlockBytes = 1 << 30
	// maxDim bounds one dimension so that products stay exact in int64.
	maxDim = 1 << 53
)

// attrs is one parsed attributes.json: a JSON object whose values are decoded
// on demand, because a group's attributes may hold arbitrary user keys.
type attrs map[string]json.RawMessage

// parseAttrs parses an attributes.json document.
func parseAttrs(b []byte) (attrs, error) {
	var a attrs
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("attributes are not a JSON object")
	}
	return a, nil
}

// has reports whether key is present and not null.
func (a attrs) has(key string) bool {
	v, ok := a[key]
	return ok && strings.TrimSpace(string(v)) != "null"
}

// get decodes key into v; ok is false when the key is absent or ill-typed.
func (a attrs) get(key string, v any) bool {
	if !a.has(key) {
		return false
	}
	return json.Unmarshal(a[key], v) == nil
}

// isDataset reports whether the attributes describe a dataset.
func (a attrs) isDataset() bool { return a.has("dimensions") && a.has("dataType") }

// isN5 reports whether the attributes carry an N5 marker: a version (root) or
// dataset dimensions.
func (a attrs) isN5() bool { return a.has("n5") || a.has("dimensions") }

// merge returns a copy of a with the keys of o added where a lacks them: o is
// an ancestor whose attributes are defaults for a.
func (a attrs) merge(o attrs) attrs {
	m := make(attrs, len(a)+len(o))
	for k, v := range o {
		m[k] = v
	}
	for k, v := range a {
		m[k] = v
	}
	return m
}

// dataTypes maps N5 dataType names to numpy dtypes.
var dataTypes = map[string]volume.DType{
	"uint8": volume.Uint8, "uint16": volume.Uint16, "uint32": volume.Uint32, "uint64": volume.Uint64,
	"int8": volume.Int8, "int16": volume.Int16, "int32": volume.Int32, "int64": volume.Int64,
	"float32": volume.Float32, "float64": volume.Float64,
}

// compression is a dataset's block compression.
type compression struct {
	Type   string         // N5 type name: raw, gzip, bzip2, lz4, xz, blosc, zstd, ...
	Zlib   bool           // gzip with useZlib
	Params map[string]any // the compression object as written, for the catalog
}

// name is the compression as the catalog reports it.
func (c compression) name() string {
	switch {
	case c.Type == "raw":
		return "none"
	case c.Type == "gzip" && c.Zlib:
		return "zlib"
	}
	return c.Type
}

// datasetAttrs are the keys that make a dataset, validated.
type datasetAttrs struct {
	dims  []int64 // N5 order: fastest-varying first
	block []int64 // N5 order
	dtype volume.DType
	comp  compression
}

// parseDataset validates the dataset keys of a: ranks agree, sizes are
// positive and bounded, and one block fits in maxBlockBytes, all before any
// block buffer is allocated.
func parseDataset(a attrs) (*datasetAttrs, error) {
	var d datasetAttrs
	if err := json.Unmarshal(a["dimensions"], &d.dims); err != nil {
		return nil, fmt.Errorf("dimensions: %w", err)
	}
	if err := json.Unmarshal(a["blockSize"], &d.block); err != nil {
		return nil, fmt.Errorf("blockSize: %w", err)
	}
	if len(d.dims) == 0 || len(d.dims) > maxRank {
		return nil, fmt.Errorf("%d dimensions (want 1 to %d)", len(d.dims), maxRank)
	}
	if len(d.block) != len(d.dims) {
		return nil, fmt.Errorf("blockSize has %d entries for %d dimensions", len(d.block), len(d.dims))
	}
	var typ string
	if err := json.Unmarshal(a["dataType"], &typ); err != nil {
		return nil, fmt.Errorf("dataType: %w", err)
	}
	dt, ok := dataTypes[strings.ToLower(typ)]
	if !ok {
		return nil, fmt.Errorf("dataType %q: %w", typ, errUnsupportedType)
	}
	d.dtype = dt
	elems := int64(1)
	blockElems := int64(1)
	for i := range d.dims {
		if d.dims[i] < 0 || d.dims[i] > maxDim {
			return nil, fmt.Errorf("dimension %d is %d", i, d.dims[i])
		}
		if d.block[i] <= 0 || d.block[i] > maxBlockBytes {
			return nil, fmt.Errorf("blockSize %d is %d", i, d.block[i])
		}
		if d.dims[i] != 0 && elems > math.MaxInt64/8/d.dims[i] {
			return nil, fmt.Errorf("dimensions %v overflow", d.dims)
		}
		elems *= d.dims[i]
		blockElems *= d.block[i]
		if blockElems*int64(dt.Size()) > maxBlockBytes {
			return nil, fmt.Errorf("blockSize %v is more than %d bytes per block", d.block, maxBlockBytes)
		}
	}
	c, err := parseCompression(a)
	if err != nil {
		return nil, err
	}
	d.comp = c
	return &d, nil
}

// errUnsupportedType marks data types the volume seam has no dtype for
// (object, string), reported as format.ErrNotSupported.
var errUnsupportedType = errors.New("data type not supported")

// parseCompression reads the "compression" object, or the pre-1.0
// "compressionType" string; no compression key at all means raw.
func parseCompression(a attrs) (compression, error) {
	if a.has("compression") {
		var obj map[string]any
		if err := json.Unmarshal(a["compression"], &obj); err != nil {
			return compression{}, fmt.Errorf("compression: %w", err)
		}
		typ, _ := obj["type"].(string)
		if typ == "" {
			return compression{}, errors.New("compression has no type")
		}
		c := compression{Type: strings.ToLower(typ), Params: obj}
		c.Zlib, _ = obj["useZlib"].(bool)
		return c, nil
	}
	if a.has("compressionType") {
		var typ string
		if err := json.Unmarshal(a["compressionType"], &typ); err != nil {
			return compression{}, fmt.Errorf("compressionType: %w", err)
		}
		return compression{Type: strings.ToLower(typ), Params: map[string]any{"type": typ}}, nil
	}
	return compression{Type: "raw", Params: map[string]any{"type": "raw"}}, nil
}

// calibration is what the attributes say about physical axes, in N5 order.
type calibration struct {
	names   []string
	scale   []float64
	offset  []float64
	units   []string
	known   bool      // scale comes from the file
	factors []float64 // downsampling factors relative to s0; nil when unknown
}

// parseCalibration derives axis names, units, voxel sizes and offsets for a
// dataset of rank n from its attributes merged with its ancestors'. level is
// the scale index taken from an "s<N>" name, or -1.
//
// Conventions, in order of precedence: N5 Viewer "pixelResolution"
// ({unit, dimensions} or a bare array) with "downsamplingFactors" (or the
// root's "scales" list) — voxel size = resolution × factor and, as n5-ij
// does for averaging downsamplers, offset = resolution × (factor−1)/2;
// otherwise tensorstore/Neuroglancer "resolution" + "units" (+ "axes"),
// also multiplied by the factors.
func parseCalibration(a attrs, n, level int) calibration {
	c := calibration{names: make([]string, n), scale: make([]float64, n), offset: make([]float64, n), units: make([]string, n)}
	var names []string
	if a.get("axes", &names) && len(names) == n {
		copy(c.names, names)
	}
	c.factors = downsampling(a, n, level)
	var res []float64
	centred := false
	var pr struct {
		Unit       string    `json:"unit"`
		Dimensions []float64 `json:"dimensions"`
	}
	var bare []float64
	switch {
	case a.get("pixelResolution", &pr) && len(pr.Dimensions) == n:
		res = pr.Dimensions
		for i := range c.units {
			c.units[i] = pr.Unit
		}
		centred = true
	case a.get("pixelResolution", &bare) && len(bare) == n:
		res = bare
		centred = true
	case a.get("resolution", &res) && len(res) == n:
	default:
		res = nil
	}
	var units []string
	if a.get("units", &units) && len(units) == n {
		copy(c.units, units)
	}
	for i := range n {
		c.scale[i] = 1
	}
	if res == nil {
		return c
	}
	for _, r := range res {
		if !(r > 0) || math.IsInf(r, 0) {
			return c
		}
	}
	c.known = true
	for i := range n {
		f := 1.0
		if c.factors != nil {
			f = c.factors[i]
		}
		c.scale[i] = res[i] * f
		if centred {
			c.offset[i] = res[i] * (f - 1) / 2
		}
	}
	return c
}

// downsampling finds the factors of a dataset relative to s0: its own flat
// "downsamplingFactors", or the level's row of a group-level list
// ("downsamplingFactors" as in BDV N5, or the legacy N5 Viewer "scales").
func downsampling(a attrs, n, level int) []float64 {
	valid := func(f []float64) []float64 {
		if len(f) != n {
			return nil
		}
		for _, v := range f {
			if !(v > 0) || math.IsInf(v, 0) {
				return nil
			}
		}
		return f
	}
	var flat []float64
	if a.get("downsamplingFactors", &flat) {
		return valid(flat)
	}
	var rows [][]float64
	if level >= 0 {
		for _, k := range []string{"downsamplingFactors", "scales"} {
			if a.get(k, &rows) && level < len(rows) {
				return valid(rows[level])
			}
		}
	}
	return nil
}
