package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"github.com/imgdataset/imgdataset/codec/jpeg"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

const mmSummary = `{"Prefix":"synthetic","Frames":12,"Positions":2}`

// mmFile builds a Micro-Manager-style file: pages with irregular IFD
// spacing (so the walker cannot guess a stride), the summary at 40 and an
// index map at the end. edit may corrupt the index before it is appended.
func mmFile(n int, edit func(idx []byte) []byte) ([]byte, []*tPage) {
	le := binary.LittleEndian
	var pages []*tPage
	for i := range n {
		pages = append(pages, &tPage{w: 16, h: 8, base: byte(i), pad: 3 + (i*i*7)%50})
	}
	b := buildTIFF(pages, 32+len(mmSummary))
	idx := le.AppendUint32(nil, mmIndexEntriesMagic)
	idx = le.AppendUint32(idx, uint32(n))
	for i, p := range pages {
		for _, v := range []uint32{0, 0, uint32(i / 2), uint32(i % 2), uint32(p.off)} {
			idx = le.AppendUint32(idx, v)
		}
	}
	if edit != nil {
		idx = edit(idx)
	}
	for i, v := range []uint32{mmIndexMagic, uint32(len(b)), 0, 0, 0, 0, mmSummaryMagic, uint32(len(mmSummary))} {
		le.PutUint32(b[8+4*i:], v)
	}
	copy(b[40:], mmSummary)
	return append(b, idx...), pages
}

// TestMicroManagerIndex checks that the index map saves IFD walk round trips,
// that its summary and dimensions reach the metadata, and that a lying index
// changes nothing but a warning.
func TestMicroManagerIndex(t *testing.T) {
	const n = 24
	le := binary.LittleEndian
	ctx := context.Background()
	plain, pages := mmFile(n, nil)
	noIndex := bytes.Clone(plain)
	le.PutUint32(noIndex[8:], 0)
	_, fPlain := loadFileBytes(t, noIndex)
	cases := []struct {
		name    string
		edit    func([]byte) []byte
		indexed bool // the index is used and saves rounds
		warn    bool
	}{
		{"valid", nil, true, false},
		{"count larger than the file", func(b []byte) []byte { le.PutUint32(b[4:], 1<<30); return b }, false, true},
		{"count beyond maxIFDs", func(b []byte) []byte { le.PutUint32(b[4:], maxIFDs+1); return b }, false, true},
		{"offset outside the file", func(b []byte) []byte { le.PutUint32(b[8+16:], 1<<31); return b }, false, true},
		{"offsets into pixel data", func(b []byte) []byte {
			for i := range n {
				le.PutUint32(b[8+20*i+16:], uint32(200+i))
			}
			return b
		}, false, false},
		{"bad entries magic", func(b []byte) []byte { le.PutUint32(b, 1); return b }, false, true},
		{"truncated", func(b []byte) []byte { return b[:len(b)-30] }, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := mmFile(n, c.edit)
			vs, f := loadFileBytes(t, b)
			if len(f.pages) != n || len(vs) != 1 || !eqShape(vs[0].Info().Shape, []int64{n, 8, 16}) {
				t.Fatalf("%d pages, shape %v", len(f.pages), vs[0].Info().Shape)
			}
			got, err := readAll(ctx, vs[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, stackPixels(pages...)) {
				t.Error("pixels differ")
			}
			md := vs[0].Info().Metadata
			if s, _ := md["micromanager_summary"].(map[string]any); s["Prefix"] != "synthetic" {
				t.Errorf("summary %v", md["micromanager_summary"])
			}
			_, warned := md["micromanager_warnings"]
			if warned != c.warn {
				t.Errorf("warnings %v, want some: %v", md["micromanager_warnings"], c.warn)
			}
			if c.indexed {
				if f.r.walkRounds*4 > fPlain.r.walkRounds {
					t.Errorf("%d walk rounds with the index, %d without", f.r.walkRounds, fPlain.r.walkRounds)
				}
				ix, _ := md["micromanager_index"].(map[string]any)
				if ix["entries"] != n || ix["frames"] != int64(n/2) || ix["positions"] != int64(2) || ix["channels"] != int64(1) {
					t.Errorf("index %v", ix)
				}
			}
			t.Logf("%d walk rounds (without index: %d)", f.r.walkRounds, fPlain.r.walkRounds)
		})
	}
}

// loadFileBytes opens b and returns its volumes and walked structure.
func loadFileBytes(t *testing.T, b []byte) ([]volume.Volume, *file) {
	t.Helper()
	ctx := context.Background()
	f, err := loadFile(ctx, memStore(t, b), "f.tif", defaultMaxChunk, maxIFDs, jpeg.Default())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := f.r.buildSeries(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return vs, f
}

// TestMicroManagerCorpus reads the header of the corpus MMStack file.
func TestMicroManagerCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	p := filepath.Join(dir, "tiff/exampletiffs/ometiff/181003_multi_pos_time_course_1_MMStack.ome.tif")
	ctx := context.Background()
	st := store.New(store.NewFile(filepath.Dir(p)))
	f, err := loadFile(ctx, st, filepath.Base(p), defaultMaxChunk, maxIFDs, jpeg.Default())
	if err != nil {
		t.Fatal(err)
	}
	if f.mm == nil || len(f.mm.ifds) != 20 || f.mm.dims != [4]int64{1, 1, 10, 2} {
		t.Fatalf("index map %+v", f.mm)
	}
	s, _ := f.mm.summary.(map[string]any)
	if s["Prefix"] != "181003_multi_pos_time_course_1" || s["Frames"] != 10.0 {
		t.Errorf("summary %v", s)
	}
	if len(f.pages) != 20 || f.r.walkRounds > 3 {
		t.Errorf("%d pages in %d walk rounds", len(f.pages), f.r.walkRounds)
	}
}
