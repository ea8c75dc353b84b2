package mirror

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// bucketTime is the fixed upload time of every bucket object.
var bucketTime = time.Date(2023, 5, 4, 12, 0, 0, 0, time.UTC)

// splitBucketKeys checks "bucket/key" names and returns them sorted.
func splitBucketKeys(objs map[string][]byte, what string) ([][2]string, error) {
	var out [][2]string
	for k := range objs {
		b, key, ok := strings.Cut(k, "/")
		if !ok || b == "" || key == "" {
			return nil, fmt.Errorf("mirror: %s object %q is not bucket/key", what, k)
		}
		out = append(out, [2]string{b, key})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0]+"/"+out[i][1] < out[j][0]+"/"+out[j][1] })
	return out, nil
}

// newS3 is anonymous path-style S3 (ListObjectsV2, ranged GetObject,
// HeadObject, If-None-Match) by gofakes3 over its in-memory backend. Objects
// are typed binary/octet-stream, as OpenOrganelle's are reported to be.
func newS3(objs map[string][]byte) (http.Handler, error) {
	keys, err := splitBucketKeys(objs, "S3")
	if err != nil {
		return nil, err
	}
	be := s3mem.New(s3mem.WithTimeSource(gofakes3.FixedTimeSource(bucketTime)), s3mem.WithVersionSeed(1))
	buckets := map[string]bool{S3Bucket: true}
	for _, bk := range keys {
		buckets[bk[0]] = true
	}
	for b := range buckets {
		if err := be.CreateBucket(b); err != nil {
			return nil, fmt.Errorf("mirror: S3 bucket %s: %w", b, err)
		}
	}
	for _, bk := range keys {
		data := objs[bk[0]+"/"+bk[1]]
		meta := map[string]string{
			"Content-Type":  "binary/octet-stream",
			"Last-Modified": bucketTime.Format(http.TimeFormat),
		}
		if _, err := be.PutObject(bk[0], bk[1], meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
			return nil, fmt.Errorf("mirror: S3 object %s/%s: %w", bk[0], bk[1], err)
		}
	}
	fake := gofakes3.New(be,
		gofakes3.WithTimeSource(gofakes3.FixedTimeSource(bucketTime)),
		gofakes3.WithTimeSkewLimit(0), // anonymous requests carry no signed date
		gofakes3.WithoutVersioning(),
	)
	return fake.Server(), nil
}

// newGCS is the GCS JSON API (objects.list with pageToken/maxResults, media
// download) and the storage.googleapis.com/<bucket>/<object> read form, by
// fake-gcs-server without its own listener. Its public host is set to the
// mirror's host:port so path-style reads route to the download handler
// (otherwise its Host-based bucket routes would take "127.0.0.1" for a
// bucket). Range works on every download route (/<bucket>/<object>,
// /storage/v1/b/<bucket>/o/<object>?alt=media and /download/storage/v1/…);
// fake-gcs-server ignores If-None-Match, so notModified adds it.
func newGCS(objs map[string][]byte, hostPort string) (http.Handler, func(), error) {
	keys, err := splitBucketKeys(objs, "GCS")
	if err != nil {
		return nil, nil, err
	}
	var initial []fakestorage.Object
	for _, bk := range keys {
		initial = append(initial, fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{
				BucketName: bk[0], Name: bk[1], ContentType: contentType(bk[1]),
				Created: bucketTime, Updated: bucketTime, Generation: bucketTime.UnixMicro(),
			},
			Content: objs[bk[0]+"/"+bk[1]],
		})
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		InitialObjects: initial,
		NoListener:     true,
		Scheme:         "http",
		Host:           "127.0.0.1",
		PublicHost:     hostPort,
		ExternalURL:    "http://" + hostPort,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mirror: GCS server: %w", err)
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: GCSBucket})
	return notModified(srv.HTTPHandler()), srv.Stop, nil
}

// notModified answers 304 to a GET/HEAD whose If-None-Match matches the ETag
// the wrapped handler sends with a 200 or 206.
func notModified(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inm := r.Header.Get("If-None-Match")
		if inm == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&nmWriter{ResponseWriter: w, inm: inm}, r)
	})
}

type nmWriter struct {
	http.ResponseWriter
	inm     string
	decided bool
	drop    bool
}

func (n *nmWriter) WriteHeader(code int) {
	if n.decided {
		return
	}
	n.decided = true
	h := n.Header()
	if (code == http.StatusOK || code == http.StatusPartialContent) && etagListMatches(n.inm, h.Get("ETag")) {
		n.drop = true
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Type", "Content-Encoding"} {
			h.Del(k)
		}
		n.ResponseWriter.WriteHeader(http.StatusNotModified)
		return
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *nmWriter) Write(p []byte) (int, error) {
	if !n.decided {
		n.WriteHeader(http.StatusOK)
	}
	if n.drop {
		return len(p), nil
	}
	return n.ResponseWriter.Write(p)
}

func (n *nmWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }

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
