package catalog

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// FuzzReportVolume draws arbitrary small volumes (any dtype, rank 2–4, any
// bytes, including NaN/Inf floats and odd axis names) through the whole
// report path: it must never panic, and thumbnails must respect their size.
func FuzzReportVolume(f *testing.F) {
	f.Add([]byte{0, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{9, 2, 1, 1, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f}) // float32 NaN, +Inf
	f.Add([]byte{13, 4, 2, 3, 2, 2, 255, 0, 128, 7})              // rgba8
	f.Add([]byte{7, 3, 12, 1, 12, 0xff, 0xff, 0xff, 0xff})        // int64 -1
	f.Add([]byte{11, 2, 16, 16, 0x00, 0x7c, 0x00, 0xfc, 0x01, 0x7e})
	f.Add([]byte{1, 3, 1, 1, 1})
	dtypes := []volume.DType{volume.Bool, volume.Int8, volume.Uint8, volume.Int16, volume.Uint16, volume.Int32, volume.Uint32,
		volume.Int64, volume.Uint64, volume.Float32, volume.Float64, volume.Float16, volume.Complex64, volume.RGBA8, volume.Complex128}
	names := []string{"z", "y", "x", "c", "t", "", "q"}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 3 {
			return
		}
		dt := dtypes[int(b[0])%len(dtypes)]
		rank := 2 + int(b[1])%3
		if len(b) < 2+rank {
			return
		}
		in := volume.Info{Name: "fuzz", DType: dt}
		for i := 0; i < rank; i++ {
			n := 1 + int64(b[2+i])%13
			in.Shape = append(in.Shape, n)
			in.Axes = append(in.Axes, volume.Axis{Name: names[int(b[2+i])/13%len(names)], Size: n, Scale: float64(b[2+i]) / 7, Unit: "nm", ScaleKnown: b[2+i]%2 == 0})
		}
		payload := b[2+rank:]
		data := make([]byte, in.NumBytes())
		if len(payload) > 0 {
			for i := range data {
				data[i] = payload[i%len(payload)]
			}
		}
		v, err := volume.NewMem(in, data)
		if err != nil {
			return
		}
		maxSide := 1 + int(b[0])%9
		capBytes := int64(dt.Size()) * (1 + int64(b[1])%40)
		ps, err := middlePlanes(context.Background(), v, maxSide, capBytes)
		if err == nil {
			for _, p := range ps {
				if p.W < 1 || p.H < 1 || p.W > maxSide || p.H > maxSide || len(p.Values) != p.W*p.H {
					t.Fatalf("plane %s: %dx%d with %d values (max side %d)", p.Name, p.W, p.H, len(p.Values), maxSide)
				}
			}
		}
		var r Record
		FromVolume(context.Background(), &r, v, Hints{}, 1<<12)
		r.Dataset, r.Title = "d", string(payload)
		out, err := Report(context.Background(), []Record{r}, map[string]volume.Volume{VolumeKey(r): v}, ReportOptions{ThumbPixels: maxSide, ReadCap: capBytes})
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		if strings.Count(s, "<script>") != 1 {
			t.Fatal("report has injected markup")
		}
		for _, bad := range []string{`="NaN"`, `="+Inf"`, `="-Inf"`, "ZgotmplZ"} {
			if strings.Contains(s, bad) {
				t.Fatalf("report has %s", bad)
			}
		}
	})
}

// FuzzScaleBar checks the bar always fits and measures what its label says.
func FuzzScaleBar(f *testing.F) {
	f.Add(4.0, 256)
	f.Add(1e-300, 10)
	f.Add(1e300, 1000)
	f.Add(math.SmallestNonzeroFloat64, 5)
	f.Add(math.MaxFloat64, 1<<40)
	f.Fuzz(func(t *testing.T, nmPerPx float64, width int) {
		l, px, label, ok := scaleBar(nmPerPx, width)
		if !ok {
			return
		}
		if label == "" || px < 1 || px > float64(width)/4*(1+1e-9) || math.IsNaN(l) || l <= 0 {
			t.Fatalf("scaleBar(%g, %d) = %g nm, %g px, %q", nmPerPx, width, l, px, label)
		}
	})
}
