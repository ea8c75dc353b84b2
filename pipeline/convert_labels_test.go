package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// labelSource writes an NGFF label image (uint16 labels 0, 3 and 1000 in
// slabs that do not line up with 2×2×2 blocks, image-label with two colours)
// at dir/key and returns its labels.
func labelSource(t *testing.T, dir, key string) map[uint16]bool {
	t.Helper()
	ctx := context.Background()
	shape := []int64{12, 20, 22}
	labels := []uint16{0, 3, 1000}
	in := volume.Info{Name: "cells", Shape: shape, DType: volume.Uint16, Metadata: map[string]any{volume.MetaIsLabel: true}}
	for i, n := range []string{"z", "y", "x"} {
		in.Axes = append(in.Axes, volume.Axis{Name: n, Size: shape[i], Scale: 8, Unit: "nm", ScaleKnown: true})
	}
	data := make([]byte, in.NumBytes())
	i := 0
	for z := range shape[0] {
		for y := range shape[1] {
			for x := range shape[2] {
				binary.LittleEndian.PutUint16(data[i:], labels[(z/3+y/5+x/3)%3])
				i += 2
			}
		}
	}
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(store.NewFile(dir))
	if err := zarr.WriteNGFF(ctx, st, key, m, zarr.WriteOptions{Chunks: []int64{8, 8, 8}}); err != nil {
		t.Fatal(err)
	}
	// Colours, as a viewer would have them.
	b, err := st.ReadAll(ctx, key+"/.zattrs", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var attrs map[string]any
	if err := json.Unmarshal(b, &attrs); err != nil {
		t.Fatal(err)
	}
	il, ok := attrs["image-label"].(map[string]any)
	if !ok {
		t.Fatalf("the label source has no image-label: %s", b)
	}
	il["colors"] = []any{map[string]any{"label-value": 3, "rgba": []int{255, 0, 0, 255}}, map[string]any{"label-value": 1000, "rgba": []int{0, 0, 255, 255}}}
	b, _ = json.Marshal(attrs)
	if err := st.WriteAll(ctx, key+"/.zattrs", b); err != nil {
		t.Fatal(err)
	}
	set := map[uint16]bool{}
	for _, l := range labels {
		set[l] = true
	}
	return set
}

// levelLabels reads every level of the NGFF image at dir/key with this
// package's reader: the label values of each, and whether each is a label
// image with the source's two colours.
func levelLabels(t *testing.T, dir, key string) (levels []map[uint16]bool, labelled []bool) {
	t.Helper()
	ctx := context.Background()
	vs, err := zarr.Format{}.Open(ctx, store.New(store.NewFile(dir)), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		in := v.Info()
		b := make([]byte, in.NumBytes())
		if err := v.ReadRegion(ctx, volume.Full(in.Shape), b); err != nil {
			t.Fatal(err)
		}
		set := map[uint16]bool{}
		for i := 0; i < len(b); i += 2 {
			set[binary.LittleEndian.Uint16(b[i:])] = true
		}
		levels = append(levels, set)
		sum, _ := in.Metadata["image-label"].(map[string]any)
		labelled = append(labelled, volume.IsLabel(in) && sum["colors"] == 2)
	}
	return levels, labelled
}

// zarrLabelsScript prints, as JSON, the multiscale type, whether the group
// has image-label (and its colours) and the sorted unique values of every
// level, read with zarr-python.
const zarrLabelsScript = `
import sys, json, zarr, numpy as np
g = zarr.open_group(sys.argv[1], mode="r")
ms = g.attrs["multiscales"][0]
il = g.attrs.get("image-label")
print(json.dumps({
    "type": ms.get("type"),
    "colors": None if il is None else len(il.get("colors", [])),
    "levels": [sorted(int(v) for v in np.unique(g[d["path"]][:])) for d in ms["datasets"]],
}))
`

// TestConvertLabelPyramid converts an NGFF label image with three levels.
// Every level holds only labels of the source — no invented ids between 3
// and 1000, which the same data converted with --downsample mean shows
// would appear — and the output stays a label image with the source's
// image-label, read with this package and with zarr-python.
func TestConvertLabelPyramid(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := labelSource(t, dir, "src.zarr")
	if err := Convert(ctx, filepath.Join(dir, "src.zarr"), "", filepath.Join(dir, "out.zarr"), Options{Output: OutputOptions{Chunk: 8, Levels: 3}}); err != nil {
		t.Fatal(err)
	}
	levels, labelled := levelLabels(t, dir, "out.zarr")
	if len(levels) != 3 {
		t.Fatalf("%d levels, want 3", len(levels))
	}
	for k, set := range levels {
		for l := range set {
			if !src[l] {
				t.Errorf("level %d holds label %d, which is not in the source", k, l)
			}
		}
		if !labelled[k] {
			t.Errorf("level %d is not a label image with the source's colours", k)
		}
	}

	// The counterfactual: averaging the same labels invents ids.
	if err := Convert(ctx, filepath.Join(dir, "src.zarr"), "", filepath.Join(dir, "mean.zarr"), Options{Output: OutputOptions{Chunk: 8, Levels: 3, Downsample: "mean"}}); err != nil {
		t.Fatal(err)
	}
	mean, meanLabelled := levelLabels(t, dir, "mean.zarr")
	invented := false
	for l := range mean[1] {
		invented = invented || !src[l]
	}
	if !invented || meanLabelled[1] {
		t.Errorf("forced mean: level 1 labels %v, label image %v; the test data should make averages visible", mean[1], meanLabelled[1])
	}

	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import zarr, numpy").CombinedOutput(); err != nil {
		t.Skipf("zarr-python oracle unavailable (%s -c 'import zarr, numpy': %v: %s); the Go checks above ran", py, err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command(py, "-W", "ignore", "-c", zarrLabelsScript, filepath.Join(dir, "out.zarr")).Output()
	if err != nil {
		t.Fatalf("zarr-python: %v", err)
	}
	var got struct {
		Type   string
		Colors *int
		Levels [][]uint16
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("zarr-python printed %s: %v", out, err)
	}
	if got.Type != "mode" || got.Colors == nil || *got.Colors != 2 || len(got.Levels) != 3 {
		t.Fatalf("zarr-python sees %s", out)
	}
	for k, vals := range got.Levels {
		for _, l := range vals {
			if !src[l] {
				t.Errorf("zarr-python: level %d holds label %d, which is not in the source", k, l)
			}
		}
		if !slices.IsSorted(vals) || len(vals) == 0 {
			t.Errorf("zarr-python: level %d values %v", k, vals)
		}
	}
}
