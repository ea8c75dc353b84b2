//go:build !(cgo && (linux || darwin) && (amd64 || arm64))

package codec

import (
	"errors"
	"runtime"
)

// libzstd is not loaded on this platform; see libzstd.go.
type libzstd struct{}

func loadLibzstd() (*libzstd, error) {
	return nil, errors.New("libzstd is not loaded on " + runtime.GOOS + "/" + runtime.GOARCH)
}

func (l *libzstd) name() string { return "" }

func (l *libzstd) decodeInto(dst, src []byte) ([]byte, error) {
	return nil, errors.New("libzstd is not loaded")
}
