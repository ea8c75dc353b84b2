package zarr

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// imageLabelJSON is an "image-label" object: two colours, properties with
// the keys area and class.
const imageLabelJSON = `{"version":"0.4","colors":[{"label-value":1,"rgba":[255,0,0,255]},{"label-value":2,"rgba":[0,255,0,128]}],` +
	`"properties":[{"label-value":1,"class":"nucleus","area":12},{"label-value":2,"class":"cytoplasm"}],"source":{"image":"../../"}}`

// writeLabelled writes an NGFF image at img (two levels, uint16) with a labels
// group listing "cells" (an image-label image), "plain" (a multiscale without
// image-label) and "missing" (absent). version "0.5" puts NGFF metadata
// under "ome" in zarr.json.
func writeLabelled(t *testing.T, st *store.Store, img, version string) {
	t.Helper()
	ctx := context.Background()
	axes := []volume.Axis{{Name: "z", Size: 4, Scale: 40, Unit: "nm", ScaleKnown: true}, {Name: "y", Size: 6, Scale: 4, Unit: "nm", ScaleKnown: true}, {Name: "x", Size: 8, Scale: 4, Unit: "nm", ScaleKnown: true}}
	for _, w := range []struct {
		key    string
		dt     volume.DType
		labels bool
	}{{img, volume.Uint16, false}, {img + "/labels/cells", volume.Uint32, true}, {img + "/labels/plain", volume.Uint8, true}} {
		src := memVolume(t, w.key, []int64{4, 6, 8}, w.dt, axes)
		opt := WriteOptions{Version: version, Levels: 2, Chunks: []int64{2, 4, 4}, Method: volume.Mean}
		if w.labels {
			opt.Method = volume.Mode
		}
		if err := WriteNGFF(ctx, st, w.key, src, opt); err != nil {
			t.Fatal(err)
		}
	}
	il := json.RawMessage(imageLabelJSON)
	list := map[string]any{"labels": []string{"cells", "plain", "missing"}}
	if version == "0.5" {
		patchAttrs(t, st, img+"/labels/cells/zarr.json", func(a map[string]any) {
			a["ome"].(map[string]any)["image-label"] = il
		})
		list = map[string]any{"ome": map[string]any{"version": "0.5", "labels": list["labels"]}}
		b, _ := json.Marshal(map[string]any{"zarr_format": 3, "node_type": "group", "attributes": list})
		st.WriteAll(ctx, img+"/labels/zarr.json", b)
		return
	}
	patchAttrs(t, st, img+"/labels/cells/.zattrs", func(a map[string]any) { a["image-label"] = il })
	b, _ := json.Marshal(list)
	st.WriteAll(ctx, img+"/labels/.zattrs", b)
	st.WriteAll(ctx, img+"/labels/.zgroup", []byte(`{"zarr_format":2}`))
}

// patchAttrs edits the attributes in a .zattrs or zarr.json.
func patchAttrs(t *testing.T, st *store.Store, key string, edit func(map[string]any)) {
	t.Helper()
	ctx := context.Background()
	b, err := st.ReadAll(ctx, key, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if a, ok := doc["attributes"].(map[string]any); ok {
		edit(a)
	} else {
		edit(doc)
	}
	b, _ = json.Marshal(doc)
	if err := st.WriteAll(ctx, key, b); err != nil {
		t.Fatal(err)
	}
}

// byName indexes volumes by name.
func byName(vs []volume.Volume) map[string]volume.Info {
	m := map[string]volume.Info{}
	for _, v := range vs {
		m[v.Info().Name] = v.Info()
	}
	return m
}

// checkLabelled asserts the pairing metadata of a store written by
// writeLabelled at img, among the volumes got (names as the store keys).
func checkLabelled(t *testing.T, got map[string]volume.Info, img string) {
	t.Helper()
	for _, lvl := range []string{"s0", "s1"} {
		im, ok := got[join(img, lvl)]
		if !ok {
			t.Fatalf("no image level %s among %v", lvl, slices.Collect(mapKeys(got)))
		}
		if fmt.Sprint(im.Metadata["labels"]) != "[cells plain]" || im.Metadata["is_label"] != nil {
			t.Errorf("image %s: labels %v is_label %v", im.Name, im.Metadata["labels"], im.Metadata["is_label"])
		}
		if w := fmt.Sprint(im.Metadata["labels_warning"]); !strings.Contains(w, `label "missing" listed in`) {
			t.Errorf("image %s: labels_warning %q", im.Name, w)
		}
		cells, ok := got[join(img, "labels/cells/"+lvl)]
		if !ok {
			t.Fatalf("no label level %s", lvl)
		}
		md := cells.Metadata
		if md["is_label"] != true || md["label_of"] != img || md["label_warning"] != nil {
			t.Errorf("label %s: is_label %v label_of %q (want %q) warning %v", cells.Name, md["is_label"], md["label_of"], img, md["label_warning"])
		}
		sum, _ := md["image-label"].(map[string]any)
		if sum["colors"] != 2 || sum["properties"] != 2 || fmt.Sprint(sum["property_keys"]) != "[area class]" || sum["version"] != "0.4" {
			t.Errorf("label %s: image-label %v", cells.Name, sum)
		}
		if cells.DType != volume.Uint32 || !cells.Axes[0].ScaleKnown || cells.Axes[1].Scale != im.Axes[1].Scale {
			t.Errorf("label %s: %s axes %+v, image axes %+v", cells.Name, cells.DType, cells.Axes, im.Axes)
		}
		plain := got[join(img, "labels/plain/"+lvl)]
		if plain.Metadata["is_label"] != true || plain.Metadata["label_of"] != img || !strings.Contains(fmt.Sprint(plain.Metadata["label_warning"]), "image-label") {
			t.Errorf("label %s: metadata %v", plain.Name, plain.Metadata)
		}
	}
}

func mapKeys(m map[string]volume.Info) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestLabels(t *testing.T) {
	ctx := context.Background()
	for _, version := range []string{"0.4", "0.5"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			st := store.New(store.NewFile(dir))
			writeLabelled(t, st, "ds/img.zarr", version)
			hidden := store.New(noList{store.NewFile(dir)})

			// The image group: its levels, then its labels' levels, with no listing.
			vs, err := Format{}.Open(ctx, hidden, "ds/img.zarr")
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 6 {
				t.Errorf("%d volumes, want 2 image + 2×2 label levels", len(vs))
			}
			checkLabelled(t, byName(vs), "ds/img.zarr")
			for _, v := range vs {
				if in := v.Info(); in.Name == "ds/img.zarr/labels/cells/s0" {
					buf := make([]byte, in.NumBytes())
					if err := v.ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(buf, pattern(volume.Prod(in.Shape), volume.Uint32)) {
						t.Errorf("%s: data differs from what was written", in.Name)
					}
				}
			}

			// A walk from the store root finds the same arrays.
			vs, err = Format{}.Open(ctx, st, "")
			if err != nil {
				t.Fatal(err)
			}
			checkLabelled(t, byName(vs), "ds/img.zarr")

			// A broken label array does not cost the image.
			meta := ".zarray"
			if version == "0.5" {
				meta = "zarr.json"
			}
			st.WriteAll(ctx, "ds/img.zarr/labels/plain/s1/"+meta, []byte(`{"zarr_format":`))
			vs, err = Format{}.Open(ctx, hidden, "ds/img.zarr")
			if err != nil || len(vs) != 5 {
				t.Fatalf("with a broken label array: %d volumes, %v", len(vs), err)
			}
			if w := fmt.Sprint(vs[0].Info().Metadata["labels_warning"]); !strings.Contains(w, `label array "ds/img.zarr/labels/plain/s1" skipped`) {
				t.Errorf("labels_warning %q", w)
			}

			// The label image on its own still says what it labels.
			vs, err = Format{}.Open(ctx, hidden, "ds/img.zarr/labels/cells")
			if err != nil || len(vs) != 2 {
				t.Fatalf("label group: %d volumes, %v", len(vs), err)
			}
			for _, v := range vs {
				if md := v.Info().Metadata; md["label_of"] != "ds/img.zarr" || md["is_label"] != true {
					t.Errorf("%s: %v", v.Info().Name, md)
				}
			}
		})
	}
}

func TestLabelSource(t *testing.T) {
	for _, c := range []struct{ prefix, image, want string }{
		{"img/labels/a", "", "img"},
		{"img/labels/a", "../../", "img"},
		{"img/labels/x/a", "../../../", "img"},
		{"labels/a", "", ""},
		{"a", "", ".."},
		{"img/labels/a", "../../../other", "other"},
	} {
		g := &ngffGroup{prefix: c.prefix, imageLabel: json.RawMessage(fmt.Sprintf(`{"source":{"image":%q}}`, c.image))}
		md := map[string]any{}
		g.applyLabel(md)
		if md["label_of"] != c.want || md["is_label"] != true {
			t.Errorf("%s + %q: label_of %q, want %q", c.prefix, c.image, md["label_of"], c.want)
		}
	}
	// A float label image, with an image-label that is not an object.
	g, _, _ := parseNGFF([]byte(`{"multiscales":[{"axes":["y","x"],"datasets":[{"path":"0"}]}],"image-label":[1]}`))
	g.prefix = "im/labels/f"
	a := &array{info: volume.Info{Shape: []int64{1, 1}, DType: volume.Float32, Axes: make([]volume.Axis, 2), Metadata: map[string]any{}}}
	g.levelFor("0").apply(a)
	if w := fmt.Sprint(a.info.Metadata["label_warning"]); w != "image-label is not a JSON object; label image of dtype float32 (NGFF requires an integer type)" || a.info.Metadata["label_of"] != "im" {
		t.Errorf("float label: %v", a.info.Metadata)
	}
	for _, c := range []struct {
		attrs string
		names string
		drop  int
	}{
		{`{"labels":["a","b/c"]}`, "[a b/c]", 0},
		{`{"ome":{"version":"0.5","labels":["a"]}}`, "[a]", 0},
		{`{"labels":["../x","/y","", 3, "a", "a/"]}`, "[y a]", 4},
		{`{"labels":"a"}`, "[]", 0},
	} {
		names, drop := parseLabelList([]byte(c.attrs))
		if fmt.Sprint(names) != c.names || drop != c.drop {
			t.Errorf("%s: %v (%d dropped), want %s (%d)", c.attrs, names, drop, c.names, c.drop)
		}
	}
}

// TestLabelsZarrPython reads an image with labels written by zarr-python
// (NGFF 0.4 metadata set by hand, as ome-zarr-py lays it out).
func TestLabelsZarrPython(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := `
import sys, json, hashlib, zarr, numpy as np
root = zarr.open_group(sys.argv[1] + "/img.zarr", mode="w")
def ms(name, levels):
    return [{"version": "0.4", "name": name,
             "axes": [{"name": "y", "type": "space", "unit": "micrometer"}, {"name": "x", "type": "space", "unit": "micrometer"}],
             "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [0.5 * 2**i, 0.5 * 2**i]}]} for i in range(levels)]}]
rng = np.random.default_rng(3)
img = rng.integers(0, 1000, size=(20, 30)).astype("<u2")
lab = (img > 500).astype("<i4") + (img > 900)
root.attrs["multiscales"] = ms("img", 2)
root.create_dataset("0", data=img, chunks=(8, 8))
root.create_dataset("1", data=img[::2, ::2], chunks=(8, 8))
labels = root.create_group("labels")
labels.attrs["labels"] = ["seg"]
seg = labels.create_group("seg")
seg.attrs["multiscales"] = ms("seg", 2)
seg.attrs["image-label"] = {"version": "0.4", "colors": [{"label-value": 1, "rgba": [0, 0, 255, 255]}, {"label-value": 2, "rgba": [255, 0, 0, 255]}],
                            "properties": [{"label-value": 1, "kind": "bright"}], "source": {"image": "../../"}}
seg.create_dataset("0", data=lab, chunks=(8, 8))
seg.create_dataset("1", data=lab[::2, ::2], chunks=(8, 8))
for k, a in [("img.zarr/0", img), ("img.zarr/labels/seg/0", lab)]:
    print(k, hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest())
`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("zarr-python: %v\n%s", err, out)
	}
	vs, err := Format{}.Open(ctx, store.New(noList{store.NewFile(dir)}), "img.zarr")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]volume.Volume{}
	for _, v := range vs {
		got[v.Info().Name] = v
	}
	if len(got) != 4 {
		t.Errorf("%d volumes, want 4", len(got))
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		v, ok := got[f[0]]
		if !ok {
			t.Fatalf("no volume %s", f[0])
		}
		in := v.Info()
		buf := make([]byte, in.NumBytes())
		if err := v.ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(buf)
		if hex.EncodeToString(h[:]) != f[1] {
			t.Errorf("%s: sha256 differs from zarr-python", f[0])
		}
	}
	im, seg := got["img.zarr/0"].Info(), got["img.zarr/labels/seg/1"].Info()
	if fmt.Sprint(im.Metadata["labels"]) != "[seg]" || im.Axes[0].Scale != 0.5 {
		t.Errorf("image: labels %v axes %+v", im.Metadata["labels"], im.Axes)
	}
	sum, _ := seg.Metadata["image-label"].(map[string]any)
	if seg.Metadata["is_label"] != true || seg.Metadata["label_of"] != "img.zarr" || sum["colors"] != 2 || fmt.Sprint(sum["property_keys"]) != "[kind]" || seg.Axes[1].Scale != 1 {
		t.Errorf("label: metadata %v axes %+v", seg.Metadata, seg.Axes)
	}
}

// TestWriteNGFFKeepsImageLabel copies a label image (read through Format) and
// an intensity image with three levels: the label copy is reduced by mode, so
// every level holds only labels of the source, and its group keeps the
// source's image-label (colors, properties, source link); the intensity copy
// gets no image-label.
func TestWriteNGFFKeepsImageLabel(t *testing.T) {
	ctx := context.Background()
	for _, version := range []string{"0.4", "0.5"} {
		t.Run(version, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			writeLabelled(t, st, "img.zarr", version)
			for _, c := range []struct {
				src   string
				label bool
			}{{"img.zarr/labels/cells", true}, {"img.zarr", false}} {
				vs, err := Format{}.Open(ctx, st, c.src)
				if err != nil {
					t.Fatal(err)
				}
				src := vs[0]
				if volume.IsLabel(src.Info()) != c.label {
					t.Fatalf("%s: is_label %v", c.src, src.Info().Metadata)
				}
				dst := strings.ReplaceAll(c.src, "/", "_") + ".copy"
				if err := WriteNGFF(ctx, st, dst, src, WriteOptions{Version: version, Levels: 3, Chunks: []int64{2, 2, 2}}); err != nil {
					t.Fatal(err)
				}
				attrs := readAttrs(t, st, dst, version)
				il, has := attrs["image-label"].(map[string]any)
				if has != c.label {
					t.Fatalf("%s: image-label %v in %v", dst, attrs["image-label"], attrs)
				}
				ms := attrs["multiscales"].([]any)[0].(map[string]any)
				if want := map[bool]string{true: "mode", false: "mean"}[c.label]; ms["type"] != want {
					t.Errorf("%s: multiscale type %v, want %s", dst, ms["type"], want)
				}
				if !c.label {
					continue
				}
				if len(il["colors"].([]any)) != 2 || len(il["properties"].([]any)) != 2 || il["source"] == nil {
					t.Errorf("%s: image-label %v", dst, il)
				}
				if v, ok := il["version"]; (version == "0.4") != ok || (ok && v != "0.4") {
					t.Errorf("%s: image-label version %v in NGFF %s", dst, v, version)
				}
				srcLabels := labelSet(t, src)
				copies, err := Format{}.Open(ctx, st, dst)
				if err != nil || len(copies) != 3 {
					t.Fatalf("%s: %d levels, %v", dst, len(copies), err)
				}
				for k, v := range copies {
					md := v.Info().Metadata
					sum, _ := md["image-label"].(map[string]any)
					if !volume.IsLabel(v.Info()) || sum["colors"] != 2 || sum["properties"] != 2 {
						t.Errorf("%s level %d: metadata %v", dst, k, md)
					}
					for l := range labelSet(t, v) {
						if !srcLabels[l] {
							t.Errorf("%s level %d: label %d is not in the source", dst, k, l)
						}
					}
				}
			}
		})
	}
}

// readAttrs returns a group's NGFF attributes: .zattrs (0.4) or
// attributes.ome of zarr.json (0.5).
func readAttrs(t *testing.T, st *store.Store, group, version string) map[string]any {
	t.Helper()
	key := group + "/.zattrs"
	if version == "0.5" {
		key = group + "/zarr.json"
	}
	b, err := st.ReadAll(context.Background(), key, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if version == "0.5" {
		return doc["attributes"].(map[string]any)["ome"].(map[string]any)
	}
	return doc
}

// labelSet reads a uint32 volume and returns the values it holds.
func labelSet(t *testing.T, v volume.Volume) map[uint32]bool {
	t.Helper()
	in := v.Info()
	b := make([]byte, in.NumBytes())
	if err := v.ReadRegion(context.Background(), volume.Full(in.Shape), b); err != nil {
		t.Fatal(err)
	}
	set := map[uint32]bool{}
	for i := 0; i+4 <= len(b); i += 4 {
		set[binary.LittleEndian.Uint32(b[i:])] = true
	}
	return set
}
