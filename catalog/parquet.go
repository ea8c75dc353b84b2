package catalog

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// ParquetSchemaVersionKey is the Parquet key-value metadata entry that carries
// SchemaVersion, so readers can tell table layouts apart without a column scan.
const ParquetSchemaVersionKey = "imgdataset.schema_version"

// colKind is the typed value a column holds; it fixes the Parquet physical
// type and how the report sorts the column.
type colKind int

const (
	kindString colKind = iota
	kindInt64
	kindFloat64
	kindBool
)

// goType is the Go type Parquet derives the column's physical and logical type from.
func (k colKind) goType() reflect.Type {
	switch k {
	case kindInt64:
		return reflect.TypeFor[int64]()
	case kindFloat64:
		return reflect.TypeFor[float64]()
	case kindBool:
		return reflect.TypeFor[bool]()
	}
	return reflect.TypeFor[string]()
}

// numeric reports whether the column sorts as a number.
func (k colKind) numeric() bool { return k == kindInt64 || k == kindFloat64 }

// columnKind is the fixed type table of every column in Columns. A name that is
// not listed is reported as unknown rather than defaulted to string, so a
// column added to Columns without a type fails Parquet output (and its test)
// instead of silently becoming text.
func columnKind(name string) (colKind, bool) {
	switch name {
	case "schema_version", "ndim",
		"shape_z", "shape_y", "shape_x", "shape_c", "shape_t",
		"chunk_z", "chunk_y", "chunk_x",
		"scale_level", "crop_origin_z", "crop_origin_y", "crop_origin_x", "crop_seed",
		"file_bytes", "uncompressed_bytes":
		return kindInt64, true
	case "voxel_size_z_nm", "voxel_size_y_nm", "voxel_size_x_nm",
		"offset_z_nm", "offset_y_nm", "offset_x_nm",
		"extent_z_nm", "extent_y_nm", "extent_x_nm",
		"value_min", "value_max", "value_mean",
		"voltage_kv", "magnification":
		return kindFloat64, true
	case "isotropic":
		return kindBool, true
	case "dataset", "array", "source_url", "local_path", "format", "status",
		"dtype", "compression", "voxel_size_source", "downsampling", "sha256",
		"value_sample", "microscope", "acquisition_date", "modality", "specimen",
		"doi", "license", "title", "metadata_source", "conflicts", "notes":
		return kindString, true
	}
	return kindString, false
}

// parquetSchema builds the table schema in Columns order: every column is
// OPTIONAL so a missing value stays null. It goes through a generated struct
// type because parquet.Group sorts its fields by name, which would lose the
// column order the CSV and JSONL files share.
func parquetSchema() (*parquet.Schema, []colKind, error) {
	kinds := make([]colKind, len(Columns))
	fields := make([]reflect.StructField, len(Columns))
	for i, c := range Columns {
		k, ok := columnKind(c)
		if !ok {
			return nil, nil, fmt.Errorf("catalog: parquet: column %q has no type", c)
		}
		kinds[i] = k
		fields[i] = reflect.StructField{
			Name: "F" + strconv.Itoa(i),
			Type: reflect.PointerTo(k.goType()), // pointer: OPTIONAL
			Tag:  reflect.StructTag(`parquet:` + strconv.Quote(c)),
		}
	}
	model := reflect.New(reflect.StructOf(fields)).Interface()
	return parquet.NewSchema("imgdataset", parquet.SchemaOf(model)), kinds, nil
}

// Parquet renders the table as a Parquet file (zstd-compressed, one row group)
// with the columns of Columns in order, typed int64, double, boolean or UTF-8
// string, all nullable, and SchemaVersion under ParquetSchemaVersionKey.
func Parquet(rs []Record) ([]byte, error) {
	schema, kinds, err := parquetSchema()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := parquet.NewWriter(&b, schema,
		parquet.Compression(&zstd.Codec{}),
		parquet.KeyValueMetadata(ParquetSchemaVersionKey, strconv.Itoa(SchemaVersion)),
		parquet.CreatedBy("imgdataset", "", ""),
	)
	rows := make([]parquet.Row, 0, len(rs))
	for _, r := range rs {
		row, err := parquetRow(r, kinds)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	if _, err := w.WriteRows(rows); err != nil {
		return nil, fmt.Errorf("catalog: parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("catalog: parquet: %w", err)
	}
	return b.Bytes(), nil
}

// parquetRow converts one record; a value whose Go type does not match the
// column's kind is an error (it means Fields and columnKind disagree).
func parquetRow(r Record, kinds []colKind) (parquet.Row, error) {
	fs := r.Fields()
	if len(fs) != len(kinds) {
		return nil, fmt.Errorf("catalog: parquet: %s/%s has %d fields for %d columns", r.Dataset, r.Array, len(fs), len(kinds))
	}
	row := make(parquet.Row, len(fs))
	for i, f := range fs {
		if f.Value == nil {
			row[i] = parquet.NullValue().Level(0, 0, i)
			continue
		}
		var v parquet.Value
		ok := false
		switch kinds[i] {
		case kindInt64:
			x, is := f.Value.(int64)
			v, ok = parquet.Int64Value(x), is
		case kindFloat64:
			x, is := f.Value.(float64)
			v, ok = parquet.DoubleValue(x), is
		case kindBool:
			x, is := f.Value.(bool)
			v, ok = parquet.BooleanValue(x), is
		case kindString:
			x, is := f.Value.(string)
			v, ok = parquet.ByteArrayValue([]byte(x)), is
		}
		if !ok {
			return nil, fmt.Errorf("catalog: parquet: %s/%s column %s: value %v is %T", r.Dataset, r.Array, f.Name, f.Value, f.Value)
		}
		row[i] = v.Level(0, 1, i)
	}
	return row, nil
}
