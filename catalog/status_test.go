package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err    error
		prefix string
		failed bool
	}{
		{fmt.Errorf("tiff %q: page 3: %w", "a.tif", format.ErrCorrupt), "corrupt: ", true},
		{fmt.Errorf("zip: %w", store.ErrCorrupt), "corrupt: ", true},
		{fmt.Errorf("dm: data type 5: %w", format.ErrNotSupported), "not yet supported: ", false},
		{fmt.Errorf("GET x: %w", errors.New("HTTP 503")), "error: ", true},
	} {
		s := StatusOf(c.err)
		if !strings.HasPrefix(s, c.prefix) || !strings.HasSuffix(s, c.err.Error()) {
			t.Errorf("StatusOf(%v) = %q, want %q and the error", c.err, s, c.prefix)
		}
		if Failed(s) != c.failed {
			t.Errorf("Failed(%q) = %v, want %v", s, !c.failed, c.failed)
		}
	}
	if Failed(StatusOK) {
		t.Error("Failed(ok)")
	}
}

// brokenVolume fails every read with err.
type brokenVolume struct {
	info volume.Info
	err  error
}

func (v brokenVolume) Info() volume.Info { return v.info }

func (v brokenVolume) ReadRegion(context.Context, volume.Box, []byte) error { return v.err }

// TestSampleFindsCorruption: a volume that opened but whose sampled values
// are corrupt data gets the corrupt status; other read failures only a note.
func TestSampleFindsCorruption(t *testing.T) {
	info := volume.Info{Name: "v", Shape: []int64{8, 8}, DType: volume.Uint8,
		Axes: []volume.Axis{{Name: "y", Size: 8, Scale: 1}, {Name: "x", Size: 8, Scale: 1}}}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("chunk %q: %w", "0.0", format.ErrCorrupt), "corrupt: "},
		{errors.New("connection reset"), StatusOK},
	} {
		r := Record{Status: StatusOK}
		FromVolume(context.Background(), &r, brokenVolume{info: info, err: c.err}, Hints{}, 1<<20)
		if !strings.HasPrefix(r.Status, c.want) || len(r.Notes) == 0 {
			t.Errorf("read error %v: status %q notes %v, want %q and a note", c.err, r.Status, r.Notes, c.want)
		}
	}
}
