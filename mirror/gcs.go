package mirror

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// gcsHandler is anonymous Google Cloud Storage for public reads, as
// store/gcs.go and the http driver use it:
//
//	GET /storage/v1/b/<bucket>/o?prefix=&delimiter=&pageToken=&maxResults=   objects.list
//	GET /storage/v1/b/<bucket>/o/<object, "/" as %2F>                         objects.get
//	GET|HEAD /storage/v1/b/<bucket>/o/<object>?alt=media                      media download
//	GET|HEAD /download/storage/v1/b/<bucket>/o/<object>?alt=media             media download (mediaLink)
//	GET|HEAD /<bucket>/<object>                                               XML-API read, the public URL form
//
// Downloads take one Range and If-None-Match. Shapes follow
// wire-samples/gcs-*.json and gcs-exchanges.http.txt: JSON errors on the JSON
// API, XML errors on the XML API, x-goog-hash/-generation/-stored-* headers on
// every read. The object resource's etag is GCS's opaque form (generation and
// metageneration); the XML API's ETag is the quoted MD5, as recorded. JSON
// media downloads send the resource's etag, so that a download and objects.get
// agree (no real media exchange was captured to say otherwise).
type gcsHandler struct{ buckets buckets }

// gcsMaxResults is the default and largest objects.list page.
const gcsMaxResults = 1000

// newGCS builds the GCS mirror over "bucket/key" objects; GCSBucket always exists.
func newGCS(objs map[string][]byte) (http.Handler, error) {
	bs, err := newBuckets(objs, "GCS", GCSBucket)
	if err != nil {
		return nil, err
	}
	return gcsHandler{bs}, nil
}

func (g gcsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	jsonAPI := strings.HasPrefix(p, "/storage/v1/") || strings.HasPrefix(p, "/download/storage/v1/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		if jsonAPI {
			gcsJSONError(w, r, http.StatusMethodNotAllowed, "methodNotAllowed", "this mirror serves reads only")
		} else {
			gcsXMLError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", "")
		}
		return
	}
	if !jsonAPI {
		g.xmlRead(w, r)
		return
	}
	rest, media := strings.CutPrefix(p, "/download")
	rest, _ = strings.CutPrefix(rest, "/storage/v1/b/")
	name, rest, _ := strings.Cut(rest, "/")
	what, obj, _ := strings.Cut(rest, "/")
	if name == "" || what != "o" {
		gcsJSONError(w, r, http.StatusNotImplemented, "notImplemented", "this mirror serves objects.list, objects.get and media downloads only")
		return
	}
	b := g.buckets[name]
	if b == nil {
		gcsJSONError(w, r, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return
	}
	if obj == "" {
		if media || !strings.HasSuffix(p, "/o") {
			gcsJSONError(w, r, http.StatusNotFound, "notFound", "No such object: "+name+"/")
			return
		}
		g.list(w, r, name, b)
		return
	}
	o := b.objs[obj]
	if o == nil || !gcsGenerationMatches(r) {
		gcsJSONError(w, r, http.StatusNotFound, "notFound", "No such object: "+name+"/"+obj)
		return
	}
	switch alt := r.URL.Query().Get("alt"); {
	case alt == "media":
		w.Header().Set("ETag", `"`+gcsETag()+`"`)
		gcsDownload(w, r, o, func(w http.ResponseWriter, r *http.Request) {
			gcsJSONError(w, r, http.StatusRequestedRangeNotSatisfiable, "requestedRangeNotSatisfiable", "Request range not satisfiable: "+r.Header.Get("Range"))
		})
	case media:
		gcsJSONError(w, r, http.StatusBadRequest, "invalid", "a media download needs alt=media")
	case alt == "" || alt == "json":
		gcsWriteJSON(w, r, http.StatusOK, gcsResource(r, name, o))
	default:
		gcsJSONError(w, r, http.StatusBadRequest, "invalid", "Invalid value for alt: "+alt)
	}
}

// xmlRead serves GET|HEAD /<bucket>/<object>, the URL form Neuroglancer and
// browsers read public objects with.
func (g gcsHandler) xmlRead(w http.ResponseWriter, r *http.Request) {
	name, obj, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if name == "" || obj == "" {
		gcsXMLError(w, r, http.StatusNotImplemented, "NotImplemented", "this mirror serves object reads only on the XML API", "")
		return
	}
	b := g.buckets[name]
	if b == nil {
		gcsXMLError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.", "")
		return
	}
	o := b.objs[obj]
	if o == nil || !gcsGenerationMatches(r) {
		gcsXMLError(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "No such object: "+name+"/"+obj)
		return
	}
	w.Header().Set("ETag", `"`+o.md5Hex()+`"`)
	gcsDownload(w, r, o, func(w http.ResponseWriter, r *http.Request) {
		gcsXMLError(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range cannot be satisfied.", r.Header.Get("Range"))
	})
}

// gcsGenerationMatches reports whether the request asks for no particular
// generation or for the one every mirror object has (mediaLink names it); a
// request for another generation names an object version that does not exist.
func gcsGenerationMatches(r *http.Request) bool {
	gen := r.URL.Query().Get("generation")
	return gen == "" || gen == strconv.FormatInt(bucketTime.UnixMicro(), 10)
}

// gcsDownload sends an object with the headers every GCS read carries (see
// wire-samples/gcs-exchanges.http.txt); the caller set the ETag.
func gcsDownload(w http.ResponseWriter, r *http.Request, o *bucketObject, badRange func(http.ResponseWriter, *http.Request)) {
	h := w.Header()
	h.Set("Content-Type", contentType(o.key))
	h.Set("Last-Modified", bucketTime.Format(http.TimeFormat))
	h.Set("X-Goog-Generation", strconv.FormatInt(bucketTime.UnixMicro(), 10))
	h.Set("X-Goog-Metageneration", "1")
	h.Add("X-Goog-Hash", "crc32c="+o.crc32cB64())
	h.Add("X-Goog-Hash", "md5="+o.md5B64())
	h.Set("X-Goog-Storage-Class", "STANDARD")
	h.Set("X-Goog-Stored-Content-Encoding", "identity")
	h.Set("X-Goog-Stored-Content-Length", strconv.Itoa(len(o.data)))
	serveObject(w, r, o, badRange)
}

// list answers objects.list. Only the parameters store/gcs.go sends change the
// answer; the empty ones the Go client adds (wire-samples) are accepted, and
// filters this mirror does not implement are refused rather than ignored.
func (g gcsHandler) list(w http.ResponseWriter, r *http.Request, name string, b *bucket) {
	q := r.URL.Query()
	for _, k := range []string{"startOffset", "endOffset", "matchGlob"} {
		if q.Get(k) != "" {
			gcsJSONError(w, r, http.StatusNotImplemented, "notImplemented", "this mirror does not implement "+k)
			return
		}
	}
	limit := gcsMaxResults
	if v := q.Get("maxResults"); v != "" {
		n, err := parseDecimal(v)
		if err != nil {
			gcsJSONError(w, r, http.StatusBadRequest, "invalid", "Invalid value for maxResults: "+v)
			return
		}
		limit = int(min(n, gcsMaxResults))
	}
	after := ""
	if t := q.Get("pageToken"); t != "" {
		var ok bool
		if after, ok = decodeGCSToken(t); !ok {
			gcsJSONError(w, r, http.StatusBadRequest, "invalid", "Invalid pageToken: "+t)
			return
		}
	}
	entries, more := b.list(q.Get("prefix"), q.Get("delimiter"), after, limit)
	res := gcsList{Kind: "storage#objects"}
	for _, e := range entries {
		if e.obj == nil {
			res.Prefixes = append(res.Prefixes, e.name)
		} else {
			res.Items = append(res.Items, gcsResource(r, name, e.obj))
		}
	}
	if more {
		res.NextPageToken = encodeGCSToken(entries[len(entries)-1].name)
	}
	gcsWriteJSON(w, r, http.StatusOK, res)
}

// GCS page tokens are base64 of a protobuf holding the last name listed
// (field 1, length-delimited): "ChpibG9i…" in wire-samples is 0x0a, 0x1a,
// "blob-for-delimiters-/dir1/". The mirror issues and reads the same form.
func encodeGCSToken(last string) string {
	b := append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(last)))...)
	return base64.StdEncoding.EncodeToString(append(b, last...))
}

func decodeGCSToken(t string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(t)
	if err != nil || len(b) < 2 || b[0] != 0x0a {
		return "", false
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n == 0 || n != uint64(len(b)-1-k) || !utf8.Valid(b[1+k:]) {
		return "", false
	}
	return string(b[1+k:]), true
}

// gcsETag is the object resource's etag: base64 of a protobuf holding the
// generation (field 1) and metageneration 1 (field 2), the form of the
// recorded "CJiht/CIreACEAE=". Every mirror object has the same generation.
func gcsETag() string {
	b := append([]byte{0x08}, binary.AppendUvarint(nil, uint64(bucketTime.UnixMicro()))...)
	return base64.StdEncoding.EncodeToString(append(b, 0x10, 0x01))
}

// gcsList is an objects.list answer, keys in the order GCS sends them.
type gcsList struct {
	Kind          string        `json:"kind"`
	NextPageToken string        `json:"nextPageToken,omitempty"`
	Prefixes      []string      `json:"prefixes,omitempty"`
	Items         []gcsObjectV1 `json:"items,omitempty"`
}

// gcsObjectV1 is the object resource with the fields of the recorded listings.
type gcsObjectV1 struct {
	Kind                    string `json:"kind"`
	ID                      string `json:"id"`
	SelfLink                string `json:"selfLink"`
	MediaLink               string `json:"mediaLink"`
	Name                    string `json:"name"`
	Bucket                  string `json:"bucket"`
	Generation              string `json:"generation"`
	Metageneration          string `json:"metageneration"`
	ContentType             string `json:"contentType"`
	StorageClass            string `json:"storageClass"`
	Size                    string `json:"size"`
	MD5Hash                 string `json:"md5Hash"`
	CRC32C                  string `json:"crc32c"`
	ETag                    string `json:"etag"`
	TimeCreated             string `json:"timeCreated"`
	Updated                 string `json:"updated"`
	TimeStorageClassUpdated string `json:"timeStorageClassUpdated"`
	TimeFinalized           string `json:"timeFinalized"`
}

// gcsResource describes o; its links point at the mirror the request reached.
func gcsResource(r *http.Request, bucketName string, o *bucketObject) gcsObjectV1 {
	gen := strconv.FormatInt(bucketTime.UnixMicro(), 10)
	t := bucketTime.Format("2006-01-02T15:04:05.000Z")
	esc := url.PathEscape(o.key)
	base := "http://" + r.Host
	return gcsObjectV1{
		Kind: "storage#object", ID: bucketName + "/" + o.key + "/" + gen,
		SelfLink:  base + "/storage/v1/b/" + bucketName + "/o/" + esc,
		MediaLink: base + "/download/storage/v1/b/" + bucketName + "/o/" + esc + "?generation=" + gen + "&alt=media",
		Name:      o.key, Bucket: bucketName, Generation: gen, Metageneration: "1",
		ContentType: contentType(o.key), StorageClass: "STANDARD", Size: strconv.Itoa(len(o.data)),
		MD5Hash: o.md5B64(), CRC32C: o.crc32cB64(), ETag: gcsETag(),
		TimeCreated: t, Updated: t, TimeStorageClassUpdated: t, TimeFinalized: t,
	}
}

// gcsWriteJSON sends a JSON API answer with GCS's Content-Type.
func gcsWriteJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSONType(w, r, status, "application/json; charset=UTF-8", v)
}

// gcsJSONError sends the JSON API's error document; reason is the machine
// code (notFound, invalid, …) that store.parseErrorBody reports.
func gcsJSONError(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	type detail struct {
		Message string `json:"message"`
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
	}
	var body struct {
		Error struct {
			Code    int      `json:"code"`
			Message string   `json:"message"`
			Errors  []detail `json:"errors"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = status, msg
	body.Error.Errors = []detail{{Message: msg, Domain: "global", Reason: reason}}
	gcsWriteJSON(w, r, status, body)
}

// gcsXMLError sends the XML API's error document
// (wire-samples/gcs-xmlapi-get-404-nosuchkey.xml).
func gcsXMLError(w http.ResponseWriter, r *http.Request, status int, code, msg, details string) {
	var buf bytes.Buffer
	buf.WriteString("<?xml version='1.0' encoding='UTF-8'?>")
	err := xml.NewEncoder(&buf).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
		Details string `xml:",omitempty"`
	}{Code: code, Message: msg, Details: details})
	if err != nil {
		http.Error(w, fmt.Sprintf("mirror: encode GCS XML error: %v", err), http.StatusInternalServerError)
		return
	}
	writeBody(w, r, status, "application/xml; charset=UTF-8", buf.Bytes())
}
