//go:build cgo && (linux || darwin || freebsd || netbsd) && !android

package dynlib

import (
	"errors"
	"fmt"

	"github.com/ebitengine/purego"
)

// Sym names one function of a library and where to put its address.
type Sym struct {
	Name string
	Addr *uintptr
}

// Open opens the first of names that loads and looks up every symbol in
// syms. It returns the library's handle, or an error naming every name it
// tried or the first missing symbol.
func Open(names []string, syms []Sym) (uintptr, error) {
	var lib uintptr
	var errs []error
	for _, n := range names {
		l, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			lib = l
			break
		}
		errs = append(errs, err)
	}
	if lib == 0 {
		return 0, fmt.Errorf("none of %v loadable: %w", names, errors.Join(errs...))
	}
	for _, s := range syms {
		p, err := purego.Dlsym(lib, s.Name)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.Name, err)
		}
		*s.Addr = p
	}
	return lib, nil
}
