// Package dynlib opens an optional C shared library at run time (through
// purego, with no C compiler at build time) and looks up its functions, for
// the codecs that use a C implementation when the machine has one and fall
// back to Go when it does not. It is built only with cgo: purego without cgo
// would make a CGO_ENABLED=0 binary depend on libc.
package dynlib
