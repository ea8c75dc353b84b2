package catalog

import (
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func memVol(t *testing.T, axes []volume.Axis, dt volume.DType, fill func(i int) byte) *volume.Mem {
	t.Helper()
	shape := make([]int64, len(axes))
	for i, a := range axes {
		shape[i] = a.Size
	}
	in := volume.Info{Name: "a", Shape: shape, DType: dt, Axes: axes}
	data := make([]byte, in.NumBytes())
	for i := range data {
		data[i] = fill(i)
	}
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFileWinsAndConflictsAreListed(t *testing.T) {
	v := memVol(t, []volume.Axis{
		{Name: "z", Size: 4, Scale: 0.02, Unit: `\u00B5m`, ScaleKnown: true},
		{Name: "y", Size: 5, Scale: 0.02, Unit: "µm", ScaleKnown: true},
		{Name: "x", Size: 6, Scale: 0.02, Unit: "µm", ScaleKnown: true},
	}, volume.Uint8, func(i int) byte { return byte(10 + i%50) })
	var r Record
	FromVolume(context.Background(), &r, v, Hints{VoxelNM: []float64{20, 20, 25}, VoxelSource: FromAPI, Shape: []int64{4, 5, 7}, ShapeSource: FromAPI}, 1<<20)
	if r.VoxelX == nil || *r.VoxelX != 20 || r.VoxelSource != FromFile {
		t.Fatalf("voxel x = %v from %q; the file's 20 nm must win", r.VoxelX, r.VoxelSource)
	}
	if len(r.Conflicts) != 2 || !strings.Contains(r.Conflicts[0], "voxel_size_x") || !strings.Contains(r.Conflicts[1], "shape") {
		t.Fatalf("conflicts = %q", r.Conflicts)
	}
	if r.Isotropic == nil || !*r.Isotropic {
		t.Fatalf("20 nm on all axes must be isotropic")
	}
	if *r.ValueMin != 10 || *r.ValueMax != 59 || r.ValueSample != "all 120 voxels" {
		t.Fatalf("value range %v..%v (%s)", *r.ValueMin, *r.ValueMax, r.ValueSample)
	}
}

func TestMissingIsEmptyAndHintFillsGap(t *testing.T) {
	v := memVol(t, []volume.Axis{{Name: "z", Size: 3, Scale: 1}, {Name: "y", Size: 4, Scale: 1}, {Name: "x", Size: 5, Scale: 1}}, volume.Uint8, func(int) byte { return 1 })
	var r Record
	FromVolume(context.Background(), &r, v, Hints{}, 1<<20)
	if r.VoxelX != nil || r.VoxelSource != "" {
		t.Fatalf("uncalibrated file must give an empty voxel size, got %v from %q", *r.VoxelX, r.VoxelSource)
	}
	var r2 Record
	FromVolume(context.Background(), &r2, v, Hints{VoxelNM: []float64{5, 5, 5}, VoxelSource: FromWebPage}, 1<<20)
	if r2.VoxelX == nil || *r2.VoxelX != 5 || r2.VoxelSource != FromWebPage {
		t.Fatalf("web page voxel size not used as fallback: %v %q", r2.VoxelX, r2.VoxelSource)
	}
}

func TestZSpacingFromAcquisition(t *testing.T) {
	in := volume.Info{Name: "dm", Shape: []int64{4, 4}, DType: volume.Uint8,
		Axes:        []volume.Axis{{Name: "y", Size: 4, Scale: 0.008, Unit: "µm", ScaleKnown: true}, {Name: "x", Size: 4, Scale: 0.008, Unit: "µm", ScaleKnown: true}},
		Acquisition: volume.Acquisition{ZSpacing: volume.Spacing{Value: 0.05, Unit: "µm", Source: "ImageTags.Meta Data.Dimension info.2"}}}
	m, _ := volume.NewMem(in, make([]byte, 16))
	var r Record
	FromVolume(context.Background(), &r, m, Hints{}, 1<<20)
	if r.VoxelZ == nil || math.Abs(*r.VoxelZ-50) > 1e-9 || *r.VoxelX != 8 {
		t.Fatalf("z/x voxel = %v/%v, want 50/8", r.VoxelZ, r.VoxelX)
	}
	if len(r.Notes) != 1 || r.Notes[0] != "z spacing from ImageTags.Meta Data.Dimension info.2" {
		t.Errorf("notes %q", r.Notes)
	}
}

// TestAcquisitionColumns: the acquisition columns come from Info.Acquisition,
// a zero field is a missing cell, and the same facts as Metadata keys alone
// fill nothing (they are a JSON view).
func TestAcquisitionColumns(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name string
		acq  volume.Acquisition
		md   map[string]any
		want Record
	}{
		{"all", volume.Acquisition{Microscope: " Quanta 250 ", VoltageKV: 30, Magnification: 5e4, DateTime: "2019-12-31T23:59:59", Mode: "SEM"}, nil,
			Record{Microscope: "Quanta 250", VoltageKV: f(30), Magnification: f(5e4), AcquisitionDate: "2019-12-31T23:59:59"}},
		{"date only", volume.Acquisition{DateTime: "2015-01-25"}, nil, Record{AcquisitionDate: "2015-01-25"}},
		{"nothing", volume.Acquisition{}, nil, Record{}},
		{"metadata keys are not read", volume.Acquisition{},
			map[string]any{"microscope": "X", "voltage_kv": 1.0, "magnification": 2.0, "acquisition_datetime": "2020-01-01",
				"z_spacing": map[string]any{"value": 50.0, "unit": "nm", "source": "s"}},
			Record{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := volume.Info{Name: "a", Shape: []int64{2, 2}, DType: volume.Uint8,
				Axes:        []volume.Axis{{Name: "y", Size: 2, Scale: 1}, {Name: "x", Size: 2, Scale: 1}},
				Acquisition: c.acq, Metadata: c.md}
			m, err := volume.NewMem(in, make([]byte, 4))
			if err != nil {
				t.Fatal(err)
			}
			var r Record
			FromVolume(context.Background(), &r, m, Hints{}, 1<<20)
			got := Record{Microscope: r.Microscope, VoltageKV: r.VoltageKV, Magnification: r.Magnification, AcquisitionDate: r.AcquisitionDate}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			if r.VoxelZ != nil {
				t.Errorf("voxel z %v from metadata keys", *r.VoxelZ)
			}
		})
	}
}

func TestCSVAndJSONLAgree(t *testing.T) {
	seed := int64(7)
	rs := []Record{{Dataset: "b", Array: "x", Status: "ok", ShapeZ: 2, CropSeed: &seed, Conflicts: []string{"a", "b"}}, {Dataset: "a", Status: "not yet supported: n5"}}
	Sort(rs)
	c, err := CSV(rs)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(c))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || len(rows[0]) != len(Columns) || rows[1][1] != "a" {
		t.Fatalf("csv rows %v", rows)
	}
	j, _ := JSONLines(rs)
	lines := strings.Split(strings.TrimSpace(string(j)), "\n")
	var obj map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &obj); err != nil {
		t.Fatal(err)
	}
	if obj["crop_seed"] != float64(7) || obj["conflicts"] != "a; b" || obj["voxel_size_x_nm"] != nil {
		t.Fatalf("jsonl row %v", obj)
	}
}

func TestNaNIsNullInJSON(t *testing.T) {
	nan := math.NaN()
	rs := []Record{{Dataset: "a", Status: "ok", ValueMean: &nan}}
	j, err := JSONLines(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"value_mean":null`) {
		t.Fatalf("NaN not written as null: %s", j)
	}
	if _, err := json.Marshal(Document{Records: rs}); err != nil {
		t.Fatalf("catalog.json with a NaN: %v", err)
	}
}

// TestValueColumns checks the value columns against sums done here: the mean
// of every voxel for small arrays, finite voxels only (NaN and infinities are
// left out, and the note says how many).
func TestValueColumns(t *testing.T) {
	axes := []volume.Axis{{Name: "z", Size: 2, Scale: 1}, {Name: "y", Size: 3, Scale: 1}, {Name: "x", Size: 4, Scale: 1}}
	f32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name           string
		dt             volume.DType
		data           []byte
		min, max, mean float64
		note           string
	}{
		{"uint16", volume.Uint16, binary.LittleEndian.AppendUint16(make([]byte, 46), 65535), 0, 65535, 65535.0 / 24, "all 24 voxels"},
		{"float32 with NaN and Inf", volume.Float32, f32(nan, inf, -inf, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21.5),
			1, 21.5, (20*21/2 + 21.5) / 21, "all 24 voxels; 1 NaN left out; 2 infinite left out"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := volume.Info{Name: "v", Shape: []int64{2, 3, 4}, DType: c.dt, Axes: axes}
			v, err := volume.NewMem(in, c.data)
			if err != nil {
				t.Fatal(err)
			}
			var r Record
			FromVolume(context.Background(), &r, v, Hints{}, 1<<20)
			if r.ValueMin == nil || *r.ValueMin != c.min || *r.ValueMax != c.max || math.Abs(*r.ValueMean-c.mean) > 1e-12*c.mean || r.ValueSample != c.note {
				t.Errorf("values %v..%v mean %v (%q), want %v..%v mean %v (%q)", ptrVal(r.ValueMin), ptrVal(r.ValueMax), ptrVal(r.ValueMean), r.ValueSample, c.min, c.max, c.mean, c.note)
			}
		})
	}
	// No budget: no values read.
	v, _ := volume.NewMem(volume.Info{Name: "v", Shape: []int64{2, 3, 4}, DType: volume.Uint8, Axes: axes}, make([]byte, 24))
	var r Record
	FromVolume(context.Background(), &r, v, Hints{}, 0)
	if r.ValueMin != nil || r.ValueSample != "" {
		t.Errorf("budget 0 read values: %v %q", r.ValueMin, r.ValueSample)
	}
}

func ptrVal(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A run that cataloged nothing writes an empty list, which every JSON reader
// takes as a table with no rows, not null.
func TestEmptyDocumentHasRecordsList(t *testing.T) {
	m := store.NewMem()
	out, err := WriteAll(context.Background(), store.New(m), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.New(m).ReadAll(context.Background(), out.JSON, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(doc["records"])); got != "[]" {
		t.Errorf(`catalog.json "records" = %s, want []`, got)
	}
}

// Conflicts are read by people: voxel sizes in four significant digits and
// a shape with the axes the file has, never a 0 for an absent z.
func TestConflictWording(t *testing.T) {
	for _, c := range []struct {
		name string
		axes []volume.Axis
		h    Hints
		want []string
	}{
		{"2D section against a 3D API shape",
			[]volume.Axis{
				{Name: "y", Size: 10, Scale: 0.007998250424861908, Unit: "µm", ScaleKnown: true},
				{Name: "x", Size: 12, Scale: 0.007998250424861908, Unit: "µm", ScaleKnown: true},
			},
			Hints{VoxelNM: []float64{0, 8, 8}, VoxelSource: FromAPI, Shape: []int64{0, 5632, 5628}, ShapeSource: FromAPI},
			[]string{"voxel_size_y: file 7.998 nm, api 8 nm", "voxel_size_x: file 7.998 nm, api 8 nm", "shape (y,x): file 10×12, api 5632×5628 (y 10≠5632, x 12≠5628)"}},
		{"3D volume, the source states no z",
			[]volume.Axis{
				{Name: "z", Size: 3, Scale: 4.4399999999999995, Unit: "nm", ScaleKnown: true},
				{Name: "y", Size: 10, Scale: 4, Unit: "nm", ScaleKnown: true},
				{Name: "x", Size: 12, Scale: 4, Unit: "nm", ScaleKnown: true},
			},
			Hints{VoxelNM: []float64{5, 4, 4}, VoxelSource: FromWebPage, Shape: []int64{0, 10, 13}, ShapeSource: FromWebPage},
			[]string{"voxel_size_z: file 4.44 nm, web page 5 nm", "shape (z,y,x): file 3×10×12, web page –×10×13 (x 12≠13)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := memVol(t, c.axes, volume.Uint8, func(i int) byte { return byte(i) })
			var r Record
			FromVolume(context.Background(), &r, v, c.h, 0)
			if strings.Join(r.Conflicts, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("conflicts\n%s\nwant\n%s", strings.Join(r.Conflicts, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
