package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// TestCorruptChunk502 cuts a stored chunk of a served zarr after the server
// opened it: a block or zarr chunk that needs it answers 502 Bad Gateway with
// a short message that names no local path; other volumes still answer 200.
func TestCorruptChunk502(t *testing.T) {
	dir := builtDir(t)
	_, ts := testServer(t, dir, Options{MaxBytes: builtMaxBytes})
	vs := volumesOf(t, ts.URL)
	zv := find(t, vs, "uint16", 3)
	chunk := filepath.Join(dir, "vol.zarr", "s0", "0", "0", "0")
	fi, err := os.Stat(chunk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(chunk, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{zv.BlockURL + "?origin=0,0,0&size=1,1,1", zv.ZarrArrayURL + "/0.0.0"} {
		resp, body := get(t, ts.URL+path)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "corrupt") {
			t.Errorf("%s: %s %q, want 502 saying corrupt", path, resp.Status, body)
		}
		if strings.Contains(string(body), dir) || strings.Contains(string(body), "s0/0/0/0") {
			t.Errorf("%s: message %q names local paths", path, body)
		}
	}
	tv := find(t, vs, "uint8", 3)
	if resp, body := get(t, ts.URL+tv.BlockURL+"?origin=0,0,0&size=1,1,1"); resp.StatusCode != http.StatusOK {
		t.Errorf("undamaged volume: %s %q", resp.Status, body)
	}
}

// failingFormat opens "FAIL" objects as one volume whose reads fail with err.
type failingFormat struct{ err error }

func (f failingFormat) Name() string { return "failing" }

func (f failingFormat) Detect(_ context.Context, _ *store.Store, _ string, head []byte) bool {
	return bytes.HasPrefix(head, []byte("FAIL"))
}

func (f failingFormat) Open(_ context.Context, _ *store.Store, key string) ([]volume.Volume, error) {
	return []volume.Volume{failingVolume{err: f.err, info: volume.Info{Name: key, Shape: []int64{4, 4}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "y", Size: 4, Scale: 1}, {Name: "x", Size: 4, Scale: 1}}}}}, nil
}

type failingVolume struct {
	err  error
	info volume.Info
}

func (v failingVolume) Info() volume.Info { return v.info }

func (v failingVolume) ReadRegion(context.Context, volume.Box, []byte) error { return v.err }

// TestReadFailureStatus checks the status of a failed read by its cause:
// corrupt data is 502, any other failure stays 500, and neither carries the
// error's text (it names local files).
func TestReadFailureStatus(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		code int
	}{
		{"corrupt", fmt.Errorf("tiff %q: page 3 strip 0 lies past end of file: %w", "/srv/private/a.tif", format.ErrCorrupt), http.StatusBadGateway},
		{"store failure", fmt.Errorf("read %q: %w", "/srv/private/a.tif", errors.New("input/output error")), http.StatusInternalServerError},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a.fail"), []byte("FAIL"), 0o644); err != nil {
				t.Fatal(err)
			}
			rows := []map[string]any{{"dataset": "d", "local_path": "a.fail", "array": "a.fail", "status": "ok", "dtype": "uint8", "shape_y": 4, "shape_x": 4}}
			b, err := json.Marshal(map[string]any{"schema_version": 1, "records": rows})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, catalogFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			srv, ts := testServer(t, dir, Options{Formats: format.NewRegistry(failingFormat{err: c.err})})
			if len(srv.Volumes()) != 1 {
				t.Fatalf("%d volumes served, want 1 (skipped: %v)", len(srv.Volumes()), srv.Skipped())
			}
			v := srv.Volumes()[0]
			for _, path := range []string{v.BlockURL + "?size=2,2", v.ZarrArrayURL + "/0.0"} {
				resp, body := get(t, ts.URL+path)
				if resp.StatusCode != c.code {
					t.Errorf("%s: %s %q, want %d", path, resp.Status, body, c.code)
				}
				if strings.Contains(string(body), "/srv/private") {
					t.Errorf("%s: %d message %q names a local path", path, c.code, body)
				}
			}
		})
	}
}
