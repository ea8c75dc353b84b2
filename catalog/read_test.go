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
