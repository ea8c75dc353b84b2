package precomputed_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	jpegdec "github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/internal/pyoracle"
	"github.com/imgdataset/imgdataset/sample"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// pilChunks encodes raw 64-wide grey chunk images with PIL at quality 75, as
// Neuroglancer's and CloudVolume's writers (libjpeg) store them, and answers
// PIL's decode of each in base64. Requests: {"raw", "w", "h", "out"}.
const pilChunks = `
import sys, json, base64
from PIL import Image
for line in sys.stdin:
    r = json.loads(line)
    im = Image.frombytes("L", (r["w"], r["h"]), open(r["raw"], "rb").read())
    im.save(r["out"], "JPEG", quality=75)
    d = Image.open(r["out"])
    d.load()
    print(base64.b64encode(d.tobytes()).decode())
`

// TestJPEGMatchesPIL reads a precomputed volume whose 64³ jpeg chunks PIL
// wrote (one full chunk, a 64×4096 image, and an edge chunk 8 deep): with
// libjpeg-turbo every voxel equals PIL's decode of its chunk, with image/jpeg
// every voxel is within ±1.
func TestJPEGMatchesPIL(t *testing.T) {
	if err := exec.Command(pyoracle.Python, "-c", "import PIL.Image").Run(); err != nil {
		t.Skipf("PIL oracle unavailable (%v); install python3-pil", err)
	}
	ctx := context.Background()
	const x, y, z = 64, 64, 72
	data := sample.EM([3]int64{z, y, x}, 11, 1)
	dir := t.TempDir()
	scale := filepath.Join(dir, "8_8_8")
	if err := os.MkdirAll(scale, 0o755); err != nil {
		t.Fatal(err)
	}
	info := `{"type":"image","data_type":"uint8","num_channels":1,"scales":[{"key":"8_8_8","size":[64,64,72],
		"resolution":[8,8,8],"voxel_offset":[0,0,0],"chunk_sizes":[[64,64,64]],"encoding":"jpeg","jpeg_quality":75}]}`
	if err := os.WriteFile(filepath.Join(dir, "info"), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	// Chunks in z: the image of a chunk is its voxels in C order (z, y, x),
	// x wide.
	var reqs []any
	for _, c := range []struct{ z0, z1 int }{{0, 64}, {64, 72}} {
		raw := filepath.Join(dir, fmt.Sprintf("raw-%d", c.z0))
		reqs = append(reqs, map[string]any{"raw": raw, "w": x, "h": y * (c.z1 - c.z0),
			"out": filepath.Join(scale, fmt.Sprintf("0-64_0-64_%d-%d", c.z0, c.z1))})
		if err := os.WriteFile(raw, data[c.z0*x*y:c.z1*x*y], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var pil []byte
	for _, a := range pyoracle.Answers(t, pilChunks, reqs) {
		b, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			t.Fatal(err)
		}
		pil = append(pil, b...)
	}
	for _, impl := range []string{jpegdec.ImplTurbo, jpegdec.ImplGo} {
		t.Run(impl, func(t *testing.T) {
			dec, err := jpegdec.New(impl)
			if err != nil {
				t.Skipf("%s unavailable: %v", impl, err)
			}
			vols, err := precomputed.Format{JPEG: dec}.Open(ctx, store.New(store.NewFile(dir)), "")
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, x*y*z)
			if err := vols[0].ReadRegion(ctx, volume.Full(vols[0].Info().Shape), got); err != nil {
				t.Fatal(err)
			}
			var maxd, n int
			for i := range got {
				if d := int(got[i]) - int(pil[i]); d != 0 {
					n++
					maxd = max(maxd, d, -d)
				}
			}
			t.Logf("%s: %d of %d voxels differ from PIL, by at most %d", dec.Name(), n, len(got), maxd)
			if impl == jpegdec.ImplTurbo && !bytes.Equal(got, pil) || maxd > 1 {
				t.Errorf("%s: %d voxels differ from PIL, by up to %d", dec.Name(), n, maxd)
			}
			if md := vols[0].Info().Metadata[volume.MetaJPEGDecoder]; md != dec.Name() {
				t.Errorf("metadata names decoder %v, want %q", md, dec.Name())
			}
		})
	}
}
