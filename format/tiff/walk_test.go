package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// sparseDriver serves a large synthetic file: IFD blocks at given offsets,
// and everywhere else a pixel pattern computed from the offset, so a 3 GB
// stack costs a few megabytes of memory. It counts requests and bytes.
type sparseDriver struct {
	size        int64
	blocks      []sparseBlock // sorted by offset, not overlapping
	reqs, bytes atomic.Int64
}

type sparseBlock struct {
	off int64
	b   []byte
}

func pattern(off int64) byte { return byte(off ^ off>>9 ^ off>>17) }

func (d *sparseDriver) String() string { return "sparse" }

func (d *sparseDriver) Stat(_ context.Context, key string) (store.ObjectInfo, error) {
	return store.ObjectInfo{Key: key, Size: d.size}, nil
}

func (d *sparseDriver) List(context.Context, string, string, func(store.ObjectInfo) error) error {
	return nil
}

func (d *sparseDriver) ReadRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if n < 0 || off+n > d.size {
		n = d.size - off
	}
	d.reqs.Add(1)
	d.bytes.Add(n)
	out := make([]byte, n)
	for i := range out {
		out[i] = pattern(off + int64(i))
	}
	i := sort.Search(len(d.blocks), func(i int) bool { return d.blocks[i].off+int64(len(d.blocks[i].b)) > off })
	for ; i < len(d.blocks) && d.blocks[i].off < off+n; i++ {
		b := d.blocks[i]
		lo, hi := max(b.off, off), min(b.off+int64(len(b.b)), off+n)
		copy(out[lo-off:hi-off], b.b[lo-b.off:hi-b.off])
	}
	return io.NopCloser(bytes.NewReader(out)), nil
}

// epflPage is the IFD block of one EPFL-like page at off: NewSubfileType 2,
// uncompressed uint8 strips of rps rows, the offset and byte-count arrays
// after the entry table and the pixels right after them. It returns the
// block and the end of the page's pixel data.
func epflPage(off, next int64, w, h, rps uint32) ([]byte, int64) {
	le := binary.LittleEndian
	nstrips := (h + rps - 1) / rps
	const nEntries = 11
	table := int64(2 + nEntries*12 + 4)
	offsAt := off + table
	countsAt := offsAt + int64(nstrips)*4
	data := countsAt + int64(nstrips)*4
	b := le.AppendUint16(nil, nEntries)
	ent := func(tag, typ uint16, count, val uint32) {
		b = le.AppendUint16(b, tag)
		b = le.AppendUint16(b, typ)
		b = le.AppendUint32(b, count)
		if typ == typeShort && count == 1 {
			b = le.AppendUint16(b, uint16(val))
			b = le.AppendUint16(b, 0)
		} else {
			b = le.AppendUint32(b, val)
		}
	}
	ent(tagNewSubfileType, typeLong, 1, 2)
	ent(tagImageWidth, typeLong, 1, w)
	ent(tagImageLength, typeLong, 1, h)
	ent(tagBitsPerSample, typeShort, 1, 8)
	ent(tagCompression, typeShort, 1, 1)
	ent(tagPhotometric, typeShort, 1, 1)
	ent(tagStripOffsets, typeLong, nstrips, uint32(offsAt))
	ent(tagSamplesPerPixel, typeShort, 1, 1)
	ent(tagRowsPerStrip, typeLong, 1, rps)
	ent(tagStripByteCounts, typeLong, nstrips, uint32(countsAt))
	ent(tagPlanarConfig, typeShort, 1, 1)
	b = le.AppendUint32(b, uint32(next))
	end := data
	for s := uint32(0); s < nstrips; s++ {
		b = le.AppendUint32(b, uint32(data)+s*rps*w)
	}
	for s := uint32(0); s < nstrips; s++ {
		rows := min(rps, h-s*rps)
		b = le.AppendUint32(b, rows*w)
		end += int64(rows * w)
	}
	return b, end
}

// epflFile lays out pages IFD-then-pixels; gap(k) adds bytes before page k
// (0 for a regular file). decoys are extra IFD-looking blocks the chain never
// points at.
func epflFile(pages int, w, h, rps uint32, gap func(k int) int64, decoys []sparseBlock) (*sparseDriver, []int64) {
	offs := make([]int64, pages)
	pos := int64(8)
	for k := range offs {
		pos += gap(k)
		pos += pos % 2
		offs[k] = pos
		_, end := epflPage(pos, 0, w, h, rps)
		pos = end
	}
	d := &sparseDriver{size: pos}
	hdr := []byte("II*\x00\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(offs[0]))
	d.blocks = append(d.blocks, sparseBlock{0, hdr})
	for k, off := range offs {
		next := int64(0)
		if k+1 < pages {
			next = offs[k+1]
		}
		b, _ := epflPage(off, next, w, h, rps)
		d.blocks = append(d.blocks, sparseBlock{off, b})
	}
	d.blocks = append(d.blocks, decoys...)
	sort.Slice(d.blocks, func(i, j int) bool { return d.blocks[i].off < d.blocks[j].off })
	return d, offs
}

// checkWalk opens the file and checks the series has one page per IFD at the
// chain's offsets, with the right pixels in a small box of the last page.
func checkWalk(t *testing.T, d *sparseDriver, offs []int64, w, h int64) *tiffVolume {
	t.Helper()
	ctx := context.Background()
	vs, err := Format{}.Open(ctx, store.New(d), "v.tif")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d series, want 1", len(vs))
	}
	v := vs[0].(*tiffVolume)
	if got, want := v.info.Shape, []int64{int64(len(offs)), h, w}; !eqShape(got, want) {
		t.Fatalf("shape %v, want %v", got, want)
	}
	for k, p := range v.pages {
		if p.ifdOff != offs[k] {
			t.Fatalf("page %d at %d, want %d", k, p.ifdOff, offs[k])
		}
	}
	// A box in the last page: its pixels are the pattern at the strip data.
	z := int64(len(offs) - 1)
	box := volume.Box{Start: []int64{z, h - 3, w - 5}, Stop: []int64{z + 1, h, w}}
	got := make([]byte, box.NumElements())
	if err := v.ReadRegion(ctx, box, got); err != nil {
		t.Fatal(err)
	}
	_, end := epflPage(offs[z], 0, uint32(w), uint32(h), 4)
	data := end - h*w
	for i, y := 0, h-3; y < h; y++ {
		for x := w - 5; x < w; x, i = x+1, i+1 {
			if want := pattern(data + y*w + x); got[i] != want {
				t.Fatalf("pixel (%d,%d) = %d, want %d", y, x, got[i], want)
			}
		}
	}
	return v
}

// TestWalkEPFLScale opens a stack laid out like EPFL's volumedata.tif
// (1065 pages of 2048×1536 uint8, 4-row strips, IFDs between the 3 MB pages,
// 3.35 GB in all): Open must read under 1 MB, in few request waves.
func TestWalkEPFLScale(t *testing.T) {
	const pages, w, h = 1065, 2048, 1536
	d, offs := epflFile(pages, w, h, 4, func(int) int64 { return 0 }, nil)
	if d.size < 3<<30 {
		t.Fatalf("synthetic file is %d bytes", d.size)
	}
	v := checkWalk(t, d, offs, w, h)
	t.Logf("Open+read: %d requests, %d bytes, %d IFD walk rounds", d.reqs.Load(), d.bytes.Load(), v.r.walkRounds)
	if n := d.bytes.Load(); n >= 1<<20 {
		t.Errorf("read %d bytes of a %d-byte file, want < 1 MiB", n, d.size)
	}
	if n := v.r.walkRounds; n > pages/8 {
		t.Errorf("IFD walk took %d request rounds for %d pages, want ≤ %d", n, pages, pages/8)
	}
	if n := d.reqs.Load(); n > pages+pages/8 {
		t.Errorf("%d requests for %d pages", n, pages)
	}
}

// TestWalkSmallPages opens 1065 8×8 pages written by Write with 4-row strips
// between the IFDs: nearby guesses share requests.
func TestWalkSmallPages(t *testing.T) {
	ctx := context.Background()
	const pages = 1065
	src := testVolume(t, volume.Uint8, pages, 8, 8)
	var buf bytes.Buffer
	if err := Write(ctx, &buf, src, WriteOptions{RowsPerStrip: 4}); err != nil {
		t.Fatal(err)
	}
	d := &countingDriver{MemDriver: memDriver(t, buf.Bytes())}
	vs, err := Format{}.Open(ctx, store.New(d), "f.tif")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-byte file: %d requests, %d bytes", buf.Len(), d.reqs.Load(), d.bytes.Load())
	// 1 MB per 1065 pages is the budget for EPFL's file.
	if n := d.bytes.Load(); n > pages*(1<<20)/1065 {
		t.Errorf("Open read %d bytes", n)
	}
	if n := d.reqs.Load(); n > pages/8 {
		t.Errorf("Open made %d requests for %d pages, want ≤ %d", n, pages, pages/8)
	}
	got, err := readAll(ctx, vs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src.Bytes()) || !eqShape(vs[0].Info().Shape, []int64{pages, 8, 8}) {
		t.Fatalf("shape %v or pixels differ", vs[0].Info().Shape)
	}
}

// TestWalkIrregular checks that wrong guesses never change the result:
// stride changes, one-off gaps, decoy IFDs exactly where the old stride
// points, and compressed pages of varying size.
func TestWalkIrregular(t *testing.T) {
	const w, h = 64, 16
	_, end := epflPage(0, 0, w, h, 4)
	stride := end
	decoy := func(at int64) sparseBlock {
		b, _ := epflPage(at, 0, 7, 7, 4) // a valid IFD of another shape
		return sparseBlock{at, b}
	}
	cases := []struct {
		name   string
		pages  int
		gap    func(k int) int64
		decoys func(offs []int64) []sparseBlock
	}{
		{name: "regular", pages: 300, gap: func(int) int64 { return 0 }},
		{name: "stride-change", pages: 300, gap: func(k int) int64 {
			if k >= 100 {
				return 40
			}
			return 0
		}},
		{name: "one-off-gaps", pages: 300, gap: func(k int) int64 {
			if k%37 == 5 {
				return int64(k)
			}
			return 0
		}},
		{name: "every-page-different", pages: 200, gap: func(k int) int64 { return int64(k%3) * 2 }},
		{name: "decoys", pages: 300, gap: func(k int) int64 {
			if k == 150 || k == 151 {
				return stride + 200 // room for a decoy where the stride points
			}
			return 0
		}, decoys: func(offs []int64) []sparseBlock {
			return []sparseBlock{decoy(offs[149] + stride), decoy(offs[150] + stride)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, offs := epflFile(c.pages, w, h, 4, c.gap, nil)
			if c.decoys != nil {
				d, offs = epflFile(c.pages, w, h, 4, c.gap, c.decoys(offs))
			}
			checkWalk(t, d, offs, w, h)
		})
	}

	t.Run("deflate", func(t *testing.T) {
		ctx := context.Background()
		src := testVolume(t, volume.Uint16, 150, 9, 11)
		var buf bytes.Buffer
		if err := Write(ctx, &buf, src, WriteOptions{Compression: "deflate"}); err != nil {
			t.Fatal(err)
		}
		vs, err := Format{}.Open(ctx, memStore(t, buf.Bytes()), "f.tif")
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, vs[0])
		if err != nil || !bytes.Equal(got, src.Bytes()) {
			t.Fatalf("read back: %v", err)
		}
	})
}

// TestWalkLoopWithSpeculation checks that a chain that loops back is still
// caught when its IFDs come from a speculative batch.
func TestWalkLoopWithSpeculation(t *testing.T) {
	const w, h = 32, 8
	d, offs := epflFile(100, w, h, 4, func(int) int64 { return 0 }, nil)
	// Page 99 points back at page 50.
	last := &d.blocks[len(d.blocks)-1]
	if last.off != offs[99] {
		t.Fatal(fmt.Sprintf("block order: %d vs %d", last.off, offs[99]))
	}
	binary.LittleEndian.PutUint32(last.b[2+11*12:], uint32(offs[50]))
	vs, err := Format{}.Open(context.Background(), store.New(d), "v.tif")
	if err != nil {
		t.Fatal(err)
	}
	if got := vs[0].Info().Shape[0]; got != 100 {
		t.Errorf("%d pages, want 100", got)
	}
	if ws, _ := vs[0].Info().Metadata["warnings"].([]string); len(ws) == 0 {
		t.Error("no warning about the loop")
	}
}
