package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// memDriver returns a store.MemDriver holding b as "f.tif".
func memDriver(t testing.TB, b []byte) *store.MemDriver {
	t.Helper()
	d := store.NewMem()
	if err := d.Put("f.tif", b); err != nil {
		t.Fatal(err)
	}
	return d
}

// memStore wraps bytes as a store holding "f.tif".
func memStore(t testing.TB, b []byte) *store.Store { return store.New(memDriver(t, b)) }

// corpusTIFFs lists the corpus TIFF files, or nil when the corpus is absent.
func corpusTIFFs(t testing.TB) []string {
	dir := os.Getenv("IMGDATASET_CORPUS")
	if dir == "" {
		root, err := corpus.RepoRoot()
		if err != nil {
			return nil
		}
		dir = filepath.Join(root, "..", "shared", "testdata")
	}
	var out []string
	filepath.WalkDir(filepath.Join(dir, "tiff"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasSuffix(p, ".tsv") {
			out = append(out, p)
		}
		return nil
	})
	if len(out) == 0 {
		t.Logf("corpus not found under %s: fuzzing from synthetic seeds only", dir)
	}
	return out
}

// syntheticSeeds are small files from the writer in every layout it makes.
func syntheticSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, opt := range []WriteOptions{
		{RowsPerStrip: 3},
		{Tile: 16, Compression: "deflate", ByteOrder: binary.BigEndian},
		{Compression: "zstd", BigTIFF: true},
		{ImageJ: true, Spacing: 0.5, Unit: "µm", PixelWidth: 0.5, PixelHeight: 0.5},
	} {
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, testVolume(t, volume.Uint16, 3, 20, 18), opt); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	return seeds
}

// probe opens b and reads a small corner of every series, as the catalog does.
func probe(t testing.TB, b []byte) error {
	ctx := context.Background()
	vs, err := open(ctx, memStore(t, b), "f.tif", 1<<20)
	if err != nil {
		return err
	}
	for _, v := range vs[:min(len(vs), 4)] {
		in := v.Info()
		if err := in.Validate(); err != nil {
			return fmt.Errorf("invalid Info: %w", err)
		}
		box := volume.Full(in.Shape)
		for i := range box.Stop {
			box.Stop[i] = min(box.Stop[i], 5)
		}
		buf := make([]byte, box.NumElements()*int64(in.DType.Size()))
		_ = v.ReadRegion(ctx, box, buf)
		// Whole rows of the first plane(s), which uncompressed files read
		// straight into the buffer, when that stays small.
		rows := volume.Full(in.Shape)
		for i := range rows.Stop[:max(0, len(rows.Stop)-2)] {
			rows.Stop[i] = min(rows.Stop[i], 2)
		}
		if n := rows.NumElements() * int64(in.DType.Size()); n <= 1<<20 {
			_ = v.ReadRegion(ctx, rows, make([]byte, n))
		}
	}
	return nil
}

func FuzzOpen(f *testing.F) {
	for _, p := range corpusTIFFs(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 128<<10 {
			b = b[:32<<10] // large files seed as their head: IFDs are usually there
		}
		f.Add(b)
	}
	for _, s := range syntheticSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	gray := func(y0, y1 int) image.Image { return image.NewGray(image.Rect(0, 0, 12, y1-y0)) }
	j, _ := jpegTIFF(f, gray, 12, 10, 4, 1, true)
	f.Add(j)
	var ome bytes.Buffer
	desc := omeHead + `<Image ID="Image:0"><Pixels DimensionOrder="XYCZT" Type="uint16" SizeX="18" SizeY="20" SizeC="3" PhysicalSizeX="2"><TiffData IFD="2" FirstC="0"/><TiffData IFD="0" PlaneCount="2" FirstC="1"/></Pixels></Image></OME>`
	if err := Write(context.Background(), &ome, testVolume(f, volume.Uint16, 3, 20, 18), WriteOptions{Description: desc}); err != nil {
		f.Fatal(err)
	}
	f.Add(ome.Bytes())
	f.Add(planarFile(13, 9))                        // uncompressed planar: rows read straight into dst
	f.Add(buildTIFF(pyramid(2, 16, 12, 3, 100), 0)) // SubIFD pyramid
	nested := &tPage{w: 8, h: 8, subs: []*tPage{{w: 4, h: 4, subs: []*tPage{{w: 2, h: 2}}}, {w: 8, h: 8}}}
	f.Add(buildTIFF([]*tPage{nested, {w: 8, h: 8}}, 0))
	mm, _ := mmFile(6, nil) // Micro-Manager header, summary and index map
	f.Add(mm)
	f.Add([]byte("II*\x00\x08\x00\x00\x00\x00\x00"))
	f.Add([]byte("MM\x00+\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Failing cleanly is fine; panics, hangs and huge allocations are the bugs.
		_ = probe(t, b)
	})
}
