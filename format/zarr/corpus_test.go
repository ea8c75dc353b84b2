package zarr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// knownMismatch lists corpus rows this reader does not read yet, with the
// reason. Each must still fail cleanly (format.ErrNotSupported), so that when
// the feature lands the test says to remove the entry.
func knownMismatch(e corpus.Entry) string {
	switch {
	case strings.Contains(e.Path, "zarrita.zr3"):
		return "pre-1.0 Zarr v3 draft layout (zarr_format is a URL)"
	}
	return ""
}

func TestCorpus(t *testing.T) {
	dir, rows := corpus.Category(t, "zarr")
	ctx := context.Background()
	var table []string
	for _, e := range rows {
		switch e.Kind {
		case "array-dir", "ome-zarr-store", "zarr-v2-store", "store(partial)":
		default:
			continue
		}
		t.Run(e.Path, func(t *testing.T) {
			st := store.New(store.NewFile(filepath.Join(dir, e.Path)))
			reason := knownMismatch(e)
			res, err := checkRow(ctx, t, st, e)
			if reason != "" {
				if err == nil {
					t.Errorf("known mismatch %q now reads correctly: remove it from knownMismatch", reason)
				} else if !errors.Is(err, format.ErrNotSupported) {
					t.Errorf("known mismatch %q failed with an unexpected error: %v", reason, err)
				}
				table = append(table, fmt.Sprintf("KNOWN %-70s %s", e.Path, reason))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			table = append(table, fmt.Sprintf("PASS  %-70s %s", e.Path, res))
		})
	}
	t.Logf("zarr corpus:\n%s", strings.Join(table, "\n"))
}

// checkRow opens a corpus row and compares it with the expected values.
func checkRow(ctx context.Context, t *testing.T, st *store.Store, e corpus.Entry) (string, error) {
	vs, err := Format{}.Open(ctx, st, "")
	if err != nil {
		return "", err
	}
	exp := map[string]map[string]any{}
	if _, ok := e.Expected["shape"]; ok {
		exp[""] = e.Expected
	} else {
		for k, v := range e.Expected {
			if m, ok := v.(map[string]any); ok {
				exp[k] = m
			}
		}
	}
	checked := 0
	for key, want := range exp {
		v := pick(vs, key, want)
		if v == nil {
			return "", fmt.Errorf("no volume for expected %q %v among %d", key, want["shape"], len(vs))
		}
		in := v.Info()
		if _, _, ok := in.DType.FixedString(); ok {
			if err := checkStrings(ctx, v, e, want); err != nil {
				return "", err
			}
			checked++
			continue
		}
		if fmt.Sprint(in.Shape) != fmt.Sprint(want["shape"]) || string(in.DType) != want["dtype"] {
			return "", fmt.Errorf("%s: %v %s, want %v %v", in.Name, in.Shape, in.DType, want["shape"], want["dtype"])
		}
		sum, err := volume.Checksum16(ctx, v, 0)
		if err != nil {
			return "", fmt.Errorf("%s: %w", in.Name, err)
		}
		if sum != want["sha256_16"] {
			t.Errorf("%s: sha256_16 %s, want %v", in.Name, sum, want["sha256_16"])
		}
		checked++
	}
	// NGFF stores: the multiscale axes are applied.
	if e.HasFeature("ome-ngff-0.4") || e.HasFeature("ome-ngff-0.5") {
		for _, v := range vs {
			in := v.Info()
			if !in.Axes[0].ScaleKnown || in.Axes[0].Unit != "nanometer" {
				t.Errorf("%s: NGFF axes not applied: %+v", in.Name, in.Axes)
			}
			if in.Name == "scale1/image" && (in.Axes[0].Scale != 8 || in.Axes[1].Offset != 15) {
				t.Errorf("%s: axes %+v, want y scale 8, x offset 15", in.Name, in.Axes)
			}
		}
	}
	if e.HasFeature("ome-ngff-0.6-dev(RFC-5)") {
		if err := checkRFC5(e, vs); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d volumes, %d checksums", len(vs), checked), nil
}

// rfc5Want is what the RFC-5 example stores say, read off their zarr.json by
// hand: the dataset transform into the default coordinate system, and the
// warning an unsupported transformation must raise.
var rfc5Want = map[string]struct {
	scale, offset []float64 // nil: voxel size unknown
	warn          string    // substring of ngff_warning ("" : none)
	other         string    // substring of ngff_other_transforms
}{
	"identity.zarr":                 {scale: []float64{1, 1, 1}, offset: []float64{0, 0, 0}},
	"scale.zarr":                    {scale: []float64{4, 3, 2}, offset: []float64{0, 0, 0}},
	"sequenceScaleTranslation.zarr": {scale: []float64{4, 3, 2}, offset: []float64{32, 21, 10}},
	"anisotropic_rotation.zarr":     {scale: []float64{2, 0.5, 0.25}, offset: []float64{0, 0, 0}, other: `affine "physical" -> "world"`},
	"rotation.zarr":                 {warn: `transform "rotation" (RFC-5) is not supported: voxel size unknown`},
}

// checkRFC5 compares the axes of an RFC-5 example store with rfc5Want.
func checkRFC5(e corpus.Entry, vs []volume.Volume) error {
	want, ok := rfc5Want[filepath.Base(e.Path)]
	if !ok {
		return fmt.Errorf("no RFC-5 expectation for %s: add one to rfc5Want", e.Path)
	}
	if len(vs) != 1 {
		return fmt.Errorf("%d volumes, want 1", len(vs))
	}
	in := vs[0].Info()
	warn, _ := in.Metadata["ngff_warning"].(string)
	if !strings.Contains(warn, want.warn) || (want.warn == "") != (warn == "") {
		return fmt.Errorf("%s: ngff_warning %q, want %q", in.Name, warn, want.warn)
	}
	if other := fmt.Sprint(in.Metadata["ngff_other_transforms"]); want.other != "" && !strings.Contains(other, want.other) {
		return fmt.Errorf("%s: ngff_other_transforms %s, want %q", in.Name, other, want.other)
	}
	for i, ax := range in.Axes {
		if ax.Name != []string{"z", "y", "x"}[i] || ax.Unit != "micrometer" {
			return fmt.Errorf("%s: axis %d %+v, want zyx micrometer", in.Name, i, ax)
		}
		if want.scale == nil {
			if ax.ScaleKnown {
				return fmt.Errorf("%s: axis %s scale %v reported as known", in.Name, ax.Name, ax.Scale)
			}
			continue
		}
		if !ax.ScaleKnown || ax.Scale != want.scale[i] || ax.Offset != want.offset[i] {
			return fmt.Errorf("%s: axis %+v, want scale %v offset %v", in.Name, ax, want.scale[i], want.offset[i])
		}
	}
	return nil
}

// checkStrings compares a fixed-size string array with the row's shape,
// NumPy dtype and the values its upstream column lists. The corpus's string
// arrays are all little-endian, so their dtype is volume's unchanged.
func checkStrings(ctx context.Context, v volume.Volume, e corpus.Entry, want map[string]any) error {
	in := v.Info()
	if fmt.Sprint(in.Shape) != fmt.Sprint(want["shape"]) || string(in.DType) != want["dtype"] {
		return fmt.Errorf("%s: %v %v, want %v %v", in.Name, in.Shape, in.DType, want["shape"], want["dtype"])
	}
	m := regexp.MustCompile(`values=(\[[^]]*\])`).FindStringSubmatch(e.ExpectedUpstream)
	if m == nil {
		return fmt.Errorf("%s: no values= in the upstream column", in.Name)
	}
	var vals []string
	if err := json.Unmarshal([]byte(m[1]), &vals); err != nil {
		return fmt.Errorf("%s: values: %w", in.Name, err)
	}
	got, err := v.(StringReader).ReadStrings(ctx, volume.Full(in.Shape))
	if err != nil {
		return err
	}
	for i := range vals {
		vals[i] = strings.TrimSuffix(strings.TrimPrefix(vals[i], "b'"), "'")
	}
	if fmt.Sprint(got) != fmt.Sprint(vals) {
		return fmt.Errorf("%s: values %q, want %q", in.Name, got, vals)
	}
	return nil
}

func pick(vs []volume.Volume, key string, want map[string]any) volume.Volume {
	for _, v := range vs {
		in := v.Info()
		if key != "" && (in.Name == key+"/image" || in.Name == key) {
			return v
		}
	}
	if key == "" {
		for _, v := range vs {
			in := v.Info()
			if fmt.Sprint(in.Shape) == fmt.Sprint(want["shape"]) && string(in.DType) == want["dtype"] {
				return v
			}
		}
	}
	return nil
}

// python is /usr/bin/python3 when it can import zarr and numcodecs.
func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import zarr, numcodecs; print(zarr.__version__)").CombinedOutput()
	if err != nil {
		t.Skipf("zarr-python oracle unavailable (%v): %s", err, strings.TrimSpace(string(out)))
	}
	return py
}

// TestZarrPython writes with this package and reads with zarr-python, and the
// other way round, comparing shape, dtype and sha256 of the C-order bytes.
func TestZarrPython(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	rng := rand.New(rand.NewPCG(5, 6))
	shape := []int64{13, 21, 10}
	src := memVolume(t, "x", shape, volume.Int16, nil)
	for i := range src.Bytes() {
		src.Bytes()[i] ^= byte(rng.IntN(3))
	}
	for _, comp := range []string{"zstd", "gzip", "zlib", "lz4", "none"} {
		w, err := CreateArray(ctx, st, "go/"+comp, src.Info(), WriteOptions{Chunks: []int64{5, 8, 4}, Compressor: comp})
		if err != nil {
			t.Fatal(err)
		}
		if err := volume.Copy(ctx, w, src, volume.CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := sha256.Sum256(src.Bytes())
	want := hex.EncodeToString(h[:])
	script := `
import sys, hashlib, zarr, numpy as np
root = sys.argv[1]
for comp in ["zstd", "gzip", "zlib", "lz4", "none"]:
    a = zarr.open(root + "/go/" + comp, mode="r")[...]
    print(comp, list(a.shape), a.dtype.str, hashlib.sha256(np.ascontiguousarray(a).astype("<i2").tobytes()).hexdigest())
import numcodecs
rng = np.random.default_rng(1)
for name, dt, order, sep, comp in [("py/a", ">u2", "F", "/", numcodecs.Zstd(level=1)),
                                  ("py/b", "<f4", "C", ".", numcodecs.GZip(level=3)),
                                  ("py/c", "|u1", "C", "/", numcodecs.LZ4()),
                                  ("py/d", "<i8", "F", ".", numcodecs.Zlib(level=2)),
                                  ("py/e", "<i2", "C", "/", None)]:
    x = (rng.integers(0, 200, size=(11, 7, 9)) - 20).astype(dt)
    z = zarr.open(root + "/" + name, mode="w", shape=x.shape, chunks=(4, 3, 5), dtype=dt, order=order,
                  compressor=comp, dimension_separator=sep, fill_value=3)
    z[...] = x
    z2 = zarr.open(root + "/" + name, mode="r+")
    z2[8:, :, :] = 3  # chunks equal to fill may be skipped by the writer
    x[8:] = 3
    le = x.astype(x.dtype.newbyteorder("<"))
    print(name, list(x.shape), le.dtype.name, hashlib.sha256(np.ascontiguousarray(le).tobytes()).hexdigest())
`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("zarr-python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 10 {
		t.Fatalf("zarr-python printed %d lines, want 10:\n%s", len(lines), out)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 4 {
			t.Fatalf("python output %q", line)
		}
		name, sum := f[0], f[len(f)-1]
		if !strings.HasPrefix(name, "py/") {
			if sum != want {
				t.Errorf("zarr-python read of go/%s: sha256 %s, want %s", name, sum, want)
			}
			continue
		}
		v := openOne(t, st, name)
		buf := make([]byte, v.Info().NumBytes())
		if err := v.ReadRegion(ctx, volume.Full(v.Info().Shape), buf); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h := sha256.Sum256(buf)
		if got := hex.EncodeToString(h[:]); got != sum || string(v.Info().DType) != f[len(f)-2] {
			t.Errorf("%s: %s sha256 %s, zarr-python says %s %s", name, v.Info().DType, got, f[len(f)-2], sum)
		}
		volumetest.Run(t, v, buf, 0)
	}
}
