package store_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/store/storetest"
)

// zipWith packs objs with archive/zip, in key order, every entry with method.
func zipWith(t testing.TB, objs map[string][]byte, method uint16) []byte {
	t.Helper()
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, k := range keys {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: k, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(objs[k])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zEntry is one entry for zipRaw, with the fields a hostile archive lies about.
type zEntry struct {
	name      string
	data      []byte
	method    uint16
	flags     uint16
	localName *string // name in the local header, when different
	localXtra int     // bytes of padding extra field in the local header only
	crc       *uint32
	usize     *int64 // declared uncompressed size
	hdrOff    *int64 // local header offset in the central directory
}

// zOpts are archive-level choices and lies for zipRaw.
type zOpts struct {
	zip64   bool    // Zip64 extra fields, end record and locator for everything
	count   *uint64 // entry count in the end record
	dirOff  *int64
	dirSize *int64
	comment string
}

func ptr[T any](v T) *T { return &v }

// zipRaw writes a zip archive by hand, so that tests can force Zip64 and
// produce archives no well-behaved writer would.
func zipRaw(entries []zEntry, o zOpts) []byte {
	var out bytes.Buffer
	le := binary.LittleEndian
	w := func(vs ...any) {
		for _, v := range vs {
			binary.Write(&out, le, v)
		}
	}
	var dir bytes.Buffer
	for _, e := range entries {
		comp := e.data
		if e.method == 8 {
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.BestSpeed)
			fw.Write(e.data)
			fw.Close()
			comp = b.Bytes()
		}
		crc := crc32.ChecksumIEEE(e.data)
		if e.crc != nil {
			crc = *e.crc
		}
		usize := int64(len(e.data))
		if e.usize != nil {
			usize = *e.usize
		}
		off := int64(out.Len())
		if e.hdrOff != nil {
			off = *e.hdrOff
		}
		lname := e.name
		if e.localName != nil {
			lname = *e.localName
		}
		var lx, cx []byte
		c32, u32, o32 := uint32(len(comp)), uint32(usize), uint32(off)
		if o.zip64 {
			lx = le.AppendUint16(le.AppendUint16(nil, 1), 16)
			lx = le.AppendUint64(le.AppendUint64(lx, uint64(usize)), uint64(len(comp)))
			cx = le.AppendUint16(le.AppendUint16(nil, 1), 24)
			cx = le.AppendUint64(le.AppendUint64(le.AppendUint64(cx, uint64(usize)), uint64(len(comp))), uint64(off))
			c32, u32, o32 = 0xffffffff, 0xffffffff, 0xffffffff
		}
		if e.localXtra > 0 {
			lx = le.AppendUint16(le.AppendUint16(lx, 0xcafe), uint16(e.localXtra))
			lx = append(lx, make([]byte, e.localXtra)...)
		}
		w(uint32(0x04034b50), uint16(45), e.flags, e.method, uint16(0x6000), uint16(0x5a21), crc, c32, u32, uint16(len(lname)), uint16(len(lx)))
		out.WriteString(lname)
		out.Write(lx)
		out.Write(comp)
		dw := func(vs ...any) {
			for _, v := range vs {
				binary.Write(&dir, le, v)
			}
		}
		dw(uint32(0x02014b50), uint16(45), uint16(45), e.flags, e.method, uint16(0x6000), uint16(0x5a21), crc, c32, u32,
			uint16(len(e.name)), uint16(len(cx)), uint16(0), uint16(0), uint16(0), uint32(0), o32)
		dir.WriteString(e.name)
		dir.Write(cx)
	}
	dirOff, dirSize, count := int64(out.Len()), int64(dir.Len()), uint64(len(entries))
	out.Write(dir.Bytes())
	if o.dirOff != nil {
		dirOff = *o.dirOff
	}
	if o.dirSize != nil {
		dirSize = *o.dirSize
	}
	if o.count != nil {
		count = *o.count
	}
	if o.zip64 {
		rec := int64(out.Len())
		w(uint32(0x06064b50), uint64(44), uint16(45), uint16(45), uint32(0), uint32(0), count, count, uint64(dirSize), uint64(dirOff))
		w(uint32(0x07064b50), uint32(0), uint64(rec), uint32(1))
		w(uint32(0x06054b50), uint16(0), uint16(0), uint16(0xffff), uint16(0xffff), uint32(0xffffffff), uint32(0xffffffff))
	} else {
		w(uint32(0x06054b50), uint16(0), uint16(0), uint16(count), uint16(count), uint32(dirSize), uint32(dirOff))
	}
	w(uint16(len(o.comment)))
	out.WriteString(o.comment)
	return out.Bytes()
}

// fixtureEntries turns objects into zipRaw entries, in key order, with
// alternating methods.
func fixtureEntries(objs map[string][]byte) []zEntry {
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	es := make([]zEntry, len(keys))
	for i, k := range keys {
		es[i] = zEntry{name: k, data: objs[k], method: uint16(8 * (i % 2))}
	}
	return es
}

// zipOnDisk writes archive to a temporary directory and opens it as a zip store.
func zipOnDisk(t testing.TB, archive []byte) (*store.Store, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.zip"), archive, 0o644); err != nil {
		t.Fatal(err)
	}
	return store.NewZip(context.Background(), store.New(store.NewFile(dir)), "a.zip")
}

// TestZipRawIsValid checks the hand-written archives against archive/zip, so
// the Zip64 conformance run below tests the driver, not the builder.
func TestZipRawIsValid(t *testing.T) {
	objs := map[string][]byte{"a": []byte("hello"), "b/c": bytes.Repeat([]byte("xy"), 1000), "e": {}}
	for _, z64 := range []bool{false, true} {
		b := zipRaw(fixtureEntries(objs), zOpts{zip64: z64, comment: "c"})
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("zip64=%v: archive/zip: %v", z64, err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, objs[f.Name]) {
				t.Errorf("zip64=%v: archive/zip reads %q: %v, equal %v", z64, f.Name, err, bytes.Equal(got, objs[f.Name]))
			}
		}
	}
}

func TestZipDriverConformance(t *testing.T) {
	cases := []struct {
		name  string
		build func(t testing.TB, objs map[string][]byte) []byte
	}{
		{"stored", func(t testing.TB, objs map[string][]byte) []byte { return zipWith(t, objs, zip.Store) }},
		{"deflate", func(t testing.TB, objs map[string][]byte) []byte { return zipWith(t, objs, zip.Deflate) }},
		{"zip64-mixed", func(t testing.TB, objs map[string][]byte) []byte {
			return zipRaw(fixtureEntries(objs), zOpts{zip64: true, comment: "RFC-9 style comment"})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
				st, err := zipOnDisk(t, c.build(t, objs))
				if err != nil {
					t.Fatal(err)
				}
				return st
			}, storetest.Options{})
		})
	}
	t.Run("remote-stored", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
			srv := fixtureServer(t, map[string][]byte{"a.ozx": zipWith(t, objs, zip.Store)}, nil)
			d, err := store.NewHTTP(srv.Client(), srv.URL+"/root")
			if err != nil {
				t.Fatal(err)
			}
			st, err := store.NewZip(context.Background(), store.New(d), "a.ozx")
			if err != nil {
				t.Fatal(err)
			}
			return st
		}, storetest.Options{})
	})
}

// TestZipRemoteByRanges shows a remote archive is read by ranges: a few
// requests for the directory, then one per entry, and never the whole object.
func TestZipRemoteByRanges(t *testing.T) {
	objs := map[string][]byte{"zarr.json": []byte(`{"zarr_format":3,"node_type":"group"}`)}
	for i := range 40 {
		objs[fmt.Sprintf("s0/c/%d/0/0", i)] = bytes.Repeat([]byte{byte(i)}, 4000+i)
	}
	es := fixtureEntries(objs)
	for i := range es {
		es[i].method = 0
	}
	es[0].method = 8 // one deflated entry
	archive := zipRaw(es, zOpts{})
	var requests, whole atomic.Int64
	srv := fixtureServer(t, map[string][]byte{"img.ozx": archive}, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		requests.Add(1)
		if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
			whole.Add(1)
		}
		return false
	})
	d, err := store.NewHTTP(srv.Client(), srv.URL+"/root")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.NewZip(ctx, store.New(d), "img.ozx")
	if err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n > 3 {
		t.Errorf("opening the archive took %d requests, want at most 3 (stat, tail, directory)", n)
	}
	for k, want := range objs {
		before := requests.Load()
		got, err := st.ReadAll(ctx, k, 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadAll(%q): %v, equal %v", k, err, bytes.Equal(got, want))
		}
		if n := requests.Load() - before; n != 1 {
			t.Errorf("ReadAll(%q) took %d requests, want 1", k, n)
		}
	}
	// Once the data offset is known, a range inside an entry is one request too.
	before := requests.Load()
	p := make([]byte, 10)
	if err := st.ReadAt(ctx, "s0/c/7/0/0", p, 3000); err != nil || !bytes.Equal(p, objs["s0/c/7/0/0"][3000:3010]) {
		t.Errorf("ReadAt: %v %v", err, p)
	}
	if n := requests.Load() - before; n != 1 {
		t.Errorf("ReadAt took %d requests, want 1", n)
	}
	if whole.Load() != 0 {
		t.Errorf("%d requests downloaded the whole archive", whole.Load())
	}
}

// TestZipLocalHeaderFallback: a local header with a longer extra field than
// the first fetch covers, and reads deep into an entry before its header is
// known, still find the data.
func TestZipLocalHeaderFallback(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 000 bytes
	archive := zipRaw([]zEntry{
		{name: "pad", data: []byte("p"), localXtra: 3000},
		{name: "deep", data: data},
		{name: "deep-deflate", data: data, method: 8, localXtra: 2000},
	}, zOpts{})
	st, err := zipOnDisk(t, archive)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := st.ReadAll(ctx, "pad", 10); err != nil || string(got) != "p" {
		t.Errorf("pad: %q %v", got, err)
	}
	for _, k := range []string{"deep", "deep-deflate"} {
		p := make([]byte, 100)
		if err := st.ReadAt(ctx, k, p, 600000); err != nil || !bytes.Equal(p, data[600000:600100]) {
			t.Errorf("%s: ReadAt deep before the header is known: %v", k, err)
		}
		if got, err := st.ReadAll(ctx, k, 1<<20); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: ReadAll: %v", k, err)
		}
	}
}

func TestZipHostile(t *testing.T) {
	ok := []byte("fine data")
	good := zEntry{name: "good", data: ok}
	type check func(t *testing.T, st *store.Store, err error)
	openFails := func(target error, substr string) check {
		return func(t *testing.T, st *store.Store, err error) {
			if err == nil || !errors.Is(err, target) || !strings.Contains(err.Error(), substr) {
				t.Fatalf("open: got %v, want an error wrapping %v containing %q", err, target, substr)
			}
		}
	}
	// readFails: the store opens, key is listed, reading it fails naming it.
	readFails := func(key string, target error, substr string) check {
		return func(t *testing.T, st *store.Store, err error) {
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if _, err := st.Stat(context.Background(), key); err != nil {
				t.Errorf("Stat(%q): %v", key, err)
			}
			_, err = st.ReadAll(context.Background(), key, 1<<30)
			if err == nil || !errors.Is(err, target) || !strings.Contains(err.Error(), substr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
				t.Errorf("ReadAll(%q): got %v, want an error wrapping %v containing %q and naming the entry", key, err, target, substr)
			}
			if got, err := st.ReadAll(context.Background(), "good", 100); err != nil || !bytes.Equal(got, ok) {
				t.Errorf("the sound entry: %q %v", got, err)
			}
		}
	}
	keysAre := func(want ...string) check {
		return func(t *testing.T, st *store.Store, err error) {
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			var got []string
			if err := st.List(context.Background(), "", "", func(oi store.ObjectInfo) error {
				got = append(got, oi.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("keys %q, want %q", got, want)
			}
		}
	}
	valid := zipRaw([]zEntry{good}, zOpts{})
	cases := []struct {
		name    string
		archive []byte
		check   check
	}{
		{"empty-file", nil, openFails(store.ErrBadZip, "too small")},
		{"not-a-zip", bytes.Repeat([]byte("not a zip "), 100), openFails(store.ErrBadZip, "no end of central directory")},
		{"truncated", valid[:len(valid)-5], openFails(store.ErrBadZip, "no end of central directory")},
		{"absurd-count", zipRaw([]zEntry{good}, zOpts{count: ptr[uint64](60000)}), openFails(store.ErrBadZip, "cannot fit")},
		{"absurd-count-zip64", zipRaw([]zEntry{good}, zOpts{zip64: true, count: ptr[uint64](1 << 60)}), openFails(store.ErrBadZip, "cannot fit")},
		{"count-mismatch", zipRaw([]zEntry{good, {name: "b", data: ok}}, zOpts{count: ptr[uint64](1)}), openFails(store.ErrBadZip, "holds 2 entries")},
		{"dir-beyond-end", zipRaw([]zEntry{good}, zOpts{dirOff: ptr[int64](1 << 30)}), openFails(store.ErrBadZip, "overlaps the end records")},
		{"dir-beyond-end-zip64", zipRaw([]zEntry{good}, zOpts{zip64: true, dirSize: ptr[int64](1 << 40)}), openFails(store.ErrBadZip, "beyond")},
		{"dir-truncated", zipRaw([]zEntry{good, good}, zOpts{dirSize: ptr[int64](95)}), openFails(store.ErrBadZip, "truncated")},
		{"unsafe-names", zipRaw([]zEntry{
			{name: "../evil", data: ok}, {name: "/abs", data: ok}, {name: "a/../../x", data: ok}, {name: "C:/x", data: ok},
			{name: `up\..\..\x`, data: ok}, {name: "bad\xffutf8", data: ok}, {name: "dir/"}, {name: `win\path`, data: ok}, good,
		}, zOpts{}), keysAre("good", "win/path")},
		{"shared-local-header", zipRaw([]zEntry{{name: "x", data: ok}, {name: "y", data: ok, hdrOff: ptr[int64](0)}, good}, zOpts{}), readFails("y", store.ErrBadZip, "shared")},
		{"offset-out-of-range", zipRaw([]zEntry{{name: "x", data: ok, hdrOff: ptr[int64](1 << 20)}, good}, zOpts{}), readFails("x", store.ErrBadZip, "past the central directory")},
		{"overlapping", zipRaw([]zEntry{{name: "x", data: ok}, {name: "y", data: ok, hdrOff: ptr[int64](10)}, good}, zOpts{}), readFails("x", store.ErrBadZip, "overlaps")},
		{"encrypted", zipRaw([]zEntry{{name: "x", data: ok, flags: 1}, good}, zOpts{}), readFails("x", store.ErrNotSupported, "encrypted")},
		{"method-bzip2", zipRaw([]zEntry{{name: "x", data: ok, method: 12}, good}, zOpts{}), readFails("x", store.ErrNotSupported, "compression method 12")},
		{"stored-size-lie", zipRaw([]zEntry{{name: "x", data: ok, usize: ptr[int64](5)}, good}, zOpts{}), readFails("x", store.ErrBadZip, "stored entry")},
		{"deflate-bomb", zipRaw([]zEntry{{name: "x", data: make([]byte, 100000), method: 8, usize: ptr[int64](1000)}, good}, zOpts{}), readFails("x", store.ErrBadZip, "past its declared size")},
		{"deflate-absurd-size", zipRaw([]zEntry{{name: "x", data: ok, method: 8, usize: ptr[int64](1 << 40)}, good}, zOpts{zip64: true}), readFails("x", store.ErrBadZip, "cannot expand")},
		{"deflate-short", zipRaw([]zEntry{{name: "x", data: ok, method: 8, usize: ptr[int64](20)}, good}, zOpts{}), readFails("x", io.ErrUnexpectedEOF, "short")},
		{"local-name-differs", zipRaw([]zEntry{{name: "x", data: ok, localName: ptr("y")}, good}, zOpts{}), readFails("x", store.ErrBadZip, `names "y"`)},
		{"local-name-length-differs", zipRaw([]zEntry{{name: "x", data: ok, localName: ptr("longer")}, good}, zOpts{}), readFails("x", store.ErrBadZip, "another entry")},
		{"crc-mismatch", zipRaw([]zEntry{{name: "x", data: ok, crc: ptr[uint32](1)}, good}, zOpts{}), readFails("x", store.ErrBadZip, "CRC-32")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := zipOnDisk(t, c.archive)
			c.check(t, st, err)
		})
	}

	// The last of two same-named entries is the one served.
	st, err := zipOnDisk(t, zipRaw([]zEntry{{name: "k", data: []byte("old")}, {name: "k", data: []byte("new")}}, zOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.ReadAll(context.Background(), "k", 10); err != nil || string(got) != "new" {
		t.Errorf("duplicate name: %q %v, want the last entry", got, err)
	}
	if n := st.Driver().(*store.ZipDriver).Skipped(); n != 1 {
		t.Errorf("Skipped() = %d, want 1", n)
	}
	// A partial read of an entry with a wrong CRC is not checked (it cannot be).
	st, err = zipOnDisk(t, zipRaw([]zEntry{{name: "x", data: ok, crc: ptr[uint32](1)}}, zOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4)
	if err := st.ReadAt(context.Background(), "x", p, 1); err != nil || string(p) != "ine " {
		t.Errorf("partial read: %q %v", p, err)
	}
}

// TestZipDirectoryCap: a directory larger than MaxZipDirectory is refused
// before it is read (the archive is a sparse file, so the test stays small).
func TestZipDirectoryCap(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "big.zip"))
	if err != nil {
		t.Fatal(err)
	}
	tail := zipRaw(nil, zOpts{zip64: true, dirOff: ptr[int64](0), dirSize: ptr[int64](store.MaxZipDirectory + 1), count: ptr[uint64](1)})
	// The Zip64 end record sits at offset 0 of tail; move it to the archive's end.
	size := int64(store.MaxZipDirectory + 4096)
	binary.LittleEndian.PutUint64(tail[56+8:], uint64(size-int64(len(tail))))
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = store.NewZip(context.Background(), store.New(store.NewFile(dir)), "big.zip")
	if !errors.Is(err, store.ErrBadZip) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("got %v, want the directory size limit", err)
	}
}

func FuzzZipArchive(f *testing.F) {
	objs := map[string][]byte{"zarr.json": []byte(`{"zarr_format":3}`), "c/0/0": bytes.Repeat([]byte("ab"), 300), "x": {}}
	f.Add(zipWith(f, objs, zip.Store))
	f.Add(zipWith(f, objs, zip.Deflate))
	f.Add(zipRaw(fixtureEntries(objs), zOpts{zip64: true}))
	f.Add(zipRaw(fixtureEntries(objs), zOpts{comment: "comment"}))
	f.Add(zipRaw([]zEntry{{name: "x", data: []byte("abc")}, {name: "y", data: []byte("abc"), hdrOff: ptr[int64](0)}}, zOpts{}))
	f.Add(zipRaw([]zEntry{{name: "x", data: make([]byte, 5000), method: 8, usize: ptr[int64](10)}}, zOpts{zip64: true}))
	f.Add(zipRaw(nil, zOpts{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		d := store.NewMem()
		if err := d.Put("a.zip", b); err != nil {
			t.Fatal(err)
		}
		st, err := store.NewZip(ctx, store.New(d), "a.zip")
		if err != nil {
			return
		}
		n := 0
		err = st.List(ctx, "", "", func(oi store.ObjectInfo) error {
			if c, err := store.CleanKey(oi.Key); err != nil || c != oi.Key || oi.Key == "" {
				t.Fatalf("unsafe key %q", oi.Key)
			}
			if oi.Size < 0 {
				t.Fatalf("%q: negative size %d", oi.Key, oi.Size)
			}
			if n++; n > 50 {
				return nil
			}
			if got, err := st.ReadAll(ctx, oi.Key, 64<<10); err == nil && int64(len(got)) != oi.Size {
				t.Fatalf("%q: read %d bytes, size %d", oi.Key, len(got), oi.Size)
			}
			if oi.Size > 2 && oi.Size < 1<<20 {
				p := make([]byte, 2)
				st.ReadAt(ctx, oi.Key, p, oi.Size/2)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
