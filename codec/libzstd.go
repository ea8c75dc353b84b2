//go:build cgo && (linux || darwin) && (amd64 || arm64)

package codec

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/imgdataset/imgdataset/codec/internal/dynlib"
)

// libzstdNames are the sonames tried, in order: the C library is optional
// and loaded at run time (purego, no C compiler needed), so a machine
// without it decodes with the pure-Go decoder instead. Like codec/jpeg, it
// is built only with cgo: a CGO_ENABLED=0 build stays a static binary and
// always decodes in Go.
var libzstdNames = [...]string{"libzstd.so.1", "libzstd.1.dylib", "libzstd.dylib"}

// zstdErrDstTooSmall is ZSTD_error_dstSize_tooSmall (zstd_errors.h, stable
// since 1.3.1): the frame decodes to more than the destination holds.
const zstdErrDstTooSmall = 70

// libzstd is the C zstd library's one-shot decoder. Decompression contexts
// (~160 KiB each) are pooled per libzstd; a context left in the pool when
// the collector empties it is freed by a cleanup.
type libzstd struct {
	version                              uint32
	createDCtx, freeDCtx, decompressDCtx uintptr
	isError, getErrorCode                uintptr
	// errorName is ZSTD_getErrorName; purego copies the C string it
	// returns.
	errorName func(code uintptr) string
	dctxs     sync.Pool
}

// dctx owns one ZSTD_DCtx; the pointer stays with the C heap.
type dctx struct{ p uintptr }

// loadLibzstd opens the C library, or returns nil with the reason when it
// is absent or older than 1.4 (whose ZSTD_decompressDCtx lacks nothing we
// use, but whose error codes we have not checked).
func loadLibzstd() (*libzstd, error) {
	l := &libzstd{}
	var versionNumber, getErrorName uintptr
	if _, err := dynlib.Open(libzstdNames[:], []dynlib.Sym{
		{Name: "ZSTD_versionNumber", Addr: &versionNumber},
		{Name: "ZSTD_createDCtx", Addr: &l.createDCtx},
		{Name: "ZSTD_freeDCtx", Addr: &l.freeDCtx},
		{Name: "ZSTD_decompressDCtx", Addr: &l.decompressDCtx},
		{Name: "ZSTD_isError", Addr: &l.isError},
		{Name: "ZSTD_getErrorCode", Addr: &l.getErrorCode},
		{Name: "ZSTD_getErrorName", Addr: &getErrorName},
	}); err != nil {
		return nil, fmt.Errorf("libzstd not loadable: %w", err)
	}
	purego.RegisterFunc(&l.errorName, getErrorName)
	v, _, _ := purego.SyscallN(versionNumber)
	l.version = uint32(v)
	if l.version < 10400 {
		return nil, fmt.Errorf("libzstd %d is older than 1.4", l.version)
	}
	return l, nil
}

// name reports the library and its version, e.g. "libzstd 1.5.4".
func (l *libzstd) name() string {
	return fmt.Sprintf("libzstd %d.%d.%d", l.version/10000, l.version/100%100, l.version%100)
}

// get returns a pooled decompression context, creating one when the pool is
// empty.
func (l *libzstd) get() (*dctx, error) {
	if d, ok := l.dctxs.Get().(*dctx); ok {
		return d, nil
	}
	p, _, _ := purego.SyscallN(l.createDCtx)
	if p == 0 {
		return nil, fmt.Errorf("libzstd: ZSTD_createDCtx failed (out of memory)")
	}
	d := &dctx{p: p}
	free := l.freeDCtx
	runtime.AddCleanup(d, func(p uintptr) { purego.SyscallN(free, p) }, p)
	return d, nil
}

// decodeInto decodes every frame of src into dst's capacity. The output is
// bounded by cap(dst) whatever the frames declare: the one-shot decoder
// writes only into dst and allocates no window.
func (l *libzstd) decodeInto(dst, src []byte) ([]byte, error) {
	if len(src) == 0 {
		// As the pure-Go decoder: no frame, no output.
		return dst[:0], nil
	}
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	full := dst[:cap(dst)]
	var dp unsafe.Pointer
	if len(full) > 0 {
		dp = unsafe.Pointer(&full[0])
	}
	r, _, _ := purego.SyscallN(l.decompressDCtx, d.p, uintptr(dp), uintptr(len(full)),
		uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)))
	runtime.KeepAlive(full)
	runtime.KeepAlive(src)
	if e, _, _ := purego.SyscallN(l.isError, r); e != 0 {
		// A context that failed is reset by the next ZSTD_decompressDCtx,
		// so it goes back to the pool.
		l.dctxs.Put(d)
		code, _, _ := purego.SyscallN(l.getErrorCode, r)
		msg := l.errorName(r)
		if code == zstdErrDstTooSmall {
			return nil, fmt.Errorf("%w (%d): libzstd: %s", ErrTooLarge, cap(dst), msg)
		}
		return nil, fmt.Errorf("libzstd: %s", msg)
	}
	l.dctxs.Put(d)
	return full[:r], nil
}
