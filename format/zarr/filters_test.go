package zarr

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// TestFilters decodes hand-encoded chunks whose expected values are
// worked out independently of the filter code.
func TestFilters(t *testing.T) {
	le16 := func(v ...int16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
		}
		return b
	}
	be16 := func(v ...int16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.BigEndian.PutUint16(b[2*i:], uint16(x))
		}
		return b
	}
	le32 := func(v ...int32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	}
	f32 := func(v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	cases := []struct {
		name, dtype, filters string
		stored, want         []byte
	}{
		{"delta", "<i2", `[{"id":"delta","dtype":"<i2"}]`, le16(5, 1, -2, 10), le16(5, 6, 4, 14)},
		{"delta-wrap", "<i2", `[{"id":"delta","dtype":"<i2"}]`, le16(32767, 1, 0, 0), le16(32767, -32768, -32768, -32768)},
		{"delta-astype", "<i4", `[{"id":"delta","dtype":"<i4","astype":"<i2"}]`, le16(1000, 1000, -3, 0), le32(1000, 2000, 1997, 1997)},
		{"delta-big", ">i2", `[{"id":"delta","dtype":">i2"}]`, be16(1, 2, 3, 4), le16(1, 3, 6, 10)},
		{"fso", "<f8", `[{"id":"fixedscaleoffset","offset":1000,"scale":10,"dtype":"<f8","astype":"|u1"}]`, []byte{0, 5, 12, 255}, f64(1000, 1000.5, 1001.2, 1025.5)},
		{"fso-int", "<i2", `[{"id":"fixedscaleoffset","offset":-1,"scale":2,"dtype":"<i2","astype":"<i2"}]`, le16(3, -3, 8, 0), le16(0, -2, 3, -1)},
		{"astype", "<f8", `[{"id":"astype","encode_dtype":"<f4","decode_dtype":"<f8"}]`, f32(0.5, -2, 1e10, 3.25), f64(0.5, -2, 1e10, 3.25)},
		{"astype-trunc", "<i2", `[{"id":"astype","encode_dtype":"<f8","decode_dtype":"<i2"}]`, f64(1.9, -1.9, 7, -0.5), le16(1, -1, 7, 0)},
		{"quantize", "<f8", `[{"id":"quantize","digits":1,"dtype":"<f8","astype":"<f4"}]`, f32(0.125, 1.5, -3, 8), f64(0.125, 1.5, -3, 8)},
		// Applied in reverse: delta first, then astype back to int32.
		{"chain", "<i4", `[{"id":"astype","encode_dtype":"<i2","decode_dtype":"<i4"},{"id":"delta","dtype":"<i2"}]`, le16(-5, 2, 2, 2), le32(-5, -3, -1, 1)},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := store.New(store.NewFile(t.TempDir()))
			st.WriteAll(ctx, "a/.zarray", []byte(fmt.Sprintf(`{"zarr_format":2,"shape":[4],"chunks":[4],"dtype":%q,"compressor":null,"fill_value":0,"order":"C","filters":%s}`, c.dtype, c.filters)))
			st.WriteAll(ctx, "a/0", c.stored)
			v := openOne(t, st, "a")
			buf := make([]byte, v.Info().NumBytes())
			if err := v.ReadRegion(ctx, volume.Full(v.Info().Shape), buf); err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(buf) != hex.EncodeToString(c.want) {
				t.Errorf("got %x, want %x", buf, c.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	cases := []struct {
		filters     string
		unsupported bool
	}{
		{`[{"id":"shuffle","elementsize":2}]`, true},
		{`[{"id":"delta","dtype":"<f2"}]`, true},
		{`[{"id":"delta","dtype":"<i4"}]`, true}, // does not chain to the <i2 array
		{`[{"id":"delta"}]`, false},
		{`[{"id":"fixedscaleoffset","dtype":"<i2","offset":0,"scale":0}]`, false},
		{`[{"id":"fixedscaleoffset","dtype":"<i2","offset":"x","scale":1}]`, false},
		{`[{"id":"astype","encode_dtype":"<i2"}]`, false},
		{`{"id":"delta"}`, false},
		{`[{"id":"delta","dtype":"xi2"}]`, false},
	}
	for _, c := range cases {
		_, err := parseFilters([]byte(c.filters), 2)
		if err == nil || errors.Is(err, format.ErrNotSupported) != c.unsupported {
			t.Errorf("%s: got %v, want unsupported=%v", c.filters, err, c.unsupported)
		}
	}
}

// TestFiltersZarrPython writes arrays with numcodecs filters and fixed-size
// strings with zarr-python and reads them here.
func TestFiltersZarrPython(t *testing.T) {
	py := python(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := `
import sys, hashlib, zarr, numcodecs, numpy as np
from numcodecs import Delta, FixedScaleOffset, AsType, Quantize, Zstd, Zlib
root = sys.argv[1]
rng = np.random.default_rng(7)
def out(name, a, dt, shape):
    print(name, dt, ",".join(map(str, shape)), hashlib.sha256(a.tobytes()).hexdigest())
def num(name, x, filters, comp, order="C", chunks=(5, 7)):
    z = zarr.open(root + "/" + name, mode="w", shape=x.shape, chunks=chunks, dtype=x.dtype, order=order,
                  compressor=comp, filters=filters)
    z[...] = x
    a = np.ascontiguousarray(zarr.open(root + "/" + name, mode="r")[...])
    le = a.astype(a.dtype.newbyteorder("<"))
    out(name, le, le.dtype.name, a.shape)
ints = rng.integers(-3000, 3000, size=(12, 15))
num("delta", ints.astype("<i4"), [Delta(dtype="<i4", astype="<i2")], Zstd(level=1))
num("deltabig", ints.astype(">i2"), [Delta(dtype=">i2")], None, order="F")
num("deltau1", (ints % 256).astype("|u1"), [Delta(dtype="|u1")], Zlib(level=1))
fl = 1000 + rng.random((12, 15)) * 100
num("fso", fl, [FixedScaleOffset(offset=1000, scale=10, dtype="<f8", astype="<u2")], Zstd(level=1))
num("fso32", fl.astype("<f4"), [FixedScaleOffset(offset=1000.5, scale=3, dtype="<f4", astype="<i2")], None)
num("astype", fl, [AsType(encode_dtype="<f4", decode_dtype="<f8")], Zlib(level=1))
num("quantize", fl, [Quantize(digits=2, dtype="<f8", astype="<f4")], None)
num("chain", fl, [Quantize(digits=1, dtype="<f8"), FixedScaleOffset(offset=1000, scale=10, dtype="<f8", astype="<i4"), Delta(dtype="<i4", astype="<i2")], Zstd(level=1), order="F")
def strs(name, x, comp, chunks):
    z = zarr.open(root + "/" + name, mode="w", shape=x.shape, chunks=chunks, dtype=x.dtype, compressor=comp)
    z[:3] = x[:3]  # the last row reads as the default fill, "0"
    a = np.ascontiguousarray(zarr.open(root + "/" + name, mode="r")[...])
    le = a.astype(a.dtype.newbyteorder("<"))
    out(name, le, str(le.dtype), a.shape)
words = np.array([["", "a", "bc", "déf", "日本語", "wxyz"][i % 6] for i in range(20)]).reshape(4, 5)
strs("S5", np.char.encode(words, "utf-8").astype("|S9"), Zlib(level=1), (3, 2))
strs("U4", words.astype("<U4"), Zstd(level=1), (3, 2))
strs("U3be", words.astype(">U3"), None, (4, 5))
`
	outb, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("zarr-python: %v\n%s", err, outb)
	}
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	if len(lines) != 11 {
		t.Fatalf("zarr-python printed %d lines, want 11:\n%s", len(lines), outb)
	}
	st := store.New(store.NewFile(dir))
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("python output %q", line)
		}
		name, dt, shape, sum := f[0], f[1], f[2], f[3]
		t.Run(name, func(t *testing.T) {
			v := openOne(t, st, name)
			in := v.Info()
			if got := strings.Trim(strings.ReplaceAll(fmt.Sprint(in.Shape), " ", ","), "[]"); got != shape || string(in.DType) != dt {
				t.Fatalf("%v %s, zarr-python says %s %s", in.Shape, in.DType, shape, dt)
			}
			buf := make([]byte, in.NumBytes())
			if err := v.ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(buf)
			if got := hex.EncodeToString(h[:]); got != sum {
				t.Errorf("sha256 %s, zarr-python says %s", got, sum)
			}
			volumetest.Run(t, v, buf, 0)
		})
	}
}

func TestFilterChunkCap(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewFile(t.TempDir()))
	// 512 MiB of uint8 cells is allowed, but stored as float64 it is 4 GiB.
	st.WriteAll(ctx, "a/.zarray", []byte(`{"zarr_format":2,"shape":[536870912],"chunks":[536870912],"dtype":"|u1","compressor":null,"fill_value":0,"order":"C","filters":[{"id":"astype","encode_dtype":"<f8","decode_dtype":"|u1"}]}`))
	if _, err := (Format{}).Open(ctx, st, "a"); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("got %v, want a chunk size error", err)
	}
}
