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
var Columns = columnNames()

// column is one column of the table, the single place that states its name,
// its type, how a record gives its value and how catalog.json's value is
// read back; CSV, JSON Lines, Parquet, catalog.json and the report all walk
// this one list, so a column is added by adding one line to columns.
type column struct {
	name string
	kind colKind
	// get returns the cell: a Go value of kind's type, or nil when missing.
	get func(*Record) any
	// set stores catalog.json's value of the column in the record; nil for a
	// column derived from others (the extents), which is recomputed instead.
	set func(*Record, json.RawMessage) error
	// doc, when set, gives the value catalog.json holds instead of get's:
	// lists stay lists there, where the flat tables join them.
	doc func(*Record) any
}

// columns is the table in column order.
func columns() []column {
	return []column{
		{name: "schema_version", kind: kindInt64, get: func(*Record) any { return int64(SchemaVersion) }, set: into(func(r *Record) *int { return &r.SchemaVersion })},
		{name: "dataset", kind: kindString, get: func(r *Record) any { return r.Dataset }, set: into(func(r *Record) *string { return &r.Dataset })},
		text("array", func(r *Record) *string { return &r.Array }),
		text("source_url", func(r *Record) *string { return &r.SourceURL }),
		text("local_path", func(r *Record) *string { return &r.LocalPath }),
		text("format", func(r *Record) *string { return &r.Format }),
		text("status", func(r *Record) *string { return &r.Status }),
		text("dtype", func(r *Record) *string { return &r.DType }),
		count("ndim", func(r *Record) *int { return &r.NDim }),
		count("shape_z", func(r *Record) *int64 { return &r.ShapeZ }),
		count("shape_y", func(r *Record) *int64 { return &r.ShapeY }),
		count("shape_x", func(r *Record) *int64 { return &r.ShapeX }),
		count("shape_c", func(r *Record) *int64 { return &r.ShapeC }),
		count("shape_t", func(r *Record) *int64 { return &r.ShapeT }),
		count("chunk_z", func(r *Record) *int64 { return &r.ChunkZ }),
		count("chunk_y", func(r *Record) *int64 { return &r.ChunkY }),
		count("chunk_x", func(r *Record) *int64 { return &r.ChunkX }),
		text("compression", func(r *Record) *string { return &r.Compression }),
		optional("voxel_size_z_nm", func(r *Record) **float64 { return &r.VoxelZ }),
		optional("voxel_size_y_nm", func(r *Record) **float64 { return &r.VoxelY }),
		optional("voxel_size_x_nm", func(r *Record) **float64 { return &r.VoxelX }),
		text("voxel_size_source", func(r *Record) *string { return &r.VoxelSource }),
		optional("isotropic", func(r *Record) **bool { return &r.Isotropic }),
		optional("offset_z_nm", func(r *Record) **float64 { return &r.OffsetZ }),
		optional("offset_y_nm", func(r *Record) **float64 { return &r.OffsetY }),
		optional("offset_x_nm", func(r *Record) **float64 { return &r.OffsetX }),
		extent("extent_z_nm", func(r *Record) (int64, *float64) { return r.ShapeZ, r.VoxelZ }),
		extent("extent_y_nm", func(r *Record) (int64, *float64) { return r.ShapeY, r.VoxelY }),
		extent("extent_x_nm", func(r *Record) (int64, *float64) { return r.ShapeX, r.VoxelX }),
		optional("scale_level", func(r *Record) **int { return &r.ScaleLevel }),
		text("downsampling", func(r *Record) *string { return &r.Downsampling }),
		cropAxis(0), cropAxis(1), cropAxis(2),
		optional("crop_seed", func(r *Record) **int64 { return &r.CropSeed }),
		optional("file_bytes", func(r *Record) **int64 { return &r.FileBytes }),
		optional("uncompressed_bytes", func(r *Record) **int64 { return &r.Uncompressed }),
		text("sha256", func(r *Record) *string { return &r.SHA256 }),
		optional("value_min", func(r *Record) **float64 { return &r.ValueMin }),
		optional("value_max", func(r *Record) **float64 { return &r.ValueMax }),
		optional("value_mean", func(r *Record) **float64 { return &r.ValueMean }),
		text("value_sample", func(r *Record) *string { return &r.ValueSample }),
		text("microscope", func(r *Record) *string { return &r.Microscope }),
		optional("voltage_kv", func(r *Record) **float64 { return &r.VoltageKV }),
		optional("magnification", func(r *Record) **float64 { return &r.Magnification }),
		text("acquisition_date", func(r *Record) *string { return &r.AcquisitionDate }),
		text("modality", func(r *Record) *string { return &r.Modality }),
		text("specimen", func(r *Record) *string { return &r.Specimen }),
		text("doi", func(r *Record) *string { return &r.DOI }),
		text("license", func(r *Record) *string { return &r.License }),
		text("title", func(r *Record) *string { return &r.Title }),
		text("metadata_source", func(r *Record) *string { return &r.MetadataSource }),
		list("conflicts", func(r *Record) *[]string { return &r.Conflicts }),
		list("notes", func(r *Record) *[]string { return &r.Notes }),
	}
}

func columnNames() []string {
	cs := columns()
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// into reads a column's JSON value straight into the field p points at.
func into[T any](p func(*Record) *T) func(*Record, json.RawMessage) error {
	return func(r *Record, b json.RawMessage) error { return json.Unmarshal(b, p(r)) }
}

// orNil returns v, or nil when v is its type's zero value.
func orNil[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// text is a string column; "" is missing.
func text(name string, p func(*Record) *string) column {
	return column{name: name, kind: kindString, get: func(r *Record) any { return orNil(*p(r)) }, set: into(p)}
}

// count is an integer column whose 0 means missing (sizes and ranks are
// never 0 when known).
func count[T int | int64](name string, p func(*Record) *T) column {
	return column{name: name, kind: kindInt64, get: func(r *Record) any { return orNil(int64(*p(r))) }, set: into(p)}
}

// optional is a column held in a pointer field; nil is missing, so a known 0
// or false is kept.
func optional[T int | int64 | float64 | bool](name string, p func(*Record) **T) column {
	var kind colKind
	switch any(*new(T)).(type) {
	case int, int64:
		kind = kindInt64
	case float64:
		kind = kindFloat64
	case bool:
		kind = kindBool
	}
	get := func(r *Record) any {
		v := *p(r)
		if v == nil {
			return nil
		}
		if i, ok := any(*v).(int); ok {
			return int64(i)
		}
		return *v
	}
	return column{name: name, kind: kind, get: get, set: into(p)}
}

// extent is the physical size along an axis, derived from its length and
// voxel size; it is not read back.
func extent(name string, of func(*Record) (int64, *float64)) column {
	return column{name: name, kind: kindFloat64, get: func(r *Record) any {
		n, vox := of(r)
		if n == 0 || vox == nil {
			return nil
		}
		return float64(n) * *vox
	}}
}

// cropColumn names the crop origin's column for axis i of z, y, x.
func cropColumn(i int) string { return "crop_origin_" + "zyx"[i:i+1] }

// cropAxis is axis i of the crop origin, one value spread over three
// columns; UnmarshalJSON keeps it only when all three are read.
func cropAxis(i int) column {
	return column{name: cropColumn(i), kind: kindInt64,
		get: func(r *Record) any {
			if len(r.CropOrigin) != 3 {
				return nil
			}
			return r.CropOrigin[i]
		},
		set: func(r *Record, b json.RawMessage) error {
			var v *int64
			if err := json.Unmarshal(b, &v); err != nil || v == nil {
				return err
			}
			if len(r.CropOrigin) != 3 {
				r.CropOrigin = make([]int64, 3)
			}
			r.CropOrigin[i] = *v
			return nil
		}}
}

// list is a list of remarks: joined with "; " in the flat tables, a JSON
// list in catalog.json.
func list(name string, p func(*Record) *[]string) column {
	return column{name: name, kind: kindString,
		get: func(r *Record) any { return orNil(strings.Join(*p(r), "; ")) },
		set: into(p),
		doc: func(r *Record) any {
			if len(*p(r)) == 0 {
				return nil
			}
			return *p(r)
		}}
}

// Fields flattens a record in Columns order.
func (r Record) Fields() []Field {
	cs := columns()
	out := make([]Field, len(cs))
	for i, c := range cs {
		out[i] = Field{Name: c.name, Value: c.get(&r)}
	}
	return out
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

// Document is catalog.json: the table plus every array's full metadata tree,
// and what a run could not turn into rows.
type Document struct {
	SchemaVersion int       `json:"schema_version"`
	Columns       []string  `json:"columns"`
	Records       []Record  `json:"records"`
	Failures      []Failure `json:"failures,omitempty"`
}

// Failure is a dataset or object of a run that gave no row: it could not be
// resolved, fetched, cropped or converted. An array that was fetched but is
// corrupt or unreadable is a row with that Status instead.
type Failure struct {
	Dataset string `json:"dataset"`
	// Object is the path below the dataset that failed; "" when the whole
	// dataset did (it could not be resolved).
	Object string `json:"object,omitempty"`
	// Status is StatusError or StatusCorrupt, ": " and the reason (StatusOf).
	Status string `json:"status"`
}

// MarshalJSON includes the flattened columns alongside the nested metadata.
func (r Record) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for _, c := range columns() {
		v := c.get(&r)
		if c.doc != nil {
			v = c.doc(&r)
		}
		if x, ok := v.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
			continue
		}
		if v != nil {
			m[c.name] = v
		}
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
	return WriteRun(ctx, st, rs, nil)
}

// WriteRun is WriteAll for a run: catalog.json lists failures next to the
// records, so a failed dataset is there with its status even when it gave
// no row.
func WriteRun(ctx context.Context, st *store.Store, rs []Record, failures []Failure) (Outputs, error) {
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
	if rs == nil {
		rs = []Record{} // "records": [] — a table with no rows, not a missing one
	}
	doc, err := json.MarshalIndent(Document{SchemaVersion: SchemaVersion, Columns: Columns, Records: rs, Failures: failures}, "", "  ")
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
