package dm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/internal/corpus"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// knownMismatch lists every corpus check (path + " " + field) where this reader
// deliberately differs from the expected values, with the reason. Any other
// mismatch fails the test, and so does an entry here that no longer mismatches.
var knownMismatch = map[string]string{
	"dm/rosettasciio/misc/test_fft_packed_complex8.dm4 axis1": "rosettasciio unpacks the 5-wide packed FFT into 4 columns " +
		"but reports the x axis with the image's 5; a volume's axis has its array's size (4)",
}

func TestCorpusConformance(t *testing.T) {
	dir, rows := corpus.Category(t, "dm")
	if len(rows) == 0 {
		t.Fatal("corpus has no dm rows")
	}
	ctx := context.Background()
	st := store.New(store.NewFile(dir))
	seenKnown := map[string]bool{}
	var table []string
	for _, row := range rows {
		t.Run(strings.TrimPrefix(row.Path, "dm/"), func(t *testing.T) {
			var results []string
			check := func(field string, ok bool, got, want any) {
				t.Helper()
				k := row.Path + " " + field
				if reason, known := knownMismatch[k]; known {
					seenKnown[k] = true
					if ok {
						t.Errorf("%s: listed as known mismatch (%s) but now matches", k, reason)
					}
					results = append(results, field+"=known")
					return
				}
				if !ok {
					t.Errorf("%s: got %v, want %v", field, got, want)
					results = append(results, field+"=FAIL")
					return
				}
				results = append(results, field+"=ok")
			}
			defer func() { table = append(table, fmt.Sprintf("%-55s %s", row.Path, strings.Join(results, " "))) }()
			exp := row.Expected
			if exp == nil {
				t.Fatalf("no expected values")
			}
			if !(Format{}).Detect(ctx, st, row.Path, headOf(t, st, row.Path)) {
				t.Errorf("Detect = false")
			}
			vols, err := Format{}.Open(ctx, st, row.Path)
			if knownMismatch[row.Path+" open"] != "" {
				check("open", err == nil, err, "a volume")
				if !errors.Is(err, format.ErrNotSupported) {
					t.Errorf("want ErrNotSupported, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			v := vols[0]
			in := v.Info()
			if err := in.Validate(); err != nil {
				t.Fatal(err)
			}
			wantShape := ints(exp["shape"])
			check("shape", fmt.Sprint(in.Shape) == fmt.Sprint(wantShape), in.Shape, wantShape)
			// The corpus spells dtypes as str(dtype) of hyperspy's array, as
			// volume.DType does, RGBA records included: no mapping.
			check("dtype", string(in.DType) == exp["dtype"], in.DType, exp["dtype"])
			sum, err := volume.Checksum16(ctx, v, 0)
			if err != nil {
				t.Fatal(err)
			}
			check("sha", sum == exp["data_sha256_16"], sum, exp["data_sha256_16"])
			if axes, ok := exp["axes"].([]any); ok && len(axes) == len(in.Axes) {
				for i, a := range axes {
					w := a.([]any)
					g := in.Axes[i]
					scale, offset := w[2].(float64), w[3].(float64)
					check(fmt.Sprintf("axis%d", i),
						g.Size == int64(w[1].(float64)) && near(g.Scale, scale) && near(g.Offset, offset) && g.Unit == w[4].(string),
						fmt.Sprintf("%s %d %g %g %q", g.Name, g.Size, g.Scale, g.Offset, g.Unit), w)
				}
			} else {
				check("axes", false, len(in.Axes), exp["axes"])
			}
			md := in.Metadata
			if w, ok := exp["title"].(string); ok {
				check("title", md["title"] == w, md["title"], w)
			}
			if w, ok := exp["date"].(string); ok {
				check("date", md["acquisition_date"] == w, md["acquisition_date"], w)
			}
			if w, ok := exp["time"].(string); ok {
				check("time", md["acquisition_time"] == w, md["acquisition_time"], w)
			}
			if w, ok := exp["microscope"].(string); ok {
				check("microscope", md["microscope"] == strings.TrimSpace(w), md["microscope"], w)
			}
			if w, ok := exp["beam_energy"].(float64); ok {
				g, _ := md["voltage_kv"].(float64)
				check("beam_energy", near(g, w), g, w)
			}
			if w, ok := exp["magnification"].(float64); ok {
				g, _ := md["indicated_magnification"].(float64)
				if !near(g, w) {
					g, _ = md["actual_magnification"].(float64)
				}
				check("magnification", near(g, w), g, w)
			}
			if w, ok := exp["acquisition_mode"].(string); ok {
				check("mode", md["acquisition_mode"] == w, md["acquisition_mode"], w)
			}
			if w, ok := exp["camera_length"].(float64); ok {
				g, _ := md["camera_length"].(float64)
				check("camera_length", near(g, w), g, w)
			}
			// hyperspy 1.7.3 returned only the first signal; the corpus notes and
			// current rosettasciio say how many the file holds.
			if w, ok := exp["n_signals"].(float64); ok {
				check("n_signals", len(vols) == int(w), len(vols), w)
			} else {
				check("n_signals", len(vols) == 1, len(vols), 1)
			}
		})
	}
	for k := range knownMismatch {
		if !seenKnown[k] {
			t.Errorf("knownMismatch entry %q matched no corpus check", k)
		}
	}
	sort.Strings(table)
	t.Logf("dm corpus conformance:\n%s", strings.Join(table, "\n"))
}

// TestMultiSignal checks the second dataset of multi_signal.dm3, which the
// corpus describes only in words: a 1-D plot of 512 samples titled "Plot"
// whose values sum to about 28.085794.
func TestMultiSignal(t *testing.T) {
	dir := corpus.Dir(t)
	ctx := context.Background()
	st := store.New(store.NewFile(dir))
	vols, err := Format{}.Open(ctx, st, "dm/rosettasciio/misc/multi_signal.dm3")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 2 {
		t.Fatalf("got %d volumes, want 2", len(vols))
	}
	in := vols[1].Info()
	if fmt.Sprint(in.Shape) != "[512]" || in.DType != volume.Float32 || in.Metadata["title"] != "Plot" {
		t.Fatalf("second dataset: %v %s %v", in.Shape, in.DType, in.Metadata["title"])
	}
	buf := make([]byte, in.NumBytes())
	if err := vols[1].ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i := 0; i < len(buf); i += 4 {
		sum += float64(math.Float32frombits(uint32(buf[i]) | uint32(buf[i+1])<<8 | uint32(buf[i+2])<<16 | uint32(buf[i+3])<<24))
	}
	if math.Abs(sum-28.085794) > 1e-4 {
		t.Errorf("sum = %v, want 28.085794", sum)
	}
}

// TestCorpusRegions runs the conformance suite on real files, with the whole
// array read through the reader as reference: the checksum test above pins
// that reference to hyperspy's.
func TestCorpusRegions(t *testing.T) {
	dir := corpus.Dir(t)
	ctx := context.Background()
	st := store.New(store.NewFile(dir))
	for _, p := range []string{
		"dm/openncem/dmTest_3D_int16_64_65_66.dm3",
		"dm/rosettasciio/misc/test-MonarcCL_spectrum-SI.dm4",
		"dm/rosettasciio/2D/test-8.dm4",
		"dm/rosettasciio/2D/test-13.dm4",
	} {
		t.Run(path.Base(p), func(t *testing.T) {
			vols, err := Format{}.Open(ctx, st, p)
			if err != nil {
				t.Fatal(err)
			}
			in := vols[0].Info()
			want := make([]byte, in.NumBytes())
			if err := vols[0].ReadRegion(ctx, volume.Full(in.Shape), want); err != nil {
				t.Fatal(err)
			}
			volumetest.Run(t, vols[0], want, 0)
		})
	}
}

func headOf(t *testing.T, st *store.Store, key string) []byte {
	t.Helper()
	b, err := st.ReadAll(context.Background(), key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return b[:min(len(b), format.HeadSize)]
}

func ints(v any) []int64 {
	a, _ := v.([]any)
	out := make([]int64, len(a))
	for i, x := range a {
		out[i] = int64(x.(float64))
	}
	return out
}

// near compares with a relative tolerance of 1e-6 (absolute near zero).
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// TestSpectrumImage checks how the Monarc CL spectrum image, stored
// (Wavelength, y, x), is presented: spectral axis last with its calibration,
// and the stored shape kept in the metadata. The corpus checksum test pins
// the data.
func TestSpectrumImage(t *testing.T) {
	dir := corpus.Dir(t)
	vols, err := Format{}.Open(context.Background(), store.New(store.NewFile(dir)), "dm/rosettasciio/misc/test-MonarcCL_spectrum-SI.dm4")
	if err != nil {
		t.Fatal(err)
	}
	in := vols[0].Info()
	if fmt.Sprint(in.Shape) != "[3 3 670]" || fmt.Sprint(in.Metadata["dm_shape"]) != "[670 3 3]" || in.Metadata["signal_format"] != "Spectrum image" {
		t.Fatalf("shape %v, dm_shape %v, format %v", in.Shape, in.Metadata["dm_shape"], in.Metadata["signal_format"])
	}
	if a := in.Axes[2]; a.Name != "c" || !near(a.Scale, 0.146674529) || !near(a.Offset, 315.863024647) || a.Unit != "nm" || !a.ScaleKnown {
		t.Errorf("spectral axis %+v", a)
	}
	if a := in.Axes[0]; a.Name != "y" || a.Unit != "µm" {
		t.Errorf("y axis %+v", a)
	}
}

// TestSqueezedSpectrum checks the (1, 2048) EELS spectrum: the size-1 axis is
// dropped and the energy axis keeps its calibration.
func TestSqueezedSpectrum(t *testing.T) {
	dir := corpus.Dir(t)
	vols, err := Format{}.Open(context.Background(), store.New(store.NewFile(dir)), "dm/openncem/08_carbon.dm3")
	if err != nil {
		t.Fatal(err)
	}
	in := vols[0].Info()
	if fmt.Sprint(in.Shape) != "[2048]" || fmt.Sprint(in.Metadata["dm_shape"]) != "[1 2048]" {
		t.Fatalf("shape %v, dm_shape %v", in.Shape, in.Metadata["dm_shape"])
	}
	a := in.Axes[0]
	if a.Size != 2048 || !near(a.Scale, 0.100000001) || !near(a.Offset, 240.000003576) || a.Unit != "eV" || !a.ScaleKnown {
		t.Errorf("energy axis %+v", a)
	}
}

// TestPackedComplexCorpus reads rosettasciio's packed FFT sample: a 5 x 5
// image stored as 5 rows of 3 complex values, unpacked to 5 x 4.
func TestPackedComplexCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	ctx := context.Background()
	vols, err := Format{}.Open(ctx, store.New(store.NewFile(dir)), "dm/rosettasciio/misc/test_fft_packed_complex8.dm4")
	if err != nil {
		t.Fatal(err)
	}
	in := vols[0].Info()
	pc, _ := in.Metadata["packed_complex"].(map[string]any)
	if fmt.Sprint(in.Shape) != "[5 4]" || in.DType != volume.Complex64 || fmt.Sprint(pc["stored_half_plane"]) != "[5 3]" {
		t.Fatalf("shape %v %s, packed %v", in.Shape, in.DType, pc)
	}
	buf := make([]byte, in.NumBytes())
	if err := vols[0].ReadRegion(ctx, volume.Full(in.Shape), buf); err != nil {
		t.Fatal(err)
	}
	// The corpus's sum and first values (hyperspy 1.7.3).
	var sum complex128
	vals := make([]complex64, 0, 20)
	for i := 0; i < len(buf); i += 8 {
		c := complex(math.Float32frombits(binary.LittleEndian.Uint32(buf[i:])), math.Float32frombits(binary.LittleEndian.Uint32(buf[i+4:])))
		vals = append(vals, c)
		sum += complex128(c)
	}
	if math.Abs(real(sum)-12.5) > 1e-5 || math.Abs(imag(sum)+4.061494827270508) > 1e-5 {
		t.Errorf("sum %v, want (12.5-4.0615j)", sum)
	}
	want := []complex64{complex(5.9604645e-08, -1.8813253e-09), complex(5.9604645e-08, -5.3758896e-08), complex(-2.3841858e-07, 0), complex(5.9604645e-08, 5.3758896e-08)}
	for i, w := range want {
		if vals[i] != w {
			t.Errorf("value %d = %v, want %v", i, vals[i], w)
		}
	}
	if math.Signbit(float64(imag(vals[2]))) != true {
		t.Errorf("value 2 imaginary part %v, want -0 as stored", imag(vals[2]))
	}
	volumetest.Run(t, vols[0], buf, 0)
}
