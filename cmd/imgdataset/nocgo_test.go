package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TestBuildWithoutCgo builds the command with CGO_ENABLED=0, as on a
// machine without a C compiler, and converts a JPEG precomputed volume with
// it: the binary is static (on Linux), decodes with image/jpeg, says so in
// the output's attributes, and its voxels are within ±1 of this process's
// decoder (libjpeg-turbo when it loads).
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("building the binary skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH (%v); cannot build", err)
	}
	root, err := corpus.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "imgdataset")
	build := exec.Command(goBin, "build", "-o", exe, "./cmd/imgdataset")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/imgdataset: %v\n%s", err, out)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("the CGO_ENABLED=0 binary asks for a dynamic loader: it is not static")
			}
		}
		f.Close()
	}

	ctx := context.Background()
	shape := [3]int64{24, 40, 48}
	src, err := sample.Mem("em", volume.Uint8, sample.ZYX(shape, [3]float64{8, 8, 8}, "nanometer"), sample.EM(shape, 5, 1))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(store.NewFile(dir))
	if err := precomputed.Write(ctx, st, "vol", src, precomputed.WriteOptions{
		Encoding: precomputed.EncJPEG, JPEGQuality: 75, Resolution: [3]float64{8, 8, 8}, ChunkSize: [3]int64{32, 32, 32},
	}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.zarr")
	conv := exec.Command(exe, "convert", filepath.Join(dir, "vol"), "-o", out)
	conv.Env = append(os.Environ(), jpeg.EnvVar+"=") // the default: libjpeg-turbo if this build could
	if b, err := conv.CombinedOutput(); err != nil {
		t.Fatalf("imgdataset convert: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, ".zattrs"))
	if err != nil {
		t.Fatal(err)
	}
	var attrs struct {
		Imgdataset map[string]any `json:"imgdataset"`
	}
	if err := json.Unmarshal(b, &attrs); err != nil {
		t.Fatal(err)
	}
	if got := attrs.Imgdataset[volume.MetaJPEGDecoder]; got != jpeg.GoName {
		t.Errorf("the CGO_ENABLED=0 binary recorded decoder %v, want %q", got, jpeg.GoName)
	}

	// Its voxels against this process's decode of the same volume.
	read := func(key string) []byte {
		_, vols, err := all.Registry().Open(ctx, st, key)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, vols[0].Info().NumBytes())
		if err := vols[0].ReadRegion(ctx, volume.Full(vols[0].Info().Shape), buf); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	got, want := read("out.zarr"), read("vol")
	if len(got) != len(want) {
		t.Fatalf("%d voxels converted, %d in the source", len(got), len(want))
	}
	var maxd, n int
	for i := range got {
		if d := int(got[i]) - int(want[i]); d != 0 {
			n++
			maxd = max(maxd, d, -d)
		}
	}
	t.Logf("CGO_ENABLED=0 (%s) vs %s: %d of %d voxels differ, by at most %d", jpeg.GoName, jpeg.Default().Name(), n, len(got), maxd)
	if maxd > 1 {
		t.Errorf("the fallback decoder differs by %d (> 1)", maxd)
	}
	if strings.HasPrefix(jpeg.Default().Name(), "libjpeg-turbo") && n == 0 {
		t.Errorf("no voxel differs between image/jpeg and libjpeg-turbo: was the fallback used at all?")
	}
}
