//go:build unix

package transfer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive advisory lock so that two runs never share one
// journal; the kernel drops it when the process dies, even by SIGKILL.
func lockDir(path string) (*os.File, error) { return flock(path, syscall.LOCK_EX) }

// lockShared takes a shared advisory lock: the tasks of one sharded run hold
// it together, and a whole-output lock (lockDir) waits for none of them but
// fails while any holds it.
func lockShared(path string) (*os.File, error) { return flock(path, syscall.LOCK_SH) }

// flock opens path and locks it how (LOCK_EX or LOCK_SH), without waiting.
func flock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("transfer: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("transfer: output directory %s: %w (lock %s); wait for it to finish", filepath.Dir(filepath.Dir(path)), ErrLocked, path)
		}
		return nil, fmt.Errorf("transfer: lock %s: %w", path, err)
	}
	return f, nil
}
