package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// TestWriterAgainstLibtiffAndGDAL: files the writer produces are read by two
// independent implementations (Debian libtiff-tools and gdal-bin) with the same
// page count, size and pixels.
func TestWriterAgainstLibtiffAndGDAL(t *testing.T) {
	for _, tool := range []string{"tiffinfo", "gdalinfo", "gdal_translate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install libtiff-tools gdal-bin): %v", tool, err)
		}
	}
	ctx := context.Background()
	const z, y, x = 5, 37, 50
	data := make([]byte, z*y*x*2)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	axes := []volume.Axis{{Name: "z", Size: z, Scale: 1}, {Name: "y", Size: y, Scale: 1}, {Name: "x", Size: x, Scale: 1}}
	src, err := volume.NewMem(volume.Info{Name: "v", Shape: []int64{z, y, x}, DType: volume.Uint16, Axes: axes}, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  WriteOptions
	}{
		{"classic-strips-none", WriteOptions{}},
		{"classic-strips-deflate-bigendian", WriteOptions{Compression: "deflate", ByteOrder: binary.BigEndian}},
		{"bigtiff-tiles-deflate", WriteOptions{BigTIFF: true, Tile: 16, Compression: "deflate"}},
		{"imagej", WriteOptions{ImageJ: true, Spacing: 0.05, Unit: "µm", PixelWidth: 0.02, PixelHeight: 0.02}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(ctx, &b, src, tc.opt); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			p := filepath.Join(dir, "w.tif")
			os.WriteFile(p, b.Bytes(), 0o644)

			out, err := exec.Command("tiffinfo", p).CombinedOutput()
			if err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
				t.Fatalf("tiffinfo: %v\n%s", err, out)
			}
			if n := strings.Count(string(out), "TIFF Directory"); n != z {
				t.Fatalf("libtiff sees %d directories, want %d", n, z)
			}

			js, err := exec.Command("gdalinfo", "-json", p).Output()
			if err != nil {
				t.Fatalf("gdalinfo: %v", err)
			}
			var info struct {
				Size  []int `json:"size"`
				Bands []struct {
					Type string `json:"type"`
				} `json:"bands"`
			}
			if err := json.Unmarshal(js, &info); err != nil {
				t.Fatalf("gdalinfo json: %v", err)
			}
			if len(info.Size) != 2 || info.Size[0] != x || info.Size[1] != y || len(info.Bands) != 1 || info.Bands[0].Type != "UInt16" {
				t.Fatalf("GDAL sees %+v", info)
			}
			// Pixels of the last page, through GDAL's own decoder, as raw little-endian.
			raw := filepath.Join(dir, "p.raw")
			cmd := exec.Command("gdal_translate", "-q", "-of", "ENVI", "GTIFF_DIR:"+strconv.Itoa(z)+":"+p, raw)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("gdal_translate: %v\n%s", err, out)
			}
			got, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			page := data[(z-1)*y*x*2:]
			if hdr, _ := os.ReadFile(raw[:len(raw)-4] + ".hdr"); bytes.Contains(hdr, []byte("byte order = 1")) {
				for i := 0; i+1 < len(got); i += 2 {
					got[i], got[i+1] = got[i+1], got[i]
				}
			}
			if !bytes.Equal(got, page) {
				t.Fatalf("GDAL decodes the last page differently (%d vs %d bytes)", len(got), len(page))
			}
		})
	}
}
