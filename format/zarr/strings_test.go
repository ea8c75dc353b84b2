package zarr

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

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
	}{
		{"s3", "|S3", "C", `""`, []int64{3}, []int64{2}, map[string][]byte{"0": cat(pad("ab", 3), pad("xyz", 3)), "1": cat(pad("q", 3), pad("", 3))},
			[]string{"ab", "xyz", "q"}, "|S3"},
		{"u2le", "<U2", "C", `""`, []int64{3}, []int64{2}, map[string][]byte{"0": cat(le("é", 2), le("日本", 2))},
			[]string{"é", "日本", ""}, "<U2"},
		// Big-endian code points are read little-endian, as >u2 reads as uint16.
		{"u2be", ">U2", "C", `null`, []int64{2}, []int64{2}, map[string][]byte{"0": cat(be("hi", 2), be("µ", 2))},
			[]string{"hi", "µ"}, "<U2"},
		// Absent chunks read as the fill string, cut to the dtype's length.
		{"ufill", "<U2", "C", `"abc"`, []int64{3}, []int64{2}, map[string][]byte{"0": cat(le("x", 2), le("yz", 2))},
			[]string{"x", "yz", "ab"}, "<U2"},
		{"sfill", "|S3", "C", `"MA=="`, []int64{2, 2}, []int64{1, 2}, map[string][]byte{"0.0": cat(pad("p", 3), pad("q", 3))},
			[]string{"p", "q", "0", "0"}, "|S3"},
		// Fortran order moves whole strings, never characters: stored
		// [[a,b],[c,d]] in F order is a, c, b, d.
		{"f2x2", "|S2", "F", `""`, []int64{2, 2}, []int64{2, 2}, map[string][]byte{"0.0": cat(pad("a", 2), pad("c", 2), pad("bb", 2), pad("d", 2))},
			[]string{"a", "bb", "c", "d"}, "|S2"},
		// Bytes are bytes: S elements need not be UTF-8.
		{"sbinary", "|S2", "C", `""`, []int64{2}, []int64{2}, map[string][]byte{"0": {0xff, 0, 0, 0xfe}},
			[]string{"\xff", "\x00\xfe"}, "|S2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewMem())
			meta := `{"zarr_format":2,"shape":` + jsonInts(c.shape) + `,"chunks":` + jsonInts(c.chunks) + `,"dtype":"` + c.dtype +
				`","compressor":null,"fill_value":` + c.fill + `,"order":"` + c.order + `","filters":null}`
			if err := st.WriteAll(ctx, "a/.zarray", []byte(meta)); err != nil {
				t.Fatal(err)
			}
			for k, b := range c.chunk {
				if err := st.WriteAll(ctx, "a/"+k, b); err != nil {
					t.Fatal(err)
				}
			}
			v := openOne(t, st, "a")
			in := v.Info()
			if in.DType != c.wantDT || fmt.Sprint(in.Shape) != fmt.Sprint(c.shape) || len(in.Axes) != len(c.shape) {
				t.Fatalf("info %s %v %+v, want %s %v", in.DType, in.Shape, in.Axes, c.wantDT, c.shape)
			}
			got, err := v.(StringReader).ReadStrings(ctx, volume.Full(in.Shape))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("got %q, want %q", got, c.want)
			}
			// ReadRegion gives the same strings as NumPy's element bytes.
			buf := make([]byte, in.NumBytes())
			if err := v.ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
				t.Fatal(err)
			}
			for i, w := range c.want {
				elem := buf[i*in.DType.Size() : (i+1)*in.DType.Size()]
				if kind, _, _ := in.DType.FixedString(); kind == 'U' {
					elem = le(w, len(elem)/4)
				} else {
					elem = pad(w, len(elem))
				}
				if !bytes.Equal(buf[i*in.DType.Size():(i+1)*in.DType.Size()], elem) {
					t.Errorf("element %d bytes %x, want %x", i, buf[i*in.DType.Size():(i+1)*in.DType.Size()], elem)
				}
			}
		})
	}
}

// TestFixedStringsBadElements reads U elements that are no characters, and
// boxes too large for one ReadStrings.
func TestFixedStringsBadElements(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewMem())
	put := func(k, v string) {
		if err := st.WriteAll(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	put("bad/.zarray", `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"<U1","compressor":null,"fill_value":null,"order":"C","filters":null}`)
	put("bad/0", "a\x00\x00\x00\x00\xd8\x00\x00") // "a", then the lone surrogate U+D800
	put("huge/.zarray", `{"zarr_format":2,"shape":[100000],"chunks":[1],"dtype":"<U1048576","compressor":null,"fill_value":null,"order":"C","filters":null}`)
	for _, c := range []struct {
		key, want string
	}{
		{"bad", "not a Unicode character"},
		{"huge", "more than one ReadStrings returns"},
	} {
		v := openOne(t, st, c.key)
		_, err := v.(StringReader).ReadStrings(ctx, volume.Full(v.Info().Shape))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.key, err, c.want)
		}
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

// zarrPythonStrings writes fixed-size string arrays with zarr-python and
// prints, for each, NumPy's shape, dtype (little-endian, as volume reports
// it) and elements (S elements as Latin-1, one character per byte).
const zarrPythonStrings = `
import json, sys, zarr, numpy as np
from numcodecs import Zstd, Zlib
root = sys.argv[1]
res = {}
def arr(name, x, comp, chunks, order="C", fill=None, rows=None):
    kw = {} if fill is None else {"fill_value": fill}
    z = zarr.open(root + "/" + name, mode="w", shape=x.shape, chunks=chunks, dtype=x.dtype, compressor=comp, order=order, **kw)
    if rows is None:
        z[...] = x
    else:
        z[:rows] = x[:rows]  # the rest reads as the fill value
    a = zarr.open(root + "/" + name, mode="r")[...]
    vals = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in a.ravel().tolist()]
    res[name] = dict(shape=list(a.shape), dtype=str(a.dtype.newbyteorder("<")), values=vals)
words = np.array([["", "a", "bc", "déf", "日本語", "wxyz", "g\x00h"][i % 7] for i in range(24)]).reshape(4, 6)
arr("U13", words[0].astype("<U13"), Zstd(level=1), (4,))
arr("S7", np.char.encode(words, "utf-8").astype("|S7")[:, 0], None, (2,))
arr("U4-2d", words.astype("<U4"), Zlib(level=1), (3, 4), rows=3)
arr("U3-big-F", words.astype(">U3"), None, (3, 5), order="F")
arr("S9-fill", np.char.encode(words, "utf-8").astype("|S9"), Zstd(level=1), (2, 2), fill=b"zz", rows=2)
arr("U5-fill", words.astype("<U5"), None, (4, 4), fill="fill!x", rows=1)
print(json.dumps(res))
`

// TestFixedStringsZarrPython reads string arrays zarr-python wrote: NumPy's
// shape and dtype, and the elements NumPy returns (trailing NULs dropped,
// inner NULs kept, absent chunks as the fill value).
func TestFixedStringsZarrPython(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	out, err := exec.CommandContext(ctx, py, "-c", zarrPythonStrings, dir).Output()
	if err != nil {
		t.Fatalf("zarr-python: %v", err)
	}
	var want map[string]struct {
		Shape  []int64
		DType  string
		Values []string
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("zarr-python output %q: %v", out, err)
	}
	if len(want) != 6 {
		t.Fatalf("zarr-python wrote %d arrays, want 6", len(want))
	}
	st := store.New(store.NewFile(dir))
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			v := openOne(t, st, name)
			in := v.Info()
			if fmt.Sprint(in.Shape) != fmt.Sprint(w.Shape) || string(in.DType) != w.DType {
				t.Fatalf("%v %s, zarr-python says %v %s", in.Shape, in.DType, w.Shape, w.DType)
			}
			got, err := v.(StringReader).ReadStrings(ctx, volume.Full(in.Shape))
			if err != nil {
				t.Fatal(err)
			}
			if kind, _, _ := in.DType.FixedString(); kind == 'S' {
				for i, s := range got {
					got[i] = latin1(s)
				}
			}
			if strings.Join(got, "|") != strings.Join(w.Values, "|") {
				t.Errorf("got %q\nzarr-python %q", got, w.Values)
			}
			// A part of the array reads as that part of the whole.
			if len(in.Shape) == 2 && in.Shape[0] > 1 && in.Shape[1] > 2 {
				box := volume.Box{Start: []int64{1, 1}, Stop: []int64{in.Shape[0], in.Shape[1] - 1}}
				part, err := v.(StringReader).ReadStrings(ctx, box)
				if err != nil {
					t.Fatal(err)
				}
				i := 0
				volume.Each(box, func(p []int64) error {
					if whole := got[p[0]*in.Shape[1]+p[1]]; i < len(part) && latin1If(in.DType, part[i]) != whole {
						t.Errorf("element %v: %q in a box, %q in the whole", p, part[i], whole)
					}
					i++
					return nil
				})
			}
		})
	}
}

// latin1 spells each byte of s as the character of that code point, as
// Python decodes bytes with "latin-1".
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// latin1If applies latin1 to the elements of S arrays.
func latin1If(dt volume.DType, s string) string {
	if kind, _, _ := dt.FixedString(); kind == 'S' {
		return latin1(s)
	}
	return s
}

// TestFixedStringsNotWritten: writing string arrays is not supported yet;
// both writers say so, naming the dtype, instead of writing numbers.
func TestFixedStringsNotWritten(t *testing.T) {
	ctx := context.Background()
	for _, dt := range []volume.DType{volume.FixedString('U', 3), volume.FixedString('S', 5)} {
		src := memVolume(t, "s", []int64{4, 2}, dt, nil)
		for _, version := range []string{"0.4", "0.5"} {
			st := store.New(store.NewMem())
			_, err := CreateArray(ctx, st, "a", src.Info(), WriteOptions{Version: version})
			if !errors.Is(err, format.ErrNotSupported) || !strings.Contains(err.Error(), string(dt)) {
				t.Errorf("%s, NGFF %s: got %v, want ErrNotSupported naming the dtype", dt, version, err)
			}
		}
	}
}
