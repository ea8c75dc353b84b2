package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/imgdataset/imgdataset/source"
)

// corruptWriter flips the first body byte of a response.
type corruptWriter struct {
	http.ResponseWriter
	done bool
}

func (c *corruptWriter) Write(p []byte) (int, error) {
	if !c.done && len(p) > 0 {
		c.done = true
		q := bytes.Clone(p)
		q[0] ^= 1
		return c.ResponseWriter.Write(q)
	}
	return c.ResponseWriter.Write(p)
}

// TestS3ETagIsMD5 downloads through the S3 driver from gofakes3, whose ETags
// are the MD5 of single-part uploads: good objects pass, and an object whose
// bytes are corrupted in transit is caught by the ETag alone.
func TestS3ETagIsMD5(t *testing.T) {
	be := s3mem.New()
	h := gofakes3.New(be).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/corrupt") {
			w = &corruptWriter{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	if err := be.CreateBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{"small": randBytes(1, 3000), "large": randBytes(2, 700<<10), "corrupt": randBytes(3, 5000)}
	var objs []source.Object
	for _, k := range []string{"small", "large", "corrupt"} {
		if _, err := be.PutObject("bkt", "root/"+k, map[string]string{}, bytes.NewReader(data[k]), int64(len(data[k])), nil); err != nil {
			t.Fatal(err)
		}
		// The ETag an S3 listing reports for a single-part upload.
		sum := md5.Sum(data[k])
		objs = append(objs, source.Object{StoreURL: "s3://bkt/root/", Key: k, Path: k, Size: int64(len(data[k])), ETag: `"` + hex.EncodeToString(sum[:]) + `"`})
	}
	out := t.TempDir()
	opt := testOptions(t, out)
	opt.Stores.S3Endpoint = srv.URL
	sum, err := Run(context.Background(), []Job{{Dataset: "d", Objects: objs}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	rs := sum.Datasets[0].Results
	for i, k := range []string{"small", "large"} {
		if rs[i].Err != nil {
			t.Errorf("%s: %v", k, rs[i].Err)
			continue
		}
		got, _ := os.ReadFile(filepath.Join(out, "d", k))
		if !bytes.Equal(got, data[k]) {
			t.Errorf("%s: content differs", k)
		}
	}
	if err := rs[2].Err; !errors.Is(err, errVerify) || !strings.Contains(err.Error(), "MD5") {
		t.Errorf("corrupt: err %v, want an MD5 mismatch", err)
	}
}
