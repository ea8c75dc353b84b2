package tiff

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// truncationLayouts are the files the truncation tests cut: one per way the
// writer lays out pages and chunk tables.
var truncationLayouts = []struct {
	name  string
	shape []int64
	opt   WriteOptions
}{
	{"single page", []int64{24, 16}, WriteOptions{}},
	{"single page, 4-row strips", []int64{24, 16}, WriteOptions{RowsPerStrip: 4}},
	{"multi-page", []int64{6, 12, 16}, WriteOptions{}},
	{"multi-page, 4-row strips", []int64{6, 12, 16}, WriteOptions{RowsPerStrip: 4}},
	{"ImageJ", []int64{6, 12, 16}, WriteOptions{ImageJ: true, Unit: "nm", Spacing: 8, PixelWidth: 4, PixelHeight: 4}},
	{"BigTIFF", []int64{5, 12, 16}, WriteOptions{BigTIFF: true, RowsPerStrip: 4}},
	{"deflate tiles", []int64{3, 40, 36}, WriteOptions{Compression: "deflate", Tile: 16}},
}

func writeStack(t *testing.T, shape []int64, opt WriteOptions) (*volume.Mem, []byte) {
	t.Helper()
	src := testVolume(t, volume.Uint8, shape...)
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, src, opt); err != nil {
		t.Fatal(err)
	}
	return src, buf.Bytes()
}

// TestTruncatedAnywhere cuts each layout at every byte: the cut file must
// fail with format.ErrCorrupt, at Open or when the lost pixels are read, or
// (when only bytes no array needs were cut) read exactly as the whole file.
// It must never read as fewer pages or as other pixels.
func TestTruncatedAnywhere(t *testing.T) {
	ctx := context.Background()
	for _, l := range truncationLayouts {
		t.Run(l.name, func(t *testing.T) {
			src, b := writeStack(t, l.shape, l.opt)
			want := src.Bytes()
			// A file that ends right after an IFD's entries, without the
			// next-IFD offset, is accepted as a last IFD (libtiff and
			// tifffile accept it too), so those cuts may read fewer pages.
			entriesEnd := map[int]bool{}
			vs, err := open(ctx, memStore(t, b), "f.tif", defaultMaxChunk)
			if err != nil {
				t.Fatal(err)
			}
			r := vs[0].(*tiffVolume).r
			for _, p := range vs[0].(*tiffVolume).pages {
				d, err := r.readIFD(ctx, p.ifdOff, ifdWindow)
				if err != nil {
					t.Fatal(err)
				}
				c, e, _ := r.ifdSizes()
				entriesEnd[int(p.ifdOff+c+int64(len(d.entries))*e)] = true
			}
			openErrs, readErrs, whole := 0, 0, 0
			for cut := 0; cut < len(b); cut++ {
				if entriesEnd[cut] {
					continue
				}
				vs, err := open(ctx, memStore(t, b[:cut]), "f.tif", defaultMaxChunk)
				if err != nil {
					if !errors.Is(err, format.ErrCorrupt) {
						t.Fatalf("cut at %d: Open: %v, want format.ErrCorrupt", cut, err)
					}
					openErrs++
					continue
				}
				in := vs[0].Info()
				if !eqShape(in.Shape, src.Info().Shape) {
					t.Fatalf("cut at %d of %d: opens with shape %v, want %v or an error", cut, len(b), in.Shape, src.Info().Shape)
				}
				got, err := readAll(ctx, vs[0])
				switch {
				case err != nil && !errors.Is(err, format.ErrCorrupt):
					t.Fatalf("cut at %d: read: %v, want format.ErrCorrupt", cut, err)
				case err != nil:
					readErrs++
				case !bytes.Equal(got, want):
					t.Fatalf("cut at %d: read other pixels without an error", cut)
				default:
					whole++
				}
			}
			t.Logf("%d bytes: %d cuts fail at Open, %d at read, %d read whole", len(b), openErrs, readErrs, whole)
			if openErrs == 0 {
				t.Error("no cut failed at Open")
			}
		})
	}
}

// TestTruncatedMessages checks what the error of a cut file says: the file,
// the page and the offset that lies past the end.
func TestTruncatedMessages(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		shape []int64
		opt   WriteOptions
		cut   func(n int) int
		want  []string
	}{
		{"multi-page cut in half", []int64{10, 12, 16}, WriteOptions{}, func(n int) int { return n / 2 },
			[]string{`tiff "f.tif": page `, "next IFD at offset", "lies past end of file"}},
		{"ImageJ stack cut in half", []int64{10, 12, 16}, WriteOptions{ImageJ: true}, func(n int) int { return n / 2 },
			[]string{`tiff "f.tif": page `, "lies past end of file"}},
		{"single page cut in its pixels", []int64{64, 32}, WriteOptions{}, func(n int) int { return n - 100 },
			[]string{`tiff "f.tif": page 0 strip 0 at offset `, "lies past end of file"}},
		// Compressed pages keep each IFD before its data, so the cut leaves
		// every IFD whole and only the last page's strip table tells.
		{"last page cut in its strips", []int64{4, 64, 32}, WriteOptions{Compression: "deflate", RowsPerStrip: 8}, func(n int) int { return n - 10 },
			[]string{`tiff "f.tif": page 3 strip `, "lies past end of file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, b := writeStack(t, c.shape, c.opt)
			cut := b[:c.cut(len(b))]
			_, err := open(ctx, memStore(t, cut), "f.tif", defaultMaxChunk)
			if !errors.Is(err, format.ErrCorrupt) {
				t.Fatalf("Open of %d of %d bytes: %v, want format.ErrCorrupt", len(cut), len(b), err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.HasSuffix(err.Error(), ": corrupt data") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line ending in the cause", err)
			}
		})
	}
}

// TestCorruptMiddlePage moves the strips of a middle page past the end of the
// file. Open checks only the chunk tables it has at hand (the last page's,
// and those inline in the IFDs), so this one is found when the page is read:
// that read fails with format.ErrCorrupt naming the page, the others work.
func TestCorruptMiddlePage(t *testing.T) {
	ctx := context.Background()
	src, b := writeStack(t, []int64{3, 32, 16}, WriteOptions{RowsPerStrip: 4})
	vs, err := open(ctx, memStore(t, b), "f.tif", defaultMaxChunk)
	if err != nil {
		t.Fatal(err)
	}
	p := vs[0].(*tiffVolume).pages[1]
	if p.offsets.inline || typeSize(p.offsets.typ) != 4 {
		t.Fatalf("page 1's strip offsets are inline or not LONG: %+v", p.offsets)
	}
	bad := bytes.Clone(b)
	for i := range p.offsets.count {
		// Little-endian LONG offsets: point every strip 1 MiB past the start.
		copy(bad[p.offsets.off+4*i:], []byte{0, 0, 0x10, 0})
	}
	vs, err = open(ctx, memStore(t, bad), "f.tif", defaultMaxChunk)
	if err != nil {
		t.Fatalf("Open: %v (the middle page's table is read lazily)", err)
	}
	plane := int64(32 * 16)
	for z, wantErr := range []bool{false, true, false} {
		box := volume.Box{Start: []int64{int64(z), 0, 0}, Stop: []int64{int64(z) + 1, 32, 16}}
		got := make([]byte, plane)
		err := vs[0].ReadRegion(ctx, box, got)
		switch {
		case wantErr && !errors.Is(err, format.ErrCorrupt):
			t.Errorf("plane %d: %v, want format.ErrCorrupt", z, err)
		case wantErr && !strings.Contains(err.Error(), "page 1 strip 0 at offset 1048576+64 lies past end of file"):
			t.Errorf("plane %d: error %q does not name the strip", z, err)
		case !wantErr && err != nil:
			t.Errorf("plane %d: %v", z, err)
		case !wantErr && !bytes.Equal(got, src.Bytes()[int64(z)*plane:int64(z+1)*plane]):
			t.Errorf("plane %d differs", z)
		}
	}
}
