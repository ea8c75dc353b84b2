package catalog

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// ReportOptions tunes Report. The zero value is ready to use.
type ReportOptions struct {
	// Title heads the page; "imgdataset catalog" when empty.
	Title string
	// ThumbPixels caps each thumbnail side (default 256).
	ThumbPixels int
	// ReadCap caps the bytes of one ReadRegion call while drawing a slice
	// (default 16 MiB); larger slices are read in tiles.
	ReadCap int64
	// Failures are the datasets and objects of a run that gave no row; the
	// page lists them with the rows whose status says failed.
	Failures []Failure
}

// VolumeKey is the key Report looks a record's volume up by.
func VolumeKey(r Record) string { return r.Dataset + "/" + r.LocalPath + "#" + r.Array }

// Report renders report.html: one self-contained page (inline CSS and JS,
// images as data: URIs, a Content-Security-Policy that forbids anything else)
// with the sortable table and, for every record whose volume is in vols (keyed
// by VolumeKey), a card with the middle xy/xz/yz slices, a histogram, a scale
// bar and the key metadata. A volume that cannot be read gets a card saying
// why; only cancellation of ctx fails the report.
func Report(ctx context.Context, rs []Record, vols map[string]volume.Volume, opt ReportOptions) ([]byte, error) {
	if opt.Title == "" {
		opt.Title = "imgdataset catalog"
	}
	if opt.ThumbPixels <= 0 {
		opt.ThumbPixels = 256
	}
	if opt.ReadCap <= 0 {
		opt.ReadCap = 16 << 20
	}
	page := reportPage{Title: opt.Title, Arrays: len(rs)}
	page.Cols, page.Rows = reportTable(rs)
	page.Failed = reportFailures(rs, opt.Failures)
	page.Conflicts = groupConflicts(rs)
	datasets := map[string]bool{}
	for _, r := range rs {
		datasets[r.Dataset] = true
	}
	for _, f := range opt.Failures {
		datasets[f.Dataset] = true
	}
	page.Datasets = len(datasets)
	for _, r := range rs {
		v, ok := vols[VolumeKey(r)]
		if !ok || v == nil {
			continue
		}
		c, err := makeCard(ctx, r, v, opt)
		if err != nil {
			return nil, err
		}
		c.ID = "vol-" + strconv.Itoa(len(page.Cards)+1)
		page.Cards = append(page.Cards, c)
	}
	var b bytes.Buffer
	if err := reportTemplate.Execute(&b, page); err != nil {
		return nil, fmt.Errorf("catalog: report: %w", err)
	}
	return b.Bytes(), nil
}

type reportPage struct {
	Title     string
	Arrays    int
	Datasets  int
	Cols      []reportCol
	Rows      [][]reportCell
	Failed    []reportFailure
	Conflicts []datasetConflicts
	Cards     []reportCard
}

type reportCol struct {
	Name    string
	Label   string // the header a person reads; Name is the table's column
	Numeric bool
	More    bool // a bookkeeping column, shown on request
}

type reportFailure struct{ Dataset, Object, Reason string }

// datasetConflicts are one dataset's conflicts, each said once with the
// arrays it concerns.
type datasetConflicts struct {
	Dataset string
	Items   []conflictGroup
}

type conflictGroup struct {
	Text   string
	Where  string   // "16 files" or the one array's name
	Arrays []string // the arrays, when more than one
}

type reportCell struct {
	Text    string
	Title   string // the tooltip, when it says more than Text
	Missing bool
}

type reportCard struct {
	ID, Title string
	Facts     [][2]string
	Conflicts int // how many; the page lists them per dataset
	Error     string
	Thumbs    []reportThumb
	Hist      *reportHist
}

type reportThumb struct {
	Src          template.URL // data:image/png;base64,…
	Alt, Caption string
	W, H         int // displayed size in CSS pixels
	Bar          bool
	BarPx        float64
	BarLabel     string
}

type reportHist struct {
	W, H         int
	Bars         []histBar
	Lo, Hi       float64 // contrast window, as x positions
	MinText      string
	MaxText      string
	WindowText   string
	SampleText   string
	ContrastLine bool
}

type histBar struct{ X, Y, W, H float64 }

// makeCard draws one volume. Read failures become the card's Error; only a
// cancelled context is returned as an error.
func makeCard(ctx context.Context, r Record, v volume.Volume, opt ReportOptions) (reportCard, error) {
	in := v.Info()
	c := reportCard{Title: r.Dataset + " / " + ArrayPath(r)}
	c.Facts = cardFacts(r, in)
	c.Conflicts = len(r.Conflicts)
	planes, err := middlePlanes(ctx, v, opt.ThumbPixels, opt.ReadCap)
	if ctx.Err() != nil {
		return c, ctx.Err()
	}
	if err != nil {
		c.Error = "slices unavailable: " + err.Error()
		return c, nil
	}
	var all []float64
	for _, p := range planes {
		all = append(all, p.Values...)
	}
	lo, hi, ok := percentileWindow(all, 0.5, 99.5)
	if !ok {
		c.Error = "no finite values to draw (dtype " + string(in.DType) + ")"
	}
	// One zoom for the card, so the slices share a pixel scale; small images
	// are enlarged (pixelated) to a readable size.
	side := 1
	for _, p := range planes {
		side = max(side, p.W, p.H)
	}
	zoom := max(1, opt.ThumbPixels/side)
	for _, p := range planes {
		t, err := makeThumb(r, in, p, lo, hi, zoom, opt.ThumbPixels)
		if err != nil {
			c.Error = err.Error()
			return c, nil
		}
		c.Thumbs = append(c.Thumbs, t)
	}
	if ok {
		c.Hist = makeReportHist(all, lo, hi, len(planes))
	}
	return c, nil
}

func cardFacts(r Record, in volume.Info) [][2]string {
	var shape []string
	for i, s := range in.Shape {
		name := in.Axes[i].Name
		if name == "" {
			name = "?"
		}
		shape = append(shape, name+"="+strconv.FormatInt(s, 10))
	}
	facts := [][2]string{
		{"shape", strings.Join(shape, " × ")},
		{"dtype", string(in.DType)},
	}
	vox := "unknown"
	if v, axes := voxelText(r); v != "" {
		vox = v + " nm (" + axes + ")"
		if r.VoxelSource != "" {
			vox += ", from " + r.VoxelSource
		}
	}
	facts = append(facts, [2]string{"voxel size", vox})
	for _, f := range [][2]string{{"format", r.Format}, {"compression", r.Compression}, {"status", r.Status}} {
		if f[1] != "" {
			facts = append(facts, f)
		}
	}
	if r.ValueMin != nil && r.ValueMax != nil {
		facts = append(facts, [2]string{"values", volume.Readable(*r.ValueMin) + " … " + volume.Readable(*r.ValueMax)})
	}
	return facts
}

// axisNM is the voxel size along volume axis i: the record's (which has the
// consolidated value and its provenance) or else the file's own calibration.
func axisNM(r Record, in volume.Info, slot string, i int) (float64, bool) {
	var p *float64
	switch slot {
	case "z":
		p = r.VoxelZ
	case "y":
		p = r.VoxelY
	case "x":
		p = r.VoxelX
	}
	if p != nil && *p > 0 {
		return *p, true
	}
	if a := in.Axes[i]; a.ScaleKnown {
		if nm, ok := volume.ToNanometres(a.Scale, a.Unit); ok && nm > 0 {
			return nm, true
		}
	}
	return 0, false
}

func makeThumb(r Record, in volume.Info, p plane, lo, hi float64, zoom, maxSide int) (reportThumb, error) {
	png, err := encodePNG(grayImage(p.Values, p.W, p.H, lo, hi))
	if err != nil {
		return reportThumb{}, fmt.Errorf("%s slice: png: %w", p.Name, err)
	}
	// Anisotropic voxels stretch the rows so the slice shows true physical proportions.
	aspect := 1.0
	rowNM, rowOK := axisNM(r, in, p.RowSlot, p.RowAxis)
	colNM, colOK := axisNM(r, in, p.ColSlot, p.ColAxis)
	if rowOK && colOK {
		aspect = math.Min(8, math.Max(0.125, rowNM/colNM))
	}
	t := reportThumb{
		Src: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
		W:   p.W * zoom,
		H:   max(1, min(int(math.Round(float64(p.H*zoom)*aspect)), 2*max(maxSide, p.H*zoom))),
	}
	where := ""
	if p.Index >= 0 {
		where = fmt.Sprintf(" at %s=%d", map[string]string{"xy": "z", "xz": "y", "yz": "x"}[p.Name], p.Index)
	}
	t.Caption = fmt.Sprintf("%s%s, 1:%d", p.Name, where, p.Stride)
	t.Alt = p.Name + " slice" + where
	if colOK {
		if _, px, label, ok := scaleBar(colNM*float64(p.Stride), p.W); ok {
			t.Bar, t.BarPx, t.BarLabel = true, px*float64(zoom), label
		}
	}
	return t, nil
}

func makeReportHist(vals []float64, lo, hi float64, slices int) *reportHist {
	h := makeHistogram(vals, 64)
	if h.N == 0 {
		return nil
	}
	const w, ht = 256.0, 72.0
	out := &reportHist{W: int(w), H: int(ht) + 18,
		MinText:    volume.Readable(h.Min),
		MaxText:    volume.Readable(h.Max),
		WindowText: volume.Readable(lo) + " … " + volume.Readable(hi),
		SampleText: fmt.Sprintf("%d values of the image", h.N),
	}
	if slices > 1 {
		out.SampleText = fmt.Sprintf("%d values from the %d slices", h.N, slices)
	}
	var peak int64
	for _, c := range h.Counts {
		peak = max(peak, c)
	}
	bw := w / float64(len(h.Counts))
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		bh := math.Max(1, float64(c)/float64(peak)*ht)
		out.Bars = append(out.Bars, histBar{X: float64(i) * bw, Y: ht - bh, W: math.Max(bw-0.5, 0.5), H: bh})
	}
	x := func(v float64) float64 { return math.Min(w, math.Max(0, (v-h.Start)/h.Span()*w)) }
	out.Lo, out.Hi, out.ContrastLine = x(lo), x(hi), true
	return out
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
.tablewrap { overflow: auto; max-height: 70vh; border: 1px solid #ccc; background: #fff; }
table { border-collapse: collapse; font-size: 12px; }
#catalog:not(.all) .more { display: none; }
.failed { background: #fff4f4; border: 1px solid #e0b4b4; border-radius: 6px; padding: .5em 1em; margin: 0 0 1em; }
.failed h2, .conflictlist h2 { font-size: 1.15em; margin: .2em 0 .4em; }
.failed table td { white-space: normal; max-width: 60em; }
.conflictlist { margin: 1em 0; }
.conflictlist h3 { font-size: 1em; margin: .6em 0 .2em; }
.conflictlist ul { color: #a60; margin: 0 0 0 1.2em; padding: 0; font-size: 12px; }
.conflictlist details, .conflictlist summary { display: inline; color: #555; }
button { font: inherit; font-size: 12px; margin: 0 0 .4em; }
th, td { border: 1px solid #e2e2e2; padding: 2px 6px; white-space: nowrap; max-width: 28em; overflow: hidden; text-overflow: ellipsis; }
th { position: sticky; top: 0; background: #eef; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " ▲"; }
th[aria-sort=descending]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { background: #f6f6f6; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin-top: 1em; }
.card { background: #fff; border: 1px solid #ccc; border-radius: 6px; padding: .8em 1em; max-width: 100%; }
.card h3 { margin: 0 0 .4em; font-size: 1.05em; word-break: break-all; }
.card dl { display: grid; grid-template-columns: max-content auto; gap: 0 .8em; margin: 0 0 .6em; font-size: 12px; }
.card dt { color: #666; }
.card dd { margin: 0; word-break: break-word; }
.thumbs { display: flex; flex-wrap: wrap; gap: .6em; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 11px; color: #555; }
.imgbox { position: relative; display: inline-block; line-height: 0; background: #000; }
.imgbox img { image-rendering: pixelated; display: block; }
.imgbox svg { position: absolute; left: 6px; bottom: 6px; overflow: visible; }
.scale rect { fill: #fff; stroke: #000; stroke-width: .5; }
.scale text { fill: #fff; font: bold 11px sans-serif; paint-order: stroke; stroke: #000; stroke-width: 2px; }
.hist rect.bar { fill: #557; }
.hist line { stroke: #c33; stroke-dasharray: 3 2; }
.hist text { font: 10px sans-serif; fill: #444; }
.err { color: #a00; }
.conflicts { color: #a60; margin: 0 0 .5em 1.2em; padding: 0; font-size: 12px; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Arrays}} array{{if ne .Arrays 1}}s{{end}} of {{.Datasets}} dataset{{if ne .Datasets 1}}s{{end}}{{if .Failed}}; {{len .Failed}} failed (listed first){{end}}. Voxel sizes in nm; click a column header to sort.</p>
{{if .Failed}}<section class="failed" id="failed">
<h2>Failed</h2>
<table>
<thead><tr><th>dataset</th><th>object</th><th>reason</th></tr></thead>
<tbody>
{{range .Failed}}<tr><td>{{.Dataset}}</td><td>{{.Object}}</td><td>{{.Reason}}</td></tr>
{{end}}</tbody>
</table>
</section>{{end}}
<button type="button" id="allcols" aria-pressed="false">show all columns</button>
<div class="tablewrap">
<table id="catalog">
<thead><tr>{{range .Cols}}<th data-col="{{.Name}}" data-num="{{.Numeric}}"{{if .More}} class="more"{{end}}>{{.Label}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range $i, $c := .}}{{$col := index $.Cols $i}}<td class="{{if $c.Missing}}na{{else if $col.Numeric}}num{{end}}{{if $col.More}} more{{end}}" title="{{if $c.Title}}{{$c.Title}}{{else}}{{$c.Text}}{{end}}">{{$c.Text}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
</div>
{{if .Conflicts}}<section class="conflictlist" id="conflicts">
<h2>Conflicts between the files and their sources</h2>
{{range .Conflicts}}<h3>{{.Dataset}}</h3>
<ul>{{range .Items}}<li>{{.Text}} — {{if .Arrays}}<details><summary>{{.Where}}</summary>{{range $i, $a := .Arrays}}{{if $i}}, {{end}}{{$a}}{{end}}</details>{{else}}{{.Where}}{{end}}</li>{{end}}</ul>
{{end}}</section>{{end}}
{{if .Cards}}<h2>Volumes</h2>{{end}}
<div class="cards">
{{range .Cards}}<section class="card" id="{{.ID}}">
<h3>{{.Title}}</h3>
<dl>{{range .Facts}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>{{end}}</dl>
{{if .Conflicts}}<p class="conflicts"><a href="#conflicts">{{.Conflicts}} conflict{{if ne .Conflicts 1}}s{{end}} with the sources</a></p>{{end}}
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<div class="thumbs">
{{range .Thumbs}}<figure>
<div class="imgbox"><img src="{{.Src}}" width="{{.W}}" height="{{.H}}" alt="{{.Alt}}">
{{if .Bar}}<svg class="scale" width="{{.BarPx}}" height="20" role="img" aria-label="scale bar {{.BarLabel}}"><text x="0" y="10">{{.BarLabel}}</text><rect x="0" y="14" width="{{.BarPx}}" height="4"></rect></svg>{{end}}
</div>
<figcaption>{{.Caption}}</figcaption>
</figure>
{{end}}{{with .Hist}}<figure>
<svg class="hist" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="histogram">
{{range .Bars}}<rect class="bar" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"></rect>{{end}}
{{if .ContrastLine}}<line x1="{{.Lo}}" y1="0" x2="{{.Lo}}" y2="72"></line><line x1="{{.Hi}}" y1="0" x2="{{.Hi}}" y2="72"></line>{{end}}
<text x="0" y="86">{{.MinText}}</text><text x="256" y="86" text-anchor="end">{{.MaxText}}</text>
</svg>
<figcaption>histogram ({{.SampleText}}); display window {{.WindowText}} (0.5–99.5 %)</figcaption>
</figure>{{end}}
</div>
</section>
{{end}}</div>
<script>
(function () {
  var table = document.getElementById("catalog");
  var heads = table.tHead.rows[0].cells;
  var all = document.getElementById("allcols");
  all.addEventListener("click", function () {
    var on = table.classList.toggle("all");
    all.setAttribute("aria-pressed", on ? "true" : "false");
    all.textContent = on ? "show the main columns" : "show all columns";
  });
  function sortBy(col) {
    var th = heads[col];
    var numeric = th.getAttribute("data-num") === "true";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    for (var k = 0; k < heads.length; k++) heads[k].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ca = a.cells[col], cb = b.cells[col];
      var ma = ca.classList.contains("na"), mb = cb.classList.contains("na");
      if (ma || mb) return ma === mb ? 0 : (ma ? 1 : -1); // missing last either way
      var x = ca.textContent, y = cb.textContent;
      if (numeric) return dir * (parseFloat(x) - parseFloat(y));
      return dir * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.title = "sort by " + th.textContent;
    th.addEventListener("click", function () { sortBy(i); });
  });
})();
</script>
</body>
</html>
`))
