package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// fakeFormat opens any object whose content starts with "FAKE" as the
// volumes named on its first line; their reads block until the request is
// cancelled, and report that.
type fakeFormat struct {
	started   chan string
	cancelled chan error
}

func (f *fakeFormat) Name() string { return "fake" }

func (f *fakeFormat) Detect(_ context.Context, _ *store.Store, _ string, head []byte) bool {
	return bytes.HasPrefix(head, []byte("FAKE"))
}

func (f *fakeFormat) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	b, err := st.ReadAll(ctx, key, 1<<10)
	if err != nil {
		return nil, err
	}
	var vols []volume.Volume
	for _, name := range strings.Fields(strings.TrimPrefix(string(b), "FAKE")) {
		vols = append(vols, &blockingVolume{f: f, info: volume.Info{
			Name: key + "/" + name, Shape: []int64{4, 4, 4}, DType: volume.Uint8,
			Axes: []volume.Axis{{Name: "z", Size: 4, Scale: 1}, {Name: "y", Size: 4, Scale: 1}, {Name: "x", Size: 4, Scale: 1}},
		}})
	}
	return vols, nil
}

type blockingVolume struct {
	f    *fakeFormat
	info volume.Info
}

func (v *blockingVolume) Info() volume.Info { return v.info }

func (v *blockingVolume) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(v.info, box, dst); err != nil {
		return err
	}
	v.f.started <- v.info.Name
	<-ctx.Done()
	v.f.cancelled <- ctx.Err()
	return ctx.Err()
}

// fakeDir writes a catalog.json by hand, with rows the server must skip.
func fakeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"one.fake": "FAKE a", "two.fake": "FAKE a b"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := []map[string]any{
		{"dataset": "d", "local_path": "one.fake", "array": "a", "status": "ok", "dtype": "uint8", "shape_z": 4, "shape_y": 4, "shape_x": 4, "voxel_size_x_nm": 3.5, "voxel_size_source": "web page"},
		{"dataset": "d", "local_path": "two.fake", "array": "b", "status": "ok", "dtype": "uint8"},
		{"dataset": "d", "local_path": "two.fake", "array": "renamed", "status": "ok", "dtype": "uint8", "shape_z": 4, "shape_y": 4, "shape_x": 4},
		{"dataset": "d", "local_path": "broken.tif", "array": "x", "status": "error: truncated"},
		{"dataset": "d", "local_path": "../outside.fake", "array": "a", "status": "ok"},
		{"dataset": "d", "local_path": "/etc/passwd", "array": "a", "status": "ok"},
		{"dataset": "d", "local_path": "gone.fake", "array": "a", "status": "ok"},
	}
	b, err := json.Marshal(map[string]any{"schema_version": 1, "records": rows})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, catalogFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCatalogRows(t *testing.T) {
	ff := &fakeFormat{started: make(chan string, 1), cancelled: make(chan error, 1)}
	srv, err := Open(context.Background(), fakeDir(t), Options{Formats: format.NewRegistry(ff)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var got []string
	for _, v := range srv.Volumes() {
		got = append(got, v.Path+"#"+v.Array)
	}
	if strings.Join(got, " ") != "one.fake#a two.fake#b" {
		t.Errorf("served %v, want one.fake#a two.fake#b", got)
	}
	// Voxel sizes from the catalog row win over the file's placeholder scale.
	if a := srv.Volumes()[0].Axes[2]; a.VoxelSize == nil || *a.VoxelSize != 3.5 || a.Source != "web page" {
		t.Errorf("x axis %+v: want 3.5 nm from the web page", a)
	}
	if a := srv.Volumes()[0].Axes[0]; a.VoxelSize != nil {
		t.Errorf("z axis %+v: an uncalibrated axis has no voxel size", a)
	}
	reasons := map[string]string{}
	for _, s := range srv.Skipped() {
		reasons[s.Key] = s.Reason
	}
	for key, want := range map[string]string{
		"d/two.fake#renamed":  "no longer holds",
		"d/broken.tif#x":      "catalog status: error",
		"d/../outside.fake#a": "not a path inside",
		"d//etc/passwd#a":     "not a path inside",
		"d/gone.fake#a":       "open gone.fake",
	} {
		if !strings.Contains(reasons[key], want) {
			t.Errorf("skipped %s: reason %q, want %q (all: %v)", key, reasons[key], want, reasons)
		}
	}
}

// TestClientGoneCancelsRead checks that a client hanging up cancels the
// ReadRegion serving it.
func TestClientGoneCancelsRead(t *testing.T) {
	ff := &fakeFormat{started: make(chan string, 1), cancelled: make(chan error, 1)}
	srv, ts := testServer(t, fakeDir(t), Options{Formats: format.NewRegistry(ff)})
	v := srv.Volumes()[0]
	for _, path := range []string{v.BlockURL + "?size=2,2,2", v.ZarrArrayURL + "/0.0.0"} {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				err = errors.New(resp.Status)
			}
			done <- err
		}()
		select {
		case name := <-ff.started:
			if name != "one.fake/a" {
				t.Errorf("%s read %s", path, name)
			}
		case err := <-done:
			t.Fatalf("%s ended before any read: %v", path, err)
		}
		cancel()
		if err := <-ff.cancelled; !errors.Is(err, context.Canceled) {
			t.Errorf("%s: read ended with %v, want context.Canceled", path, err)
		}
		if err := <-done; err == nil {
			t.Errorf("%s: the cancelled request succeeded", path)
		}
	}
}

func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, catalogFile), []byte(`{"schema_version": 99, "records": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("newer catalog: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, catalogFile), []byte(`{"records": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), catalogFile) {
		t.Errorf("truncated catalog: %v", err)
	}
}
