//go:build !(cgo && (linux || darwin || freebsd || netbsd) && !android)

package jpeg

import (
	"errors"
	"fmt"
)

// turbo is not available in this build; see the package documentation.
type turbo struct{ name string }

func loadTurbo() (*turbo, error) {
	return nil, errors.New("libjpeg-turbo not used: built without cgo (CGO_ENABLED=0)")
}

func (*turbo) decode(Dst, []byte) (Frame, error) {
	return Frame{}, fmt.Errorf("jpeg: libjpeg-turbo is not in this build: %w", ErrUnsupported)
}

func (*turbo) drain() {}
