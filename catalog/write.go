package catalog

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/store"
)

// Field is one typed cell; Value is nil when missing.
type Field struct {
	Name  string
	Value any // string, int64, float64, bool or nil
}

// Columns is the table's column order (CSV header, JSONL keys, Parquet schema).
var Columns = []string{
	"schema_version", "dataset", "array", "source_url", "local_path", "format", "status",
	"dtype", "ndim", "shape_z", "shape_y", "shape_x", "shape_c", "shape_t",
	"chunk_z", "chunk_y", "chunk_x", "compression",
	"voxel_size_z_nm", "voxel_size_y_nm", "voxel_size_x_nm", "voxel_size_source", "isotropic",
	"offset_z_nm", "offset_y_nm", "offset_x_nm",
	"extent_z_nm", "extent_y_nm", "extent_x_nm",
	"scale_level", "downsampling", "crop_origin_z", "crop_origin_y", "crop_origin_x", "crop_seed",
	"file_bytes", "uncompressed_bytes", "sha256",
	"value_min", "value_max", "value_mean", "value_sample",
	"microscope", "voltage_kv", "magnification", "acquisition_date", "modality", "specimen",
	"doi", "license", "title", "metadata_source", "conflicts", "notes",
}

// Fields flattens a record in Columns order.
func (r Record) Fields() []Field {
	i64 := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	f := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	ext := func(n int64, vox *float64) any {
		if n == 0 || vox == nil {
			return nil
		}
		return float64(n) * *vox
	}
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var crop [3]any
	if len(r.CropOrigin) == 3 {
		for i := range crop {
			crop[i] = r.CropOrigin[i]
		}
	}
	vals := []any{
		int64(SchemaVersion), r.Dataset, str(r.Array), str(r.SourceURL), str(r.LocalPath), str(r.Format), str(r.Status),
		str(r.DType), i64(int64(r.NDim)), i64(r.ShapeZ), i64(r.ShapeY), i64(r.ShapeX), i64(r.ShapeC), i64(r.ShapeT),
		i64(r.ChunkZ), i64(r.ChunkY), i64(r.ChunkX), str(r.Compression),
		f(r.VoxelZ), f(r.VoxelY), f(r.VoxelX), str(r.VoxelSource), boolp(r.Isotropic),
		f(r.OffsetZ), f(r.OffsetY), f(r.OffsetX),
		ext(r.ShapeZ, r.VoxelZ), ext(r.ShapeY, r.VoxelY), ext(r.ShapeX, r.VoxelX),
		intp(r.ScaleLevel), str(r.Downsampling), crop[0], crop[1], crop[2], int64p(r.CropSeed),
		int64p(r.FileBytes), int64p(r.Uncompressed), str(r.SHA256),
		f(r.ValueMin), f(r.ValueMax), f(r.ValueMean), str(r.ValueSample),
		str(r.Microscope), f(r.VoltageKV), f(r.Magnification), str(r.AcquisitionDate), str(r.Modality), str(r.Specimen),
		str(r.DOI), str(r.License), str(r.Title), str(r.MetadataSource), str(strings.Join(r.Conflicts, "; ")), str(strings.Join(r.Notes, "; ")),
	}
	out := make([]Field, len(Columns))
	for i, c := range Columns {
		out[i] = Field{Name: c, Value: vals[i]}
	}
	return out
}

func boolp(p *bool) any {
	if p == nil {
		return nil
	}
	return *p
}

func intp(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func int64p(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// CSV renders the table.
func CSV(rs []Record) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(Columns); err != nil {
		return nil, err
	}
	for _, r := range rs {
		fs := r.Fields()
		row := make([]string, len(fs))
		for i, f := range fs {
			row[i] = cell(f.Value)
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// JSONLines renders one JSON object per record with typed values (missing = null).
func JSONLines(rs []Record) ([]byte, error) {
	var b bytes.Buffer
	for _, r := range rs {
		b.WriteString("{")
		for i, f := range r.Fields() {
			if i > 0 {
				b.WriteString(",")
			}
			k, _ := json.Marshal(f.Name)
			val := f.Value
			if x, ok := val.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
				val = nil // JSON has no NaN/Inf; CSV and Parquet keep them
			}
			v, err := json.Marshal(val)
			if err != nil {
				return nil, fmt.Errorf("catalog: %s/%s column %s: %w", r.Dataset, r.Array, f.Name, err)
			}
			b.Write(k)
			b.WriteString(":")
			b.Write(v)
		}
		b.WriteString("}\n")
	}
	return b.Bytes(), nil
}

// Document is catalog.json: the table plus every array's full metadata tree.
type Document struct {
	SchemaVersion int      `json:"schema_version"`
	Columns       []string `json:"columns"`
	Records       []Record `json:"records"`
}

// MarshalJSON includes the flattened columns alongside the nested metadata.
func (r Record) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for _, f := range r.Fields() {
		if x, ok := f.Value.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			continue
		}
		if f.Value != nil {
			m[f.Name] = f.Value
		}
	}
	if len(r.Conflicts) > 0 {
		m["conflicts"] = r.Conflicts
	}
	if len(r.Notes) > 0 {
		m["notes"] = r.Notes
	}
	if r.Metadata != nil {
		m["metadata"] = r.Metadata
	}
	return json.Marshal(m)
}

// Outputs are the table files written into the output directory.
type Outputs struct {
	CSV, JSONL, Parquet, JSON string
}

// WriteAll writes metadata_table.csv, metadata_table.jsonl and catalog.json
// atomically into st (each appears complete or not at all).
func WriteAll(ctx context.Context, st *store.Store, rs []Record) (Outputs, error) {
	Sort(rs)
	out := Outputs{CSV: "metadata_table.csv", JSONL: "metadata_table.jsonl", Parquet: "metadata_table.parquet", JSON: "catalog.json"}
	c, err := CSV(rs)
	if err != nil {
		return out, err
	}
	j, err := JSONLines(rs)
	if err != nil {
		return out, err
	}
	pq, err := Parquet(rs)
	if err != nil {
		return out, err
	}
	doc, err := json.MarshalIndent(Document{SchemaVersion: SchemaVersion, Columns: Columns, Records: rs}, "", "  ")
	if err != nil {
		return out, fmt.Errorf("catalog.json: %w", err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{out.CSV, c}, {out.JSONL, j}, {out.Parquet, pq}, {out.JSON, doc}} {
		if err := st.WriteAll(ctx, f.name, f.b); err != nil {
			return out, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return out, nil
}
