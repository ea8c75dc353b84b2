package n5

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// TestWriteOneUnitAndAttributes writes a volume calibrated in nm (z) and µm
// (y, x): attributes.json must state one unit, so N5 Viewer (which has one)
// draws it right, and carry the extra attributes.
func TestWriteOneUnitAndAttributes(t *testing.T) {
	st, _ := fileStore(t)
	src := memVolume(t, volume.Uint16, []int64{3, 5, 4})
	in := src.Info()
	for i, c := range []struct {
		scale float64
		unit  string
	}{{50, "nm"}, {0.008, "µm"}, {0.004, "um"}} {
		in.Axes[i].Scale, in.Axes[i].Unit, in.Axes[i].ScaleKnown = c.scale, c.unit, true
	}
	cal, err := volume.NewMem(in, src.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]any{"imgdataset": map[string]any{"voxel_size_source": "file"}}
	ctx := context.Background()
	if err := Write(ctx, st, "c", cal, WriteOptions{Attributes: extra}); err != nil {
		t.Fatal(err)
	}
	b, err := st.ReadAll(ctx, "c/attributes.json", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var attrs struct {
		Units           []string  `json:"units"`
		Resolution      []float64 `json:"resolution"`
		PixelResolution struct {
			Unit       string    `json:"unit"`
			Dimensions []float64 `json:"dimensions"`
		} `json:"pixelResolution"`
		Imgdataset map[string]any `json:"imgdataset"`
	}
	if err := json.Unmarshal(b, &attrs); err != nil {
		t.Fatal(err)
	}
	want := []float64{4, 8, 50} // x, y, z as N5 orders them
	if fmt.Sprint(attrs.Units) != "[nm nm nm]" || attrs.PixelResolution.Unit != "nm" || attrs.Imgdataset["voxel_size_source"] != "file" {
		t.Errorf("attributes.json: %s", b)
	}
	for i, w := range want {
		if i >= len(attrs.Resolution) || math.Abs(attrs.Resolution[i]-w) > 1e-9 || math.Abs(attrs.PixelResolution.Dimensions[i]-w) > 1e-9 {
			t.Fatalf("resolution %v / %v, want %v", attrs.Resolution, attrs.PixelResolution.Dimensions, want)
		}
	}
	for i, a := range openOne(t, st, "c").Info().Axes {
		if w := want[2-i]; a.Unit != "nm" || math.Abs(a.Scale-w) > 1e-9 {
			t.Errorf("read back axis %s: %+v, want %g nm", a.Name, a, w)
		}
	}
	if err := Write(ctx, st, "d", cal, WriteOptions{Attributes: map[string]any{"dataType": "int8"}}); err == nil {
		t.Error("an attribute replacing dataType was accepted")
	}
}

// TestWriteAttributesASCII writes a volume in µm with an attribute naming a
// path with an accent: attributes.json must be ASCII, because zarr-python
// 2's N5Store decodes it as ASCII and could not open the dataset at all,
// and must still read back as "µm" and the path.
func TestWriteAttributesASCII(t *testing.T) {
	st, _ := fileStore(t)
	src := memVolume(t, volume.Uint8, []int64{2, 3, 4})
	in := src.Info()
	for i := range in.Axes {
		in.Axes[i].Scale, in.Axes[i].Unit, in.Axes[i].ScaleKnown = 2, "µm", true
	}
	cal, err := volume.NewMem(in, src.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	extra := map[string]any{"imgdataset_source": map[string]any{"url": "/data/Ångström µ/😀.tif"}}
	if err := Write(ctx, st, "c", cal, WriteOptions{Attributes: extra}); err != nil {
		t.Fatal(err)
	}
	b, err := st.ReadAll(ctx, "c/attributes.json", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range b {
		if c >= 0x80 {
			t.Fatalf("attributes.json byte %d is not ASCII: %s", i, b)
		}
	}
	var attrs struct {
		Units  []string          `json:"units"`
		Source map[string]string `json:"imgdataset_source"`
	}
	if err := json.Unmarshal(b, &attrs); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(attrs.Units) != "[µm µm µm]" || attrs.Source["url"] != "/data/Ångström µ/😀.tif" {
		t.Errorf("attributes.json reads back units %q, source %q", attrs.Units, attrs.Source["url"])
	}
	if a := openOne(t, st, "c").Info().Axes[0]; a.Unit != "µm" || a.Scale != 2 {
		t.Errorf("read back axis %+v, want 2 µm", a)
	}
}
