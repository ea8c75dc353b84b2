package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// exampleScript is the training-block sampler of examples/.
const exampleScript = "../examples/training_blocks.py"

// exampleReport is what examples/training_blocks.py --json prints.
type exampleReport struct {
	Torch   bool
	Len     int
	Skipped [][]string
	Volumes []struct {
		Name   string
		Axes   []string
		Units  []string
		Levels []struct {
			Path         string
			Shape        []int64
			DType        string
			Scale        []float64
			CornerSHA256 string `json:"corner_sha256"`
		}
	}
	Blocks []struct {
		Volume    string
		Level     int
		Origin    []int64
		Shape     []int64
		SHA256    string
		Item      string
		ItemShape []int64 `json:"item_shape"`
	}
}

// runExample runs the sampler for count blocks with args (and env, "K=V"
// entries) and decodes its report.
func runExample(t *testing.T, py string, env []string, count int, args ...string) exampleReport {
	t.Helper()
	cmd := exec.Command(py, append([]string{exampleScript, "--json", "--count", fmt.Sprint(count), "--seed", "16"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var r exampleReport
	outputJSON(t, exampleScript, cmd, &r)
	return r
}

// outputJSON runs cmd (an oracle, named what in messages) and decodes the
// JSON it prints into v; the test fails with the oracle's stderr when it
// fails.
func outputJSON(t *testing.T, what string, cmd *exec.Cmd, v any) {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("%s: %v\n%s", what, err, ee.Stderr)
		}
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s output %q: %v", what, out, err)
	}
}

// boxSHA is the sha256 of box of e read directly from its volume.
func boxSHA(t *testing.T, e *entry, box volume.Box) string {
	t.Helper()
	b := make([]byte, box.NumElements()*int64(e.in.DType.Size()))
	if err := e.vol.ReadRegion(context.Background(), box, b); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fakeTorch writes a stand-in "torch" package (Dataset and from_numpy only)
// into a directory for PYTHONPATH: Debian's Python here has no PyTorch, and
// the sampler's torch branch must still be run.
func fakeTorch(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"torch/__init__.py": `import numpy as np
class Tensor:
    def __init__(self, a): self.a = a
    shape = property(lambda self: self.a.shape)
    def __getitem__(self, i): return Tensor(self.a[i])
def from_numpy(a):
    assert isinstance(a, np.ndarray)
    return Tensor(a)
`,
		"torch/utils/__init__.py":      "",
		"torch/utils/data/__init__.py": "class Dataset:\n    pass\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTrainingBlocksExample runs examples/training_blocks.py with Debian's
// Python against a converted volume (a 3-level OME-Zarr pyramid of a 30 nm
// by 4 nm by 4 nm stack), read from the files and through the server: every
// level is reached with its shape, its scale in nanometres and its bytes,
// and every 128³ block equals a direct read of the volume.
func TestTrainingBlocksExample(t *testing.T) {
	py := zarrPython(t)
	ctx := context.Background()
	src := t.TempDir()
	st := store.New(store.NewFile(src))
	if err := zarr.WriteNGFF(ctx, st, "src.zarr", u16(t, [3]int64{136, 140, 150}), zarr.WriteOptions{Chunks: []int64{64, 64, 64}, Name: "src"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := t.TempDir()
	// Not under em/ome-zarr/: without a catalog.json the server leaves the
	// copies of a run out, since their originals are there.
	const rel = "em/vol.zarr"
	err := pipeline.Convert(ctx, filepath.Join(src, "src.zarr"), "", filepath.Join(out, filepath.FromSlash(rel)), pipeline.Options{Output: pipeline.OutputOptions{Levels: 3}})
	if err != nil {
		t.Fatal(err)
	}
	srv := openServer(t, out, Options{ErrorLog: quietLog(t)})
	sctx, cancel := context.WithCancel(ctx)
	addr, wait := serveLoopback(t, sctx, srv)
	defer func() { cancel(); wait() }()
	var group *entry
	for _, e := range srv.list {
		if e.Path == rel && len(srv.groups[e.ID]) > 1 {
			group = e
		}
	}
	if group == nil {
		var vs []string
		for _, e := range srv.list {
			vs = append(vs, e.Path+" "+e.Array+" "+fmt.Sprint(srv.groups[e.ID]))
		}
		t.Fatalf("the converted pyramid %s is not served as a group: %q", rel, vs)
	}
	levels := srv.groups[group.ID]
	if len(levels) != 3 {
		t.Fatalf("%d levels served, converted 3", len(levels))
	}

	fromServer := runExample(t, py, nil, 4, "--url", "http://"+addr)
	fromFiles := runExample(t, py, nil, 4, "--dir", out)
	withTorch := runExample(t, py, []string{"PYTHONPATH=" + fakeTorch(t)}, 2, "--url", "http://"+addr)
	for _, c := range []struct {
		how   string
		r     exampleReport
		name  string
		item  string
		count int
	}{
		{"server", fromServer, group.ID, "numpy.ndarray", 4},
		{"files", fromFiles, rel, "numpy.ndarray", 4},
		{"server, torch", withTorch, group.ID, "torch.Tensor", 2},
	} {
		r := c.r
		if len(r.Volumes) != 1 || r.Volumes[0].Name != c.name {
			t.Errorf("%s: volumes %+v, want %s alone", c.how, r.Volumes, c.name)
			continue
		}
		v := r.Volumes[0]
		if fmt.Sprint(v.Axes) != "[z y x]" || fmt.Sprint(v.Units) != "[nanometer nanometer nanometer]" || len(v.Levels) != len(levels) {
			t.Errorf("%s: axes %v units %v, %d levels", c.how, v.Axes, v.Units, len(v.Levels))
			continue
		}
		for k, l := range v.Levels {
			e := srv.byID[levels[k]]
			for i, a := range e.Axes {
				if a.VoxelSize == nil || l.Scale[i] != *a.VoxelSize {
					t.Errorf("%s level %d axis %s: scale %g, the level's voxel size %v nm", c.how, k, a.Name, l.Scale[i], a.VoxelSize)
				}
			}
			corner := volume.Box{Start: make([]int64, 3), Stop: make([]int64, 3)}
			for i, n := range e.Shape {
				corner.Stop[i] = min(n, 128)
			}
			if fmt.Sprint(l.Shape) != fmt.Sprint(e.Shape) || l.DType != e.DType || l.CornerSHA256 != boxSHA(t, e, corner) {
				t.Errorf("%s level %d: %v %s, corner differs or shape is not %v %s", c.how, k, l.Shape, l.DType, e.Shape, e.DType)
			}
		}
		if len(r.Blocks) != c.count || r.Len != c.count || r.Torch != (c.item == "torch.Tensor") {
			t.Errorf("%s: %d blocks, len %d, torch %v; asked for %d", c.how, len(r.Blocks), r.Len, r.Torch, c.count)
		}
		for i, b := range r.Blocks {
			box := volume.NewBox(b.Origin, []int64{128, 128, 128})
			if fmt.Sprint(b.Shape) != "[128 128 128]" || b.SHA256 != boxSHA(t, group, box) {
				t.Errorf("%s block %d at %v: shape %v, bytes differ from a direct read", c.how, i, b.Origin, b.Shape)
			}
			wantShape := "[128 128 128]"
			if c.item == "torch.Tensor" {
				wantShape = "[1 128 128 128]"
			}
			if b.Item != c.item || fmt.Sprint(b.ItemShape) != wantShape {
				t.Errorf("%s block %d: item %s %v, want %s %s", c.how, i, b.Item, b.ItemShape, c.item, wantShape)
			}
			// The same seed picks the same boxes whatever the source.
			if fb := fromFiles.Blocks; i < len(fb) && (fmt.Sprint(fb[i].Origin) != fmt.Sprint(b.Origin) || fb[i].SHA256 != b.SHA256) {
				t.Errorf("%s block %d at %v differs from the files' block %d at %v", c.how, i, b.Origin, i, fb[i].Origin)
			}
		}
	}
}
