package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		head string
		want bool
	}{
		{"II*\x00\x08\x00\x00\x00", true},
		{"MM\x00*\x00\x00\x00\x08", true},
		{"II+\x00\x08\x00\x00\x00", true},
		{"MM\x00+\x00\x08\x00\x00", true},
		{"II*", false},
		{"\x89PNG\r\n", false},
		{"MM\x00\x2a"[:3], false},
		{"", false},
	} {
		if got := (Format{}).Detect(context.Background(), nil, "k", []byte(c.head)); got != c.want {
			t.Errorf("Detect(%q) = %v", c.head, got)
		}
	}
}

// countingDriver counts the requests made of a store.MemDriver and the
// bytes they ask for.
type countingDriver struct {
	*store.MemDriver
	reqs, bytes atomic.Int64
}

func (d *countingDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	d.reqs.Add(1)
	d.bytes.Add(n)
	return d.MemDriver.ReadRange(ctx, key, off, n)
}

// TestLazy checks that Open costs about one request per IFD and that a small
// region fetches only the strips it touches.
func TestLazy(t *testing.T) {
	ctx := context.Background()
	src := testVolume(t, volume.Uint8, 40, 64, 100)
	var buf bytes.Buffer
	if err := Write(ctx, &buf, src, WriteOptions{RowsPerStrip: 4}); err != nil {
		t.Fatal(err)
	}
	d := &countingDriver{MemDriver: memDriver(t, buf.Bytes())}
	vs, err := Format{}.Open(ctx, store.New(d), "f.tif")
	if err != nil {
		t.Fatal(err)
	}
	if n := d.reqs.Load(); n > 40+2 {
		t.Errorf("Open made %d requests for 40 IFDs", n)
	}
	if n := d.bytes.Load(); n > 40*ifdWindow+64 {
		t.Errorf("Open read %d bytes", n)
	}
	d.reqs.Store(0)
	d.bytes.Store(0)
	box := volume.Box{Start: []int64{17, 9, 10}, Stop: []int64{18, 14, 20}}
	got := make([]byte, box.NumElements())
	if err := vs[0].ReadRegion(ctx, box, got); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(got))
	volume.CopyBox(want, box, src.Bytes(), volume.Full(src.Info().Shape), box, 1)
	if !bytes.Equal(got, want) {
		t.Fatal("region differs")
	}
	// Rows 9..13 of one page: 5 rows of 100 bytes plus the page's strip table.
	if n := d.bytes.Load(); n > 5*100+2*16*8+maxGap {
		t.Errorf("ReadRegion of 50 pixels read %d bytes", n)
	}
	if info := vs[0].Info(); !eqShape(info.Chunks, []int64{1, 4, 100}) || info.Metadata["page_axis"] != "generic" {
		t.Errorf("chunks %v, metadata %v", info.Chunks, info.Metadata)
	}
}

// TestImageJVirtual builds an ImageJ file whose IFD chain holds only the
// first page while the description and contiguous data hold more (ImageJ
// stacks beyond 4 GB look like this).
func TestImageJVirtual(t *testing.T) {
	ctx := context.Background()
	const n, h, w = 5, 12, 10
	src := testVolume(t, volume.Uint16, n, h, w)
	var buf bytes.Buffer
	tw := &tiffWriter{w: &buf, bo: binary.BigEndian, comp: 1, elem: 2, h: h, wd: w, sf: 1, bps: 16, rps: 5,
		xres: [2]uint32{50, 1}, yres: [2]uint32{50, 1}}
	if err := tw.header(); err != nil {
		t.Fatal(err)
	}
	pages := bytes.Clone(src.Bytes())
	swapToLE(pages, binary.BigEndian, 2)
	desc := "ImageJ=1.52p\nimages=5\nslices=5\nunit=\\u00B5m\nspacing=0.02\nloop=false\n"
	if err := tw.page(pages[:h*w*2], desc, true); err != nil {
		t.Fatal(err)
	}
	buf.Write(pages[h*w*2:])
	vs, err := open(ctx, memStore(t, buf.Bytes()), "f.tif", defaultMaxChunk)
	if err != nil {
		t.Fatal(err)
	}
	in := vs[0].Info()
	if !eqShape(in.Shape, []int64{n, h, w}) || in.Metadata["imagej_virtual"] != true {
		t.Fatalf("shape %v metadata %v", in.Shape, in.Metadata)
	}
	if z := in.Axes[0]; z.Name != "z" || z.Scale != 0.02 || z.Unit != "µm" || !z.ScaleKnown {
		t.Errorf("z axis %+v", z)
	}
	if x := in.Axes[2]; x.Scale != 0.02 || x.Unit != "µm" || !x.ScaleKnown {
		t.Errorf("x axis %+v", x)
	}
	volumetest.Run(t, vs[0], src.Bytes(), 0)

	// One plane fewer in the file than the description claims: the file
	// was cut short, which is an error (tifffile returns the first page).
	short := buf.Bytes()[:buf.Len()-h*w*2]
	if _, err = open(ctx, memStore(t, short), "f.tif", defaultMaxChunk); !errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), "past end of file") {
		t.Errorf("truncated virtual stack: %v, want a corrupt-data error", err)
	}
	// Only page 0's plane: the description is what is wrong, and the page
	// is read as it is.
	one := buf.Bytes()[:buf.Len()-(n-1)*h*w*2]
	vs, err = open(ctx, memStore(t, one), "f.tif", defaultMaxChunk)
	if err != nil {
		t.Fatal(err)
	}
	if got := vs[0].Info().Shape; !eqShape(got, []int64{h, w}) {
		t.Errorf("single plane under a 5-image description: shape %v, want the single page", got)
	}
}

// classic builds a little-endian classic TIFF from IFD entries; values
// that do not fit inline are placed after the IFD.
type rawEntry struct {
	tag, typ uint16
	count    uint32
	value    uint32
}

func classic(entries []rawEntry, next uint32, tail []byte) []byte {
	le := binary.LittleEndian
	b := []byte("II*\x00\x08\x00\x00\x00")
	b = le.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = le.AppendUint16(b, e.tag)
		b = le.AppendUint16(b, e.typ)
		b = le.AppendUint32(b, e.count)
		b = le.AppendUint32(b, e.value)
	}
	b = le.AppendUint32(b, next)
	return append(b, tail...)
}

func TestMalformed(t *testing.T) {
	ctx := context.Background()
	// A valid 4x4 uint8 image whose data sits at offset 200.
	base := func(extra ...rawEntry) []rawEntry {
		es := []rawEntry{
			{tagImageWidth, typeShort, 1, 4},
			{tagImageLength, typeShort, 1, 4},
			{tagBitsPerSample, typeShort, 1, 8},
			{tagStripOffsets, typeLong, 1, 200},
			{tagStripByteCounts, typeLong, 1, 16},
		}
		return append(es, extra...)
	}
	pad := make([]byte, 220)
	for i := range pad {
		pad[i] = byte(i)
	}
	cases := []struct {
		name    string
		file    []byte
		openErr bool   // Open must fail
		readErr error  // ReadRegion must fail with this (nil: must succeed)
		anyRead bool   // ReadRegion may fail with anything, but must not panic
		want    string // substring of the error
	}{
		{name: "valid", file: classic(base(), 0, pad)},
		{name: "truncated-header", file: []byte("II*\x00\x08"), openErr: true},
		{name: "bad-version", file: []byte("II\x2b\x01\x08\x00\x00\x00"), openErr: true},
		{name: "ifd-outside", file: []byte("II*\x00\xff\xff\x00\x00"), openErr: true},
		{name: "loop", file: classic(base(), 8, pad)},
		{name: "huge-entry-count", file: append([]byte("II*\x00\x08\x00\x00\x00\xff\xff"), pad...), openErr: true},
		{name: "no-width", file: classic(base()[1:], 0, pad), openErr: true},
		{name: "strip-beyond-file", file: classic(append(base()[:3], rawEntry{tagStripOffsets, typeLong, 1, 1 << 30}, rawEntry{tagStripByteCounts, typeLong, 1, 16}), 0, pad), openErr: true, want: "page 0 strip 0 at offset 1073741824+16 lies past end of file"},
		{name: "count-beyond-file", file: classic(append(base()[:4], rawEntry{tagStripByteCounts, typeLong, 1, 1 << 30}), 0, pad), anyRead: true},
		{name: "too-few-strips", file: classic(append(base(), rawEntry{tagRowsPerStrip, typeShort, 1, 1}), 0, pad), openErr: true, want: "needs 4"},
		{name: "huge-dims-compressed", file: classic([]rawEntry{
			{tagImageWidth, typeLong, 1, 1 << 24}, {tagImageLength, typeLong, 1, 1 << 24}, {tagBitsPerSample, typeShort, 1, 8},
			{tagCompression, typeShort, 1, 8}, {tagStripOffsets, typeLong, 1, 200}, {tagStripByteCounts, typeLong, 1, 16},
		}, 0, pad), readErr: format.ErrNotSupported},
		{name: "implausible-dims", file: classic([]rawEntry{
			{tagImageWidth, typeLong, 1, 1 << 30}, {tagImageLength, typeLong, 1, 1 << 30}, {tagBitsPerSample, typeShort, 1, 8},
			{tagStripOffsets, typeLong, 1, 200}, {tagStripByteCounts, typeLong, 1, 16},
		}, 0, pad), openErr: true, want: "implausibly large"},
		{name: "huge-dims-raw", file: classic([]rawEntry{
			{tagImageWidth, typeLong, 1, 1 << 20}, {tagImageLength, typeLong, 1, 1 << 20}, {tagBitsPerSample, typeShort, 1, 8},
			{tagStripOffsets, typeLong, 1, 200}, {tagStripByteCounts, typeLong, 1, 16},
		}, 0, pad), anyRead: true},
		{name: "jpeg-garbage", file: classic(append(base(), rawEntry{tagCompression, typeShort, 1, 7}), 0, pad), readErr: errCorrupt, want: "jpeg"},
		{name: "old-jpeg", file: classic(append(base(), rawEntry{tagCompression, typeShort, 1, 6}), 0, pad), readErr: format.ErrNotSupported, want: "old-jpeg"},
		{name: "jpeg-16bit", file: classic(append(base()[:2], rawEntry{tagBitsPerSample, typeShort, 1, 16}, base()[3], base()[4], rawEntry{tagCompression, typeShort, 1, 7}), 0, pad), readErr: format.ErrNotSupported, want: "JPEG"},
		{name: "sgilog", file: classic(append(base(), rawEntry{tagCompression, typeShort, 1, 34676}), 0, pad), readErr: format.ErrNotSupported},
		{name: "24-bit", file: classic(append(base()[:2], rawEntry{tagBitsPerSample, typeShort, 1, 24}, base()[3], base()[4]), 0, pad), openErr: true, want: "24 bits"},
		{name: "deflate-garbage", file: classic(append(base(), rawEntry{tagCompression, typeShort, 1, 8}), 0, pad), anyRead: true},
		{name: "zstd-garbage", file: classic(append(base(), rawEntry{tagCompression, typeShort, 1, 50000}), 0, pad), anyRead: true},
		{name: "lzw-garbage", file: classic(append(base(), rawEntry{tagCompression, typeShort, 1, 5}), 0, pad), anyRead: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs, err := open(ctx, memStore(t, c.file), "f.tif", 1<<20)
			if c.openErr {
				if err == nil {
					t.Fatal("Open succeeded")
				}
				if c.want != "" && !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q lacks %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			in := vs[0].Info()
			if err := in.Validate(); err != nil {
				t.Fatal(err)
			}
			box := volume.Full(in.Shape)
			for i := range box.Stop {
				box.Stop[i] = min(box.Stop[i], 4)
			}
			dst := make([]byte, box.NumElements()*int64(in.DType.Size()))
			err = vs[0].ReadRegion(ctx, box, dst)
			switch {
			case c.anyRead:
			case c.readErr == nil && err != nil:
				t.Fatalf("ReadRegion: %v", err)
			case c.readErr != nil && !errors.Is(err, c.readErr):
				t.Fatalf("ReadRegion: %v, want %v", err, c.readErr)
			}
			if err != nil && c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
			if c.readErr == nil && !c.anyRead && !bytes.Equal(dst, c.file[200:216]) {
				t.Errorf("pixels % x", dst)
			}
		})
	}
}

func TestDecoders(t *testing.T) {
	// PackBits example from the TIFF 6 specification.
	packed := []byte{0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7, 0xAA}
	want := []byte{0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}
	got, err := unpackBits(packed, 1000)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("unpackBits = % x, %v", got, err)
	}
	if got, _ := unpackBits(packed, 5); len(got) != 5 {
		t.Errorf("unpackBits capped at 5 gave %d bytes", len(got))
	}

	// Horizontal predictor, 16-bit, two samples per pixel.
	row := []byte{1, 0, 10, 0, 1, 0, 0xff, 0xff, 2, 0, 1, 0}
	accumulate(row, 2, 2)
	if want := []byte{1, 0, 10, 0, 2, 0, 9, 0, 4, 0, 10, 0}; !bytes.Equal(row, want) {
		t.Errorf("accumulate = %v", row)
	}

	// 12-bit unpacking: 0xABC, 0x123.
	dst := make([]byte, 4)
	unpackRow(dst, []byte{0xAB, 0xC1, 0x23}, 12, 2)
	if le := binary.LittleEndian; le.Uint16(dst) != 0xABC || le.Uint16(dst[2:]) != 0x123 {
		t.Errorf("unpackRow 12-bit = % x", dst)
	}

	// Floating-point predictor on two float32 values 1.0 (3f800000) and 2.0 (40000000):
	// byte planes MSB first [3f 40][80 00][00 00][00 00], then differenced.
	planes := []byte{0x3f, 0x40, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00}
	diff := make([]byte, len(planes))
	diff[0] = planes[0]
	for i := 1; i < len(planes); i++ {
		diff[i] = planes[i] - planes[i-1]
	}
	out := make([]byte, 8)
	floatPredictRow(out, diff, 4, 1)
	if want := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}; !bytes.Equal(out, want) {
		t.Errorf("floatPredictRow = % x", out)
	}

	if u := decodeUnit(`\u00B5m`); u != "µm" {
		t.Errorf("decodeUnit = %q", u)
	}
	if u := escapeUnit("µm"); u != `\u00B5m` {
		t.Errorf("escapeUnit = %q", u)
	}
}
