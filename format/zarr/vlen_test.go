package zarr

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// encodeVLen writes the numcodecs VLenUTF8/VLenBytes layout, independently
// of the decoder under test.
func encodeVLen(items ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(items)))
	for _, s := range items {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func TestDecodeVLen(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		n    int
		utf8 bool
		want []string
		err  string
	}{
		{"plain", encodeVLen("a", "", "ünïcødé ✓"), 3, true, []string{"a", "", "ünïcødé ✓"}, ""},
		{"empty chunk", encodeVLen(), 0, true, []string{}, ""},
		{"bytes keep invalid utf8", encodeVLen("\xff\x00"), 1, false, []string{"\xff\x00"}, ""},
		{"invalid utf8", encodeVLen("ok", "\xff"), 2, true, nil, "item 1: not valid UTF-8"},
		{"count mismatch", encodeVLen("a", "b"), 3, true, nil, "holds 2 items"},
		{"no count", []byte{1, 0}, 1, true, nil, "short of the 4-byte item count"},
		{"huge count", []byte{0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0}, 0x0fffffff, true, nil, "cannot fit"},
		{"length overruns", append(binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0}, 100), "abc"...), 1, true, nil, "overruns"},
		{"length missing", encodeVLen("abcdefgh", "")[:18], 2, true, nil, "item 1: length missing"},
		{"trailing bytes", append(encodeVLen("a"), 0), 1, true, nil, "1 bytes after the last"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeVLen(c.in, c.n, c.utf8)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func FuzzDecodeVLen(f *testing.F) {
	f.Add(encodeVLen("a", "", "ünï"), uint16(3), true)
	f.Add(encodeVLen("\xff\x00", "xyz"), uint16(2), false)
	f.Add(encodeVLen(), uint16(0), true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}, uint16(65535), false)
	f.Add(append(encodeVLen("ab"), 7), uint16(1), true)
	f.Fuzz(func(t *testing.T, b []byte, n uint16, checkUTF8 bool) {
		got, err := decodeVLen(b, int(n), checkUTF8)
		if err != nil {
			return
		}
		if len(got) != int(n) {
			t.Fatalf("%d items, want %d", len(got), n)
		}
		// A successful decode consumed b exactly, so it re-encodes to b.
		if re := encodeVLen(got...); string(re) != string(b) {
			t.Fatalf("re-encoding gives %x, input %x", re, b)
		}
	})
}

// readAllStrings reads the whole of v through StringReader.
func readAllStrings(t *testing.T, v volume.Volume, box volume.Box) []string {
	t.Helper()
	sr, ok := v.(StringReader)
	if !ok {
		t.Fatalf("%s (%s) is not a StringReader", v.Info().Name, v.Info().DType)
	}
	got, err := sr.ReadStrings(context.Background(), box)
	if err != nil {
		t.Fatalf("%s: ReadStrings(%v): %v", v.Info().Name, box, err)
	}
	return got
}

// TestObjectArrays reads hand-built object arrays: ragged edge chunks,
// missing chunks, Fortran order, several codecs, v2 and v3.
func TestObjectArrays(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := store.New(store.NewFile(dir))
	cs := codec.New()
	defer cs.Close()
	put := func(key string, b []byte) {
		t.Helper()
		if err := st.WriteAll(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	compress := func(id string, b []byte) []byte {
		t.Helper()
		out, err := cs.Encode(id, 0, b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	withCRC := func(b []byte) []byte {
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}

	// v2, shape (5,), chunks (2,): the edge chunk is padded to two items as
	// zarr-python writes it, chunk 1 is missing and reads as the fill.
	put("v2/.zarray", []byte(`{"zarr_format":2,"shape":[5],"chunks":[2],"dtype":"|O","compressor":null,"fill_value":"-","order":"C","filters":[{"id":"vlen-utf8"}]}`))
	put("v2/0", encodeVLen("α", ""))
	put("v2/2", encodeVLen("end", "pad"))

	// v2 Fortran order, gzip, shape (3,4), chunks (2,3), "/" separator:
	// element (i,j) of a chunk is item i + 2*j.
	put("v2f/.zarray", []byte(`{"zarr_format":2,"shape":[3,4],"chunks":[2,3],"dtype":"|O","compressor":{"id":"gzip","level":1},"fill_value":null,"order":"F","filters":[{"id":"vlen-utf8"}],"dimension_separator":"/"}`))
	cellF := func(r0, c0 int) []byte {
		items := make([]string, 6)
		for j := 0; j < 3; j++ {
			for i := 0; i < 2; i++ {
				items[i+2*j] = string(rune('a'+r0+i)) + string(rune('0'+c0+j))
			}
		}
		return compress("gzip", encodeVLen(items...))
	}
	put("v2f/0/0", cellF(0, 0))
	put("v2f/0/1", cellF(0, 3))
	put("v2f/1/0", cellF(2, 0)) // chunk (1,1) missing: null fill reads ""

	// v2 vlen-bytes, zstd, fill 0 as zarr-python 2 writes it.
	put("v2b/.zarray", []byte(`{"zarr_format":2,"shape":[3],"chunks":[3],"dtype":"|O","compressor":{"id":"zstd","level":1},"fill_value":0,"order":"C","filters":[{"id":"vlen-bytes"}]}`))
	put("v2b/0", compress("zstd", encodeVLen("\x00\xff", "", "x")))

	// v3 string with zstd and crc32c, default chunk keys.
	put("v3s/zarr.json", []byte(`{"zarr_format":3,"node_type":"array","shape":[2,3],"data_type":"string",
		"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,2]}},
		"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},
		"fill_value":"","codecs":[{"name":"vlen-utf8","configuration":{}},{"name":"zstd","configuration":{"level":0,"checksum":false}},{"name":"crc32c"}],
		"dimension_names":["y","x"]}`))
	put("v3s/c/0/0", withCRC(compress("zstd", encodeVLen("00", "01", "10", "11"))))
	// chunk (0,1) missing.

	// v3 bytes with a base64 fill.
	put("v3b/zarr.json", []byte(`{"zarr_format":3,"node_type":"array","shape":[3],"data_type":"bytes",
		"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2]}},
		"chunk_key_encoding":{"name":"v2","configuration":{"separator":"."}},
		"fill_value":"AAE=","codecs":[{"name":"vlen-bytes"}]}`))
	put("v3b/1", encodeVLen("\x7f", ""))

	// A numeric array beside them.
	put("num/.zarray", []byte(`{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"<u1","compressor":null,"fill_value":7,"order":"C","filters":null}`))

	cases := []struct {
		key   string
		codec string
		box   volume.Box
		want  []string
	}{
		{"v2", vlenUTF8, volume.Full([]int64{5}), []string{"α", "", "-", "-", "end"}},
		{"v2", vlenUTF8, volume.NewBox([]int64{1}, []int64{3}), []string{"", "-", "-"}},
		{"v2f", vlenUTF8, volume.Full([]int64{3, 4}), []string{"a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "c0", "c1", "c2", ""}},
		{"v2f", vlenUTF8, volume.NewBox([]int64{1, 2}, []int64{2, 2}), []string{"b2", "b3", "c2", ""}},
		{"v2b", vlenBytes, volume.Full([]int64{3}), []string{"\x00\xff", "", "x"}},
		{"v3s", vlenUTF8, volume.Full([]int64{2, 3}), []string{"00", "01", "", "10", "11", ""}},
		{"v3b", vlenBytes, volume.Full([]int64{3}), []string{"\x00\x01", "\x00\x01", "\x7f"}},
	}
	for _, c := range cases {
		v := openOne(t, st, c.key)
		in := v.Info()
		if in.DType != ObjectDType || in.Metadata["object_codec"] != c.codec || in.Metadata["checksum"] != checksumNote {
			t.Errorf("%s: dtype %s, metadata %v", c.key, in.DType, in.Metadata)
		}
		if got := readAllStrings(t, v, c.box); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v: got %q, want %q", c.key, c.box, got, c.want)
		}
		err := v.ReadRegion(ctx, volume.Full(in.Shape), []byte{})
		if !errors.Is(err, ErrObjectArray) || !errors.Is(err, format.ErrNotSupported) || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "ReadStrings") {
			t.Errorf("%s: ReadRegion: %v, want ErrObjectArray naming the array and ReadStrings", c.key, err)
		}
	}
	if v := openOne(t, st, "v3s"); v.Info().Axes[0].Name != "y" || v.Info().Compression != "zstd" {
		t.Errorf("v3s: axes %v, compression %q", v.Info().Axes, v.Info().Compression)
	}

	// The whole store lists every array; only object arrays read strings.
	vs, err := Format{}.Open(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 6 {
		t.Fatalf("store lists %d arrays, want 6", len(vs))
	}
	for _, v := range vs {
		_, isSR := v.(StringReader)
		if isSR != (v.Info().DType == ObjectDType) {
			t.Errorf("%s (%s): StringReader %v", v.Info().Name, v.Info().DType, isSR)
		}
	}
	// A box outside the array is refused.
	if _, err := openOne(t, st, "v2").(StringReader).ReadStrings(ctx, volume.NewBox([]int64{3}, []int64{3})); err == nil {
		t.Error("ReadStrings past the end succeeded")
	}
}

// TestObjectArrayErrors: unreadable object layouts open (listed) but fail to
// read with ErrNotSupported, and corrupt chunks fail naming the chunk.
func TestObjectArrayErrors(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewFile(t.TempDir()))
	put := func(key, s string) {
		if err := st.WriteAll(ctx, key, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	put("pickle/.zarray", `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"|O","compressor":null,"fill_value":0,"order":"C","filters":[{"id":"pickle","protocol":4}]}`)
	put("nofilter/.zarray", `{"zarr_format":2,"shape":[2],"chunks":[2],"dtype":"|O","compressor":null,"fill_value":0,"order":"C","filters":null}`)
	put("sharded/zarr.json", `{"zarr_format":3,"node_type":"array","shape":[4],"data_type":"string",
		"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4]}},"fill_value":"",
		"codecs":[{"name":"sharding_indexed","configuration":{"chunk_shape":[2],"codecs":[{"name":"vlen-utf8"}],"index_codecs":[{"name":"bytes"}]}}]}`)
	put("mismatch/zarr.json", `{"zarr_format":3,"node_type":"array","shape":[4],"data_type":"string",
		"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4]}},"fill_value":"","codecs":[{"name":"vlen-bytes"}]}`)
	for _, k := range []string{"pickle", "nofilter", "sharded", "mismatch"} {
		v := openOne(t, st, k)
		if _, err := v.(StringReader).ReadStrings(ctx, volume.Full(v.Info().Shape)); !errors.Is(err, format.ErrNotSupported) {
			t.Errorf("%s: got %v, want ErrNotSupported", k, err)
		}
		if v.Info().Metadata["unsupported"] == nil {
			t.Errorf("%s: Metadata has no \"unsupported\" note", k)
		}
	}

	put("bad/.zarray", `{"zarr_format":2,"shape":[3],"chunks":[2],"dtype":"|O","compressor":null,"fill_value":null,"order":"C","filters":[{"id":"vlen-utf8"}]}`)
	put("bad/1", string(encodeVLen("only one")))
	v := openOne(t, st, "bad")
	_, err := v.(StringReader).ReadStrings(ctx, volume.Full([]int64{3}))
	if err == nil || !strings.Contains(err.Error(), "holds 1 items") || !strings.Contains(err.Error(), "[1]") {
		t.Errorf("corrupt chunk: got %v", err)
	}

	// Chunks whose element counts alone exceed the object chunk cap are
	// refused at open.
	put("huge/.zarray", `{"zarr_format":2,"shape":[100000000],"chunks":[100000000],"dtype":"|O","compressor":null,"fill_value":null,"order":"C","filters":[{"id":"vlen-utf8"}]}`)
	if _, err := (Format{}).Open(ctx, st, "huge"); err == nil {
		t.Error("huge object chunks opened")
	}
}

// TestObjectArraysZarrPython writes vlen-utf8 and vlen-bytes arrays with
// zarr-python 2 (unicode, empty strings, ragged edges, several and missing
// chunks, both orders, several compressors) and reads them back.
func TestObjectArraysZarrPython(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := `
import sys, json, base64, zarr, numcodecs, numpy as np
root = sys.argv[1]
words = ["", "a", "ünïcødé", "✓✓", "日本語", "x" * 300, "tab\there", "", "emoji 🧪", "z"]
out = []
def enc(v):
    if v is None:
        v = b""
    if isinstance(v, str):
        v = v.encode("utf-8")
    if not isinstance(v, bytes):
        v = str(v).encode("utf-8")
    return base64.b64encode(v).decode()
specs = [
    ("u1", (11,), (4,), "C", numcodecs.Blosc(), numcodecs.VLenUTF8(), "0", [np.s_[0:4], np.s_[8:11]]),
    ("u2", (7, 5), (3, 2), "F", numcodecs.Zstd(level=1), numcodecs.VLenUTF8(), "", [np.s_[0:3, :], np.s_[6:7, 4:5]]),
    ("u3", (5, 4, 3), (2, 3, 2), "C", numcodecs.GZip(level=1), numcodecs.VLenUTF8(), None, [np.s_[:, 0:3, :], np.s_[4:5, 3:4, 2:3]]),
    ("u4", (6, 6), (6, 6), "C", None, numcodecs.VLenUTF8(), "fill", [np.s_[:, :]]),
    ("b1", (9,), (4,), "C", numcodecs.LZ4(), numcodecs.VLenBytes(), 0, [np.s_[0:4], np.s_[8:9]]),
]
rng = np.random.default_rng(3)
for name, shape, chunks, order, comp, oc, fill, sels in specs:
    z = zarr.open(root + "/" + name, mode="w", shape=shape, chunks=chunks, dtype=object, object_codec=oc,
                  order=order, compressor=comp, fill_value=fill)
    for sel in sels:
        part = z[sel]
        vals = np.empty(part.shape, dtype=object)
        for i in np.ndindex(part.shape):
            w = words[int(rng.integers(0, len(words)))]
            vals[i] = w.encode("utf-8") if isinstance(oc, numcodecs.VLenBytes) else w
        z[sel] = vals
    a = zarr.open(root + "/" + name, mode="r")[...]
    out.append({"name": name, "shape": list(a.shape), "values": [enc(v) for v in a.reshape(-1)]})
print(json.dumps(out))
`
	cmd := exec.Command(py, "-c", script, dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("zarr-python: %v\n%s", err, stderr.String())
	}
	var arrays []struct {
		Name   string
		Shape  []int64
		Values []string
	}
	if err := json.Unmarshal(res, &arrays); err != nil {
		t.Fatalf("zarr-python output: %v\n%s", err, res)
	}
	if len(arrays) != 5 {
		t.Fatalf("zarr-python wrote %d arrays, want 5", len(arrays))
	}
	st := store.New(store.NewFile(dir))
	for _, a := range arrays {
		want := make([]string, len(a.Values))
		for i, s := range a.Values {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			want[i] = string(b)
		}
		v := openOne(t, st, a.Name)
		if !reflect.DeepEqual(v.Info().Shape, a.Shape) {
			t.Errorf("%s: shape %v, zarr-python %v", a.Name, v.Info().Shape, a.Shape)
			continue
		}
		full := volume.Full(a.Shape)
		if got := readAllStrings(t, v, full); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q\nzarr-python %q", a.Name, got, want)
		}
		// An interior box crossing chunk edges, checked against the full read.
		box := volume.Box{Start: make([]int64, len(a.Shape)), Stop: make([]int64, len(a.Shape))}
		for i, s := range a.Shape {
			box.Start[i], box.Stop[i] = min(1, s), max(s-1, min(1, s))
		}
		got := readAllStrings(t, v, box)
		var sub []string
		idx := make([]int64, len(a.Shape))
		for k := range want {
			in := true
			r := int64(k)
			for i := len(a.Shape) - 1; i >= 0; i-- {
				idx[i] = r % a.Shape[i]
				r /= a.Shape[i]
				in = in && idx[i] >= box.Start[i] && idx[i] < box.Stop[i]
			}
			if in {
				sub = append(sub, want[k])
			}
		}
		if !reflect.DeepEqual(got, sub) && !(len(got) == 0 && len(sub) == 0) {
			t.Errorf("%s %v: got %q, want %q", a.Name, box, got, sub)
		}
	}
	vs, err := Format{}.Open(ctx, st, "")
	if err != nil || len(vs) != 5 {
		t.Fatalf("whole store: %d arrays, %v", len(vs), err)
	}
}
