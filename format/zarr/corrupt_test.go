package zarr

import (
	"archive/zip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// chunkFiles lists the stored chunks (or shards) of the array at dir,
// sorted, skipping metadata objects.
func chunkFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch d.Name() {
		case ".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json":
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("no chunks under %s: %v", dir, err)
	}
	slices.Sort(out)
	return out
}

// damage changes one stored file.
type damage func(t *testing.T, path string)

func cut(frac float64) damage {
	return func(t *testing.T, p string) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, int64(float64(fi.Size())*frac)); err != nil {
			t.Fatal(err)
		}
	}
}

func flipByte(at func(size int) int) damage {
	return func(t *testing.T, p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[at(len(b))] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func overwrite(s string) damage {
	return func(t *testing.T, p string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCorruptChunks damages one chunk (or shard, or metadata object) of
// arrays written by WriteNGFF: the reader must say format.ErrCorrupt, naming
// the chunk, at Open (metadata) or at ReadRegion (data), never return other
// pixels, and the other chunks must still read.
func TestCorruptChunks(t *testing.T) {
	ctx := context.Background()
	src := memVolume(t, "em", []int64{20, 33, 18}, volume.Uint16, emAxes)
	chunks := []int64{8, 8, 8}
	for _, c := range []struct {
		name string
		opt  WriteOptions
		// target picks the damaged file among the array's stored files;
		// meta names a metadata object (relative to the array) instead.
		meta   string
		hurt   damage
		atOpen bool
		want   string
	}{
		{name: "v2 raw chunk cut", opt: WriteOptions{Compressor: "none"}, hurt: cut(0.5), want: "decoded to"},
		{name: "v2 zstd chunk cut", opt: WriteOptions{Compressor: "zstd"}, hurt: cut(0.5)},
		{name: "v2 gzip chunk cut", opt: WriteOptions{Compressor: "gzip"}, hurt: cut(0.5)},
		{name: "v2 zlib chunk cut", opt: WriteOptions{Compressor: "zlib"}, hurt: cut(0.5)},
		{name: "v2 lz4 chunk cut", opt: WriteOptions{Compressor: "lz4"}, hurt: cut(0.5)},
		{name: "v2 blosc chunk cut", opt: WriteOptions{Compressor: "blosc"}, hurt: cut(0.5)},
		{name: "v2 chunk of 3 bytes", opt: WriteOptions{Compressor: "zstd"}, hurt: cut(0.0001)},
		{name: "v3 raw chunk cut", opt: WriteOptions{Version: "0.5", Compressor: "none"}, hurt: cut(0.5), want: "decoded to"},
		{name: "v3 zstd chunk cut", opt: WriteOptions{Version: "0.5", Compressor: "zstd"}, hurt: cut(0.5)},
		{name: "v3 shard cut", opt: WriteOptions{Version: "0.5", ShardShape: []int64{16, 16, 16}}, hurt: cut(0.5), want: "shard"},
		{name: "v3 shard index damaged", opt: WriteOptions{Version: "0.5", ShardShape: []int64{16, 16, 16}},
			hurt: flipByte(func(n int) int { return n - 10 }), want: "index crc32c mismatch"},
		{name: "v3 shard cut below its index", opt: WriteOptions{Version: "0.5", ShardShape: []int64{16, 16, 16}},
			hurt: cut(0.0001), want: "smaller than its"},
		{name: "v2 .zarray not JSON", opt: WriteOptions{}, meta: ".zarray", hurt: overwrite(`{"zarr_format": 2, "shape": [`), atOpen: true, want: ".zarray"},
		{name: "v2 .zarray contradicts itself", opt: WriteOptions{}, meta: ".zarray",
			hurt:   overwrite(`{"zarr_format":2,"shape":[4,4],"chunks":[2],"dtype":"<u2","compressor":null,"fill_value":0,"order":"C","filters":null}`),
			atOpen: true, want: "do not match"},
		{name: "v3 zarr.json not JSON", opt: WriteOptions{Version: "0.5"}, meta: "zarr.json", hurt: overwrite(`{"zarr_format": 3,`), atOpen: true, want: "zarr.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st := store.New(store.NewFile(dir))
			opt := c.opt
			opt.Chunks = chunks
			if err := WriteNGFF(ctx, st, "v.zarr", src, opt); err != nil {
				t.Fatal(err)
			}
			arrDir := filepath.Join(dir, "v.zarr", "s0")
			target := filepath.Join(arrDir, c.meta)
			if c.meta == "" {
				target = chunkFiles(t, arrDir)[0]
			}
			c.hurt(t, target)

			vs, err := Format{}.Open(ctx, st, "v.zarr/s0")
			if c.atOpen {
				if !errors.Is(err, format.ErrCorrupt) || errors.Is(err, format.ErrNotSupported) {
					t.Fatalf("Open: %v, want format.ErrCorrupt", err)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q lacks %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			in := vs[0].Info()
			buf := make([]byte, in.NumBytes())
			err = vs[0].ReadRegion(ctx, volume.Full(in.Shape), buf)
			rel, _ := filepath.Rel(filepath.Join(dir, "v.zarr", "s0"), target)
			switch {
			case !errors.Is(err, format.ErrCorrupt) || errors.Is(err, format.ErrNotSupported):
				t.Fatalf("ReadRegion: %v, want format.ErrCorrupt", err)
			case !strings.Contains(err.Error(), filepath.ToSlash(rel)):
				t.Errorf("error %q does not name the chunk %q", err, rel)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Errorf("error %q lacks %q", err, c.want)
			}
			// The last chunk was not damaged and still reads.
			last := volume.Box{Start: []int64{in.Shape[0] - 1, in.Shape[1] - 1, in.Shape[2] - 1}, Stop: in.Shape}
			one := make([]byte, 2)
			if err := vs[0].ReadRegion(ctx, last, one); err != nil {
				t.Errorf("undamaged last chunk: %v", err)
			}
		})
	}
}

// TestCorruptZip cuts a zipped store: the archive's end records are gone,
// which is corrupt data; an absent chunk inside an intact archive is not.
func TestCorruptZip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	src := memVolume(t, "em", []int64{20, 33, 18}, volume.Uint16, emAxes)
	if err := WriteNGFF(ctx, st, "img.zarr", src, WriteOptions{Chunks: []int64{8, 8, 8}, Version: "0.5"}); err != nil {
		t.Fatal(err)
	}
	b := packDir(t, filepath.Join(dir, "img.zarr"), "", zip.Store)
	if err := os.WriteFile(filepath.Join(dir, "img.ozx"), b[:len(b)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Format{}.Open(ctx, st, "img.ozx")
	if !errors.Is(err, format.ErrCorrupt) || !errors.Is(err, store.ErrBadZip) {
		t.Fatalf("Open of a cut archive: %v, want format.ErrCorrupt", err)
	}
}
