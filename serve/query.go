package serve

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// maxIDLen bounds a volume id (ids are generated, so a longer one is never valid).
const maxIDLen = 200

// maxQueryList bounds the text of one coordinate list; 32 axes of 19 digits fit.
const maxQueryList = 1024

// httpError is an error with the status code it should be answered with.
type httpError struct {
	code int
	msg  string
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{code: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

// validID reports whether s can be a volume id: generated ids use only
// [A-Za-z0-9._-], and "." and ".." are never ids, so nothing that looks like a
// path step or an escape survives.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return false
		}
	}
	return true
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// splitPath turns an escaped URL path into its decoded segments. A segment
// that decodes to something containing a slash, a backslash or a NUL, or that
// is "." or "..", is rejected: ids and chunk keys never contain them, and a
// server must not let a client walk the path.
func splitPath(escaped string) ([]string, error) {
	p := strings.TrimPrefix(escaped, "/")
	if p == "" {
		return nil, nil
	}
	raw := strings.Split(p, "/")
	out := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil {
			return nil, badRequest("malformed path segment %q: %v", r, err)
		}
		if s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
			return nil, badRequest("path segment %q is not allowed", s)
		}
		out[i] = s
	}
	return out, nil
}

// parseInts parses exactly n comma-separated decimal integers (name is the
// query parameter, for messages).
func parseInts(name, s string, n int) ([]int64, error) {
	if len(s) > maxQueryList {
		return nil, badRequest("%s: %d characters is too long", name, len(s))
	}
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, badRequest("%s=%q: want %d comma-separated integers (one per axis), got %d", name, s, n, len(parts))
	}
	out := make([]int64, n)
	for i, p := range parts {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return nil, badRequest("%s=%q: item %d %q is not an integer", name, s, i, p)
		}
		out[i] = v
	}
	return out, nil
}

// blockRequest is a validated block query.
type blockRequest struct {
	box    volume.Box
	format string // "raw" or "npy"
	bytes  int64  // voxel bytes of the answer (without an npy header)
}

// single returns the one value of a query parameter; "" when absent.
func single(q url.Values, name string) (string, error) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", badRequest("%s given %d times", name, len(vs))
}

// parseBlockQuery validates origin, size and format against a volume's shape,
// dtype and a byte cap, before anything is allocated or read. origin defaults
// to the volume's first voxel; size is required.
func parseBlockQuery(q url.Values, in volume.Info, maxBytes int64) (blockRequest, error) {
	n := len(in.Shape)
	var req blockRequest
	fs, err := single(q, "format")
	if err != nil {
		return req, err
	}
	switch fs {
	case "", "raw":
		req.format = "raw"
	case "npy":
		req.format = "npy"
	default:
		return req, badRequest("format=%q: want raw or npy", fs)
	}
	ostr, err := single(q, "origin")
	if err != nil {
		return req, err
	}
	ss, err := single(q, "size")
	if err != nil {
		return req, err
	}
	if ss == "" {
		return req, badRequest("size is required: size=%s (one integer per axis %s)", example(in.Shape), axisNames(in))
	}
	origin := make([]int64, n)
	if ostr != "" {
		if origin, err = parseInts("origin", ostr, n); err != nil {
			return req, err
		}
	}
	size, err := parseInts("size", ss, n)
	if err != nil {
		return req, err
	}
	elem := int64(in.DType.Size())
	if elem <= 0 {
		return req, badRequest("dtype %q has no fixed element size", in.DType)
	}
	total := elem
	for i := range n {
		if origin[i] < 0 || origin[i] >= in.Shape[i] {
			return req, badRequest("origin %v is outside the volume (shape %v) on axis %d", origin, in.Shape, i)
		}
		if size[i] <= 0 {
			return req, badRequest("size %v: every size must be positive", size)
		}
		if size[i] > in.Shape[i]-origin[i] {
			return req, badRequest("box origin %v size %v reaches past the volume (shape %v) on axis %d", origin, size, in.Shape, i)
		}
		if total > maxBytes/size[i] {
			return req, badRequest("box size %v × %d bytes exceeds the %d-byte limit per request; ask for smaller blocks", size, elem, maxBytes)
		}
		total *= size[i]
	}
	if total > maxBytes {
		return req, badRequest("box size %v × %d bytes exceeds the %d-byte limit per request; ask for smaller blocks", size, elem, maxBytes)
	}
	req.box = volume.NewBox(origin, size)
	req.bytes = total
	return req, nil
}

// parseChunkKey parses a zarr v2 chunk key "i.j.k" (one index per axis; "0" for
// a 0-d array) and checks it against the chunk grid.
func parseChunkKey(key string, grid []int64) ([]int64, error) {
	if len(grid) == 0 {
		if key == "0" {
			return nil, nil
		}
		return nil, notFound("chunk %q: a 0-d array has the single chunk \"0\"", key)
	}
	if len(key) > maxQueryList {
		return nil, notFound("chunk key of %d characters", len(key))
	}
	parts := strings.Split(key, ".")
	if len(parts) != len(grid) {
		return nil, notFound("chunk %q: want %d dot-separated indices", key, len(grid))
	}
	idx := make([]int64, len(grid))
	for i, p := range parts {
		// Only plain decimal digits: "+1", "01" or "1e2" would be other names
		// for the same chunk and break caching.
		if p == "" || len(p) > 19 || (len(p) > 1 && p[0] == '0') || strings.TrimLeft(p, "0123456789") != "" {
			return nil, notFound("chunk %q: index %q is not a decimal index", key, p)
		}
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v >= grid[i] {
			return nil, notFound("chunk %q is outside the chunk grid %v", key, grid)
		}
		idx[i] = v
	}
	return idx, nil
}

func example(shape []int64) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = strconv.FormatInt(min(s, 64), 10)
	}
	return strings.Join(parts, ",")
}

func axisNames(in volume.Info) string {
	names := make([]string, len(in.Axes))
	for i, a := range in.Axes {
		names[i] = a.Name
	}
	return "(" + strings.Join(names, ",") + ")"
}

func joinInts(v []int64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(parts, ",")
}
