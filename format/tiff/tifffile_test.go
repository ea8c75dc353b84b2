package tiff

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// The oracle reads each file with tifffile and prints what it sees; arrays
// are hashed as C-order little-endian bytes, like volume.Checksum16.
const tifffileScript = `
import sys, json, hashlib
import numpy as np, tifffile
out = []
for p in sys.argv[1:]:
    with tifffile.TiffFile(p) as t:
        a = t.series[0].asarray()
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder('<')))
        ij = t.imagej_metadata or {}
        xr = t.pages[0].tags.get('XResolution')
        out.append(dict(shape=list(a.shape), dtype=a.dtype.name,
            sha=hashlib.sha256(a.tobytes()).hexdigest()[:16],
            imagej=bool(t.is_imagej), spacing=ij.get('spacing'), unit=ij.get('unit'),
            xres=list(xr.value) if xr else None))
print(json.dumps(out))
`

// TestTifffileReadsWriterOutput checks that an independent reader (tifffile)
// sees the same shape, dtype, bytes and ImageJ calibration in files Write produced.
func TestTifffileReadsWriterOutput(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import tifffile, numpy").CombinedOutput(); err != nil {
		t.Skipf("tifffile oracle unavailable (%v): %s; install python3-tifffile", err, out)
	}
	cases := []struct {
		dt    volume.DType
		shape []int64
		opt   WriteOptions
	}{
		{volume.Uint8, []int64{7, 30, 41}, WriteOptions{ImageJ: true, Spacing: 0.02, Unit: "µm", PixelWidth: 0.02, PixelHeight: 0.02}},
		{volume.Uint16, []int64{3, 40, 33}, WriteOptions{ImageJ: true, Spacing: 5, Unit: "nm", PixelWidth: 4, PixelHeight: 4, ByteOrder: binary.BigEndian}},
		{volume.Float32, []int64{4, 35, 37}, WriteOptions{ImageJ: true, Spacing: 1.5, Unit: "µm", PixelWidth: 0.5, PixelHeight: 0.5, Compression: "deflate", RowsPerStrip: 8}},
		{volume.Int16, []int64{2, 50, 70}, WriteOptions{Tile: 32, Compression: "deflate"}},
		{volume.Uint16, []int64{3, 20, 20}, WriteOptions{BigTIFF: true, Tile: 16, ByteOrder: binary.BigEndian}},
		{volume.Uint8, []int64{25, 19}, WriteOptions{Compression: "deflate", ByteOrder: binary.BigEndian}},
	}
	dir := t.TempDir()
	var paths []string
	var want []string
	for i, c := range cases {
		src := testVolume(t, c.dt, c.shape...)
		_, _, file := writeTemp(t, src, c.opt)
		p := filepath.Join(dir, "f"+string(rune('a'+i))+".tif")
		if err := os.WriteFile(p, file, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		h := sha256.Sum256(src.Bytes())
		want = append(want, hex.EncodeToString(h[:])[:16])
	}
	out, err := exec.CommandContext(context.Background(), py, append([]string{"-c", tifffileScript}, paths...)...).Output()
	if err != nil {
		t.Fatalf("tifffile: %v", err)
	}
	var got []struct {
		Shape   []int64   `json:"shape"`
		DType   string    `json:"dtype"`
		SHA     string    `json:"sha"`
		ImageJ  bool      `json:"imagej"`
		Spacing *float64  `json:"spacing"`
		Unit    *string   `json:"unit"`
		XRes    []float64 `json:"xres"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tifffile output %q: %v", out, err)
	}
	for i, c := range cases {
		g := got[i]
		if !eqShape(g.Shape, c.shape) || g.DType != string(c.dt) || g.SHA != want[i] {
			t.Errorf("case %d: tifffile sees %v %s %s, wrote %v %s %s", i, g.Shape, g.DType, g.SHA, c.shape, c.dt, want[i])
		}
		if g.ImageJ != c.opt.ImageJ {
			t.Errorf("case %d: tifffile is_imagej=%v", i, g.ImageJ)
		}
		if c.opt.ImageJ {
			if g.Spacing == nil || math.Abs(*g.Spacing-c.opt.Spacing) > 1e-12 {
				t.Errorf("case %d: tifffile spacing %v, want %g", i, g.Spacing, c.opt.Spacing)
			}
			if g.Unit == nil || decodeUnit(*g.Unit) != c.opt.Unit {
				t.Errorf("case %d: tifffile unit %v, want %s", i, g.Unit, c.opt.Unit)
			}
			if len(g.XRes) != 2 || math.Abs(g.XRes[1]/g.XRes[0]-c.opt.PixelWidth) > 1e-6*c.opt.PixelWidth {
				t.Errorf("case %d: XResolution %v, want 1/%g", i, g.XRes, c.opt.PixelWidth)
			}
		}
	}
	t.Logf("tifffile agreed on %d files written by Write", len(cases))
}
