package catalog

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestRecordJSONRoundTrip(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int64) *int64 { return &v }
	lvl, iso := 2, true
	in := Record{
		SchemaVersion: SchemaVersion, Dataset: "d", Array: "a", SourceURL: "https://x/y.tif", LocalPath: "d/y.tif",
		Format: "tiff", Status: "ok", DType: "uint16", NDim: 3, ShapeZ: 4, ShapeY: 5, ShapeX: 6,
		ChunkZ: 1, ChunkY: 5, ChunkX: 6, Compression: "zstd",
		VoxelZ: f(50), VoxelY: f(8), VoxelX: f(8), VoxelSource: "file", Isotropic: &iso,
		OffsetZ: f(0.5), OffsetY: f(1), OffsetX: f(2), ScaleLevel: &lvl, Downsampling: "2,2,2",
		CropOrigin: []int64{1, 2, 3}, CropSeed: i(42), FileBytes: i(1000), Uncompressed: i(240), SHA256: "ab",
		ValueMin: f(1), ValueMax: f(9), ValueMean: f(4.5), ValueSample: "all",
		Microscope: "FEI", VoltageKV: f(1.9), Magnification: f(2159), AcquisitionDate: "2018-06-11",
		Modality: "SBF-SEM", Specimen: "retina", DOI: "10.6019/x", License: "CC0", Title: "t", MetadataSource: "file",
		Conflicts: []string{"c1", "c2"}, Notes: []string{"n"}, Metadata: map[string]any{"k": "v"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ReadDocument([]byte(`{"schema_version": 1, "records": [` + string(b) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Records[0]; !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
	}
	// A minimal record reads back with everything else missing, not zero-valued guesses.
	var r Record
	if err := json.Unmarshal([]byte(`{"dataset": "d", "status": "ok", "extent_z_nm": 5}`), &r); err != nil || r.Dataset != "d" || r.VoxelZ != nil || r.CropOrigin != nil {
		t.Errorf("minimal record %+v, %v", r, err)
	}
	if err := json.Unmarshal([]byte(`{"shape_z": "many"}`), &r); err == nil || !strings.Contains(err.Error(), "shape_z") {
		t.Errorf("bad field: %v", err)
	}
	if _, err := ReadDocument([]byte(`{"schema_version": 999, "records": []}`)); err == nil {
		t.Error("newer schema accepted")
	}
}

func FuzzReadDocument(f *testing.F) {
	f.Add([]byte(`{"schema_version": 1, "records": [{"dataset": "d", "shape_z": 3, "voxel_size_z_nm": 8, "crop_origin_z": 1, "crop_origin_y": 2, "crop_origin_x": 3, "conflicts": ["a"], "metadata": {"k": [1, 2]}}]}`))
	f.Add([]byte(`{"records": [null, {}]}`))
	f.Add([]byte(`{"schema_version": 1, "records": [{"scale_level": 1.5}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ReadDocument(b)
		if err != nil {
			return
		}
		for _, r := range d.Records {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("a read record does not encode: %v", err)
			}
		}
	})
}

// TestEveryColumnReadsBack writes records through catalog.json and reads
// them back: every column must give the value it was written with, so a
// column added to the table without a way back fails here.
func TestEveryColumnReadsBack(t *testing.T) {
	zero, no, lvl0 := 0.0, false, 0
	cases := []struct {
		name string
		r    Record
	}{
		{"every field set", fullRecord()},
		{"only the keys", Record{Dataset: "d", Status: "error: x"}},
		// Known zeros and false are values, not missing.
		{"known zeros", Record{Dataset: "", VoxelZ: &zero, OffsetX: &zero, Isotropic: &no, ScaleLevel: &lvl0, CropOrigin: []int64{0, 0, 0}, VoltageKV: &zero}},
		{"empty lists", Record{Dataset: "d", Conflicts: []string{}, Notes: nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(Document{SchemaVersion: SchemaVersion, Columns: Columns, Records: []Record{c.r}})
			if err != nil {
				t.Fatal(err)
			}
			doc, err := ReadDocument(b)
			if err != nil {
				t.Fatal(err)
			}
			want, got := c.r.Fields(), doc.Records[0].Fields()
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("column %s: read back %#v, wrote %#v", want[i].Name, got[i].Value, want[i].Value)
				}
			}
		})
	}
}

// A crop origin is one value over three columns: a document that lacks an
// axis (or has it null) has no crop origin rather than a guessed one.
func TestPartialCropOriginIsMissing(t *testing.T) {
	cases := []struct {
		json string
		want []int64
	}{
		{`{"crop_origin_z": 1, "crop_origin_y": 2, "crop_origin_x": 3}`, []int64{1, 2, 3}},
		{`{"crop_origin_z": 0, "crop_origin_y": 0, "crop_origin_x": 0}`, []int64{0, 0, 0}},
		{`{"crop_origin_z": 1, "crop_origin_y": 2}`, nil},
		{`{"crop_origin_z": 1, "crop_origin_y": 2, "crop_origin_x": null}`, nil},
		{`{"crop_origin_x": 3}`, nil},
	}
	for _, c := range cases {
		var r Record
		if err := json.Unmarshal([]byte(c.json), &r); err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if !reflect.DeepEqual(r.CropOrigin, c.want) {
			t.Errorf("%s: crop origin %v, want %v", c.json, r.CropOrigin, c.want)
		}
	}
	var r Record
	if err := json.Unmarshal([]byte(`{"crop_origin_y": "two"}`), &r); err == nil || !strings.Contains(err.Error(), "crop_origin_y") {
		t.Errorf("bad crop axis: %v", err)
	}
}
