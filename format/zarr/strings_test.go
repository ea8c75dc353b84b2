package zarr

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// decodeStrings turns a string volume's C-order bytes back into Go strings,
// NUL padding removed.
func decodeStrings(in volume.Info, buf []byte) []string {
	chars := int(in.Shape[len(in.Shape)-1])
	unit := in.DType.Size()
	var out []string
	for off := 0; off+chars*unit <= len(buf); off += chars * unit {
		var sb strings.Builder
		for c := 0; c < chars; c++ {
			if unit == 1 {
				sb.WriteByte(buf[off+c])
			} else {
				sb.WriteRune(rune(binary.LittleEndian.Uint32(buf[off+4*c:])))
			}
		}
		out = append(out, strings.TrimRight(sb.String(), "\x00"))
	}
	return out
}

func TestFixedStrings(t *testing.T) {
	ctx := context.Background()
	le := func(s string, n int) []byte {
		b := make([]byte, 4*n)
		for i, r := range []rune(s) {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(r))
		}
		return b
	}
	be := func(s string, n int) []byte {
		b := make([]byte, 4*n)
		for i, r := range []rune(s) {
			binary.BigEndian.PutUint32(b[4*i:], uint32(r))
		}
		return b
	}
	pad := func(s string, n int) []byte { return append([]byte(s), make([]byte, n-len(s))...) }
	cat := func(bs ...[]byte) []byte {
		var o []byte
		for _, b := range bs {
			o = append(o, b...)
		}
		return o
	}
	cases := []struct {
		name, dtype, order, fill string
		shape, chunks            []int64
		chunk                    map[string][]byte
		want                     []string
		wantDT                   volume.DType
		sdt                      string
	}{
		{"s3", "|S3", "C", `""`, []int64{3}, []int64{2}, map[string][]byte{"0": cat(pad("ab", 3), pad("xyz", 3)), "1": cat(pad("q", 3), pad("", 3))},
			[]string{"ab", "xyz", "q"}, volume.Uint8, "S3"},
		{"u2le", "<U2", "C", `""`, []int64{3}, []int64{2}, map[string][]byte{"0": cat(le("é", 2), le("日本", 2))},
			[]string{"é", "日本", ""}, volume.Uint32, "U2"},
		{"u2be", ">U2", "C", `null`, []int64{2}, []int64{2}, map[string][]byte{"0": cat(be("hi", 2), be("µ", 2))},
			[]string{"hi", "µ"}, volume.Uint32, "U2"},
		// Absent chunks read as the fill string, cut to the dtype's length.
		{"ufill", "<U2", "C", `"abc"`, []int64{3}, []int64{2}, map[string][]byte{"0": cat(le("x", 2), le("yz", 2))},
			[]string{"x", "yz", "ab"}, volume.Uint32, "U2"},
		{"sfill", "|S3", "C", `"MA=="`, []int64{2, 2}, []int64{1, 2}, map[string][]byte{"0.0": cat(pad("p", 3), pad("q", 3))},
			[]string{"p", "q", "0", "0"}, volume.Uint8, "S3"},
		// Fortran order moves whole strings, never characters: stored
		// [[a,b],[c,d]] in F order is a, c, b, d.
		{"f2x2", "|S2", "F", `""`, []int64{2, 2}, []int64{2, 2}, map[string][]byte{"0.0": cat(pad("a", 2), pad("c", 2), pad("bb", 2), pad("d", 2))},
			[]string{"a", "bb", "c", "d"}, volume.Uint8, "S2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			meta := `{"zarr_format":2,"shape":` + jsonInts(c.shape) + `,"chunks":` + jsonInts(c.chunks) + `,"dtype":"` + c.dtype +
				`","compressor":null,"fill_value":` + c.fill + `,"order":"` + c.order + `","filters":null}`
			st.WriteAll(ctx, "a/.zarray", []byte(meta))
			for k, b := range c.chunk {
				st.WriteAll(ctx, "a/"+k, b)
			}
			v := openOne(t, st, "a")
			in := v.Info()
			if in.DType != c.wantDT || in.Metadata["string_dtype"] != c.sdt || in.Axes[len(in.Axes)-1].Name != "char" {
				t.Fatalf("info %s %v %+v", in.DType, in.Metadata["string_dtype"], in.Axes)
			}
			buf := make([]byte, in.NumBytes())
			if err := v.ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
				t.Fatal(err)
			}
			if got := decodeStrings(in, buf); strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestStringUnsupported(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewFile(t.TempDir()))
	for k, m := range map[string]string{
		"obj":  `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"|O","compressor":null,"fill_value":0,"order":"C","filters":[{"id":"vlen-utf8"}]}`,
		"fill": `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"|S2","compressor":null,"fill_value":"%%%","order":"C","filters":null}`,
		"filt": `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"|S2","compressor":null,"fill_value":"","order":"C","filters":[{"id":"delta","dtype":"|u1"}]}`,
	} {
		st.WriteAll(ctx, k+"/.zarray", []byte(m))
		vs, err := (Format{}).Open(ctx, st, k)
		if err == nil && len(vs) == 1 {
			err = vs[0].ReadRegion(ctx, volume.Full(vs[0].Info().Shape), make([]byte, vs[0].Info().NumBytes()))
		}
		if err == nil || (k != "fill") != errors.Is(err, format.ErrNotSupported) {
			t.Errorf("%s: got %v", k, err)
		}
	}
}

func jsonInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}
