package mirror

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// s3Handler is anonymous path-style S3 for public reads, as store/s3.go uses
// it: ListObjectsV2 (GET /<bucket>?list-type=2 with prefix, delimiter,
// continuation-token, max-keys), GetObject and HeadObject (GET|HEAD
// /<bucket>/<key> with one Range and If-None-Match). Answers follow
// wire-samples/s3-*.xml and s3-exchanges.http.txt. Objects are typed
// binary/octet-stream, as OpenOrganelle's are reported to be. Virtual-hosted
// requests (<bucket>.s3.amazonaws.com) do not occur: the driver only sends
// path-style ones to a custom endpoint, and a loopback address has no
// subdomains.
type s3Handler struct{ buckets buckets }

// s3MaxKeys is S3's default and largest page.
const s3MaxKeys = 1000

// newS3 builds the S3 mirror over "bucket/key" objects; S3Bucket always exists.
func newS3(objs map[string][]byte) (http.Handler, error) {
	bs, err := newBuckets(objs, "S3", S3Bucket)
	if err != nil {
		return nil, err
	}
	return s3Handler{bs}, nil
}

func (s s3Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s3WriteXML(w, r, http.StatusMethodNotAllowed, s3ErrorBody{Code: "MethodNotAllowed", Message: "The specified method is not allowed against this resource."})
		return
	}
	name, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if name == "" {
		// ListBuckets needs credentials; anonymous callers are refused.
		s3WriteXML(w, r, http.StatusForbidden, s3ErrorBody{Code: "AccessDenied", Message: "Access Denied"})
		return
	}
	b := s.buckets[name]
	if b == nil {
		s3WriteXML(w, r, http.StatusNotFound, s3ErrorBody{Code: "NoSuchBucket", Message: "The specified bucket does not exist", BucketName: name})
		return
	}
	if key == "" {
		s.bucketRequest(w, r, name, b)
		return
	}
	o := b.objs[key]
	if o == nil {
		s3WriteXML(w, r, http.StatusNotFound, s3ErrorBody{Code: "NoSuchKey", Message: "The specified key does not exist.", Key: key})
		return
	}
	h := w.Header()
	h.Set("ETag", `"`+o.md5Hex()+`"`)
	h.Set("Last-Modified", bucketTime.Format(http.TimeFormat))
	h.Set("Content-Type", "binary/octet-stream")
	serveObject(w, r, o, func(w http.ResponseWriter, r *http.Request) {
		s3WriteXML(w, r, http.StatusRequestedRangeNotSatisfiable, s3ErrorBody{
			Code: "InvalidRange", Message: "The requested range is not satisfiable",
			RangeRequested: r.Header.Get("Range"), ActualObjectSize: strconv.Itoa(len(o.data)),
		})
	})
}

// bucketRequest answers requests on the bucket itself: HeadBucket and
// ListObjectsV2. The older ListObjects (no list-type=2) is refused by name,
// since nothing here sends it.
func (s s3Handler) bucketRequest(w http.ResponseWriter, r *http.Request, name string, b *bucket) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	q := r.URL.Query()
	if q.Get("list-type") != "2" {
		s3WriteXML(w, r, http.StatusNotImplemented, s3ErrorBody{Code: "NotImplemented", Message: "this mirror serves ListObjectsV2 (list-type=2) only"})
		return
	}
	if q.Get("encoding-type") != "" {
		s3WriteXML(w, r, http.StatusNotImplemented, s3ErrorBody{Code: "NotImplemented", Message: "this mirror does not encode keys (encoding-type)"})
		return
	}
	maxKeys := s3MaxKeys
	if v := q.Get("max-keys"); v != "" {
		n, err := parseDecimal(v)
		if err != nil {
			s3WriteXML(w, r, http.StatusBadRequest, s3ErrorBody{Code: "InvalidArgument", Message: "Provided max-keys not an integer or within integer range"})
			return
		}
		maxKeys = int(min(n, s3MaxKeys))
	}
	prefix, delim, token := q.Get("prefix"), q.Get("delimiter"), q.Get("continuation-token")
	after := ""
	if token != "" {
		var ok bool
		if after, ok = decodeS3Token(token); !ok {
			s3WriteXML(w, r, http.StatusBadRequest, s3ErrorBody{Code: "InvalidArgument", Message: "The continuation token provided is incorrect"})
			return
		}
	}
	entries, more := b.list(prefix, delim, after, maxKeys)
	res := s3ListResult{Name: name, Prefix: prefix, ContinuationToken: token, KeyCount: len(entries), MaxKeys: maxKeys, Delimiter: delim, IsTruncated: more}
	for _, e := range entries {
		if e.obj == nil {
			res.CommonPrefixes = append(res.CommonPrefixes, s3Prefix{e.name})
			continue
		}
		res.Contents = append(res.Contents, s3Content{
			Key: e.name, LastModified: bucketTime.Format("2006-01-02T15:04:05.000Z"),
			ETag: `"` + e.obj.md5Hex() + `"`, Size: int64(len(e.obj.data)), StorageClass: "STANDARD",
		})
	}
	if more {
		res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(entries[len(entries)-1].name))
	}
	s3WriteXML(w, r, http.StatusOK, res)
}

// decodeS3Token reads a continuation token this mirror issued: the base64 of
// the last name listed. Real tokens are opaque too, and as here carry "+",
// "/" and "=", which tests the client's query encoding.
func decodeS3Token(t string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(t)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// s3ListResult is a ListObjectsV2 answer, elements in the order S3 sends them.
type s3ListResult struct {
	XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string
	Prefix                string
	ContinuationToken     string `xml:",omitempty"`
	NextContinuationToken string `xml:",omitempty"`
	KeyCount              int
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []s3Content
	CommonPrefixes        []s3Prefix
}

type s3Content struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
}

type s3Prefix struct {
	Prefix string
}

// s3ErrorBody is S3's XML error (wire-samples/s3-getobject-404-nosuchkey.xml);
// the optional fields name what the error is about.
type s3ErrorBody struct {
	XMLName          xml.Name `xml:"Error"`
	Code             string
	Message          string
	Key              string `xml:",omitempty"`
	BucketName       string `xml:",omitempty"`
	RangeRequested   string `xml:",omitempty"`
	ActualObjectSize string `xml:",omitempty"`
}

// s3WriteXML sends v as S3 does: an XML declaration, then the document. HEAD
// gets the status and headers only, as from S3.
func s3WriteXML(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, "mirror: encode S3 XML: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, r, status, "application/xml", buf.Bytes())
}
