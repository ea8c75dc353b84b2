// Package storetest is the conformance suite every store.Driver must pass, in
// the manner of go-cloud's drivertest: the caller loads a fixed set of objects
// into its backend and hands back a store; the suite checks the contract of
// store.Driver through the portable store.Store.
package storetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

// Options declares what the driver under test can do.
type Options struct {
	// NoList is set for drivers without a listing API (plain HTTP): List must
	// fail with an error wrapping store.ErrNotSupported.
	NoList bool
	// CanWrite is set for drivers implementing store.WriterDriver; the suite
	// then checks atomic writer semantics.
	CanWrite bool
	// ResponseInfo is set for drivers whose ReadRange readers implement
	// store.InfoReader; the suite then checks that the size and ETag they
	// report are the object's (the ETag as Stat gives it).
	ResponseInfo bool
}

// BigSize is the size of the fixture's large object, big enough to span many
// network reads and several HTTP/2 frames.
const BigSize = 3<<20 + 4097

// ManyCount is the number of objects under "many/", so a backend paging its
// listings at a few keys per page must follow continuation tokens.
const ManyCount = 23

// Fixture returns the objects every driver is loaded with: keys with spaces
// (also leading ones, as in the EPFL links), nested directories, characters
// that need escaping in URLs, a 0-byte object, a BigSize object and a
// non-ASCII name. Each call returns a fresh map.
func Fixture() map[string][]byte {
	m := map[string][]byte{
		"hello.txt":                   []byte("hello, world\n"),
		"empty.bin":                   {},
		"big.bin":                     pseudoRandom(BigSize, 1),
		"a/b/c.bin":                   pseudoRandom(1000, 2),
		"a/b/d.bin":                   pseudoRandom(10, 3),
		"a/e.txt":                     []byte("e"),
		"a/ba.txt":                    []byte("sibling of a/b/ by string prefix"),
		"µ.txt":                       []byte("micro\n"),
		"with space/file name.tif":    pseudoRandom(300, 4),
		" ElectronMicroscopy_H/v.tif": pseudoRandom(77, 5),
		"odd/100% a+b=c&d;e,f@g$.txt": []byte("odd characters"),
		"odd/q?x#y.txt":               []byte("query and fragment characters"),
		"odd/tilde~'(paren)!*quo.txt": []byte("sub-delims"),
	}
	for i := range ManyCount {
		m[fmt.Sprintf("many/k%02d", i)] = pseudoRandom(i, uint64(100+i))
	}
	return m
}

func pseudoRandom(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Run runs the suite. newStore receives the fixture and must return a store
// whose root holds exactly those objects; it is called once per subtest that
// needs a pristine store (writers), otherwise once.
func Run(t *testing.T, newStore func(t *testing.T, objects map[string][]byte) *store.Store, opts Options) {
	t.Helper()
	fx := Fixture()
	st := newStore(t, fx)

	t.Run("Stat", func(t *testing.T) { testStat(t, st, fx) })
	t.Run("StatMissing", func(t *testing.T) { testMissing(t, st) })
	t.Run("ReadRange", func(t *testing.T) { testReadRange(t, st, fx) })
	t.Run("ReadPastEnd", func(t *testing.T) { testPastEnd(t, st, fx) })
	t.Run("ReadAll", func(t *testing.T) { testReadAll(t, st, fx) })
	if opts.ResponseInfo {
		t.Run("ResponseInfo", func(t *testing.T) { testResponseInfo(t, st, fx) })
	}
	t.Run("ConcurrentReads", func(t *testing.T) { testConcurrent(t, st, fx) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, st, opts) })
	t.Run("UnsafeKeys", func(t *testing.T) { testUnsafe(t, st) })
	if opts.NoList {
		t.Run("ListNotSupported", func(t *testing.T) {
			err := st.List(context.Background(), "", "", func(store.ObjectInfo) error { return nil })
			if !errors.Is(err, store.ErrNotSupported) {
				t.Fatalf("List on a no-list driver: got %v, want ErrNotSupported", err)
			}
		})
	} else {
		t.Run("List", func(t *testing.T) { testList(t, st, fx) })
	}
	if opts.CanWrite {
		t.Run("Writer", func(t *testing.T) { testWriter(t, newStore(t, Fixture())) })
	} else {
		t.Run("NoWriter", func(t *testing.T) {
			if _, err := st.NewWriter(context.Background(), "new.bin"); !errors.Is(err, store.ErrNotSupported) {
				t.Fatalf("NewWriter on a read-only driver: got %v, want ErrNotSupported", err)
			}
		})
	}
}

func sortedKeys(m map[string][]byte) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func testStat(t *testing.T, st *store.Store, fx map[string][]byte) {
	ctx := context.Background()
	for _, k := range sortedKeys(fx) {
		want := fx[k]
		oi, err := st.Stat(ctx, k)
		if err != nil {
			t.Errorf("Stat(%q): %v", k, err)
			continue
		}
		if oi.Size != int64(len(want)) {
			t.Errorf("Stat(%q).Size = %d, want %d", k, oi.Size, len(want))
		}
		if oi.IsDir {
			t.Errorf("Stat(%q).IsDir = true", k)
		}
		if oi.MD5 != nil {
			if sum := md5.Sum(want); !bytes.Equal(oi.MD5, sum[:]) {
				t.Errorf("Stat(%q).MD5 = %x, want %x", k, oi.MD5, sum)
			}
		}
		if oi.HasCRC {
			if c := crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)); oi.CRC32C != c {
				t.Errorf("Stat(%q).CRC32C = %08x, want %08x", k, oi.CRC32C, c)
			}
		}
	}
}

func testMissing(t *testing.T, st *store.Store) {
	ctx := context.Background()
	for _, k := range []string{"missing.bin", "a/b/missing", "no/such/dir/x", "µ-missing"} {
		if _, err := st.Stat(ctx, k); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat(%q): got %v, want ErrNotExist", k, err)
		}
		rc, err := st.ReadRange(ctx, k, 0, -1)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, store.ErrNotExist) {
			t.Errorf("ReadRange(%q): got %v, want ErrNotExist", k, err)
		}
		if _, err := st.ReadAll(ctx, k, 1<<20); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("ReadAll(%q): got %v, want ErrNotExist", k, err)
		}
	}
}

// readRange reads [off, off+n) fully, reporting errors from open or read.
func readRange(st *store.Store, ctx context.Context, key string, off, n int64) ([]byte, error) {
	rc, err := st.ReadRange(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	b, rerr := io.ReadAll(rc)
	cerr := rc.Close()
	if rerr != nil {
		return b, rerr
	}
	return b, cerr
}

func testReadRange(t *testing.T, st *store.Store, fx map[string][]byte) {
	ctx := context.Background()
	for _, k := range sortedKeys(fx) {
		data := fx[k]
		size := int64(len(data))
		offs := []int64{0, 1, size / 3, size / 2, size - 1, size}
		if size == int64(BigSize) {
			offs = append(offs, 1<<20, 1<<20-1, 2<<20+17)
		}
		for _, off := range offs {
			if off < 0 || off > size {
				continue
			}
			for _, n := range []int64{-1, 0, 1, 7, 4096, 65537, size - off} {
				if n >= 0 && off+n > size {
					continue
				}
				want := data[off:]
				if n >= 0 {
					want = data[off : off+n]
				}
				got, err := readRange(st, ctx, k, off, n)
				if err != nil {
					t.Errorf("ReadRange(%q, %d, %d): %v", k, off, n, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("ReadRange(%q, %d, %d): got %d bytes, want %d (content differs: %v)", k, off, n, len(got), len(want), len(got) == len(want))
				}
			}
		}
		// ReadAt is the same path through Store; check it on a middle slice.
		if size >= 3 {
			p := make([]byte, size/3)
			if err := st.ReadAt(ctx, k, p, size/3); err != nil || !bytes.Equal(p, data[size/3:size/3+int64(len(p))]) {
				t.Errorf("ReadAt(%q, %d bytes at %d): err %v, equal %v", k, len(p), size/3, err, bytes.Equal(p, data[size/3:size/3+int64(len(p))]))
			}
		}
	}
}

func testResponseInfo(t *testing.T, st *store.Store, fx map[string][]byte) {
	ctx := context.Background()
	for _, k := range sortedKeys(fx) {
		size := int64(len(fx[k]))
		want, err := st.Stat(ctx, k)
		if err != nil {
			t.Fatalf("Stat(%q): %v", k, err)
		}
		for _, r := range [][2]int64{{0, -1}, {0, 1}, {size / 2, -1}} {
			if r[1] > size {
				continue
			}
			rc, err := st.ReadRange(ctx, k, r[0], r[1])
			if err != nil {
				t.Fatalf("ReadRange(%q, %d, %d): %v", k, r[0], r[1], err)
			}
			ir, ok := rc.(store.InfoReader)
			if !ok {
				rc.Close()
				t.Fatalf("ReadRange(%q): reader %T does not implement store.InfoReader", k, rc)
			}
			got := ir.ObjectInfo()
			io.Copy(io.Discard, rc)
			rc.Close()
			// A 0-byte object may be answered without a Content-Range total.
			if got.Size != size && !(size == 0 && got.Size == -1) {
				t.Errorf("ReadRange(%q, %d, %d): response says size %d, want %d", k, r[0], r[1], got.Size, size)
			}
			if want.ETag != "" && got.ETag != "" && got.ETag != want.ETag {
				t.Errorf("ReadRange(%q, %d, %d): response ETag %q, Stat ETag %q", k, r[0], r[1], got.ETag, want.ETag)
			}
			if r[1] < 0 && r[0] == 0 && want.ETag != "" && got.ETag == "" {
				t.Errorf("ReadRange(%q): whole-object response carries no ETag, Stat gives %q", k, want.ETag)
			}
		}
	}
}

func testPastEnd(t *testing.T, st *store.Store, fx map[string][]byte) {
	ctx := context.Background()
	for _, k := range []string{"hello.txt", "empty.bin", "big.bin", "a/b/c.bin"} {
		size := int64(len(fx[k]))
		cases := []struct{ off, n int64 }{
			{0, size + 1},
			{size, 1},
			{size + 1, -1},
			{size + 1, 1},
			{size + 1000, 10},
		}
		if size > 0 {
			cases = append(cases, struct{ off, n int64 }{size - 1, 2})
		}
		for _, c := range cases {
			got, err := readRange(st, ctx, k, c.off, c.n)
			if err == nil {
				t.Errorf("ReadRange(%q size %d, %d, %d): got %d bytes and no error, want an error", k, size, c.off, c.n, len(got))
			}
			if errors.Is(err, store.ErrNotExist) {
				t.Errorf("ReadRange(%q size %d, %d, %d): %v: a short object is not a missing one", k, size, c.off, c.n, err)
			}
		}
		var p [2]byte
		if err := st.ReadAt(ctx, k, p[:], size-1); err == nil {
			t.Errorf("ReadAt(%q, 2 bytes at %d) of a %d-byte object succeeded", k, size-1, size)
		}
	}
}

func testReadAll(t *testing.T, st *store.Store, fx map[string][]byte) {
	ctx := context.Background()
	for _, k := range []string{"hello.txt", "empty.bin", "big.bin", "µ.txt"} {
		want := fx[k]
		got, err := st.ReadAll(ctx, k, int64(len(want)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadAll(%q, limit = size): err %v, equal %v", k, err, bytes.Equal(got, want))
		}
		if len(want) > 0 {
			if _, err := st.ReadAll(ctx, k, int64(len(want)-1)); !errors.Is(err, store.ErrTooLarge) {
				t.Errorf("ReadAll(%q, limit = size-1): got %v, want ErrTooLarge", k, err)
			}
		}
	}
}

func testConcurrent(t *testing.T, st *store.Store, fx map[string][]byte) {
	ctx := context.Background()
	data := fx["big.bin"]
	const workers, chunk = 8, 100_003
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := int64(w * chunk); off < int64(len(data)); off += workers * chunk {
				n := min(int64(chunk), int64(len(data))-off)
				got, err := readRange(st, ctx, "big.bin", off, n)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, data[off:off+n]) {
					errs <- fmt.Errorf("big.bin [%d,+%d): wrong bytes", off, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCanceled(t *testing.T, st *store.Store, opts Options) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Stat(ctx, "hello.txt"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a canceled context: got %v, want context.Canceled", err)
	}
	if _, err := readRange(st, ctx, "big.bin", 10, 100); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadRange with a canceled context: got %v, want context.Canceled", err)
	}
	if !opts.NoList {
		err := st.List(ctx, "", "", func(store.ObjectInfo) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("List with a canceled context: got %v, want context.Canceled", err)
		}
	}

	// Cancel in the middle of a large read: the body must fail, not end quietly.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	rc, err := st.ReadRange(ctx2, "big.bin", 0, -1)
	if err != nil {
		t.Fatalf("ReadRange(big.bin): %v", err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatalf("reading the start of big.bin: %v", err)
	}
	cancel2()
	n, err := io.Copy(io.Discard, rc)
	if err == nil && n == BigSize-10 {
		// A driver may have buffered the whole (local) object before the cancel;
		// only a quiet short read is wrong.
		return
	}
	if err == nil {
		t.Errorf("read after cancel ended quietly after %d of %d bytes", n, BigSize-10)
	}
}

func testUnsafe(t *testing.T, st *store.Store) {
	ctx := context.Background()
	for _, k := range []string{"../x", "/etc/passwd", "a/../../x", "..", `..\x`, "C:/x", "a/\x00b"} {
		if _, err := st.Stat(ctx, k); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Stat(%q): got %v, want ErrBadKey", k, err)
		}
		if _, err := st.ReadRange(ctx, k, 0, -1); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("ReadRange(%q): got %v, want ErrBadKey", k, err)
		}
		if err := st.List(ctx, k, "", func(store.ObjectInfo) error { return nil }); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("List(%q): got %v, want ErrBadKey", k, err)
		}
		if _, err := st.NewWriter(ctx, k); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("NewWriter(%q): got %v, want ErrBadKey", k, err)
		}
	}
}

// list collects a listing.
func list(st *store.Store, prefix, delim string) ([]store.ObjectInfo, error) {
	var out []store.ObjectInfo
	err := st.List(context.Background(), prefix, delim, func(oi store.ObjectInfo) error {
		out = append(out, oi)
		return nil
	})
	return out, err
}

// expectList computes what a listing of fx must report.
func expectList(fx map[string][]byte, prefix, delim string) []store.ObjectInfo {
	var out []store.ObjectInfo
	dirs := map[string]bool{}
	for _, k := range sortedKeys(fx) {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				d := k[:len(prefix)+i+len(delim)]
				if !dirs[d] {
					dirs[d] = true
					out = append(out, store.ObjectInfo{Key: d, Size: -1, IsDir: true})
				}
				continue
			}
		}
		out = append(out, store.ObjectInfo{Key: k, Size: int64(len(fx[k]))})
	}
	slices.SortFunc(out, func(a, b store.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func testList(t *testing.T, st *store.Store, fx map[string][]byte) {
	cases := []struct{ prefix, delim string }{
		{"", ""},
		{"", "/"},
		{"a/", "/"},
		{"a/", ""},
		{"a/b", ""},
		{"a/b", "/"},
		{"many/", ""},
		{"many/", "/"},
		{"many/k1", ""},
		{"with space/", "/"},
		{" ElectronMicroscopy_H/", ""},
		{"odd/", "/"},
		{"µ", ""},
		{"nothing-here/", ""},
		{"nothing-here/", "/"},
	}
	for _, c := range cases {
		got, err := list(st, c.prefix, c.delim)
		if err != nil {
			t.Errorf("List(%q, %q): %v", c.prefix, c.delim, err)
			continue
		}
		want := expectList(fx, c.prefix, c.delim)
		if len(got) != len(want) {
			t.Errorf("List(%q, %q): %d entries %v, want %d %v", c.prefix, c.delim, len(got), keysOf(got), len(want), keysOf(want))
			continue
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Key != w.Key || g.IsDir != w.IsDir || (!w.IsDir && g.Size != w.Size) {
				t.Errorf("List(%q, %q)[%d] = {%q dir=%v size=%d}, want {%q dir=%v size=%d}", c.prefix, c.delim, i, g.Key, g.IsDir, g.Size, w.Key, w.IsDir, w.Size)
			}
		}
	}

	// An error from the callback stops the walk and comes back unchanged.
	stop := errors.New("stop here")
	calls := 0
	err := st.List(context.Background(), "many/", "", func(store.ObjectInfo) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("List with a failing callback: err %v after %d calls, want %v after 3", err, calls, stop)
	}
}

func keysOf(infos []store.ObjectInfo) []string {
	ks := make([]string, len(infos))
	for i, oi := range infos {
		ks[i] = oi.Key
	}
	return ks
}

func testWriter(t *testing.T, st *store.Store) {
	ctx := context.Background()
	const key = "out/new object.bin"
	payload := pseudoRandom(70_000, 9)

	w, err := st.NewWriter(ctx, key)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if _, err := w.Write(payload[:1000]); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := st.Stat(ctx, key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat before Close: got %v, want ErrNotExist", err)
	}
	if infos, err := list(st, "out/", ""); err != nil || len(infos) != 0 {
		t.Errorf("List before Close: %v %v, want nothing", keysOf(infos), err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if _, err := st.Stat(ctx, key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat after Abort: got %v, want ErrNotExist", err)
	}
	if infos, err := list(st, "", ""); err != nil || len(infos) != len(Fixture()) {
		t.Errorf("List after Abort: %d entries (%v), want the %d fixture objects only", len(infos), err, len(Fixture()))
	}

	w, err = st.NewWriter(ctx, key)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer w.Abort()
	for off := 0; off < len(payload); off += 8191 {
		if _, err := w.Write(payload[off:min(off+8191, len(payload))]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if _, err := st.Stat(ctx, key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat before Close: got %v, want ErrNotExist", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Close: %v, want a no-op", err)
	}
	got, err := st.ReadAll(ctx, key, 1<<20)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("ReadAll after Close: err %v, equal %v", err, bytes.Equal(got, payload))
	}

	// Overwrite is atomic too: the old content stays until Close.
	if err := st.WriteAll(ctx, "hello.txt", []byte("v2")); err != nil {
		t.Fatalf("WriteAll over an existing key: %v", err)
	}
	if got, err := st.ReadAll(ctx, "hello.txt", 100); err != nil || string(got) != "v2" {
		t.Errorf("after overwrite: %q %v, want \"v2\"", got, err)
	}
	w, err = st.NewWriter(ctx, "hello.txt")
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	w.Write([]byte("v3"))
	if got, _ := st.ReadAll(ctx, "hello.txt", 100); string(got) != "v2" {
		t.Errorf("during an unfinished overwrite: %q, want the old \"v2\"", got)
	}
	w.Abort()
	if got, _ := st.ReadAll(ctx, "hello.txt", 100); string(got) != "v2" {
		t.Errorf("after an aborted overwrite: %q, want the old \"v2\"", got)
	}
	if _, err := st.NewWriter(ctx, ""); err == nil {
		t.Errorf("NewWriter(\"\") succeeded, want an error")
	}
}
