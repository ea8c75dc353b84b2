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
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// fullRecord sets every field, so each column has a value whose Go type can
// be checked against the type table.
func fullRecord() Record {
	f := func(v float64) *float64 { return &v }
	i := func(v int64) *int64 { return &v }
	lvl, iso := 2, false
	return Record{
		Dataset: "hemibrain", Array: "s0", SourceURL: "gs://b/x", LocalPath: "hemibrain/crop.zarr", Format: "zarr", Status: "ok",
		DType: "uint8", NDim: 3, ShapeZ: 1000, ShapeY: 1000, ShapeX: 1000, ShapeC: 3, ShapeT: 2,
		ChunkZ: 128, ChunkY: 128, ChunkX: 128, Compression: "blosc",
		VoxelZ: f(8), VoxelY: f(8), VoxelX: f(8.5), VoxelSource: FromFile, Isotropic: &iso,
		OffsetZ: f(-12.5), OffsetY: f(-0.25), OffsetX: f(1e9),
		ScaleLevel: &lvl, Downsampling: "2,2,2", CropOrigin: []int64{1, -2, 3}, CropSeed: i(-7),
		FileBytes: i(1 << 40), Uncompressed: i(math.MaxInt64), SHA256: "ab12",
		ValueMin: f(-3.5), ValueMax: f(255), ValueMean: f(1.0 / 3), ValueSample: "all voxels",
		Microscope: "FIB-SEM", VoltageKV: f(1.5), Magnification: f(5e4), AcquisitionDate: "2020-01-02",
		Modality: "EM", Specimen: "Drosophila", DOI: "10.1/x", License: "CC-BY-4.0", Title: "t",
		MetadataSource: FromAPI, Conflicts: []string{"a", "b"}, Notes: []string{"n"},
	}
}

func TestEveryColumnHasAType(t *testing.T) {
	fs := fullRecord().Fields()
	for i, c := range Columns {
		k, ok := columnKind(c)
		if !ok {
			t.Errorf("column %q has no entry in the Parquet type table (columnKind)", c)
			continue
		}
		var want string
		switch k {
		case kindInt64:
			want = "int64"
		case kindFloat64:
			want = "float64"
		case kindBool:
			want = "bool"
		case kindString:
			want = "string"
		}
		if got := fmt.Sprintf("%T", fs[i].Value); got != want {
			t.Errorf("column %q: Fields gives %s, type table says %s", c, got, want)
		}
	}
	if _, ok := columnKind("no_such_column"); ok {
		t.Fatal("an unknown column must not get a type by default")
	}
}

// readParquet reads b back with Apache Arrow's reader, independent of the
// writer's library.
func readParquet(t *testing.T, b []byte) (arrow.Table, map[string]string) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("arrow cannot open our parquet: %v", err)
	}
	kv := map[string]string{}
	md := pf.MetaData().KeyValueMetadata()
	for i, k := range md.Keys() {
		kv[k] = md.Values()[i]
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow cannot read our parquet: %v", err)
	}
	t.Cleanup(tbl.Release)
	return tbl, kv
}

// arrowValue returns the typed Go value at row of a single-chunk column, nil for null.
func arrowValue(t *testing.T, col *arrow.Column, row int) any {
	t.Helper()
	if n := len(col.Data().Chunks()); n != 1 {
		t.Fatalf("column %s: %d chunks", col.Name(), n)
	}
	a := col.Data().Chunk(0)
	if a.IsNull(row) {
		return nil
	}
	switch x := a.(type) {
	case *array.Int64:
		return x.Value(row)
	case *array.Float64:
		return x.Value(row)
	case *array.Boolean:
		return x.Value(row)
	case *array.String:
		return x.Value(row)
	}
	t.Fatalf("column %s: unexpected arrow array %T", col.Name(), a)
	return nil
}

func TestParquetReadBackWithArrow(t *testing.T) {
	full := fullRecord()
	neg := func(v float64) *float64 { return &v }
	rs := []Record{
		full,
		// Mostly missing: only the key columns are set.
		{Dataset: "empty", Status: "not yet supported: n5"},
		// Unicode, quotes and separators in strings; negative offsets; partial voxel size.
		{Dataset: "ünïcode/数据", Array: "série \"1\", a;b", Status: "error: ☠ <b>bad</b>\nline2", Title: "Ångström µm 🧪",
			OffsetZ: neg(-1e-3), OffsetY: neg(-123456.75), VoxelX: neg(4), ShapeX: 7, Conflicts: []string{"dtype: file uint8, api uint16"}},
	}
	b, err := Parquet(rs)
	if err != nil {
		t.Fatal(err)
	}
	tbl, kv := readParquet(t, b)
	if got := kv[ParquetSchemaVersionKey]; got != strconv.Itoa(SchemaVersion) {
		t.Fatalf("key-value %s = %q, want %d (all: %v)", ParquetSchemaVersionKey, got, SchemaVersion, kv)
	}
	if int(tbl.NumRows()) != len(rs) || int(tbl.NumCols()) != len(Columns) {
		t.Fatalf("table is %dx%d, want %dx%d", tbl.NumRows(), tbl.NumCols(), len(rs), len(Columns))
	}
	wantType := map[colKind]arrow.Type{kindInt64: arrow.INT64, kindFloat64: arrow.FLOAT64, kindBool: arrow.BOOL, kindString: arrow.STRING}
	for j, c := range Columns {
		fld := tbl.Schema().Field(j)
		k, _ := columnKind(c)
		if fld.Name != c || fld.Type.ID() != wantType[k] || !fld.Nullable {
			t.Errorf("column %d is %s %s nullable=%v, want %s %s nullable", j, fld.Name, fld.Type, fld.Nullable, c, wantType[k])
		}
	}

	csvb, err := CSV(rs)
	if err != nil {
		t.Fatal(err)
	}
	csvRows, err := csv.NewReader(bytes.NewReader(csvb)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	jl, err := JSONLines(rs)
	if err != nil {
		t.Fatal(err)
	}
	jlines := strings.Split(strings.TrimSpace(string(jl)), "\n")

	for i, r := range rs {
		dec := json.NewDecoder(strings.NewReader(jlines[i]))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		for j, f := range r.Fields() {
			got := arrowValue(t, tbl.Column(j), i)
			if got != f.Value {
				t.Errorf("row %d %s: parquet %#v, record %#v", i, f.Name, got, f.Value)
			}
			if cell(got) != csvRows[i+1][j] {
				t.Errorf("row %d %s: parquet %q, csv %q", i, f.Name, cell(got), csvRows[i+1][j])
			}
			k, _ := columnKind(f.Name)
			if s := jsonCell(obj[f.Name], k); s != cell(got) {
				t.Errorf("row %d %s: parquet %q, jsonl %q", i, f.Name, cell(got), s)
			}
		}
	}
}

// jsonCell renders a decoded JSONL value of a column of kind k the way CSV
// cells are written (JSON itself does not tell 1e9 from 1000000000).
func jsonCell(v any, k colKind) string {
	switch x := v.(type) {
	case nil:
		return ""
	case json.Number:
		if k == kindInt64 {
			i, err := x.Int64()
			if err != nil {
				return "bad int64 " + x.String()
			}
			return strconv.FormatInt(i, 10)
		}
		f, err := x.Float64()
		if err != nil {
			return "bad float64 " + x.String()
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return cell(v)
}

func TestParquetEmptyTable(t *testing.T) {
	b, err := Parquet(nil)
	if err != nil {
		t.Fatal(err)
	}
	tbl, _ := readParquet(t, b)
	if tbl.NumRows() != 0 || int(tbl.NumCols()) != len(Columns) {
		t.Fatalf("empty table is %dx%d", tbl.NumRows(), tbl.NumCols())
	}
}
