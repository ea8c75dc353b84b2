package dm

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
)

// TestAcquisitionCorpus checks the typed acquisition facts of every corpus
// DM file against the values MANIFEST.tsv expects (from rosettasciio):
// microscope, beam energy (kV), acquisition mode, and date and time.
func TestAcquisitionCorpus(t *testing.T) {
	dir, rows := corpus.Category(t, "dm")
	ctx := context.Background()
	st := store.New(store.NewFile(dir))
	checked := 0
	for _, row := range rows {
		exp := row.Expected
		if exp == nil || knownMismatch[row.Path+" open"] != "" {
			continue
		}
		t.Run(strings.TrimPrefix(row.Path, "dm/"), func(t *testing.T) {
			vols, err := Format{}.Open(ctx, st, row.Path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			a := vols[0].Info().Acquisition
			if w, ok := exp["microscope"].(string); ok {
				checked++
				if a.Microscope != strings.TrimSpace(w) {
					t.Errorf("microscope %q, want %q", a.Microscope, w)
				}
			}
			if w, ok := exp["beam_energy"].(float64); ok {
				checked++
				if math.Abs(a.VoltageKV-w) > 1e-9*w {
					t.Errorf("voltage %g kV, want %g", a.VoltageKV, w)
				}
			}
			if w, ok := exp["acquisition_mode"].(string); ok {
				checked++
				if a.Mode != w {
					t.Errorf("mode %q, want %q", a.Mode, w)
				}
			}
			if d, ok := exp["date"].(string); ok {
				checked++
				want := d
				if tm, ok := exp["time"].(string); ok {
					want += "T" + tm
				}
				if a.DateTime != want {
					t.Errorf("date-time %q, want %q", a.DateTime, want)
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no corpus acquisition value was compared")
	}
	t.Logf("%d acquisition values compared with MANIFEST.tsv", checked)
}
