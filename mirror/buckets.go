package mirror

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds what the S3 and GCS mirrors share: the in-memory buckets,
// one listing walk with delimiters and resumption, and byte serving with one
// Range and If-None-Match. They are small on purpose: they implement exactly
// the anonymous read requests store/s3.go, store/gcs.go and the http driver
// send (path-style, see doc.go), nothing that writes, signs or versions.

// bucketTime is the fixed upload time of every bucket object.
var bucketTime = time.Date(2023, 5, 4, 12, 0, 0, 0, time.UTC)

// bucketObject is one stored object with the checksums both services report.
type bucketObject struct {
	key    string
	data   []byte
	md5    [md5.Size]byte
	crc32c uint32
}

// md5Hex is the object's MD5 as S3 (and the GCS XML API) put it in an ETag.
func (o *bucketObject) md5Hex() string { return hex.EncodeToString(o.md5[:]) }

// md5B64 and crc32cB64 are the checksums as GCS spells them (base64; CRC32C
// big-endian), in md5Hash/crc32c and x-goog-hash.
func (o *bucketObject) md5B64() string { return base64.StdEncoding.EncodeToString(o.md5[:]) }

func (o *bucketObject) crc32cB64() string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], o.crc32c)
	return base64.StdEncoding.EncodeToString(b[:])
}

// bucket is one bucket: its objects and their keys in byte order, which is
// the order both services list in.
type bucket struct {
	keys []string
	objs map[string]*bucketObject
}

// buckets maps a bucket name to its content. It is read-only once built, so
// handlers share it without locking.
type buckets map[string]*bucket

// newBuckets sorts "bucket/key" names into buckets. The named buckets exist
// even when empty. what names the service in errors.
func newBuckets(objs map[string][]byte, what string, empty ...string) (buckets, error) {
	bs := buckets{}
	for _, b := range empty {
		bs[b] = &bucket{objs: map[string]*bucketObject{}}
	}
	for name, data := range objs {
		b, key, ok := strings.Cut(name, "/")
		if !ok || b == "" || key == "" {
			return nil, fmt.Errorf("mirror: %s object %q is not bucket/key", what, name)
		}
		bk := bs[b]
		if bk == nil {
			bk = &bucket{objs: map[string]*bucketObject{}}
			bs[b] = bk
		}
		bk.keys = append(bk.keys, key)
		bk.objs[key] = &bucketObject{key: key, data: data, md5: md5.Sum(data), crc32c: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))}
	}
	for _, bk := range bs {
		sort.Strings(bk.keys)
	}
	return bs, nil
}

// listEntry is one line of a listing: an object, or (obj nil) a common
// prefix standing for every key below it.
type listEntry struct {
	name string
	obj  *bucketObject // nil for a common prefix
}

// list returns at most limit entries under prefix, in byte order, after the
// entry named after (exclusive; "" starts at the beginning). With a delimiter,
// keys whose remainder after prefix contains it roll up into one common
// prefix ending with it, as both services do. more reports whether entries
// remain, so a full last page is not called truncated.
//
// A resumption point is a name only, as in GCS page tokens: it is a common
// prefix exactly when its remainder after prefix contains the delimiter (an
// object key listed as such never does), and then every key below it was
// already accounted for.
func (b *bucket) list(prefix, delim, after string, limit int) (out []listEntry, more bool) {
	if limit <= 0 {
		return nil, false
	}
	afterDir := after != "" && delim != "" && strings.HasPrefix(after, prefix) && strings.Contains(after[len(prefix):], delim)
	i := sort.SearchStrings(b.keys, prefix)
	if after != "" {
		i = max(i, sort.Search(len(b.keys), func(j int) bool { return b.keys[j] > after }))
	}
	for i < len(b.keys) && strings.HasPrefix(b.keys[i], prefix) {
		k := b.keys[i]
		if afterDir && strings.HasPrefix(k, after) {
			i = skipPrefix(b.keys, i, after)
			continue
		}
		if delim != "" {
			if j := strings.Index(k[len(prefix):], delim); j >= 0 {
				cp := k[:len(prefix)+j+len(delim)]
				if len(out) == limit {
					return out, true
				}
				out = append(out, listEntry{name: cp})
				i = skipPrefix(b.keys, i, cp)
				continue
			}
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, listEntry{name: k, obj: b.objs[k]})
		i++
	}
	return out, false
}

// skipPrefix returns the index of the first key at or after i that does not
// start with p; keys[i] starts with p, and keys sharing a prefix are
// contiguous in sorted order.
func skipPrefix(keys []string, i int, p string) int {
	return i + sort.Search(len(keys)-i, func(j int) bool { return !strings.HasPrefix(keys[i+j], p) })
}

// byteRange is a satisfiable single range [start, end] of an object.
type byteRange struct{ start, end int64 }

// parseByteRange interprets a Range header for an object of size bytes. It
// accepts one range in any RFC 9110 form (first-last, first-, -suffix) and
// clamps the end to the object. ok is false when the header is malformed,
// asks for several ranges, or cannot be satisfied; the mirrors then answer
// 416. (The real services ignore a malformed Range and send everything; the
// mirror refuses it so a client bug shows instead of a silent full download.)
func parseByteRange(h string, size int64) (r byteRange, ok bool) {
	unit, spec, found := strings.Cut(strings.TrimSpace(h), "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(spec, ",") {
		return r, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return r, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, err := parseDecimal(last)
		if err != nil || n == 0 || size == 0 {
			return r, false
		}
		return byteRange{max(0, size-n), size - 1}, true
	}
	start, err := parseDecimal(first)
	if err != nil || start >= size {
		return r, false
	}
	end := size - 1
	if last != "" {
		e, err := parseDecimal(last)
		if err != nil || e < start {
			return r, false
		}
		end = min(e, size-1)
	}
	return byteRange{start, end}, true
}

// parseDecimal parses digits only: strconv would take a sign.
func parseDecimal(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a decimal: %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// serveObject answers GET or HEAD for o after the caller set the headers that
// describe it (ETag, Last-Modified, Content-Type, checksums). It honours
// If-None-Match (304) and one Range (206, with the range on HEAD too, as S3
// does); an unusable Range gets 416 with Content-Range "bytes */size" and the
// body badRange builds in the service's own error format.
func serveObject(w http.ResponseWriter, r *http.Request, o *bucketObject, badRange func(w http.ResponseWriter, r *http.Request)) {
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, h.Get("ETag")) {
		h.Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	size := int64(len(o.data))
	body, status := o.data, http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" {
		br, ok := parseByteRange(rh, size)
		if !ok {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			badRange(w, r)
			return
		}
		body, status = o.data[br.start:br.end+1], http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", br.start, br.end, size))
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// etagListMatches is the weak comparison If-None-Match uses.
func etagListMatches(list, etag string) bool {
	if etag == "" {
		return false
	}
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.TrimPrefix(v, "W/") == etag {
			return true
		}
	}
	return false
}
