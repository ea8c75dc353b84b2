package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// openUnder counts this process's descriptors open on files below dir, so that
// descriptors of other tests (servers, pipes) cannot disturb the count.
func openUnder(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files without /proc/self/fd: %v", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // closed since the listing
		}
		if strings.HasPrefix(target, real+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// newTestFile is NewFile with an idle timeout long enough that no handle is
// swept during a test, so that the counts of open files below are exact.
func newTestFile(dir string) *FileDriver {
	d := NewFile(dir)
	d.handles.idle = time.Hour
	return d
}

func readKey(t *testing.T, d *FileDriver, key string) []byte {
	t.Helper()
	rc, err := d.ReadRange(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func writeFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		k := fmt.Sprintf("f%03d", i)
		if err := os.WriteFile(filepath.Join(dir, k), []byte("content of "+k), 0o644); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

func TestFileHandlesConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	keys := writeFiles(t, dir, 8)
	d := newTestFile(dir)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := keys[(g+i)%len(keys)]
				want := "content of " + k
				off := int64(i % len(want))
				rc, err := d.ReadRange(context.Background(), k, off, int64(len(want))-off)
				if err != nil {
					errc <- err
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || string(b) != want[off:] {
					errc <- fmt.Errorf("%s at %d: got %q, %v; want %q", k, off, b, err, want[off:])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := openUnder(t, dir); n != len(keys) {
		t.Errorf("%d files open after the readers closed, want %d cached", n, len(keys))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openUnder(t, dir); n != 0 {
		t.Errorf("%d files open after Close, want 0", n)
	}
}

func TestFileHandlesReplaced(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		replace func(t *testing.T, d *FileDriver, dir string, b []byte)
	}{
		{"NewWriter", func(t *testing.T, d *FileDriver, dir string, b []byte) {
			w, err := d.NewWriter(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"rename behind the driver's back", func(t *testing.T, d *FileDriver, dir string, b []byte) {
			tmp := filepath.Join(dir, "tmp")
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, "k")); err != nil {
				t.Fatal(err)
			}
		}},
		{"remove and re-create", func(t *testing.T, d *FileDriver, dir string, b []byte) {
			if err := os.Remove(filepath.Join(dir, "k")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "k"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "k"), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			d := newTestFile(dir)
			defer d.Close()
			if got := readKey(t, d, "k"); string(got) != "old" {
				t.Fatalf("first read %q", got)
			}
			held, err := d.ReadRange(ctx, "k", 0, 3)
			if err != nil {
				t.Fatal(err)
			}
			tc.replace(t, d, dir, []byte("new, longer"))
			if got := readKey(t, d, "k"); string(got) != "new, longer" {
				t.Errorf("after replacement read %q, want the new content", got)
			}
			// A reader opened before the replacement keeps reading the old file.
			b, err := io.ReadAll(held)
			if err != nil || string(b) != "old" {
				t.Errorf("held reader: %q, %v; want \"old\"", b, err)
			}
			held.Close()
			if n := openUnder(t, dir); n != 1 {
				t.Errorf("%d files open, want only the new one", n)
			}
		})
	}
}

func TestFileHandlesDeleteCloses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, 2)
	d := newTestFile(dir)
	defer d.Close()
	readKey(t, d, "f000")
	readKey(t, d, "f001")
	if n := openUnder(t, dir); n != 2 {
		t.Fatalf("%d files open, want 2 cached", n)
	}
	if err := d.Delete(ctx, "f000"); err != nil {
		t.Fatal(err)
	}
	if n := openUnder(t, dir); n != 1 {
		t.Errorf("%d files open after Delete, want 1", n)
	}
	if _, err := d.ReadRange(ctx, "f000", 0, -1); !errors.Is(err, ErrNotExist) {
		t.Errorf("read after Delete: %v, want ErrNotExist", err)
	}
	// Removed behind the driver's back: the stale handle is dropped on the next read.
	if err := os.Remove(filepath.Join(dir, "f001")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadRange(ctx, "f001", 0, -1); !errors.Is(err, ErrNotExist) {
		t.Errorf("read after remove: %v, want ErrNotExist", err)
	}
	if n := openUnder(t, dir); n != 0 {
		t.Errorf("%d files open after both files went, want 0", n)
	}
}

func TestFileHandlesBounded(t *testing.T) {
	dir := t.TempDir()
	keys := writeFiles(t, dir, fileHandleCacheSize+20)
	d := newTestFile(dir)
	// A reader held across evictions keeps its handle until it is closed.
	held, err := d.ReadRange(context.Background(), keys[0], 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[1:] {
		if got := readKey(t, d, k); string(got) != "content of "+k {
			t.Fatalf("%s: %q", k, got)
		}
	}
	if n := d.handles.size(); n != fileHandleCacheSize {
		t.Errorf("%d handles cached, want %d", n, fileHandleCacheSize)
	}
	if n := openUnder(t, dir); n != fileHandleCacheSize+1 {
		t.Errorf("%d files open, want %d cached + 1 held", n, fileHandleCacheSize+1)
	}
	b, err := io.ReadAll(held)
	if err != nil || string(b) != "content of "+keys[0] {
		t.Errorf("held reader after eviction: %q, %v", b, err)
	}
	held.Close()
	held.Close() // a second Close must not release twice
	if n := openUnder(t, dir); n != fileHandleCacheSize {
		t.Errorf("%d files open after closing the evicted reader, want %d", n, fileHandleCacheSize)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// After Close the driver still reads, without keeping anything open.
	for _, k := range keys[:5] {
		if got := readKey(t, d, k); !bytes.Equal(got, []byte("content of "+k)) {
			t.Errorf("%s after Close: %q", k, got)
		}
	}
	if n := openUnder(t, dir); n != 0 {
		t.Errorf("%d files open after Close, want 0", n)
	}
}

func TestFileHandlesErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, 1)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newTestFile(dir)
	defer d.Close()
	tests := []struct {
		key    string
		off, n int64
		is     error
	}{
		{"sub", 0, -1, ErrNotExist},
		{"missing", 0, -1, ErrNotExist},
		{"f000", 0, 100, io.ErrUnexpectedEOF},
		{"f000", 100, 1, nil},
	}
	for _, tc := range tests {
		rc, err := d.ReadRange(ctx, tc.key, tc.off, tc.n)
		if err == nil {
			rc.Close()
			t.Errorf("%s [%d,+%d): no error", tc.key, tc.off, tc.n)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s [%d,+%d): %v, want %v", tc.key, tc.off, tc.n, err, tc.is)
		}
	}
	// Failed range checks must not leak references: the cached handle closes.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openUnder(t, dir); n != 0 {
		t.Errorf("%d files open after errors and Close, want 0", n)
	}
}

func TestFileHandlesIdleClose(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 3)
	d := NewFile(dir)
	defer d.Close()
	d.handles.idle = 10 * time.Millisecond
	readKey(t, d, "f000")
	held, err := d.ReadRange(context.Background(), "f001", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	// waitOpen polls, as the sweep runs on its own timer.
	waitOpen := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for openUnder(t, dir) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d files open, want %d", openUnder(t, dir), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitOpen(1) // the idle handle goes, the held one stays
	time.Sleep(5 * d.handles.idle)
	if b, err := io.ReadAll(held); err != nil || string(b) != "content of f001" {
		t.Errorf("held reader after sweeps: %q, %v", b, err)
	}
	held.Close()
	waitOpen(0)
	// The cache still works after sweeping everything.
	if got := readKey(t, d, "f002"); string(got) != "content of f002" {
		t.Errorf("read after sweep: %q", got)
	}
	waitOpen(0)
}
