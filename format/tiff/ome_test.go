package tiff

import (
	"bytes"
	"context"
	"fmt"
	"github.com/imgdataset/imgdataset/codec/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

const omeHead = `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">`

// writeTIFF writes src (z, y, x) with desc on the first page into dir/name.
func writeTIFF(t *testing.T, dir, name string, src volume.Volume, desc string) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, src, WriteOptions{Description: desc}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// plane returns page k of a (z, y, x) volume as its own volume.
func plane(t *testing.T, src *volume.Mem, k int64) *volume.Mem {
	in := src.Info()
	n := in.Shape[1] * in.Shape[2] * int64(in.DType.Size())
	return mustMem(t, in.DType, src.Bytes()[k*n:(k+1)*n], 1, in.Shape[1], in.Shape[2])
}

func mustMem(t *testing.T, dt volume.DType, b []byte, shape ...int64) *volume.Mem {
	t.Helper()
	v := testVolume(t, dt, shape...)
	copy(v.Bytes(), b)
	return v
}

// TestOMESingleFile maps IFDs to (z, c) planes in a shuffled order and
// checks axes, calibration and every pixel.
func TestOMESingleFile(t *testing.T) {
	ctx := context.Background()
	const nz, nc, h, w = 2, 3, 5, 7
	src := testVolume(t, volume.Uint16, nz*nc, h, w)
	// IFD i holds plane perm[i]; DimensionOrder XYCZT puts c fastest.
	perm := []int64{4, 0, 5, 2, 1, 3}
	var td strings.Builder
	for i, p := range perm {
		fmt.Fprintf(&td, `<TiffData IFD="%d" PlaneCount="1" FirstZ="%d" FirstC="%d"/>`, i, p/nc, p%nc)
	}
	desc := omeHead + fmt.Sprintf(`<Image ID="Image:0" Name="cells"><Pixels DimensionOrder="XYCZT" Type="uint16" SizeX="%d" SizeY="%d" SizeZ="%d" SizeC="%d" SizeT="1" PhysicalSizeX="0.5" PhysicalSizeXUnit="nm" PhysicalSizeY="0.25" PhysicalSizeYUnit="nm" PhysicalSizeZ="2">%s</Pixels></Image></OME>`,
		w, h, nz, nc, td.String())
	dir := t.TempDir()
	writeTIFF(t, dir, "a.ome.tif", src, desc)
	vs, err := Format{}.Open(ctx, store.New(store.NewFile(dir)), "a.ome.tif")
	if err != nil {
		t.Fatal(err)
	}
	in := vs[0].Info()
	if !eqShape(in.Shape, []int64{nz, nc, h, w}) {
		t.Fatalf("shape %v", in.Shape)
	}
	want := []volume.Axis{
		{Name: "z", Size: nz, Scale: 2, Unit: "µm", ScaleKnown: true},
		{Name: "c", Size: nc, Scale: 1},
		{Name: "y", Size: h, Scale: 0.25, Unit: "nm", ScaleKnown: true},
		{Name: "x", Size: w, Scale: 0.5, Unit: "nm", ScaleKnown: true},
	}
	for i, a := range want {
		if in.Axes[i] != a {
			t.Errorf("axis %d = %+v, want %+v", i, in.Axes[i], a)
		}
	}
	if in.Metadata["ome_image_name"] != "cells" || in.Metadata["ome_dimension_order"] != "XYCZT" {
		t.Errorf("metadata %v", in.Metadata)
	}
	expect := make([]byte, len(src.Bytes()))
	pb := int64(h * w * 2)
	for i, p := range perm {
		copy(expect[p*pb:(p+1)*pb], src.Bytes()[int64(i)*pb:])
	}
	volumetest.Run(t, vs[0], expect, 0)
}

// TestOMEMultiFile builds a three-file set: the master holds the OME-XML,
// the others are BinaryOnly. Any member opens as the whole set.
func TestOMEMultiFile(t *testing.T) {
	ctx := context.Background()
	const h, w = 6, 9
	src := testVolume(t, volume.Uint8, 3, h, w)
	names := []string{"m.ome.tif", "b.ome.tif", "c.ome.tif"}
	var td strings.Builder
	for i, n := range names {
		fmt.Fprintf(&td, `<TiffData FirstZ="%d" IFD="0" PlaneCount="1"><UUID FileName="%s">urn:uuid:%d</UUID></TiffData>`, i, n, i)
	}
	master := omeHead + fmt.Sprintf(`<Image ID="Image:0"><Pixels DimensionOrder="XYCTZ" Type="uint8" SizeX="%d" SizeY="%d" SizeZ="3" SizeC="1" SizeT="1">%s</Pixels></Image></OME>`, w, h, td.String())
	binOnly := omeHead + `<BinaryOnly MetadataFile="m.ome.tif" UUID="urn:uuid:0"/></OME>`
	dir := t.TempDir()
	for i, n := range names {
		d := binOnly
		if i == 0 {
			d = master
		}
		writeTIFF(t, dir, n, plane(t, src, int64(i)), d)
	}
	st := store.New(store.NewFile(dir))
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			vs, err := Format{}.Open(ctx, st, n)
			if err != nil {
				t.Fatal(err)
			}
			in := vs[0].Info()
			if !eqShape(in.Shape, []int64{3, h, w}) || in.Axes[0].Name != "z" {
				t.Fatalf("shape %v axes %v", in.Shape, in.Axes)
			}
			if files, _ := in.Metadata["ome_files"].([]string); len(files) != 3 {
				t.Errorf("ome_files %v", in.Metadata["ome_files"])
			}
			got, err := readAll(ctx, vs[0])
			if err != nil || !bytes.Equal(got, src.Bytes()) {
				t.Fatalf("pixels differ (%v)", err)
			}
		})
	}

	// A set with a member missing, or a member named outside the directory,
	// falls back to the file's own pages with a warning.
	for name, fileName := range map[string]string{"missing": "gone.ome.tif", "escape": "../m.ome.tif", "path": "sub/m.ome.tif"} {
		t.Run(name, func(t *testing.T) {
			d := strings.Replace(master, `FileName="c.ome.tif"`, `FileName="`+fileName+`"`, 1)
			writeTIFF(t, dir, "x.ome.tif", plane(t, src, 0), d)
			vs, err := Format{}.Open(ctx, st, "x.ome.tif")
			if err != nil {
				t.Fatal(err)
			}
			in := vs[0].Info()
			ws, _ := in.Metadata["warnings"].([]string)
			if !eqShape(in.Shape, []int64{h, w}) || len(ws) == 0 || !strings.Contains(ws[0], "OME-XML not used") {
				t.Fatalf("shape %v warnings %v", in.Shape, ws)
			}
		})
	}
}

// TestOMEMalformed: broken or contradictory OME-XML never fails Open; the
// pages are served as a plain stack.
func TestOMEMalformed(t *testing.T) {
	ctx := context.Background()
	src := testVolume(t, volume.Uint8, 4, 3, 5)
	for name, pixels := range map[string]string{
		"unclosed":      `<Pixels SizeX="5"`,
		"bad-order":     `<Pixels DimensionOrder="XYZZT" SizeX="5" SizeY="3" SizeZ="4"/>`,
		"wrong-size":    `<Pixels DimensionOrder="XYZCT" SizeX="6" SizeY="3" SizeZ="4"/>`,
		"ifd-beyond":    `<Pixels DimensionOrder="XYZCT" SizeX="5" SizeY="3" SizeZ="4"><TiffData IFD="3" PlaneCount="4"/></Pixels>`,
		"first-beyond":  `<Pixels DimensionOrder="XYZCT" SizeX="5" SizeY="3" SizeZ="4"><TiffData FirstZ="9"/></Pixels>`,
		"plane-missing": `<Pixels DimensionOrder="XYZCT" SizeX="5" SizeY="3" SizeZ="4"><TiffData IFD="0" PlaneCount="2"/></Pixels>`,
		"huge":          `<Pixels DimensionOrder="XYZCT" SizeX="5" SizeY="3" SizeZ="100000000000" SizeT="100000000000"/>`,
		"negative":      `<Pixels DimensionOrder="XYZCT" SizeX="5" SizeY="3" SizeZ="4"><TiffData IFD="-1"/></Pixels>`,
		"bad-float":     `<Pixels DimensionOrder="XYZCT" SizeX="5" SizeY="3" SizeZ="4" PhysicalSizeX="x"/>`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTIFF(t, dir, "a.ome.tif", src, omeHead+`<Image ID="Image:0">`+pixels+`</Image></OME>`)
			vs, err := Format{}.Open(ctx, store.New(store.NewFile(dir)), "a.ome.tif")
			if err != nil {
				t.Fatal(err)
			}
			if in := vs[0].Info(); !eqShape(in.Shape, []int64{4, 3, 5}) || in.Metadata["warnings"] == nil {
				t.Fatalf("shape %v metadata %v", in.Shape, in.Metadata)
			}
		})
	}
}

// TestOMECorpusSets checks the pixels of the corpus OME sets: the master of
// the multi-file set against each member's own page, and the Micro-Manager
// multi-position file's two positions against their interleaved IFDs.
func TestOMECorpusSets(t *testing.T) {
	dir := corpus.Dir(t)
	ctx := context.Background()
	base := filepath.Join(dir, "tiff", "exampletiffs", "ometiff")
	ownPage := func(t *testing.T, st *store.Store, key string, i int) []byte {
		f, err := loadFile(ctx, st, key, defaultMaxChunk, maxIFDs, jpeg.Default())
		if err != nil {
			t.Fatal(err)
		}
		v := f.r.genericSeries(group{pages: f.pages[i : i+1], meta: f.metas[0]})
		b, err := readAll(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("multifile", func(t *testing.T) {
		st := store.New(store.NewFile(filepath.Join(base, "multifile_master")))
		vs, err := Format{}.Open(ctx, st, "multifile-Z1.ome.tiff")
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, vs[0])
		if err != nil {
			t.Fatal(err)
		}
		n := len(got) / 5
		for z := range 5 {
			if want := ownPage(t, st, fmt.Sprintf("multifile-Z%d.ome.tiff", z+1), 0); !bytes.Equal(got[z*n:(z+1)*n], want) {
				t.Errorf("plane %d differs from its file", z)
			}
		}
	})

	t.Run("micromanager", func(t *testing.T) {
		st := store.New(store.NewFile(base))
		key := "181003_multi_pos_time_course_1_MMStack.ome.tif"
		vs, err := Format{}.Open(ctx, st, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 {
			t.Fatalf("%d series, want one per position", len(vs))
		}
		for p, v := range vs {
			in := v.Info()
			if !eqShape(in.Shape, []int64{10, 256, 256}) || in.Axes[0].Name != "t" || in.Axes[0].Scale != 5000 || in.Axes[0].Unit != "ms" {
				t.Fatalf("position %d: shape %v axes %+v", p, in.Shape, in.Axes)
			}
			got, err := readAll(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			n := len(got) / 10
			for tt := range 10 {
				if !bytes.Equal(got[tt*n:(tt+1)*n], ownPage(t, st, key, 2*tt+p)) {
					t.Errorf("position %d time %d differs from IFD %d", p, tt, 2*tt+p)
				}
			}
		}
	})
}
