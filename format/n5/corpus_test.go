package n5

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// knownMismatch lists corpus rows (by path) this reader does not read as
// expected yet, with the reason; each must still fail cleanly with
// format.ErrNotSupported. It is empty: every n5 row reads as expected. An
// entry that starts passing makes the test fail so it gets removed.
var knownMismatch = map[string]string{}

func TestCorpus(t *testing.T) {
	dir, rows := corpus.Category(t, "n5")
	if len(rows) == 0 {
		t.Fatal("corpus has no n5 rows")
	}
	ctx := context.Background()
	var table []string
	for _, e := range rows {
		t.Run(e.Path, func(t *testing.T) {
			res, err := checkCorpusRow(ctx, dir, e)
			if reason, ok := knownMismatch[e.Path]; ok {
				if err == nil {
					t.Errorf("known mismatch %q now reads correctly: remove it from knownMismatch", reason)
				} else if !errors.Is(err, format.ErrNotSupported) {
					t.Errorf("known mismatch %q failed with an unexpected error: %v", reason, err)
				}
				table = append(table, fmt.Sprintf("KNOWN %-55s %s", e.Path, reason))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			table = append(table, fmt.Sprintf("PASS  %-55s %s", e.Path, res))
		})
	}
	t.Logf("n5 corpus:\n%s", strings.Join(table, "\n"))
}

// checkCorpusRow opens one corpus row through the file store and compares it
// with what the manifest expects.
func checkCorpusRow(ctx context.Context, dir string, e corpus.Entry) (string, error) {
	rowDir, key := filepath.Join(dir, e.Path), ""
	if path.Base(e.Path) == attrsName {
		// A container root named by its attributes.json: open the key as the
		// pipeline would, through the parent directory.
		rowDir, key = filepath.Dir(rowDir), attrsName
	}
	st := store.New(store.NewFile(rowDir))
	if !(Format{}).Detect(ctx, st, key, nil) {
		return "", fmt.Errorf("not detected as N5")
	}
	vs, err := Format{}.Open(ctx, st, key)
	switch e.Kind {
	case "group-metadata":
		if err != nil {
			// pyn5.n5 holds only the root attributes in the corpus.
			if strings.Contains(err.Error(), "no datasets") && strings.Contains(e.Path, "pyn5") {
				return "root only, no datasets (as stored)", nil
			}
			return "", err
		}
		var names []string
		for _, v := range vs {
			names = append(names, v.Info().Name)
		}
		return fmt.Sprintf("root opens %d datasets: %s", len(vs), strings.Join(names, ", ")), nil
	case "metadata-only":
		return checkViewerDeprecated(ctx, vs, err)
	}
	if err != nil {
		return "", err
	}
	if len(vs) != 1 {
		return "", fmt.Errorf("%d volumes, want 1", len(vs))
	}
	in := vs[0].Info()
	var wantShape []int64
	for _, s := range e.Expected["shape"].([]any) {
		wantShape = append(wantShape, int64(s.(float64)))
	}
	if fmt.Sprint(in.Shape) != fmt.Sprint(wantShape) {
		return "", fmt.Errorf("shape %v, want %v", in.Shape, wantShape)
	}
	if string(in.DType) != e.Expected["dtype"] {
		return "", fmt.Errorf("dtype %s, want %v", in.DType, e.Expected["dtype"])
	}
	sum, err := volume.Checksum16(ctx, vs[0], 0)
	if err != nil {
		return "", err
	}
	if sum != e.Expected["sha256_16"] {
		return "", fmt.Errorf("sha256_16 %s, want %v", sum, e.Expected["sha256_16"])
	}
	return fmt.Sprintf("%v %s %s sha256_16 %s", in.Shape, in.DType, in.Compression, sum), nil
}

// checkViewerDeprecated checks Neuroglancer's n5_viewer_multiscale_deprecated
// group: root "scales", "axes", "units", "resolution"; three blosc scales
// with no blocks stored, which read as zeros.
func checkViewerDeprecated(ctx context.Context, vs []volume.Volume, err error) (string, error) {
	if err != nil {
		return "", err
	}
	want := []struct {
		shape  []int64
		scales []float64
	}{
		{[]int64{20, 10}, []float64{20, 10}},
		{[]int64{10, 5}, []float64{40, 20}},
		{[]int64{5, 3}, []float64{80, 40}},
	}
	if len(vs) != len(want) {
		return "", fmt.Errorf("%d scales, want %d", len(vs), len(want))
	}
	for i, v := range vs {
		in := v.Info()
		if fmt.Sprint(in.Shape) != fmt.Sprint(want[i].shape) {
			return "", fmt.Errorf("s%d: shape %v, want %v", i, in.Shape, want[i].shape)
		}
		a := in.Axes
		if a[0].Name != "y" || a[1].Name != "x" || a[0].Unit != "s" || a[1].Unit != "nm" || !a[0].ScaleKnown ||
			a[0].Scale != want[i].scales[0] || a[1].Scale != want[i].scales[1] {
			return "", fmt.Errorf("s%d: axes %+v, want y(s)/x(nm) scales %v", i, a, want[i].scales)
		}
		if in.Compression != "blosc" || in.DType != volume.Uint16 {
			return "", fmt.Errorf("s%d: %s %s", i, in.DType, in.Compression)
		}
		buf := make([]byte, in.NumBytes())
		buf[0] = 1
		if err := v.ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
			return "", fmt.Errorf("s%d: %w", i, err)
		}
		for _, b := range buf {
			if b != 0 {
				return "", fmt.Errorf("s%d: missing blocks did not read as zeros", i)
			}
		}
	}
	return "3 scales, axes/units/resolution from the root, empty blocks read as zeros", nil
}

// TestCorpusRegions runs the conformance suite on the tensorstore rows, whose
// manifest lists every value: their edge blocks are padded (zarr N5Store), so
// random regions exercise the cropping.
func TestCorpusRegions(t *testing.T) {
	dir, rows := corpus.Category(t, "n5")
	n := 0
	for _, e := range rows {
		vals, ok := e.Expected["values"].([]any)
		if !ok || e.Expected["dtype"] != "uint16" {
			continue
		}
		n++
		t.Run(e.Path, func(t *testing.T) {
			var want []uint16
			for _, row := range vals {
				for _, v := range row.([]any) {
					want = append(want, uint16(v.(float64)))
				}
			}
			st := store.New(store.NewFile(filepath.Join(dir, e.Path)))
			volumetest.Run(t, openOne(t, st, ""), le16(want...), 0)
		})
	}
	if n == 0 {
		t.Fatal("no corpus row lists its values")
	}
}
