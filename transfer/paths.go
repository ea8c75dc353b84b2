package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/store"
)

// stateDir is the directory under OutDir that holds the journal and part files.
const stateDir = ".imgdataset"

// cleanRel validates a dataset name or object path that will be joined to the
// output directory: relative, no "..", not empty, not inside the state directory.
func cleanRel(what, p string) (string, error) {
	c, err := store.CleanKey(p)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", what, p, err)
	}
	if c == "" {
		return "", fmt.Errorf("%s %q: empty: %w", what, p, store.ErrBadKey)
	}
	return c, nil
}

// cleanDataset validates a dataset name; it may not shadow the state directory.
func cleanDataset(name string) (string, error) {
	c, err := cleanRel("dataset", name)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(c, "/")
	if first == stateDir {
		return "", fmt.Errorf("dataset %q: reserved name: %w", name, store.ErrBadKey)
	}
	return c, nil
}

// partName is the part file name of an object: a hash, so that hostile or very
// long paths never shape names in the state directory.
func partName(dataset, path string) string {
	h := sha256.Sum256([]byte(entryKey(dataset, path)))
	return hex.EncodeToString(h[:16])
}

// ensureDir creates root/rel (rel slash-separated, already cleaned) one
// component at a time and refuses to pass through a symlink or a non-directory,
// so that a link planted in the output tree cannot redirect writes outside it.
// root itself may be a symlink: the user chose it.
func ensureDir(root, rel string) error {
	p := root
	if rel == "" || rel == "." {
		return nil
	}
	for _, seg := range strings.Split(rel, "/") {
		p = filepath.Join(p, seg)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if fi, err = os.Lstat(p); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink: %w", p, store.ErrBadKey)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
	}
	return nil
}

// parentRel returns the slash-separated directory part of rel ("" for none).
func parentRel(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// ErrLocked is the error LockOutput wraps when another run holds the lock.
var ErrLocked = errors.New("in use by another run")

// LockOutput takes the lock of the output directory dir, which Run takes for
// its downloads, so that a caller can hold it over all it writes there (the
// conversions and tables that follow the downloads) and set Options.Locked.
// It does not wait: a second run into dir fails at once with ErrLocked, so
// it can never interleave with the first. Close releases the lock; the
// kernel releases it too when the process dies.
func LockOutput(dir string) (io.Closer, error) {
	d := filepath.Join(dir, stateDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("transfer: output directory %s: %w", dir, err)
	}
	f, err := lockDir(filepath.Join(d, "lock"))
	if err != nil {
		return nil, err
	}
	return f, nil
}

// LockTask takes the locks of one task of a sharded run into dir: the
// output lock shared (the other tasks hold it too, so they write in
// parallel, while a whole-output LockOutput — a run without --shard, or
// finalize — fails with ErrLocked) and the task's own lock, task a file
// name such as "2-of-4", exclusive (the same task started twice fails with
// ErrLocked). Close releases both.
func LockTask(dir, task string) (io.Closer, error) {
	d := filepath.Join(dir, stateDir)
	if err := os.MkdirAll(filepath.Join(d, "tasks"), 0o755); err != nil {
		return nil, fmt.Errorf("transfer: output directory %s: %w", dir, err)
	}
	shared, err := lockShared(filepath.Join(d, "lock"))
	if err != nil {
		return nil, err
	}
	own, err := lockDir(filepath.Join(d, "tasks", task+".lock"))
	if err != nil {
		shared.Close()
		return nil, err
	}
	return taskLock{shared, own}, nil
}

// taskLock is the two locks LockTask holds.
type taskLock struct{ shared, own *os.File }

// Close releases both locks.
func (l taskLock) Close() error { return errors.Join(l.own.Close(), l.shared.Close()) }
