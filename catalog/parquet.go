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

// columnKind returns the kind of the named column, and false for a name that
// is not a column.
func columnKind(name string) (colKind, bool) {
	for _, c := range columns() {
		if c.name == name {
			return c.kind, true
		}
	}
	return kindString, false
}

// parquetSchema builds the table schema in Columns order: every column is
// OPTIONAL so a missing value stays null. It goes through a generated struct
// type because parquet.Group sorts its fields by name, which would lose the
// column order the CSV and JSONL files share.
func parquetSchema() (*parquet.Schema, []colKind) {
	cs := columns()
	kinds := make([]colKind, len(cs))
	fields := make([]reflect.StructField, len(cs))
	for i, c := range cs {
		kinds[i] = c.kind
		fields[i] = reflect.StructField{
			Name: "F" + strconv.Itoa(i),
			Type: reflect.PointerTo(c.kind.goType()), // pointer: OPTIONAL
			Tag:  reflect.StructTag(`parquet:` + strconv.Quote(c.name)),
		}
	}
	model := reflect.New(reflect.StructOf(fields)).Interface()
	return parquet.NewSchema("imgdataset", parquet.SchemaOf(model)), kinds
}

// Parquet renders the table as a Parquet file (zstd-compressed, one row group)
// with the columns of Columns in order, typed int64, double, boolean or UTF-8
// string, all nullable, and SchemaVersion under ParquetSchemaVersionKey.
func Parquet(rs []Record) ([]byte, error) {
	schema, kinds := parquetSchema()
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
// column's kind is an error (a column whose get disagrees with its kind).
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
