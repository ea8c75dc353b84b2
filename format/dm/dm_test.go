package dm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
	"github.com/imgdataset/imgdataset/volume/volumetest"
)

// countingDriver is a store.MemDriver that counts what is read from it, so
// tests can assert that opening a file does not fetch its pixels.
type countingDriver struct {
	*store.MemDriver
	mu       sync.Mutex
	read     int64
	requests int
	hideSize bool // Stat reports size -1, like a server without Content-Length
}

// newCounting returns a countingDriver holding objs.
func newCounting(t testing.TB, objs map[string][]byte) *countingDriver {
	t.Helper()
	d := &countingDriver{MemDriver: store.NewMem()}
	for k, b := range objs {
		if err := d.Put(k, b); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// newMem returns a store holding objs.
func newMem(t testing.TB, objs map[string][]byte) *store.Store {
	return store.New(newCounting(t, objs))
}

func (d *countingDriver) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	oi, err := d.MemDriver.Stat(ctx, key)
	if d.hideSize {
		oi.Size = -1
	}
	return oi, err
}

func (d *countingDriver) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := d.MemDriver.ReadRange(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.read += rc.(interface{ Size() int64 }).Size()
	d.requests++
	d.mu.Unlock()
	return rc, nil
}

// ramp fills n elements of dt with distinct little-endian values.
func ramp(dt volume.DType, n int) []byte {
	b := make([]byte, n*dt.Size())
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		p := b[i*dt.Size():]
		switch dt {
		case volume.Uint8, volume.Int8:
			p[0] = byte(i*7 + 3)
		case volume.Bool:
			p[0] = byte(i % 2)
		case volume.Int16, volume.Uint16:
			le.PutUint16(p, uint16(i*31-1000))
		case volume.Int32, volume.Uint32:
			le.PutUint32(p, uint32(i*100003-7))
		case volume.Float32:
			le.PutUint32(p, math.Float32bits(float32(i)*0.5-3))
		case volume.Float64:
			le.PutUint64(p, math.Float64bits(float64(i)*0.25-1e9))
		case volume.Complex64:
			le.PutUint32(p, math.Float32bits(float32(i)))
			le.PutUint32(p[4:], math.Float32bits(-float32(i)/3))
		case volume.Complex128:
			le.PutUint64(p, math.Float64bits(float64(i)))
			le.PutUint64(p[8:], math.Float64bits(-float64(i)/3))
		case volume.RGBA8:
			p[0], p[1], p[2], p[3] = byte(i), byte(i*3), byte(i*5), 255
		}
	}
	return b
}

func writeImage(t testing.TB, img Image, opt ...Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDM3(&buf, img, opt...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	dtypes := []volume.DType{volume.Uint8, volume.Int8, volume.Int16, volume.Uint16, volume.Int32, volume.Uint32,
		volume.Float32, volume.Float64, volume.Complex64, volume.Complex128, volume.Bool, volume.RGBA8}
	layouts := []struct {
		name string
		opt  []Option
	}{
		{"dm3-le", nil},
		{"dm3-be", []Option{BigEndian()}},
		{"dm4-le", []Option{AsDM4()}},
		{"dm4-be-nothumb", []Option{AsDM4(), BigEndian(), NoThumbnail()}},
	}
	shapes := [][]int64{{5, 7, 9}, {13, 11}, {6}}
	for _, l := range layouts {
		for _, dt := range dtypes {
			for _, shape := range shapes {
				t.Run(fmt.Sprintf("%s/%s/%v", l.name, dt, shape), func(t *testing.T) {
					n := int(volume.Prod(shape))
					data := ramp(dt, n)
					img := Image{Name: "round µ trip", DType: dt, Shape: shape, Data: data}
					for i := range shape {
						img.Scales = append(img.Scales, 0.5+float64(i))
						img.Units = append(img.Units, []string{"µm", "nm", "Å"}[i%3])
						img.Origins = append(img.Origins, float64(i))
					}
					b := writeImage(t, img, l.opt...)
					st := newMem(t, map[string][]byte{"a.dm3": b})
					vols, err := Format{}.Open(context.Background(), st, "a.dm3")
					if err != nil {
						t.Fatal(err)
					}
					if len(vols) != 1 {
						t.Fatalf("%d volumes, want 1 (thumbnail must be skipped)", len(vols))
					}
					in := vols[0].Info()
					if in.Name != img.Name || in.DType != dt || fmt.Sprint(in.Shape) != fmt.Sprint(shape) {
						t.Fatalf("info %q %s %v", in.Name, in.DType, in.Shape)
					}
					for i, a := range in.Axes {
						scale := float64(float32(img.Scales[i]))
						if a.Scale != scale || a.Unit != img.Units[i] || a.Offset != -img.Origins[i]*scale || !a.ScaleKnown {
							t.Errorf("axis %d = %+v", i, a)
						}
					}
					if len(shape) == 3 {
						volumetest.Run(t, vols[0], data, 0)
					} else {
						got := make([]byte, len(data))
						if err := vols[0].ReadRegion(context.Background(), volume.Full(shape), got); err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, data) {
							t.Fatal("data differ")
						}
					}
				})
			}
		}
	}
}

// TestEMPIARLike writes a slice like EMPIAR-11759's and checks the metadata
// the pipeline relies on: z spacing, the D.M.Y date, the microscope.
func TestEMPIARLike(t *testing.T) {
	shape := []int64{1100, 1099}
	img := Image{Name: "F57-8_test1_3VBSED_slice_0000", DType: volume.Uint8, Shape: shape,
		Data: ramp(volume.Uint8, int(volume.Prod(shape))), Scales: []float64{0.007998250424861908, 0.007998250424861908},
		Units: []string{"µm", "µm"}, ZSpacing: 50, ZUnit: "nm",
		Tags: map[string]any{"DigiScan.Sample Time": 0.5, "DigiScan.TimeStamp": "Mon Jun 11 22:26:45 2018",
			"Microscope Info.Illumination Mode": "SEM"}}
	b := writeImage(t, img)
	d := newCounting(t, map[string][]byte{"s.dm3": b})
	st := store.New(d)
	ctx := context.Background()
	if !(Format{}).Detect(ctx, st, "s.dm3", b[:format.HeadSize]) {
		t.Fatal("Detect = false")
	}
	vols, err := Format{}.Open(ctx, st, "s.dm3")
	if err != nil {
		t.Fatal(err)
	}
	if d.read > 3*minWindow {
		t.Errorf("Open read %d bytes of a %d-byte file: pixel data must be skipped", d.read, len(b))
	}
	md := vols[0].Info().Metadata
	want := map[string]any{
		"acquisition_datetime": "2018-06-11T22:27:16",
		"microscope":           "FEI Quanta",
		"voltage_kv":           1.9,
		"acquisition_mode":     "SEM",
		"title":                img.Name,
		"pixel_depth":          1,
		"dm_version":           3,
	}
	for k, w := range want {
		if fmt.Sprint(md[k]) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", k, md[k], w)
		}
	}
	z, _ := md["z_spacing"].(map[string]any)
	if z["value"] != 50.0 || z["unit"] != "nm" || z["source"] != "ImageTags.Meta Data.Dimension info.2" {
		t.Errorf("z_spacing = %v", md["z_spacing"])
	}
	if md["timestamp_source"] != "ImageTags.DigiScan.TimeStamp" || md["acquisition_datetime_conflict"] != nil {
		t.Errorf("timestamp %v / conflict %v", md["timestamp_source"], md["acquisition_datetime_conflict"])
	}
	if md["digiscan_sample_time_us"] != 0.5 {
		t.Errorf("sample time %v", md["digiscan_sample_time_us"])
	}
	// One row of the middle must cost one small request.
	d.read, d.requests = 0, 0
	row := make([]byte, 1099)
	if err := vols[0].ReadRegion(ctx, volume.NewBox([]int64{550, 0}, []int64{1, 1099}), row); err != nil {
		t.Fatal(err)
	}
	if d.requests != 1 || d.read != 1099 || !bytes.Equal(row, img.Data[550*1099:551*1099]) {
		t.Errorf("row read: %d requests, %d bytes", d.requests, d.read)
	}
}

// TestUnknownSize parses through open-ended reads when Stat has no size.
func TestUnknownSize(t *testing.T) {
	img := Image{Name: "x", DType: volume.Uint16, Shape: []int64{300, 300}, Data: ramp(volume.Uint16, 90000)}
	d := newCounting(t, map[string][]byte{"u.dm4": writeImage(t, img, AsDM4())})
	d.hideSize = true
	vols, err := Format{}.Open(context.Background(), store.New(d), "u.dm4")
	if err != nil {
		t.Fatal(err)
	}
	volumetest.Run(t, vols[0], img.Data, 0)
}

func TestDetect(t *testing.T) {
	good := writeImage(t, Image{Name: "d", DType: volume.Uint8, Shape: []int64{2, 2}, Data: make([]byte, 4)})
	dm4 := writeImage(t, Image{Name: "d", DType: volume.Uint8, Shape: []int64{2, 2}, Data: make([]byte, 4)}, AsDM4())
	tiff := []byte("II*\x00\x08\x00\x00\x00" + strings.Repeat("\x00", 20))
	badOrder := append([]byte(nil), good...)
	badOrder[11] = 7
	cases := []struct {
		key  string
		head []byte
		want bool
	}{
		{"a.dm3", good, true},
		{"a.bin", good, true},
		{"a.dm4", dm4, true},
		{"a.dm3", tiff, false},
		{"a.dm3", badOrder, false},
		{"a.DM3", nil, true},
		{"a.tif", nil, false},
		{"a.dm3", []byte{0, 0, 0, 3}, false},
	}
	for _, c := range cases {
		if got := (Format{}).Detect(context.Background(), nil, c.key, c.head); got != c.want {
			t.Errorf("Detect(%s, % x...) = %v, want %v", c.key, c.head[:min(len(c.head), 12)], got, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	root := &Tag{Group: true, Children: []*Tag{
		{Name: "ImageList", Group: true, Children: []*Tag{
			{Group: true, Children: []*Tag{{Name: "Name", Value: "thumb"}}},
			{Group: true, Children: []*Tag{{Name: "Name", Value: "real"},
				{Name: "Align min. coefficient", Value: 0.5},
				{Name: "Dimension info", Group: true, Children: []*Tag{{Name: "2", Group: true, Children: []*Tag{{Name: "Scale", Value: 50.0}}}}},
			}},
		}},
	}}
	cases := map[string]any{
		"ImageList.1.Name":                   "real",
		"ImageList.0.Name":                   "thumb",
		"ImageList.1.Align min. coefficient": 0.5,
		"ImageList.1.Dimension info.2.Scale": 50.0,
		"ImageList.2.Name":                   nil,
		"ImageList.1.Nope":                   nil,
	}
	for p, want := range cases {
		got := root.Lookup(p)
		if want == nil {
			if got != nil {
				t.Errorf("Lookup(%q) = %v, want nil", p, got)
			}
			continue
		}
		if got == nil || got.Value != want {
			t.Errorf("Lookup(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	cases := []struct{ in, want, how string }{
		{"11.06.2018", "2018-06-11", "D.M.Y"},
		{"27/08/2016", "2016-08-27", "D/M/Y"},
		{"8/27/2016", "2016-08-27", "M/D/Y"},
		{"6/11/2018", "2018-06-11 2018-11-06", "ambiguous"},
		{"7/7/2018", "2018-07-07", "M/D/Y"},
		{"2018-06-11", "2018-06-11", "ISO"},
		{"11.06.18", "2018-06-11", "D.M.Y"},
		{"Monday, June 11, 2018", "2018-06-11", "month name"},
		{"31.02.2018", "", ""},
		{"13/13/2018", "", ""},
		{"garbage", "", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		ds, how := parseDate(c.in)
		var got []string
		for _, d := range ds {
			got = append(got, d.Format("2006-01-02"))
		}
		if strings.Join(got, " ") != c.want || how != c.how {
			t.Errorf("parseDate(%q) = %v %q, want %q %q", c.in, got, how, c.want, c.how)
		}
	}
}

// TestAmbiguousDate checks that an unambiguous reference picks the reading of
// a slash date, and that a conflict is flagged rather than hidden.
func TestAmbiguousDate(t *testing.T) {
	cases := []struct {
		tags     map[string]any
		date     string
		source   string
		conflict bool
	}{
		{map[string]any{"DataBar.Acquisition Date": "6/11/2018"}, "2018-06-11", "assumed M/D/Y", false},
		{map[string]any{"DataBar.Acquisition Date": "6/11/2018", "DigiScan.TimeStamp": "Tue Nov  6 10:00:00 2018"}, "2018-11-06", "resolved by ImageTags.DigiScan.TimeStamp", false},
		// 2016-08-27T19:52:30Z as a Windows FILETIME.
		{map[string]any{"DataBar.Acquisition Date": "8/27/2016", "DataBar.Acquisition Time (OS)": 1.3116801150052632e+17}, "2016-08-27", "(M/D/Y)", false},
		{map[string]any{"DataBar.Acquisition Date": "11.06.2018", "DigiScan.TimeStamp": "Tue Nov  6 10:00:00 2018"}, "2018-06-11", "(D.M.Y)", true},
		{map[string]any{"DataBar.Acquisition Date": nil, "DataBar.Acquisition Time": nil, "DigiScan.TimeStamp": "Mon Jun 11 22:26:45 2018"}, "2018-06-11", "ImageTags.DigiScan.TimeStamp", false},
	}
	for i, c := range cases {
		b := writeImage(t, Image{Name: "d", DType: volume.Uint8, Shape: []int64{2, 2}, Data: make([]byte, 4), Tags: c.tags})
		vols, err := Format{}.Open(context.Background(), newMem(t, map[string][]byte{"d.dm3": b}), "d.dm3")
		if err != nil {
			t.Fatal(err)
		}
		md := vols[0].Info().Metadata
		src, _ := md["acquisition_datetime_source"].(string)
		if md["acquisition_date"] != c.date || !strings.Contains(src, c.source) || (md["acquisition_datetime_conflict"] != nil) != c.conflict {
			t.Errorf("case %d: date %v source %q conflict %v", i, md["acquisition_date"], src, md["acquisition_datetime_conflict"])
		}
	}
}

func TestWriteErrors(t *testing.T) {
	cases := []Image{
		{Name: "dtype", DType: volume.Int64, Shape: []int64{1}, Data: make([]byte, 8)},
		{Name: "short", DType: volume.Uint16, Shape: []int64{2, 2}, Data: make([]byte, 7)},
		{Name: "rank", DType: volume.Uint8, Shape: []int64{1, 1, 1, 1, 1}, Data: make([]byte, 1)},
		{Name: "cal", DType: volume.Uint8, Shape: []int64{1, 1}, Data: make([]byte, 1), Scales: []float64{1}},
		{Name: "tag", DType: volume.Uint8, Shape: []int64{1}, Data: make([]byte, 1), Tags: map[string]any{"A": 1.0, "A.B": 2.0}},
		{Name: "value", DType: volume.Uint8, Shape: []int64{1}, Data: make([]byte, 1), Tags: map[string]any{"A": []int{1}}},
	}
	for _, img := range cases {
		if err := WriteDM3(io.Discard, img); !errors.Is(err, ErrWrite) {
			t.Errorf("%s: got %v, want ErrWrite", img.Name, err)
		}
	}
}

// TestRealImages covers the thumbnail rules: the Thumbnails list when present,
// else 2-D RGB images are dropped when anything else exists.
func TestRealImages(t *testing.T) {
	img := func(code int64, rank int) *Tag {
		dims := &Tag{Name: "Dimensions", Group: true}
		for i := 0; i < rank; i++ {
			dims.Children = append(dims.Children, &Tag{Value: int64(4)})
		}
		return &Tag{Group: true, Children: []*Tag{{Name: "ImageData", Group: true, Children: []*Tag{
			{Name: "Data", Value: &Array{}}, {Name: "DataType", Value: code}, dims}}}}
	}
	thumbs := func(idx ...int64) *Tag {
		g := &Tag{Name: "Thumbnails", Group: true}
		for _, i := range idx {
			g.Children = append(g.Children, &Tag{Group: true, Children: []*Tag{{Name: "ImageIndex", Value: i}}})
		}
		return g
	}
	cases := []struct {
		images []*Tag
		thumbs *Tag
		want   string
	}{
		{[]*Tag{img(23, 2), img(6, 2)}, thumbs(0), "[1]"},
		{[]*Tag{img(6, 2), img(23, 2)}, thumbs(1), "[0]"},
		{[]*Tag{img(23, 2), img(6, 2), img(2, 1)}, thumbs(0), "[1 2]"},
		{[]*Tag{img(23, 2), img(6, 2)}, nil, "[1]"},
		{[]*Tag{img(8, 2), img(23, 3)}, nil, "[1]"},
		{[]*Tag{img(23, 2)}, nil, "[0]"},
		{[]*Tag{img(23, 2), img(23, 2)}, thumbs(), "[0 1]"},
	}
	for i, c := range cases {
		list := &Tag{Name: "ImageList", Group: true, Children: c.images}
		root := &Tag{Group: true, Children: []*Tag{list}}
		if c.thumbs != nil {
			root.Children = append(root.Children, c.thumbs)
		}
		if got := fmt.Sprint(realImages(root, list)); got != c.want {
			t.Errorf("case %d: %s, want %s", i, got, c.want)
		}
	}
}
