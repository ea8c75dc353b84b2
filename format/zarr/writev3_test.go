package zarr

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

var emAxes = []volume.Axis{
	{Name: "z", Size: 20, Scale: 2.96, Unit: "nm", ScaleKnown: true},
	{Name: "y", Size: 33, Scale: 4, Offset: 100, Unit: "nm", ScaleKnown: true},
	{Name: "x", Size: 18, Scale: 4, Unit: "µm", ScaleKnown: true},
}

// levelSums returns the checksum of every level of an NGFF image.
func levelSums(t *testing.T, st *store.Store, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	vs, err := Format{}.Open(ctx, st, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, v := range vs {
		s, err := volume.Checksum16(ctx, v, 0)
		if err != nil {
			t.Fatalf("%s: %v", v.Info().Name, err)
		}
		sums = append(sums, fmt.Sprintf("%v:%s", v.Info().Shape, s))
	}
	return sums
}

// TestWriteNGFF05 writes the same image as NGFF 0.4 and as 0.5 (plain and
// sharded, with each v3 compressor) and checks that every level reads back
// identically, that the metadata validates, and that 0.5 arrays carry the
// axis names as dimension_names.
func TestWriteNGFF05(t *testing.T) {
	ctx := context.Background()
	src := memVolume(t, "em", []int64{20, 33, 18}, volume.Int16, emAxes)
	ref := store.New(store.NewFile(t.TempDir()))
	base := WriteOptions{Chunks: []int64{8, 8, 8}, Levels: 3}
	if err := WriteNGFF(ctx, ref, "img.zarr", src, base); err != nil {
		t.Fatal(err)
	}
	attrs04, err := ref.ReadAll(ctx, "img.zarr/.zattrs", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateNGFF(attrs04, "0.4"); err != nil {
		t.Errorf("0.4 output does not validate: %v\n%s", err, attrs04)
	}
	want := levelSums(t, ref, "img.zarr")
	if len(want) != 3 {
		t.Fatalf("0.4 reference has %d levels", len(want))
	}

	cases := []struct {
		name  string
		comp  string
		shard []int64
	}{
		{"zstd", "", nil},
		{"gzip-sharded", "gzip", []int64{16, 16, 16}},
		{"none-sharded-one-shard", "none", []int64{512, 512, 512}},
		{"blosc-zstd-sharded", "blosc-zstd", []int64{16, 8, 512}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			opt := base
			opt.Version, opt.Compressor, opt.ShardShape = "0.5", c.comp, c.shard
			opt.Attributes = map[string]any{"imgdataset": map[string]any{"seed": 7}}
			if err := WriteNGFF(ctx, st, "img.zarr", src, opt); err != nil {
				t.Fatal(err)
			}
			if got := levelSums(t, st, "img.zarr"); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("levels %v, want (as 0.4) %v", got, want)
			}
			vs, err := Format{}.Open(ctx, st, "img.zarr")
			if err != nil {
				t.Fatal(err)
			}
			volumetest.Run(t, vs[0], src.Bytes(), 0)
			in := vs[1].Info()
			// emAxes give x in µm next to z and y in nm: all are written in nm.
			if in.Metadata["ngff_version"] != "0.5" || in.Axes[2].Unit != "nanometer" || in.Axes[2].Scale != 8000 || math.Abs(in.Axes[1].Offset-102) > 1e-9 {
				t.Errorf("level 1 info: %+v %v", in.Axes, in.Metadata)
			}
			if c.shard != nil && fmt.Sprint(in.Metadata["shard_shape"]) == "<nil>" {
				t.Errorf("level 1 not sharded: %v", in.Metadata)
			}

			group, err := st.ReadAll(ctx, "img.zarr/zarr.json", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateNGFF(group, "0.5"); err != nil {
				t.Errorf("0.5 output does not validate: %v\n%s", err, group)
			}
			var g struct {
				ZarrFormat int    `json:"zarr_format"`
				NodeType   string `json:"node_type"`
				Attributes struct {
					OME struct {
						Version     string           `json:"version"`
						Multiscales []map[string]any `json:"multiscales"`
					} `json:"ome"`
					Extra map[string]any `json:"imgdataset"`
				} `json:"attributes"`
			}
			if err := json.Unmarshal(group, &g); err != nil {
				t.Fatal(err)
			}
			if g.ZarrFormat != 3 || g.NodeType != "group" || g.Attributes.OME.Version != "0.5" || g.Attributes.Extra["seed"] != 7.0 {
				t.Errorf("group zarr.json %s", group)
			}
			if _, ok := g.Attributes.OME.Multiscales[0]["version"]; ok {
				t.Errorf("0.5 multiscale carries a version: %v", g.Attributes.OME.Multiscales[0])
			}
			for k := range 3 {
				b, err := st.ReadAll(ctx, fmt.Sprintf("img.zarr/s%d/zarr.json", k), 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				var a struct {
					DimensionNames []string `json:"dimension_names"`
					Codecs         []struct {
						Name string `json:"name"`
					} `json:"codecs"`
				}
				if err := json.Unmarshal(b, &a); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(a.DimensionNames) != "[z y x]" {
					t.Errorf("s%d dimension_names %v", k, a.DimensionNames)
				}
				if sharded := a.Codecs[0].Name == "sharding_indexed"; sharded != (c.shard != nil) {
					t.Errorf("s%d codecs %s", k, b)
				}
			}
		})
	}
}

// TestShardLayout reads a written shard with an independent parser: inner
// chunks first, then the index with its crc32c at the end, empty entries
// for inner chunks wholly outside the array.
func TestShardLayout(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewFile(t.TempDir()))
	shape := []int64{5, 7}
	src := memVolume(t, "a", shape, volume.Uint8, nil)
	opt := WriteOptions{Version: "0.5", Chunks: []int64{2, 2}, ShardShape: []int64{4, 8}, Compressor: "none"}
	w, err := CreateArray(ctx, st, "a", src.Info(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(w.Info().Chunks) != "[4 8]" {
		t.Fatalf("writer chunks %v, want the shard [4 8]", w.Info().Chunks)
	}
	if err := volume.Copy(ctx, w, src, volume.CopyOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Shard (1,0) covers rows 4..7 (only row 4 exists) and columns 0..7
	// (0..6 exist): inner chunks (0,*) hold data, (1,*) lie outside.
	b, err := st.ReadAll(ctx, "a/c/1/0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	const entries = 2 * 4
	idx := b[len(b)-16*entries-4:]
	if crc32.Checksum(idx[:16*entries], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(idx[16*entries:]) {
		t.Fatal("index crc32c mismatch")
	}
	data := src.Bytes()
	for k := range entries {
		off := binary.LittleEndian.Uint64(idx[16*k:])
		n := binary.LittleEndian.Uint64(idx[16*k+8:])
		if k >= 4 {
			if off != math.MaxUint64 || n != math.MaxUint64 {
				t.Errorf("inner chunk %d outside the array: entry (%d, %d)", k, off, n)
			}
			continue
		}
		if n != 4 || off != uint64(4*k) {
			t.Fatalf("inner chunk %d: entry (%d, %d)", k, off, n)
		}
		// Row 4 of the array, columns 2k and 2k+1, then fill for row 5 and
		// for column 7.
		var wantChunk []byte
		for _, col := range []int64{2 * int64(k), 2*int64(k) + 1} {
			v := byte(0)
			if col < 7 {
				v = data[4*7+col]
			}
			wantChunk = append(wantChunk, v)
		}
		wantChunk = append(wantChunk, 0, 0)
		if got := b[off : off+n]; string(got) != string(wantChunk) {
			t.Errorf("inner chunk %d = %v, want %v", k, got, wantChunk)
		}
	}
	volumetest.Run(t, openOne(t, st, "a"), data, 0)
}

// TestCreateArrayV3 covers the volume.Writer path (volume.Copy) for v3
// arrays, sharded or not, over dtypes and ranks.
func TestCreateArrayV3(t *testing.T) {
	cases := []struct {
		name  string
		shape []int64
		vt    volume.DType
		opt   WriteOptions
	}{
		{"u8-zstd", []int64{19, 23, 17}, volume.Uint8, WriteOptions{Chunks: []int64{8, 8, 8}}},
		{"f32-gzip-dot", []int64{9, 31}, volume.Float32, WriteOptions{Chunks: []int64{4, 10}, Compressor: "gzip", DimensionSeparator: "."}},
		{"u16-sharded-ragged", []int64{11, 13, 9}, volume.Uint16, WriteOptions{Chunks: []int64{3, 4, 2}, ShardShape: []int64{6, 8, 4}}},
		{"u64-blosc-sharded", []int64{7, 40}, volume.Uint64, WriteOptions{Chunks: []int64{4, 16}, ShardShape: []int64{8, 32}, Compressor: "blosc"}},
		{"bool-none", []int64{10, 3}, volume.Bool, WriteOptions{Chunks: []int64{3, 3}, Compressor: "none"}},
		{"c64-zstd", []int64{5, 6}, volume.Complex64, WriteOptions{Chunks: []int64{2, 4}}},
		{"f16-blosc", []int64{33}, volume.Float16, WriteOptions{Chunks: []int64{8}, Compressor: "blosc"}},
		{"i16-1d-sharded", []int64{100}, volume.Int16, WriteOptions{Chunks: []int64{7}, ShardShape: []int64{21}}},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			src := memVolume(t, c.name, c.shape, c.vt, nil)
			c.opt.Version = "0.5"
			w, err := CreateArray(ctx, st, "out/"+c.name, src.Info(), c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := volume.Copy(ctx, w, src, volume.CopyOptions{Workers: 3}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Stat(ctx, "out/"+c.name+"/zarr.json"); err == nil {
				t.Fatal("zarr.json written before Close")
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			v := openOne(t, st, "out/"+c.name)
			if c.opt.ShardShape != nil && fmt.Sprint(v.Info().Chunks) != fmt.Sprint(c.opt.Chunks) {
				t.Errorf("reader chunks %v, want the inner chunks %v", v.Info().Chunks, c.opt.Chunks)
			}
			volumetest.Run(t, v, src.Bytes(), 0)
		})
	}
}

func TestWriteOptionsErrors(t *testing.T) {
	ctx := context.Background()
	info := memVolume(t, "a", []int64{16, 16}, volume.Uint8, nil).Info()
	cases := []struct {
		name        string
		opt         WriteOptions
		want        string
		unsupported bool
	}{
		{"shard in 0.4", WriteOptions{ShardShape: []int64{8, 8}}, "sharding needs Zarr v3", true},
		{"version 0.6", WriteOptions{Version: "0.6"}, "0.6", true},
		{"lz4 in v3", WriteOptions{Version: "0.5", Compressor: "lz4"}, "no Zarr v3 codec", true},
		{"zlib in v3", WriteOptions{Version: "0.5", Compressor: "zlib"}, "no Zarr v3 codec", true},
		{"shard not a multiple", WriteOptions{Version: "0.5", Chunks: []int64{4, 4}, ShardShape: []int64{6, 8}}, "not a multiple", false},
		{"shard rank", WriteOptions{Version: "0.5", Chunks: []int64{4, 4}, ShardShape: []int64{8}}, "for rank 2", false},
		{"blosc level", WriteOptions{Compressor: "blosc", Level: 12}, "outside 0-9", false},
		{"unknown compressor", WriteOptions{Compressor: "brotli"}, "brotli", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			_, err := CreateArray(ctx, st, "a", info, c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
			if c.unsupported != errors.Is(err, format.ErrNotSupported) {
				t.Errorf("errors.Is(ErrNotSupported) = %v for %v", !c.unsupported, err)
			}
			if err := WriteNGFF(ctx, st, "img", memVolume(t, "a", []int64{16, 16}, volume.Uint8, nil), c.opt); err == nil {
				t.Error("WriteNGFF accepted the options")
			}
		})
	}
}

// rowProbe records the largest region read from a volume and how many reads
// were in flight at once.
type rowProbe struct {
	volume.Volume
	mu        sync.Mutex
	maxElems  int64
	inFlight  int
	maxFlight int
}

func (p *rowProbe) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	p.mu.Lock()
	p.maxElems = max(p.maxElems, box.NumElements())
	p.inFlight++
	p.maxFlight = max(p.maxFlight, p.inFlight)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	return p.Volume.ReadRegion(ctx, box, dst)
}

// TestShardedWriteBounded checks that WriteNGFF reads its source one shard
// row (inner chunks along the fastest axis) at a time, not shard by shard.
func TestShardedWriteBounded(t *testing.T) {
	ctx := context.Background()
	src := &rowProbe{Volume: memVolume(t, "em", []int64{24, 40, 64}, volume.Uint8, nil)}
	st := store.New(store.NewFile(t.TempDir()))
	opt := WriteOptions{Version: "0.5", Chunks: []int64{4, 8, 16}, ShardShape: []int64{8, 16, 64}}
	if err := WriteNGFF(ctx, st, "img", src, opt); err != nil {
		t.Fatal(err)
	}
	if row := int64(4 * 8 * 64); src.maxElems > row {
		t.Errorf("largest source read %d elements, more than one shard row (%d)", src.maxElems, row)
	}
	if src.maxFlight > max(1, runtime.GOMAXPROCS(0)) {
		t.Errorf("%d reads in flight", src.maxFlight)
	}
	volumetest.Run(t, openOne(t, st, "img/s0"), src.Volume.(*volume.Mem).Bytes(), 0)
}

// TestZarrPythonNGFF04 has zarr-python read the NGFF 0.4 output of
// WriteNGFF, with zstd and with Blosc, and compares every level's bytes.
func TestZarrPythonNGFF04(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	src := memVolume(t, "em", []int64{20, 33, 18}, volume.Int16, emAxes)
	comps := []string{"zstd", "blosc"}
	var want []string
	for _, comp := range comps {
		if err := WriteNGFF(ctx, st, comp+".zarr", src, WriteOptions{Chunks: []int64{8, 16, 8}, Levels: 2, Compressor: comp}); err != nil {
			t.Fatal(err)
		}
		vs, err := Format{}.Open(ctx, st, comp+".zarr")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			buf := make([]byte, v.Info().NumBytes())
			if err := v.ReadRegion(ctx, volume.Full(v.Info().Shape), buf); err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(buf)
			want = append(want, fmt.Sprintf("%s %s %v %s", comp, filepath.Base(v.Info().Name), v.Info().Shape, hex.EncodeToString(h[:])))
		}
	}
	za, err := st.ReadAll(ctx, "blosc.zarr/s0/.zarray", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Compressor map[string]any `json:"compressor"`
	}
	json.Unmarshal(za, &meta)
	if fmt.Sprint(meta.Compressor) != "map[blocksize:0 clevel:5 cname:zstd id:blosc shuffle:1]" {
		t.Errorf("blosc compressor JSON %v", meta.Compressor)
	}
	script := `
import sys, json, hashlib, zarr, numpy as np
root = sys.argv[1]
for comp in sys.argv[2:]:
    g = zarr.open_group(root + "/" + comp + ".zarr", mode="r")
    for ds in g.attrs["multiscales"][0]["datasets"]:
        a = g[ds["path"]]
        x = np.ascontiguousarray(a[...]).astype("<i2")
        print(comp, ds["path"], json.dumps(list(x.shape)).replace(",", ""), hashlib.sha256(x.tobytes()).hexdigest(), type(a.compressor).__name__)
`
	out, err := exec.Command(py, append([]string{"-c", script, dir}, comps...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("zarr-python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("zarr-python printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, line := range lines {
		f := strings.Fields(line)
		got := strings.Join(f[:len(f)-1], " ")
		if got != want[i] {
			t.Errorf("zarr-python: %s\n          want %s", got, want[i])
		}
		if f[0] == "blosc" && f[len(f)-1] != "Blosc" {
			t.Errorf("zarr-python used compressor %s for %s", f[len(f)-1], f[1])
		}
	}
}
