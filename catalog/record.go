// Package catalog builds the consolidated metadata table: one typed record per
// array (a file's series, a DM dataset, a zarr array, a precomputed scale, a
// crop), with axes normalised to z, y, x (plus c, t), every physical value
// traced to where it came from, and disagreements between sources listed.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// SchemaVersion is written into every output so readers can tell layouts apart.
const SchemaVersion = 1

// Provenance labels for *_source columns.
const (
	FromFile     = "file"
	FromAPI      = "api"
	FromWebPage  = "web page"
	FromManifest = "manifest"
	FromState    = "neuroglancer state"
)

// Record is one row of the table. Pointers and empty strings mean "missing":
// the table never guesses.
type Record struct {
	SchemaVersion int    `json:"schema_version"`
	Dataset       string `json:"dataset"`
	Array         string `json:"array"`
	SourceURL     string `json:"source_url"`
	LocalPath     string `json:"local_path"` // relative to the output directory
	Format        string `json:"format"`
	Status        string `json:"status"` // StatusOK, or another status value followed by ": " and the reason

	DType string `json:"dtype,omitempty"`
	NDim  int    `json:"ndim,omitempty"`
	// Shape and chunking per normalised axis (0 when the axis is absent).
	ShapeZ, ShapeY, ShapeX, ShapeC, ShapeT int64 `json:"-"`
	ChunkZ, ChunkY, ChunkX                 int64 `json:"-"`
	Compression                            string

	VoxelZ, VoxelY, VoxelX    *float64 `json:"-"` // nanometres
	VoxelSource               string   `json:"voxel_size_source,omitempty"`
	Isotropic                 *bool    `json:"isotropic,omitempty"`
	OffsetZ, OffsetY, OffsetX *float64 `json:"-"` // nanometres, physical position of index 0

	ScaleLevel   *int     `json:"scale_level,omitempty"`
	Downsampling string   `json:"downsampling,omitempty"` // e.g. "2,2,2"
	CropOrigin   []int64  `json:"crop_origin,omitempty"`  // z,y,x in source voxels
	CropSeed     *int64   `json:"crop_seed,omitempty"`
	FileBytes    *int64   `json:"file_bytes,omitempty"`
	Uncompressed *int64   `json:"uncompressed_bytes,omitempty"`
	SHA256       string   `json:"sha256,omitempty"` // of the file(s) on disk
	ValueMin     *float64 `json:"value_min,omitempty"`
	ValueMax     *float64 `json:"value_max,omitempty"`
	ValueMean    *float64 `json:"value_mean,omitempty"`
	ValueSample  string   `json:"value_sample,omitempty"` // how min/max/mean were sampled

	Microscope      string   `json:"microscope,omitempty"`
	VoltageKV       *float64 `json:"voltage_kv,omitempty"`
	Magnification   *float64 `json:"magnification,omitempty"`
	AcquisitionDate string   `json:"acquisition_date,omitempty"`
	Modality        string   `json:"modality,omitempty"`
	Specimen        string   `json:"specimen,omitempty"`
	DOI             string   `json:"doi,omitempty"`
	License         string   `json:"license,omitempty"`
	Title           string   `json:"title,omitempty"`
	MetadataSource  string   `json:"metadata_source,omitempty"`
	Conflicts       []string `json:"conflicts,omitempty"`
	Notes           []string `json:"notes,omitempty"`

	// Metadata is the full per-array metadata tree (catalog.json only).
	Metadata map[string]any `json:"metadata,omitempty"`
}

// The values of Record.Status. Every status but StatusOK is followed by ": "
// and the reason, e.g. `corrupt: tiff "a.tif": page 57 strip 3 at offset
// 1048576+65536 lies past end of file (786432 bytes): corrupt data`.
const (
	// StatusOK: the array was opened (and its values sampled when asked).
	StatusOK = "ok"
	// StatusNotSupported: the format, or a feature of it, is recognised but
	// not read yet (format.ErrNotSupported). The run does not fail for it.
	StatusNotSupported = "not yet supported"
	// StatusCorrupt: the bytes contradict their format (format.ErrCorrupt,
	// the same value as store.ErrCorrupt): a truncated file, an offset or a
	// chunk past the end, a chunk that decodes to the wrong size, malformed
	// metadata. Reading again will not help.
	StatusCorrupt = "corrupt"
	// StatusError: any other failure to open or read the array, such as a
	// failing store.
	StatusError = "error"
)

// NoteStale begins the note of a row an earlier run of the output directory
// wrote and the last run kept without refreshing it: its dataset failed, or
// its source no longer lists the file. The status still says whether the
// array on disk reads; the note says the source may have moved on since.
const NoteStale = "stale: "

// StatusOf is the status of an array that could not be opened or read
// because of err.
func StatusOf(err error) string {
	switch {
	case errors.Is(err, format.ErrNotSupported):
		return StatusNotSupported + ": " + err.Error()
	case errors.Is(err, format.ErrCorrupt):
		return StatusCorrupt + ": " + err.Error()
	}
	return StatusError + ": " + err.Error()
}

// Failed reports whether status says that an array could not be read
// (corrupt or error); one that is not supported yet has not failed.
func Failed(status string) bool {
	return strings.HasPrefix(status, StatusCorrupt+":") || strings.HasPrefix(status, StatusError+":")
}

// Hints are values from outside the file (API, web page, manifest), each with its source.
type Hints struct {
	VoxelNM     []float64 // z, y, x
	VoxelSource string
	Shape       []int64 // z, y, x as the source states it
	ShapeSource string
	DType       string
	Title, DOI  string
	License     string
	Modality    string
	Specimen    string
	Microscope  string
	Source      string // where Title/DOI/… came from
}

// DecoderNote is the note that says which JPEG decoder produced the values
// of a JPEG-compressed array ("jpeg decoder: libjpeg-turbo 2.1.5"), or "":
// decoders differ by ±1 on a few percent of the voxels.
func DecoderNote(in volume.Info) string {
	if dec, ok := in.Metadata[volume.MetaJPEGDecoder].(string); ok && dec != "" {
		return "jpeg decoder: " + dec
	}
	return ""
}

// FromVolume fills the array-derived columns of r from v (values from the file win).
// Value statistics read the whole array up to volume.DefaultExactStatsBytes
// decoded, else a sample of whole chunks of about sampleBudget bytes; a
// sampleBudget <= 0 reads no values.
func FromVolume(ctx context.Context, r *Record, v volume.Volume, h Hints, sampleBudget int64) {
	in := v.Info()
	r.Array = in.Name
	r.DType = string(in.DType)
	r.NDim = len(in.Shape)
	r.Compression = in.Compression
	if in.Metadata != nil {
		r.Metadata = in.Metadata
	}
	if note := DecoderNote(in); note != "" {
		r.Notes = append(r.Notes, note)
	}
	var fileVox [3]*float64
	var fileOff [3]*float64
	var dsFactor [3]string
	for i, ax := range in.Axes {
		slot := axisSlot(ax.Name, i, len(in.Axes))
		switch slot {
		case "z", "y", "x":
			j := map[string]int{"z": 0, "y": 1, "x": 2}[slot]
			setShape(r, slot, in.Shape[i])
			if in.Chunks != nil {
				setChunk(r, slot, in.Chunks[i])
			}
			if ax.ScaleKnown {
				if nm, ok := volume.ToNanometres(ax.Scale, ax.Unit); ok {
					fileVox[j] = ptr(nm)
					if off, ok := volume.ToNanometres(ax.Offset, ax.Unit); ok {
						fileOff[j] = ptr(off)
					}
				} else {
					r.Notes = append(r.Notes, fmt.Sprintf("axis %s has scale %g in unknown unit %q", ax.Name, ax.Scale, ax.Unit))
				}
			}
			_ = dsFactor
		case "c":
			r.ShapeC = in.Shape[i]
		case "t":
			r.ShapeT = in.Shape[i]
		}
	}
	// z spacing stored outside the axes (e.g. DM3 serial-section metadata).
	if zs := in.Acquisition.ZSpacing; fileVox[0] == nil && r.ShapeZ <= 1 && zs.Value != 0 && zs.Unit != "" {
		if nm, ok := volume.ToNanometres(zs.Value, zs.Unit); ok {
			fileVox[0] = ptr(nm)
			r.Notes = append(r.Notes, fmt.Sprintf("z spacing from %s", zs.Source))
		}
	}
	r.Uncompressed = ptr(in.NumBytes())
	applyVoxels(r, fileVox, h)
	r.OffsetZ, r.OffsetY, r.OffsetX = fileOff[0], fileOff[1], fileOff[2]
	if lvl, ok := in.Metadata["level"]; ok {
		if f, ok := toFloat(lvl); ok {
			r.ScaleLevel = ptr(int(f))
		}
	}
	if d, ok := in.Metadata["downsampling"]; ok {
		r.Downsampling = fmt.Sprint(d)
	}
	fromAcquisition(r, in.Acquisition)
	compareShape(r, h)
	if h.DType != "" && r.DType != "" && !strings.EqualFold(h.DType, r.DType) {
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("dtype: file %s, %s %s", r.DType, h.VoxelSourceOr(), h.DType))
	}
	sampleValues(ctx, r, v, sampleBudget)
}

// fromAcquisition fills the acquisition columns the file states; the
// caller fills the rest from its other sources.
func fromAcquisition(r *Record, a volume.Acquisition) {
	if s := strings.TrimSpace(a.Microscope); s != "" {
		r.Microscope = s
	}
	if a.VoltageKV != 0 {
		r.VoltageKV = ptr(a.VoltageKV)
	}
	if a.Magnification != 0 {
		r.Magnification = ptr(a.Magnification)
	}
	if a.DateTime != "" {
		r.AcquisitionDate = a.DateTime
	}
}

// VoxelSourceOr names the hint source for messages.
func (h Hints) VoxelSourceOr() string {
	if h.ShapeSource != "" {
		return h.ShapeSource
	}
	if h.Source != "" {
		return h.Source
	}
	return "source"
}

func applyVoxels(r *Record, file [3]*float64, h Hints) {
	haveFile := file[0] != nil || file[1] != nil || file[2] != nil
	out := file
	src := ""
	if haveFile {
		src = FromFile
	}
	if len(h.VoxelNM) == 3 {
		names := []string{"z", "y", "x"}
		usedHint := false
		for i := 0; i < 3; i++ {
			if !(h.VoxelNM[i] > 0) {
				continue // the hint does not cover this axis
			}
			if out[i] == nil {
				out[i] = ptr(h.VoxelNM[i])
				usedHint = true
			} else if !close(*out[i], h.VoxelNM[i]) {
				r.Conflicts = append(r.Conflicts, fmt.Sprintf("voxel_size_%s: file %s, %s %s", names[i], volume.ReadableNM(*out[i]), h.VoxelSource, volume.ReadableNM(h.VoxelNM[i])))
			}
		}
		if usedHint {
			if src == "" {
				src = h.VoxelSource
			} else {
				src = src + "+" + h.VoxelSource
			}
		}
	}
	r.VoxelZ, r.VoxelY, r.VoxelX = out[0], out[1], out[2]
	r.VoxelSource = src
	if out[0] != nil && out[1] != nil && out[2] != nil {
		iso := close(*out[0], *out[1]) && close(*out[1], *out[2])
		r.Isotropic = &iso
	}
}

func compareShape(r *Record, h Hints) {
	if len(h.Shape) != 3 {
		return
	}
	file := []int64{r.ShapeZ, r.ShapeY, r.ShapeX}
	names := []string{"z", "y", "x"}
	var diffs []string
	// Only the axes the file has are compared and printed: a 2D image has no
	// z, and "[0 100 96]" would read as an empty volume.
	var axes, fs, hs []string
	for i := range file {
		if file[i] <= 0 {
			continue
		}
		axes = append(axes, names[i])
		fs = append(fs, strconv.FormatInt(file[i], 10))
		if h.Shape[i] > 0 {
			hs = append(hs, strconv.FormatInt(h.Shape[i], 10))
		} else {
			hs = append(hs, "–")
		}
		if h.Shape[i] > 0 && h.Shape[i] != file[i] {
			diffs = append(diffs, fmt.Sprintf("%s %d≠%d", names[i], file[i], h.Shape[i]))
		}
	}
	if len(diffs) > 0 {
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("shape (%s): file %s, %s %s (%s)", strings.Join(axes, ","), strings.Join(fs, "×"), h.ShapeSource, strings.Join(hs, "×"), strings.Join(diffs, ", ")))
	}
}

func close(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(math.Abs(a), math.Abs(b)) }

// axisSlot maps an axis to z/y/x/c/t. Unnamed trailing spatial axes are taken
// from the end (x fastest), the way numpy shapes read.
func axisSlot(name string, i, n int) string {
	switch strings.ToLower(name) {
	case "z", "y", "x", "c", "t":
		return strings.ToLower(name)
	case "channel", "s", "sample":
		return "c"
	case "time":
		return "t"
	}
	return []string{"z", "y", "x"}[max(0, 3-(n-i))%3]
}

func setShape(r *Record, slot string, v int64) {
	switch slot {
	case "z":
		r.ShapeZ = v
	case "y":
		r.ShapeY = v
	case "x":
		r.ShapeX = v
	}
}

func setChunk(r *Record, slot string, v int64) {
	switch slot {
	case "z":
		r.ChunkZ = v
	case "y":
		r.ChunkY = v
	case "x":
		r.ChunkX = v
	}
}

func ptr[T any](v T) *T { return &v }

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// Sort orders records by dataset, then local path, then array name, so tables are stable.
func Sort(rs []Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Dataset != rs[j].Dataset {
			return rs[i].Dataset < rs[j].Dataset
		}
		if rs[i].LocalPath != rs[j].LocalPath {
			return rs[i].LocalPath < rs[j].LocalPath
		}
		return rs[i].Array < rs[j].Array
	})
}
