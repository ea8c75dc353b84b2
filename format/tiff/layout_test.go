package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// firstStripOffset returns StripOffsets[0] of the first IFD of file, using
// nothing of the reader so a shared bug cannot hide.
func firstStripOffset(t *testing.T, file []byte) uint64 {
	t.Helper()
	bo := binary.ByteOrder(binary.LittleEndian)
	if string(file[:2]) == "MM" {
		bo = binary.BigEndian
	}
	big := bo.Uint16(file[2:]) == 43
	pos, n, size, inl := uint64(bo.Uint32(file[4:])), uint64(0), uint64(12), uint64(4)
	if big {
		pos, size, inl = bo.Uint64(file[8:]), 20, 8
		n, pos = bo.Uint64(file[pos:]), pos+8
	} else {
		n, pos = uint64(bo.Uint16(file[pos:])), pos+2
	}
	word := func(b []byte, typ uint16) uint64 {
		switch typ {
		case typeShort:
			return uint64(bo.Uint16(b))
		case typeLong:
			return uint64(bo.Uint32(b))
		}
		return bo.Uint64(b)
	}
	for i := range n {
		e := file[pos+i*size:]
		if bo.Uint16(e) != tagStripOffsets {
			continue
		}
		typ, count, val := bo.Uint16(e[2:]), uint64(bo.Uint32(e[4:])), e[8:12]
		if big {
			count, val = bo.Uint64(e[4:]), e[12:20]
		}
		if count*uint64(typeSize(typ)) <= inl {
			return word(val, typ)
		}
		ptr := uint64(bo.Uint32(val))
		if big {
			ptr = bo.Uint64(val)
		}
		return word(file[ptr:], typ)
	}
	t.Fatal("first IFD has no StripOffsets")
	return 0
}

// TestWriteContiguousStack checks the layout ImageJ relies on for a stack
// whose description says images=n: every page's pixels back to back from the
// first IFD's first strip. ImageJ reads nothing else (TestImageJReadsWriterOutput
// shows it reading garbage otherwise); this test needs no ImageJ.
func TestWriteContiguousStack(t *testing.T) {
	cases := []struct {
		name  string
		dt    volume.DType
		shape []int64
		opt   WriteOptions
	}{
		{"imagej-u8", volume.Uint8, []int64{5, 17, 23}, WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 3.3, PixelHeight: 3.3}},
		{"imagej-u16-MM-strips", volume.Uint16, []int64{4, 19, 10}, WriteOptions{ImageJ: true, ByteOrder: binary.BigEndian, RowsPerStrip: 3}},
		{"imagej-f32-MM-bigtiff", volume.Float32, []int64{3, 9, 8}, WriteOptions{ImageJ: true, BigTIFF: true, ByteOrder: binary.BigEndian}},
		{"plain-u8-odd-sizes", volume.Uint8, []int64{3, 7, 5}, WriteOptions{}},
		{"plain-u16-bigtiff-one-row-strips", volume.Uint16, []int64{2, 5, 3}, WriteOptions{BigTIFF: true, RowsPerStrip: 1}},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := testVolume(t, c.dt, c.shape...)
			st, key, file := writeTemp(t, src, c.opt)
			want := bytes.Clone(src.Bytes())
			bo := c.opt.ByteOrder
			if bo == nil {
				bo = binary.LittleEndian
			}
			swapToLE(want, bo, c.dt.Size())
			at := bytes.Index(file, want)
			if at < 0 {
				t.Fatal("the pixels of all pages are not one run in the file")
			}
			if off := firstStripOffset(t, file); off != uint64(at) {
				t.Errorf("first strip at %d, pixel run at %d", off, at)
			}
			vs, err := Format{}.Open(ctx, st, key)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(src.Bytes()))
			if err := vs[0].ReadRegion(ctx, volume.Box{Start: make([]int64, len(c.shape)), Stop: c.shape}, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src.Bytes()) {
				t.Error("reader disagrees with the written volume")
			}
		})
	}
}

func TestRationalForExact(t *testing.T) {
	for _, c := range []struct {
		x        float64
		num, den uint32
	}{
		{1 / 3.3, 10, 33},
		{50, 50, 1},
		{1 / 0.02, 50, 1},
		{1 / 0.3, 10, 3},
		{0.25, 1, 4},
		{4e-10, 1, 2500000000},
		{math32Max, 4294967295, 1},
	} {
		n, d, err := rationalFor(c.x)
		if err != nil || n != c.num || d != c.den {
			t.Errorf("rationalFor(%g) = %d/%d, %v; want %d/%d", c.x, n, d, err, c.num, c.den)
		}
	}
	if _, _, err := rationalFor(1e-10); err == nil {
		t.Error("rationalFor(1e-10) fits no 32-bit denominator but succeeded")
	}
}

const math32Max = 1<<32 - 1
