package dm

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// truncatedImage is a small image with calibration and tags, so that cuts
// land in the header, the tag tree before and after the pixels, and the
// pixels themselves.
func truncatedImage() Image {
	return Image{Name: "cut", DType: volume.Uint16, Shape: []int64{30, 20}, Data: ramp(volume.Uint16, 600),
		Scales: []float64{0.5, 0.5}, Units: []string{"nm", "nm"},
		Tags: map[string]any{"Microscope Info.Voltage": 200000.0, "Microscope Info.Microscope": "Titan"}}
}

// TestTruncated cuts a DM3 and a DM4 file at every byte: Open must fail with
// format.ErrCorrupt naming the file, or (when only the trailing bytes no tag
// needs were cut) the file must read exactly as the whole one.
func TestTruncated(t *testing.T) {
	ctx := context.Background()
	img := truncatedImage()
	for _, c := range []struct {
		name string
		opts []Option
	}{{"f.dm3", nil}, {"f.dm4", []Option{AsDM4()}}} {
		t.Run(c.name, func(t *testing.T) {
			b := writeImage(t, img, c.opts...)
			failed, whole := 0, 0
			for cut := 0; cut < len(b); cut++ {
				st := newMem(t, map[string][]byte{c.name: b[:cut]})
				vols, err := Format{}.Open(ctx, st, c.name)
				if err != nil {
					if !errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), `dm "`+c.name+`"`) {
						t.Fatalf("cut at %d of %d: %v, want a format.ErrCorrupt naming the file", cut, len(b), err)
					}
					failed++
					continue
				}
				got := make([]byte, len(img.Data))
				if err := vols[0].ReadRegion(ctx, volume.Full(vols[0].Info().Shape), got); err != nil || !bytes.Equal(got, img.Data) {
					t.Fatalf("cut at %d of %d opens but reads %v / other pixels", cut, len(b), err)
				}
				whole++
			}
			t.Logf("%d bytes: %d cuts fail, %d read whole", len(b), failed, whole)
			if whole > 16 {
				t.Errorf("%d cuts read whole: more than the file's end padding", whole)
			}
		})
	}
}

// TestTruncatedMessage checks what the error of a file cut in its pixels says.
func TestTruncatedMessage(t *testing.T) {
	b := writeImage(t, truncatedImage())
	_, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"f.dm3": b[:len(b)/2]}), "f.dm3")
	for _, want := range []string{`dm "f.dm3"`, `tag "Data"`, "2400 bytes declared at offset", "corrupt data"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// sizelessServer serves one object with ranges but without telling its size
// in answer to HEAD, like servers that stream without Content-Length; fail,
// when set, answers every request with that status.
func sizelessServer(t *testing.T, b []byte, fail int) *store.Store {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case fail != 0:
			w.WriteHeader(fail)
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusOK)
		default:
			http.ServeContent(w, r, "f.dm3", time.Time{}, bytes.NewReader(b))
		}
	}))
	t.Cleanup(srv.Close)
	d, err := store.NewHTTP(srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return store.New(d)
}

// TestTruncatedUnknownSize cuts a file served without its size: the tag walk
// skips the pixels blind, and the server's "range not satisfiable" beyond the
// cut must read as corrupt data, while a failing server must not.
func TestTruncatedUnknownSize(t *testing.T) {
	ctx := context.Background()
	b := writeImage(t, truncatedImage())
	st := sizelessServer(t, b, 0)
	if oi, err := st.Stat(ctx, "f.dm3"); err != nil || oi.Size >= 0 {
		t.Fatalf("Stat = %+v, %v: the server must hide the size", oi, err)
	}
	if _, err := (Format{}).Open(ctx, st, "f.dm3"); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	for _, cut := range []int{len(b) / 2, len(b) - 40} {
		_, err := Format{}.Open(ctx, sizelessServer(t, b[:cut], 0), "f.dm3")
		if !errors.Is(err, format.ErrCorrupt) {
			t.Errorf("cut at %d of %d: %v, want format.ErrCorrupt", cut, len(b), err)
		}
	}
	_, err := Format{}.Open(ctx, sizelessServer(t, b, http.StatusServiceUnavailable), "f.dm3")
	if err == nil || errors.Is(err, format.ErrCorrupt) {
		t.Errorf("503: %v, want a store error that is not format.ErrCorrupt", err)
	}
}
