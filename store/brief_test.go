package store

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
)

func TestBrief(t *testing.T) {
	const u = "http://127.0.0.1:18765/nope.tif"
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"a URL named by every layer",
			fmt.Errorf("resolve: %w", fmt.Errorf("file %s: file %s: stat %s: http store: stat \"nope.tif\": %s: HTTP 404 Not Found", u, u, u, u)),
			`resolve: file: stat: http store: stat "nope.tif": ` + u + `: HTTP 404 Not Found`},
		{"net/http's error",
			fmt.Errorf("omero: list images: %w", &url.Error{Op: "Get", URL: "https://idr.example/api?x=1", Err: fmt.Errorf("dial tcp 127.0.0.1:9: %w", syscall.ECONNREFUSED)}),
			"omero: list images: GET https://idr.example/api?x=1: dial tcp 127.0.0.1:9: connection refused"},
		{"a refused proxy",
			&url.Error{Op: "Get", URL: "https://tinyurl.com/x", Err: &net.OpError{Op: "proxyconnect", Net: "tcp",
				Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}},
			"GET https://tinyurl.com/x: proxy 127.0.0.1:9: connection refused"},
		{"a path said twice",
			errors.New(`empiar/a.dm3: error: file demo: "empiar/a.dm3": file demo: "empiar/a.dm3": resolves outside the root: permission denied`),
			`error: file demo: "empiar/a.dm3": resolves outside the root: permission denied`},
		{"nothing to remove",
			errors.New(`corrupt: tiff "a.tif": page 3 at offset 1048576 lies past end of file`),
			`corrupt: tiff "a.tif": page 3 at offset 1048576 lies past end of file`},
		{"newlines folded", errors.New("line one\n  line two"), "line one line two"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Brief(c.err); got != c.want {
				t.Errorf("Brief:\n got %s\nwant %s", got, c.want)
			}
		})
	}
}
