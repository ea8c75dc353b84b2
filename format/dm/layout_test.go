package dm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// halfPlane returns rows x packedWidth(w) distinct complex values standing for
// the stored half plane of a w-wide image's spectrum.
func halfPlane(rows, w int64) [][]complex128 {
	pw := packedWidth(w)
	out := make([][]complex128, rows)
	for r := range out {
		out[r] = make([]complex128, pw)
		for j := range out[r] {
			out[r][j] = complex(float64(r*10+j+1), -0.5*float64((r+1)*(j+2)))
		}
	}
	return out
}

// encodeComplex lays complex values out as dt (complex64 or complex128), little-endian.
func encodeComplex(dt volume.DType, vals []complex128) []byte {
	var b []byte
	for _, c := range vals {
		if dt == volume.Complex64 {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(real(c))))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(imag(c))))
		} else {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(real(c)))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(imag(c)))
		}
	}
	return b
}

// packedFile writes a packed FFT file of a rows x w image and returns it with
// the stored values.
func packedFile(t testing.TB, dt volume.DType, rows, w int64, opt ...Option) ([]byte, [][]complex128) {
	t.Helper()
	hp := halfPlane(rows, w)
	var flat []complex128
	for _, row := range hp {
		flat = append(flat, row...)
	}
	img := Image{Name: "FFT", DType: dt, Shape: []int64{rows, packedWidth(w)}, Data: encodeComplex(dt, flat),
		Origins: []float64{float64(rows) / 2, float64(w) / 2}, Scales: []float64{0.25, 0.2}}
	return writeImage(t, img, append([]Option{packedFFT(w)}, opt...)...), hp
}

// TestPackedComplexLayout pins the unpacking on literal rows: the stored row
// reversed, then the conjugates of its inner values (rosettasciio's rule).
func TestPackedComplexLayout(t *testing.T) {
	a, b, c, d := complex(1, 2), complex(3, -4), complex(5, 6), complex(7, 0.5)
	cases := []struct {
		w      int64
		stored []complex128
		want   []complex128
	}{
		{1, []complex128{a}, []complex128{a}},
		{2, []complex128{a, b}, []complex128{b, a}},
		{3, []complex128{a, b}, []complex128{b, a}},
		{4, []complex128{a, b, c}, []complex128{c, b, a, cmplx.Conj(b)}},
		{5, []complex128{a, b, c}, []complex128{c, b, a, cmplx.Conj(b)}},
		{6, []complex128{a, b, c, d}, []complex128{d, c, b, a, cmplx.Conj(b), cmplx.Conj(c)}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.w), func(t *testing.T) {
			img := Image{Name: "f", DType: volume.Complex64, Shape: []int64{1, packedWidth(tc.w)}, Data: encodeComplex(volume.Complex64, tc.stored)}
			file := writeImage(t, img, packedFFT(tc.w))
			vols, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"f.dm4": file}), "f.dm4")
			if err != nil {
				t.Fatal(err)
			}
			in := vols[0].Info()
			// The single row is squeezed away, as rosettasciio does.
			if fmt.Sprint(in.Shape) != fmt.Sprint([]int64{int64(len(tc.want))}) || in.DType != volume.Complex64 {
				t.Fatalf("shape %v %s, want [%d] complex64", in.Shape, in.DType, len(tc.want))
			}
			got := make([]byte, in.NumBytes())
			if err := vols[0].ReadRegion(context.Background(), volume.Full(in.Shape), got); err != nil {
				t.Fatal(err)
			}
			if want := encodeComplex(volume.Complex64, tc.want); !bytes.Equal(got, want) {
				t.Errorf("got % x\nwant % x", got, want)
			}
		})
	}
}

// TestPackedComplex reads packed files of both precisions in every layout
// through the conformance suite, against an unpacking built here with
// complex arithmetic.
func TestPackedComplex(t *testing.T) {
	layouts := map[string][]Option{"dm3": nil, "dm3-be": {BigEndian()}, "dm4": {AsDM4()}, "dm4-be-nothumb": {AsDM4(), BigEndian(), NoThumbnail()}}
	for name, opt := range layouts {
		for _, dt := range []volume.DType{volume.Complex64, volume.Complex128} {
			for _, size := range [][2]int64{{6, 8}, {5, 7}, {3, 2}} {
				rows, w := size[0], size[1]
				t.Run(fmt.Sprintf("%s/%s/%dx%d", name, dt, rows, w), func(t *testing.T) {
					file, hp := packedFile(t, dt, rows, w, opt...)
					var want []complex128
					for _, row := range hp {
						for j := len(row) - 1; j >= 0; j-- {
							want = append(want, row[j])
						}
						for j := 1; j < len(row)-1; j++ {
							want = append(want, cmplx.Conj(row[j]))
						}
					}
					vols, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"f.dm3": file}), "f.dm3")
					if err != nil {
						t.Fatal(err)
					}
					in := vols[0].Info()
					wantW := w - w%2
					if fmt.Sprint(in.Shape) != fmt.Sprint([]int64{rows, wantW}) || in.DType != dt {
						t.Fatalf("shape %v %s, want [%d %d] %s", in.Shape, in.DType, rows, wantW, dt)
					}
					code := 27
					if dt == volume.Complex128 {
						code = 28
					}
					pc, _ := in.Metadata["packed_complex"].(map[string]any)
					if in.Metadata["data_type_code"] != code || fmt.Sprint(pc["stored_half_plane"]) != fmt.Sprint([]int64{rows, w/2 + 1}) {
						t.Errorf("metadata %v", in.Metadata)
					}
					if x := in.Axes[1]; !near(x.Scale, 0.2) || !near(x.Offset, -float64(w)/2*0.2) {
						t.Errorf("x axis %+v", x)
					}
					volumetest.Run(t, vols[0], encodeComplex(dt, want), 0)
				})
			}
		}
	}
}

// patchDataType rewrites the ImageData.DataType of the last image in a
// little-endian DM3 file from the writer.
func patchDataType(t *testing.T, b []byte, from, to uint32) {
	t.Helper()
	i := bytes.LastIndex(b, []byte("DataType"))
	off := i + len("DataType") + 4 + 4 + 4 // "%%%%", ninfo, type word
	if i < 0 || binary.LittleEndian.Uint32(b[off:]) != from {
		t.Fatalf("DataType %d not found where expected", from)
	}
	binary.LittleEndian.PutUint32(b[off:], to)
}

// TestPackedComplexRefused: layouts without a checked unpacking are refused
// with ErrNotSupported, and stored sizes that do not fit are malformed.
func TestPackedComplexRefused(t *testing.T) {
	cases := []struct {
		name     string
		dt       volume.DType
		shape    []int64
		from, to uint32
		want     error
	}{
		{"old packed", volume.Float32, []int64{2, 2}, 2, 5, format.ErrNotSupported},
		{"rank 3", volume.Complex64, []int64{2, 2, 2}, 3, 27, format.ErrNotSupported},
		{"bytes do not fit", volume.Complex64, []int64{2, 3}, 3, 27, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := writeImage(t, Image{Name: "p", DType: c.dt, Shape: c.shape, Data: make([]byte, volume.Prod(c.shape)*int64(c.dt.Size()))})
			patchDataType(t, b, c.from, c.to)
			_, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"p.dm3": b}), "p.dm3")
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if err := WriteDM3(io.Discard, Image{Name: "w", DType: volume.Complex64, Shape: []int64{2, 2}, Data: make([]byte, 32)}, packedFFT(4)); !errors.Is(err, ErrWrite) {
		t.Errorf("writing a half plane of the wrong width: got %v, want ErrWrite", err)
	}
}

// TestSqueezeAndSpectrumImage covers rosettasciio's two shape rules on
// written files: size-1 axes are dropped, and the spectrum of a spectrum
// image (stored slowest) is moved last.
func TestSqueezeAndSpectrumImage(t *testing.T) {
	// transpose turns (c, rest) elements of e bytes into (rest, c).
	transpose := func(src []byte, e, c, rest int) []byte {
		out := make([]byte, len(src))
		for k := 0; k < c; k++ {
			for m := 0; m < rest; m++ {
				copy(out[(m*c+k)*e:][:e], src[(k*rest+m)*e:][:e])
			}
		}
		return out
	}
	si := map[string]any{"Meta Data.Format": "Spectrum image"}
	cases := []struct {
		name     string
		dt       volume.DType
		shape    []int64
		tags     map[string]any
		want     []int64
		axes     string
		units    string // stored axis i has unit "u<i>"
		moved    bool
		squeezed bool
	}{
		{"plain", volume.Uint16, []int64{4, 3, 5}, nil, []int64{4, 3, 5}, "z y x", "u0 u1 u2", false, false},
		{"spectrum 1xN", volume.Float32, []int64{1, 9}, nil, []int64{9}, "x", "u1", false, true},
		{"stack of one", volume.Uint8, []int64{1, 3, 5}, nil, []int64{3, 5}, "y x", "u1 u2", false, true},
		{"1x1", volume.Uint8, []int64{1, 1}, nil, []int64{1}, "x", "u1", false, true},
		{"spectrum image", volume.Float32, []int64{7, 3, 4}, si, []int64{3, 4, 7}, "y x c", "u1 u2 u0", true, false},
		{"spim group", volume.Int16, []int64{7, 3, 4}, map[string]any{"spim.eels.Name": "x"}, []int64{3, 4, 7}, "y x c", "u1 u2 u0", true, false},
		{"4-D spectrum image", volume.Int32, []int64{5, 2, 3, 4}, si, []int64{2, 3, 4, 5}, "z y x c", "u1 u2 u3 u0", true, false},
		{"line spectrum image", volume.Float32, []int64{6, 1, 4}, si, []int64{4, 6}, "x c", "u2 u0", true, true},
		{"2-D spectrum image stays", volume.Float32, []int64{3, 4}, si, []int64{3, 4}, "y x", "u0 u1", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := int(volume.Prod(c.shape))
			data := ramp(c.dt, n)
			img := Image{Name: "s", DType: c.dt, Shape: c.shape, Data: data, Tags: c.tags}
			for i := range c.shape {
				img.Units = append(img.Units, fmt.Sprintf("u%d", i))
			}
			vols, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"s.dm4": writeImage(t, img, AsDM4())}), "s.dm4")
			if err != nil {
				t.Fatal(err)
			}
			in := vols[0].Info()
			var names, units []string
			for _, a := range in.Axes {
				names = append(names, a.Name)
				units = append(units, a.Unit)
			}
			if fmt.Sprint(in.Shape) != fmt.Sprint(c.want) || fmt.Sprint(names) != "["+c.axes+"]" || fmt.Sprint(units) != "["+c.units+"]" {
				t.Fatalf("shape %v axes %v units %v, want %v [%s] [%s]", in.Shape, names, units, c.want, c.axes, c.units)
			}
			md := in.Metadata
			if (md["spectral_axis_moved"] != nil) != c.moved || (md["squeezed"] != nil) != c.squeezed {
				t.Errorf("metadata %v", md)
			}
			if (c.moved || c.squeezed) && fmt.Sprint(md["dm_shape"]) != fmt.Sprint(c.shape) {
				t.Errorf("dm_shape %v, want %v", md["dm_shape"], c.shape)
			}
			want := data
			if c.moved {
				want = transpose(data, c.dt.Size(), int(c.shape[0]), n/int(c.shape[0]))
			}
			volumetest.Run(t, vols[0], want, 0)
		})
	}
}
