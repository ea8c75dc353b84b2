//go:build !unix

package transfer

import (
	"fmt"
	"os"
)

// lockDir opens the lock file; without flock, concurrent runs are not detected.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("transfer: lock %s: %w", path, err)
	}
	return f, nil
}

// lockShared opens the lock file; without flock, concurrent runs are not detected.
func lockShared(path string) (*os.File, error) { return lockDir(path) }
