package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imgdataset/imgdataset/internal/browser"
	"github.com/imgdataset/imgdataset/volume"
)

func axes3(names string, shape []int64, scale []float64, unit string) []volume.Axis {
	a := make([]volume.Axis, len(shape))
	for i := range shape {
		a[i] = volume.Axis{Name: string(names[i]), Size: shape[i], Scale: 1}
		if scale != nil {
			a[i].Scale, a[i].Unit, a[i].ScaleKnown = scale[i], unit, true
		}
	}
	return a
}

// newMem builds a volume whose element i (C order) is val(i) encoded as dt.
func newMem(t testing.TB, name, names string, shape []int64, scale []float64, unit string, dt volume.DType, val func(i int64) float64) *volume.Mem {
	t.Helper()
	in := volume.Info{Name: name, Shape: shape, DType: dt, Axes: axes3(names, shape, scale, unit)}
	data := make([]byte, in.NumBytes())
	e := int64(dt.Size())
	for i := int64(0); i < in.NumElements(); i++ {
		v := val(i)
		b := data[i*e : (i+1)*e]
		switch dt {
		case volume.Uint8:
			b[0] = uint8(v)
		case volume.Uint16:
			binary.LittleEndian.PutUint16(b, uint16(v))
		case volume.Float32:
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v)))
		default:
			t.Fatalf("newMem: dtype %s", dt)
		}
	}
	m, err := volume.NewMem(in, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// failing is a volume whose reads always fail, as a truncated file's would.
type failing struct{ volume.Volume }

func (failing) ReadRegion(context.Context, volume.Box, []byte) error {
	return errors.New("truncated strip 3")
}

// reportFixture is a small catalog: a 3-D anisotropic stack, a 2-D image
// larger than a thumbnail, a float volume with channels, NaN and Inf, a
// volume whose reads fail, and a record without a volume.
func reportFixture(t testing.TB) ([]Record, map[string]volume.Volume) {
	t.Helper()
	ctx := context.Background()
	stack := newMem(t, "stack", "zyx", []int64{24, 60, 80}, []float64{0.04, 0.008, 0.008}, "µm", volume.Uint8, func(i int64) float64 {
		z, y, x := i/(60*80), i/80%60, i%80
		d := math.Hypot(math.Hypot(float64(x-40), float64(y-30)), float64(z-12)*5)
		if d < 20 {
			return 200 + float64(x%7)
		}
		return 30 + float64(x+y)/2
	})
	img := newMem(t, "image", "yx", []int64{300, 520}, []float64{2.5, 2.5}, "nm", volume.Uint16, func(i int64) float64 {
		y, x := i/520, i%520
		return 1000 + 30*float64((x/40+y/40)%2) + float64(x)
	})
	flt := newMem(t, "float", "zyxc", []int64{8, 16, 16, 3}, nil, "", volume.Float32, func(i int64) float64 {
		switch i {
		case 5 * 3:
			return math.NaN()
		case 7 * 3:
			return math.Inf(1)
		}
		return math.Sin(float64(i) / 50)
	})
	vols := map[string]volume.Volume{}
	var rs []Record
	add := func(ds, path string, v volume.Volume, h Hints) {
		r := Record{Dataset: ds, LocalPath: path, Format: "mem", Status: "ok", SourceURL: "https://example.org/" + path}
		FromVolume(ctx, &r, v, h, 1<<16)
		rs = append(rs, r)
		vols[VolumeKey(r)] = v
	}
	add("epfl", "stack.tif", stack, Hints{VoxelNM: []float64{40, 8, 9}, VoxelSource: FromWebPage})
	add("idr", "image.tif", img, Hints{})
	add("openorganelle", "f.zarr", flt, Hints{VoxelNM: []float64{4, 4, 4}, VoxelSource: FromAPI})
	bad := Record{Dataset: "broken", LocalPath: "bad.tif", Array: "0", Status: "ok", Format: "tiff",
		Title: `<script>alert("x")</script> & "quotes" µm 数据`}
	vols[VolumeKey(bad)] = failing{stack}
	rs = append(rs, bad)
	rs = append(rs, Record{Dataset: "aardvark", LocalPath: "x.n5", Status: "not yet supported: n5", Format: "n5"})
	return rs, vols
}

func TestReportHTMLIsSelfContainedAndEscaped(t *testing.T) {
	rs, vols := reportFixture(t)
	b, err := Report(context.Background(), rs, vols, ReportOptions{Title: "T <&>"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, `<script>alert`) || !strings.Contains(s, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
		t.Fatal("record text is not HTML-escaped")
	}
	if !strings.Contains(s, "<title>T &lt;&amp;&gt;</title>") {
		t.Fatal("title not escaped")
	}
	if n := strings.Count(s, "<script>"); n != 1 {
		t.Fatalf("%d script elements, want the one sorting script", n)
	}
	// Every src/href is a data: URI or a link within the page; nothing is fetched.
	for _, m := range regexp.MustCompile(`(?i)(src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(s, -1) {
		if !strings.HasPrefix(m[2], "data:image/png;base64,") && !(m[1] == "href" && strings.HasPrefix(m[2], "#")) {
			t.Fatalf("external reference %s=%q", m[1], m[2])
		}
	}
	if strings.Contains(s, "url(") || strings.Contains(s, "@import") || strings.Contains(s, "ZgotmplZ") {
		t.Fatal("CSS reference or template-rejected value in the page")
	}
	// 3 volumes drawn: 3 + 1 + 3 slices; the failing one explains why.
	if n := strings.Count(s, `<img src="data:image/png;base64,`); n != 7 {
		t.Fatalf("%d thumbnails, want 7", n)
	}
	if !strings.Contains(s, "truncated strip 3") {
		t.Fatal("read failure not shown on its card")
	}
	for _, want := range []string{"40 × 8 × 8 nm (z × y × x), from file", "<li>voxel_size_x: file 8 nm, web page 9 nm — stack.tif</li>", "1:3", "xz at y=30",
		"2.5 × 2.5 nm (y × x)", "values of the image", "values from the 3 slices"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestReportCancelled(t *testing.T) {
	rs, vols := reportFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Report(ctx, rs, vols, ReportOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled report: err = %v", err)
	}
}

// TestReportInChromium loads the report in headless Chromium and checks what
// a person would: no errors, the table, sorting, images, and a screenshot.
func TestReportInChromium(t *testing.T) {
	rs, vols := reportFixture(t)
	b, err := Report(context.Background(), rs, vols, ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if keep := os.Getenv("CATALOG_REPORT_DIR"); keep != "" { // to look at the page by hand
		dir = keep
	}
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	tab := browser.Open(t, 1400, 1000)
	ctx := tab.Ctx
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("#catalog")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`Array.from(document.images).every(i => i.complete)`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("images did not finish loading: %v", err)
	}
	eval := func(js string) any {
		t.Helper()
		return tab.Eval(t, js)
	}

	if n := eval(`document.querySelectorAll("#catalog tbody tr").length`); n != float64(len(rs)) {
		t.Fatalf("table has %v rows, want %d", n, len(rs))
	}
	// Every column of the table, and the two a person reads first instead
	// of their parts (shape, voxel size).
	if n := eval(`document.querySelectorAll("#catalog thead th").length`); n != float64(len(Columns)+2) {
		t.Fatalf("table has %v columns, want %d", n, len(Columns)+2)
	}
	if n := eval(`document.images.length`); n != float64(7) {
		t.Fatalf("%v images, want 7", n)
	}
	if bad := eval(`Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.alt)`); len(bad.([]any)) != 0 {
		t.Fatalf("images that did not decode: %v", bad)
	}

	column := func(name string) []string {
		t.Helper()
		v := eval(fmt.Sprintf(`(() => { const i = Array.from(document.querySelectorAll("#catalog thead th")).findIndex(th => th.dataset.col === %q);
			return Array.from(document.querySelectorAll("#catalog tbody tr")).map(r => r.cells[i].textContent); })()`, name))
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	click := func(name string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#catalog th[data-col="`+name+`"]`))); err != nil {
			t.Fatal(err)
		}
	}

	datasets := column("dataset")
	want := slices.Sorted(slices.Values(datasets))
	if slices.Equal(datasets, want) {
		t.Fatalf("fixture rows are already sorted: %v", datasets)
	}
	click("dataset")
	if got := column("dataset"); !slices.Equal(got, want) {
		t.Fatalf("after clicking dataset: %v, want %v", got, want)
	}
	click("dataset")
	slices.Reverse(want)
	if got := column("dataset"); !slices.Equal(got, want) {
		t.Fatalf("after clicking dataset twice: %v, want %v", got, want)
	}
	// Numeric columns sort as numbers (80 < 520, not "520" < "80"), missing
	// last. shape_x is a bookkeeping column: shown on request.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#allcols"))); err != nil {
		t.Fatal(err)
	}
	click("shape_x")
	if got := column("shape_x"); !slices.Equal(got, []string{"16", "80", "520", "", ""}) {
		t.Fatalf("after clicking shape_x: %q", got)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	bnd := img.Bounds()
	if bnd.Dx() < 800 || bnd.Dy() < 400 {
		t.Fatalf("screenshot is %v", bnd)
	}
	colors := map[[3]uint32]bool{}
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 3 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	if len(colors) < 50 {
		t.Fatalf("screenshot has only %d colours: the page did not render", len(colors))
	}

	if problems := tab.Problems(); len(problems) > 0 {
		t.Fatalf("browser reported:\n%s", strings.Join(problems, "\n"))
	}
}
