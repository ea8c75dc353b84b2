package precomputed

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// maxInfoBytes caps the size of an info object; real ones are a few kB.
const maxInfoBytes = 1 << 20

// maxChunkBytes caps the decoded size of one chunk so a hostile info cannot make
// a reader allocate without bound.
const maxChunkBytes = 1 << 30

// ShardingType is the only sharding "@type" defined.
const ShardingType = "neuroglancer_uint64_sharded_v1"

// Info is the multiscale volume "info" JSON at the root of a precomputed volume.
type Info struct {
	AtType      string  `json:"@type,omitempty"`
	Type        string  `json:"type"`
	DataType    string  `json:"data_type"`
	NumChannels int     `json:"num_channels"`
	Scales      []Scale `json:"scales"`
	Mesh        string  `json:"mesh,omitempty"`
	Skeletons   string  `json:"skeletons,omitempty"`
}

// Scale is one resolution level of an Info. Vectors are in x, y, z order.
type Scale struct {
	Key         string    `json:"key"`
	Size        []int64   `json:"size"`
	Resolution  []float64 `json:"resolution"`
	VoxelOffset []int64   `json:"voxel_offset,omitempty"`
	ChunkSizes  [][]int64 `json:"chunk_sizes"`
	Encoding    string    `json:"encoding"`
	CSBlockSize []int64   `json:"compressed_segmentation_block_size,omitempty"`
	Sharding    *Sharding `json:"sharding,omitempty"`
	JPEGQuality *int      `json:"jpeg_quality,omitempty"`
	PNGLevel    *int      `json:"png_level,omitempty"`
	Hidden      bool      `json:"hidden,omitempty"`
}

// Sharding is the "sharding" object of a scale (neuroglancer_uint64_sharded_v1).
type Sharding struct {
	Type                   string `json:"@type"`
	PreshiftBits           int    `json:"preshift_bits"`
	Hash                   string `json:"hash"`
	MinishardBits          int    `json:"minishard_bits"`
	ShardBits              int    `json:"shard_bits"`
	MinishardIndexEncoding string `json:"minishard_index_encoding,omitempty"`
	DataEncoding           string `json:"data_encoding,omitempty"`
}

// The encodings a scale may declare.
const (
	EncRaw       = "raw"
	EncJPEG      = "jpeg"
	EncPNG       = "png"
	EncCSeg      = "compressed_segmentation"
	EncCompresso = "compresso"
	EncJXL       = "jxl"
)

// errInfo is wrapped by every error about an info that contradicts the
// format; it wraps format.ErrCorrupt.
var errInfo = fmt.Errorf("invalid precomputed info (%w)", format.ErrCorrupt)

// ParseInfo decodes and validates an info JSON document.
func ParseInfo(b []byte) (*Info, error) {
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%w: %v", errInfo, err)
	}
	if err := in.normalize(); err != nil {
		return nil, err
	}
	return &in, nil
}

// dtype maps data_type to a numpy dtype name.
func (in *Info) dtype() volume.DType {
	switch in.DataType {
	case "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32":
		return volume.DType(in.DataType)
	}
	return ""
}

// normalize lower-cases the case-insensitive strings, fills defaults and checks
// every number a reader later multiplies or allocates with.
func (in *Info) normalize() error {
	if in.AtType != "" && in.AtType != "neuroglancer_multiscale_volume" {
		return fmt.Errorf("%w: @type %q", errInfo, in.AtType)
	}
	in.DataType = strings.ToLower(in.DataType)
	if in.dtype() == "" {
		return fmt.Errorf("%w: data_type %q", errInfo, in.DataType)
	}
	in.Type = strings.ToLower(in.Type)
	if in.Type == "" {
		in.Type = "image"
	}
	if in.NumChannels <= 0 || in.NumChannels > 4096 {
		return fmt.Errorf("%w: num_channels %d", errInfo, in.NumChannels)
	}
	if len(in.Scales) == 0 {
		return fmt.Errorf("%w: no scales", errInfo)
	}
	for i := range in.Scales {
		if err := in.Scales[i].normalize(in); err != nil {
			return fmt.Errorf("%w: scale %d (%q): %v", errInfo, i, in.Scales[i].Key, err)
		}
	}
	return nil
}

func (s *Scale) normalize(in *Info) error {
	if s.Key == "" {
		return errors.New("empty key")
	}
	if len(s.Size) != 3 || len(s.Resolution) != 3 {
		return fmt.Errorf("size %v / resolution %v must have 3 elements", s.Size, s.Resolution)
	}
	if s.VoxelOffset == nil {
		s.VoxelOffset = []int64{0, 0, 0}
	}
	if len(s.VoxelOffset) != 3 {
		return fmt.Errorf("voxel_offset %v must have 3 elements", s.VoxelOffset)
	}
	if len(s.ChunkSizes) == 0 || len(s.ChunkSizes[0]) != 3 {
		return fmt.Errorf("chunk_sizes %v: need at least one [x,y,z]", s.ChunkSizes)
	}
	const maxDim = 1 << 40
	elems := uint64(1)
	chunkElems := uint64(in.NumChannels) * uint64(volume.DType(in.DataType).Size())
	for d := 0; d < 3; d++ {
		if s.Size[d] < 0 || s.Size[d] > maxDim {
			return fmt.Errorf("size %v out of range", s.Size)
		}
		c := s.ChunkSizes[0][d]
		if c <= 0 || c > maxDim {
			return fmt.Errorf("chunk size %v out of range", s.ChunkSizes[0])
		}
		if o := s.VoxelOffset[d]; o < -maxDim || o > maxDim {
			return fmt.Errorf("voxel_offset %v out of range", s.VoxelOffset)
		}
		if r := s.Resolution[d]; math.IsNaN(r) || math.IsInf(r, 0) {
			return fmt.Errorf("resolution %v not finite", s.Resolution)
		}
		hi, lo := mul64(elems, uint64(s.Size[d]))
		if hi != 0 || lo > 1<<62 {
			return fmt.Errorf("size %v overflows", s.Size)
		}
		elems = lo
		chunkElems *= uint64(c) // each factor < 2^40 and the product is checked below
		if chunkElems > maxChunkBytes {
			return fmt.Errorf("chunk %v of %d channel(s) exceeds %d bytes", s.ChunkSizes[0], in.NumChannels, maxChunkBytes)
		}
	}
	if hi, lo := mul64(elems, uint64(in.NumChannels)*uint64(volume.DType(in.DataType).Size())); hi != 0 || lo > 1<<62 {
		return fmt.Errorf("size %v overflows", s.Size)
	}
	s.Encoding = strings.ToLower(s.Encoding)
	if s.Encoding == "" {
		s.Encoding = EncRaw
	}
	switch s.Encoding {
	case EncRaw, EncJPEG, EncPNG, EncCSeg, EncCompresso, EncJXL:
	default:
		return fmt.Errorf("unknown encoding %q", s.Encoding)
	}
	if s.Encoding == EncCSeg {
		if len(s.CSBlockSize) != 3 {
			return fmt.Errorf("compressed_segmentation_block_size %v must have 3 elements", s.CSBlockSize)
		}
		for _, b := range s.CSBlockSize {
			if b <= 0 || b > 1<<20 {
				return fmt.Errorf("compressed_segmentation_block_size %v out of range", s.CSBlockSize)
			}
		}
	}
	if sh := s.Sharding; sh != nil {
		if err := sh.normalize(); err != nil {
			return err
		}
		grid := gridSize(s)
		nb := mortonBits(grid)
		if nb[0]+nb[1]+nb[2] > 64 {
			return fmt.Errorf("grid %v needs more than 64 Morton bits", grid)
		}
	}
	return nil
}

func (sh *Sharding) normalize() error {
	if sh.Type != "" && sh.Type != ShardingType {
		return fmt.Errorf("sharding @type %q", sh.Type)
	}
	sh.Type = ShardingType
	sh.Hash = strings.ToLower(sh.Hash)
	if sh.Hash != "identity" && sh.Hash != "murmurhash3_x86_128" {
		return fmt.Errorf("sharding hash %q", sh.Hash)
	}
	if sh.PreshiftBits < 0 || sh.PreshiftBits > 64 || sh.ShardBits < 0 || sh.ShardBits > 64 ||
		sh.MinishardBits < 0 || sh.MinishardBits > 64 || sh.MinishardBits+sh.ShardBits > 64 {
		return fmt.Errorf("sharding bits preshift %d minishard %d shard %d out of range",
			sh.PreshiftBits, sh.MinishardBits, sh.ShardBits)
	}
	// The shard index is 16<<minishard_bits bytes and offsets must fit int64.
	if sh.MinishardBits > 58 {
		return fmt.Errorf("sharding minishard_bits %d: shard index too large to address", sh.MinishardBits)
	}
	for _, e := range []*string{&sh.MinishardIndexEncoding, &sh.DataEncoding} {
		*e = strings.ToLower(*e)
		if *e == "" {
			*e = "raw"
		}
		if *e != "raw" && *e != "gzip" {
			return fmt.Errorf("sharding encoding %q", *e)
		}
	}
	return nil
}

// gridSize is ceil(size/chunk) per axis (x, y, z).
func gridSize(s *Scale) [3]int64 {
	var g [3]int64
	for d := 0; d < 3; d++ {
		c := s.ChunkSizes[0][d]
		g[d] = (s.Size[d] + c - 1) / c
	}
	return g
}

func mul64(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }
