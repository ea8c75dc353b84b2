package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/store/storetest"
)

func TestMemDriverConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, objs map[string][]byte) *store.Store {
		d := store.NewMem()
		for k, v := range objs {
			if err := d.Put(k, v); err != nil {
				t.Fatal(err)
			}
		}
		return store.New(d)
	}, storetest.Options{CanWrite: true})
}

// TestMemDriverKeys calls the driver directly, as a decorator would: keys
// that Store would have cleaned or refused are refused here too.
func TestMemDriverKeys(t *testing.T) {
	ctx := context.Background()
	d := store.NewMem()
	if err := d.Put("a/b.bin", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "/abs", "a/../b.bin", "./a/b.bin", "a//b.bin", `a\b.bin`, "a/b.bin/", "C:/x", "a/\x00"} {
		if err := d.Put(key, nil); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Put(%q): %v, want ErrBadKey", key, err)
		}
		if _, err := d.Stat(ctx, key); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Stat(%q): %v, want ErrBadKey", key, err)
		}
		if _, err := d.ReadRange(ctx, key, 0, -1); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("ReadRange(%q): %v, want ErrBadKey", key, err)
		}
		if _, err := d.NewWriter(ctx, key); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("NewWriter(%q): %v, want ErrBadKey", key, err)
		}
		if err := d.Delete(ctx, key); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Delete(%q): %v, want ErrBadKey", key, err)
		}
	}
	if err := d.Put("", []byte("x")); !errors.Is(err, store.ErrBadKey) {
		t.Errorf("Put(\"\"): %v, want ErrBadKey", err)
	}
	if _, err := d.Stat(ctx, ""); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat(\"\") (the root): %v, want ErrNotExist", err)
	}
	if _, err := d.Stat(ctx, "a"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat of a directory: %v, want ErrNotExist", err)
	}
}

// TestMemDriverObjects checks what the conformance suite leaves to each
// driver: metadata, replacement, deletion and cancellation.
func TestMemDriverObjects(t *testing.T) {
	ctx := context.Background()
	d := store.NewMem()
	st := store.New(d)
	src := []byte("first version")
	if err := d.Put("k", src); err != nil {
		t.Fatal(err)
	}
	src[0] = 'F' // Put keeps a copy
	one, err := st.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	old, err := st.ReadRange(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := st.WriteAll(ctx, "k", []byte("second")); err != nil {
		t.Fatal(err)
	}
	two, err := st.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ok   bool
		got  any
	}{
		{"ETag changes with the content", one.ETag != two.ETag && one.ETag != "", []string{one.ETag, two.ETag}},
		{"Version changes with each write", one.Version != two.Version && one.Version != "", []string{one.Version, two.Version}},
		{"size of the new object", two.Size == 6, two.Size},
		{"ModTime set", !two.ModTime.IsZero(), two.ModTime},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Errorf("%s: got %v", tc.name, tc.got)
		}
	}
	if b, err := io.ReadAll(old); err != nil || string(b) != "first version" {
		t.Errorf("reader opened before the overwrite: %q %v, want the old content", b, err)
	}
	if sz, ok := old.(interface{ Size() int64 }); !ok || sz.Size() != int64(len("first version")) {
		t.Errorf("reader %T does not report its size", old)
	}

	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "k"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("second Delete: %v, want ErrNotExist", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	w, err := st.NewWriter(cctx, "canceled")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel: %v, want context.Canceled", err)
	}
	if _, err := st.Stat(ctx, "canceled"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("a writer closed after cancel stored its object: %v", err)
	}
}

// TestMemDriverConcurrentWrites has writers, readers and listers work on
// the same keys at once (meaningful under -race): every read sees one
// whole version, and a List callback may write to the driver.
func TestMemDriverConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	st := store.New(store.NewMem())
	const workers, rounds = 4, 50
	version := func(w, i int) []byte { return bytes.Repeat([]byte{byte(w), byte(i)}, 100+w) }
	var wg sync.WaitGroup
	errs := make(chan error, 3*workers)
	for w := range workers {
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := st.WriteAll(ctx, fmt.Sprintf("k%d", w%2), version(w, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range rounds {
				b, err := st.ReadAll(ctx, fmt.Sprintf("k%d", w%2), 1<<20)
				if errors.Is(err, store.ErrNotExist) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if len(b) < 2 || !bytes.Equal(b, version(int(b[0]), int(b[1]))) {
					errs <- fmt.Errorf("read a torn object of %d bytes", len(b))
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range rounds {
				wrote := false
				err := st.List(ctx, "", "", func(oi store.ObjectInfo) error {
					if wrote {
						return nil
					}
					wrote = true
					return st.WriteAll(ctx, fmt.Sprintf("listed/%d/%d", w, i), nil)
				})
				if err != nil {
					errs <- err
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
