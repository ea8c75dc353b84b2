//go:build cgo && (linux || darwin || freebsd || netbsd) && !android

package jpeg

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/imgdataset/imgdataset/codec/internal/dynlib"
)

// TurboJPEG constants (turbojpeg.h of libjpeg-turbo 2.x; the ABI is stable
// since 1.4).
const (
	tjpfRGB  = 0
	tjpfGray = 6

	tjcsRGB   = 0
	tjcsYCbCr = 1
	tjcsGray  = 2

	tjsamp444 = 0

	// tjflagStopOnWarning makes a warning (truncated stream, corrupt data)
	// end the decode with an error instead of a grey-filled image.
	tjflagStopOnWarning = 8192
	// tjflagLimitScans refuses progressive streams of more than 500 scans,
	// which otherwise cost quadratic time (libjpeg-turbo 2.1 and later;
	// older versions ignore the flag).
	tjflagLimitScans = 32768
)

// soNames returns the library names to try on this system, in order.
func soNames() []string {
	if runtime.GOOS == "darwin" {
		return []string{"libturbojpeg.0.dylib", "/opt/homebrew/opt/jpeg-turbo/lib/libturbojpeg.0.dylib", "/usr/local/opt/jpeg-turbo/lib/libturbojpeg.0.dylib"}
	}
	return []string{"libturbojpeg.so.0"}
}

// turbo is a loaded libturbojpeg and a free list of decompressor handles.
type turbo struct {
	name string
	fn   struct {
		init, header, decompress, toPlanes, destroy uintptr
	}
	// errStr is tjGetErrorStr2, through purego's C string conversion; it
	// is called only on the error path.
	errStr func(h uintptr) string
	// free holds idle handles, one per worker that decoded recently: a
	// handle keeps libjpeg's allocations (Huffman tables, buffers) between
	// chunks. A channel rather than a sync.Pool, because a handle dropped
	// by a Pool would never reach tjDestroy.
	free chan *handle
}

// handle is one TurboJPEG decompressor and the out-parameters of its
// header call (on the heap, so that C may write them).
type handle struct {
	h                   uintptr
	w, ht, subsamp, csp int32
}

// loadTurbo opens libturbojpeg and looks up the functions Decode needs.
// dlopen counts references, so loading it for a second Decoder is cheap.
func loadTurbo() (*turbo, error) {
	t := &turbo{free: make(chan *handle, 4*runtime.GOMAXPROCS(0))}
	var errStr uintptr
	_, err := dynlib.Open(soNames(), []dynlib.Sym{
		{Name: "tjInitDecompress", Addr: &t.fn.init}, {Name: "tjDecompressHeader3", Addr: &t.fn.header}, {Name: "tjDecompress2", Addr: &t.fn.decompress},
		{Name: "tjDecompressToYUVPlanes", Addr: &t.fn.toPlanes}, {Name: "tjDestroy", Addr: &t.fn.destroy}, {Name: "tjGetErrorStr2", Addr: &errStr},
	})
	if err != nil {
		return nil, fmt.Errorf("libjpeg-turbo not loaded (install libturbojpeg0): %w", err)
	}
	purego.RegisterFunc(&t.errStr, errStr)
	t.name = "libjpeg-turbo"
	if v := libVersion(); v != "" {
		t.name += " " + v
	}
	return t, nil
}

// libVersion finds the version libjpeg-turbo states in its own file
// ("libjpeg-turbo version 2.1.5 (build …)"): TurboJPEG 2.x has no function
// that returns it. The file is found in /proc/self/maps; elsewhere, or when
// it cannot be read, the version is left out.
func libVersion() string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	var path string
	for _, line := range strings.Split(string(maps), "\n") {
		if i := strings.Index(line, "/"); i >= 0 && strings.Contains(line[i:], "libturbojpeg") {
			path = line[i:]
			break
		}
	}
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const mark = "libjpeg-turbo version "
	i := bytes.Index(b, []byte(mark))
	if i < 0 {
		return ""
	}
	v := b[i+len(mark):]
	if j := bytes.IndexAny(v, " \x00"); j >= 0 && j < 32 {
		return string(v[:j])
	}
	return ""
}

// get returns an idle handle or a new one.
func (t *turbo) get() (*handle, error) {
	select {
	case h := <-t.free:
		return h, nil
	default:
	}
	return t.newHandle()
}

// newHandle makes a decompressor handle.
func (t *turbo) newHandle() (*handle, error) {
	r, _, _ := purego.SyscallN(t.fn.init)
	if r == 0 {
		return nil, errors.New("libturbojpeg: tjInitDecompress failed")
	}
	return &handle{h: r}, nil
}

// put keeps h for the next decode, or destroys it when enough are idle.
func (t *turbo) put(h *handle) {
	select {
	case t.free <- h:
	default:
		purego.SyscallN(t.fn.destroy, h.h)
	}
}

// drain destroys the idle handles.
func (t *turbo) drain() {
	for {
		select {
		case h := <-t.free:
			purego.SyscallN(t.fn.destroy, h.h)
		default:
			return
		}
	}
}

// fail turns the handle's last error into a Go error.
func (t *turbo) fail(h *handle, call string) error {
	msg := t.errStr(h.h)
	kind := ErrCorrupt
	if strings.Contains(msg, "nsupported") || strings.Contains(msg, "not supported") || strings.Contains(msg, "Could not determine subsampling") {
		kind = ErrUnsupported
	}
	return fmt.Errorf("jpeg: libjpeg-turbo %s: %s: %w", call, msg, kind)
}

// decode implements Decoder.Decode with libjpeg-turbo.
func (t *turbo) decode(dst Dst, stream []byte) (Frame, error) {
	if len(stream) == 0 {
		return Frame{}, fmt.Errorf("jpeg: empty stream: %w", ErrCorrupt)
	}
	h, err := t.get()
	if err != nil {
		return Frame{}, err
	}
	if hasTables(stream) {
		defer t.put(h)
	} else {
		// libjpeg keeps a handle's quantization and Huffman tables from
		// one stream to the next (for abbreviated streams): a stream that
		// lacks its own would be decoded with whatever the handle saw
		// last. A fresh handle makes it fail, or use the standard Huffman
		// tables, as PIL's fresh decompressor does.
		t.put(h)
		if h, err = t.newHandle(); err != nil {
			return Frame{}, err
		}
		defer purego.SyscallN(t.fn.destroy, h.h)
	}
	r, _, _ := purego.SyscallN(t.fn.header, h.h, uintptr(unsafe.Pointer(&stream[0])), uintptr(len(stream)),
		uintptr(unsafe.Pointer(&h.w)), uintptr(unsafe.Pointer(&h.ht)), uintptr(unsafe.Pointer(&h.subsamp)), uintptr(unsafe.Pointer(&h.csp)))
	if int32(r) != 0 {
		return Frame{}, t.fail(h, "header")
	}
	f := Frame{Width: int(h.w), Height: int(h.ht), Components: 3}
	switch h.csp {
	case tjcsGray:
		f.Components = 1
	case tjcsRGB, tjcsYCbCr:
	default:
		f.Components = 4 // CMYK, YCCK
	}
	if err := check(dst, f); err != nil {
		return f, err
	}
	pf := tjpfRGB
	switch {
	case dst.Color == Gray, dst.Color == Stored && f.Components == 1:
		pf = tjpfGray
	case dst.Color == Stored && h.csp == tjcsYCbCr:
		// libtiff reads a JPEG TIFF whose photometric is not YCbCr without
		// colour conversion; TurboJPEG does that only as planes.
		if h.subsamp != tjsamp444 {
			return f, fmt.Errorf("jpeg: YCbCr stream with subsampled chroma read without colour conversion: %w", ErrUnsupported)
		}
		return f, t.planes(h, dst, f, stream)
	}
	r, _, _ = purego.SyscallN(t.fn.decompress, h.h, uintptr(unsafe.Pointer(&stream[0])), uintptr(len(stream)),
		uintptr(unsafe.Pointer(&dst.Pix[0])), uintptr(f.Width), uintptr(dst.Stride), uintptr(f.Height), uintptr(pf),
		tjflagStopOnWarning|tjflagLimitScans)
	if int32(r) != 0 {
		return f, t.fail(h, "decode")
	}
	return f, nil
}

// hasTables reports whether the header of stream (the segments before its
// first SOS) defines quantization and Huffman tables itself.
func hasTables(b []byte) bool {
	var dqt, dht bool
	for i := 2; i+4 <= len(b) && b[i] == 0xFF; {
		m := b[i+1]
		switch m {
		case 0xFF: // fill byte
			i++
			continue
		case 0xDA: // SOS: the header is over
			return dqt && dht
		case 0xDB:
			dqt = true
		case 0xC4:
			dht = true
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	return false
}

// planes decodes a 4:4:4 three-component stream as its stored component
// planes and interleaves them into dst.
func (t *turbo) planes(h *handle, dst Dst, f Frame, stream []byte) error {
	n := f.Width * f.Height
	buf := make([]byte, 3*n)
	ptrs := &[3]uintptr{uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&buf[n])), uintptr(unsafe.Pointer(&buf[2*n]))}
	strides := &[3]int32{int32(f.Width), int32(f.Width), int32(f.Width)}
	r, _, _ := purego.SyscallN(t.fn.toPlanes, h.h, uintptr(unsafe.Pointer(&stream[0])), uintptr(len(stream)),
		uintptr(unsafe.Pointer(ptrs)), uintptr(f.Width), uintptr(unsafe.Pointer(strides)), uintptr(f.Height),
		tjflagStopOnWarning|tjflagLimitScans)
	runtime.KeepAlive(buf)
	if int32(r) != 0 {
		return t.fail(h, "decode")
	}
	for y := 0; y < f.Height; y++ {
		row := dst.Pix[y*dst.Stride:]
		for x := 0; x < f.Width; x++ {
			i := y*f.Width + x
			row[3*x], row[3*x+1], row[3*x+2] = buf[i], buf[n+i], buf[2*n+i]
		}
	}
	return nil
}
