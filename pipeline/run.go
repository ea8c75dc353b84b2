package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/transfer"
	"github.com/imgdataset/imgdataset/volume"
)

// DatasetReport is the outcome of one dataset.
type DatasetReport struct {
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Kind    string   `json:"kind"`
	Status  string   `json:"status"` // ok, or failed: an object was not fetched, or an array is corrupt or unreadable
	Objects int      `json:"objects"`
	Bytes   int64    `json:"bytes"`
	Arrays  int      `json:"arrays"`
	Outputs []string `json:"outputs,omitempty"` // block outputs, relative to OutDir
	// Errors are the dataset's failures, one line each (store.Brief): the object
	// and the cause, the dataset's name left to whoever prints them.
	Errors []string `json:"errors,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	OutDir   string           `json:"out_dir"`
	Datasets []*DatasetReport `json:"datasets"`
	Tables   catalog.Outputs  `json:"tables"`
	HTML     string           `json:"report"` // report.html, relative to OutDir
	Records  []catalog.Record `json:"-"`
	// Failures are what gave no record (catalog.json and report.html list
	// them); arrays that are corrupt or unreadable are Records with that status.
	Failures []catalog.Failure `json:"-"`
	// vols are the arrays behind the records, by catalog.VolumeKey, for the report.
	vols map[string]volume.Volume

	// Shard is set for a task of a sharded run: what it downloaded.
	Shard *ShardReport `json:"shard,omitempty"`
}

// keep remembers the volume behind a record for the HTML report.
func (r *Report) keep(rec catalog.Record, v volume.Volume) {
	if r.vols == nil {
		r.vols = map[string]volume.Volume{}
	}
	r.vols[catalog.VolumeKey(rec)] = v
}

// fail records that object of dr (a path below the dataset, "" for the
// dataset itself) failed with err: the dataset is failed, its summary line
// says why, and catalog.json and report.html list it.
func (r *Report) fail(dr *DatasetReport, object string, err error) {
	dr.Status = "failed"
	// The printer names the dataset: a cause that starts "dataset/path" says
	// the path alone.
	line := strings.TrimPrefix(store.Brief(err), dr.Name+"/")
	if object != "" && !strings.Contains(line, object) {
		line = object + ": " + line
	}
	dr.Errors = append(dr.Errors, line)
	r.Failures = append(r.Failures, catalog.Failure{Dataset: dr.Name, Object: object, Status: catalog.StatusOf(err)})
}

// Failed reports whether any dataset failed.
func (r *Report) Failed() bool {
	for _, d := range r.Datasets {
		if d.Status != "ok" {
			return true
		}
	}
	return false
}

// Run gathers the manifest's datasets into opt.OutDir.
func Run(ctx context.Context, m *manifest.Manifest, opt Options) (*Report, error) {
	opt.Defaults()
	if opt.OutDir == "" {
		return nil, errors.New("run: no output directory")
	}
	ds, err := selectDatasets(m, opt.Only)
	if err != nil {
		return nil, err
	}
	// One lock over everything the run writes, not only the downloads: two
	// runs must not convert into one store or write catalog.json in turn
	// (issue #17).
	// A task of a sharded run shares the output with the other tasks and
	// holds its own lock; finalize holds the whole-output lock already.
	var lock io.Closer
	switch {
	case opt.locked:
	case opt.Shard.Sharded():
		lock, err = transfer.LockTask(opt.OutDir, taskName(opt.Shard))
	default:
		lock, err = transfer.LockOutput(opt.OutDir)
	}
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if lock != nil {
		defer lock.Close()
	}
	out := store.New(store.NewFile(opt.OutDir))
	rep := &Report{OutDir: opt.OutDir}

	opt.logf("resolving %s", count(len(ds), "dataset"))
	resolved, rerrs := resolveAll(ctx, &opt.Env, ds)
	byName := map[string]*DatasetReport{}
	var jobs []transfer.Job
	for i, d := range ds {
		dr := &DatasetReport{Name: d.Name, URL: d.URL, Kind: d.Kind, Status: "ok"}
		rep.Datasets = append(rep.Datasets, dr)
		byName[d.Name] = dr
		if rerrs[i] != nil {
			rep.fail(dr, "", rerrs[i])
			opt.logf("  %s: could not be resolved (the summary says why)", d.Name)
			continue
		}
		r := resolved[i]
		dr.Kind = r.Kind
		dr.Objects = len(r.Objects)
		for _, o := range r.Objects {
			dr.Bytes += max(o.EstimatedSize(), 0)
		}
		opt.logf("  %s: %s, %s, %s to crop", d.Name, count(len(r.Objects), "object"), human(dr.Bytes), count(len(r.Volumes), "volume"))
		if len(r.Objects) > 0 {
			jobs = append(jobs, transfer.Job{Dataset: d.Name, Objects: r.Objects})
		}
	}

	if opt.Shard.Sharded() {
		return rep, runTask(ctx, m, &opt, jobs, rerrs, rep, byName)
	}

	// Transfer: one scheduler for everything.
	results := map[string]map[string]transfer.Result{}
	if len(jobs) > 0 {
		topt := opt.Transfer
		topt.OutDir = opt.OutDir
		topt.Locked = true
		noRetry := *opt.Env.Stores
		noRetry.Retry = 0 // the scheduler retries and must see 429s itself
		topt.Stores = &noRetry
		opt.logf("downloading %s", count(len(jobs), "dataset"))
		sum, err := transfer.Run(ctx, jobs, topt)
		if err != nil {
			return rep, fmt.Errorf("transfer: %w", err)
		}
		for _, d := range sum.Datasets {
			for _, res := range d.Results {
				if results[res.Dataset] == nil {
					results[res.Dataset] = map[string]transfer.Result{}
				}
				results[res.Dataset][res.Path] = res
				if res.Err != nil {
					rep.fail(byName[res.Dataset], res.Path, res.Err)
				}
			}
		}
	}

	// Read, crop, convert, catalog.
	for i, d := range ds {
		if resolved[i] == nil {
			continue
		}
		dr := byName[d.Name]
		recs, err := processDataset(ctx, &opt, out, resolved[i], results[d.Name], dr, rep)
		if err != nil {
			rep.fail(dr, "", err)
		}
		for _, rec := range recs {
			// A corrupt or unreadable array fails its dataset like a failed
			// download: the data the dataset promises is not there. It is a
			// row of its own, so it is no Failure.
			if catalog.Failed(rec.Status) {
				dr.Status = "failed"
				dr.Errors = append(dr.Errors, store.BriefText(strings.TrimPrefix(rec.LocalPath, d.Name+"/")+": "+rec.Status))
			}
		}
		dr.Arrays = len(recs)
		rep.Records = append(rep.Records, recs...)
	}
	kept, err := keepEarlier(ctx, &opt, rep)
	if err != nil {
		return rep, err
	}
	if kept != nil {
		defer kept.Close()
	}
	tables, err := catalog.WriteRun(ctx, out, rep.Records, rep.Failures)
	if err != nil {
		return rep, err
	}
	rep.Tables = tables
	if err := writeReport(ctx, out, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// unit is one openable thing on disk: a file, or the root of a chunked store.
type unit struct {
	key     string // relative to the output dir
	root    string // the store's path below the dataset dir ("a.zarr"); "" for a file
	objects []source.Object
}

// groupUnits folds the objects of chunked stores (zarr, n5, precomputed) into
// one unit at the store root, so each store is opened once. The objects are on
// disk by now, in dsDir (the dataset's directory, never a store itself), so
// the registry knows a store by its metadata as well as by its name.
func groupUnits(ctx context.Context, reg *format.Registry, dsDir *store.Store, dataset string, objs []source.Object) []unit {
	byKey := map[string]*unit{}
	known := map[string]bool{}
	var order []string
	for _, o := range objs {
		k := path.Join(dataset, o.Path)
		root := reg.StoreRoot(ctx, dsDir, o.Path, known)
		if root != "" {
			k = path.Join(dataset, root)
		}
		u, ok := byKey[k]
		if !ok {
			u = &unit{key: k, root: root}
			byKey[k] = u
			order = append(order, k)
		}
		u.objects = append(u.objects, o)
	}
	sort.Strings(order)
	units := make([]unit, len(order))
	for i, k := range order {
		units[i] = *byKey[k]
	}
	return units
}

func processDataset(ctx context.Context, opt *Options, out *store.Store, r *source.Resolved, results map[string]transfer.Result, dr *DatasetReport, rep *Report) ([]catalog.Record, error) {
	var recs []catalog.Record
	var readable []framed
	dsDir := store.New(store.NewFile(filepath.Join(opt.OutDir, r.Dataset.Name)))
	defer dsDir.Close()
	for _, u := range groupUnits(ctx, opt.Formats, dsDir, r.Dataset.Name, r.Objects) {
		// Skip units whose download failed.
		failed := false
		for _, o := range u.objects {
			if res, ok := results[o.Path]; !ok || res.Err != nil {
				failed = true
			}
		}
		if failed {
			continue
		}
		base := catalog.Record{Dataset: r.Dataset.Name, LocalPath: u.key, SourceURL: sourceURL(u), MetadataSource: r.FactsSource}
		if len(u.objects) == 1 {
			res := results[u.objects[0].Path]
			base.SHA256 = res.SHA256
			base.FileBytes = ptr(res.Size)
		} else {
			var n int64
			for _, o := range u.objects {
				n += results[o.Path].Size
			}
			base.FileBytes = ptr(n)
		}
		f, vols, err := opt.Formats.Open(ctx, out, u.key)
		if errors.Is(err, format.ErrUnknown) {
			opt.logf("  %s: %s is not an image format the tool reads; kept as a file", r.Dataset.Name, u.key)
			continue
		}
		if f != nil {
			base.Format = f.Name()
		}
		if err != nil {
			rec := base
			rec.Status = catalog.StatusOf(err)
			recs = append(recs, rec)
			continue
		}
		for _, v := range vols {
			rec := base
			rec.Status = catalog.StatusOK
			catalog.FromVolume(ctx, &rec, v, hints(r, u), opt.SampleBudget)
			rec.Array = scan.ArrayName(u.key, v.Info().Name)
			applyFacts(&rec, r, u)
			pageShapeConflict(&rec, r)
			recs = append(recs, rec)
			if rec.Status != catalog.StatusOK {
				continue // found corrupt while sampling: not converted
			}
			rep.keep(rec, v)
			readable = append(readable, framed{v, frameOf(rec), strings.TrimPrefix(u.key, r.Dataset.Name+"/")})
		}
	}
	// Crops of remote volumes.
	for _, ref := range r.Volumes {
		rec, err := cropVolume(ctx, opt, out, r, ref, dr, rep)
		if err != nil {
			rep.fail(dr, ref.Path, err)
			continue
		}
		recs = append(recs, rec...)
	}
	if opt.Convert {
		crecs, err := convertAll(ctx, opt, out, r, readable, dr, rep)
		if err != nil {
			return recs, err
		}
		recs = append(recs, crecs...)
	}
	return recs, nil
}

func sourceURL(u unit) string {
	if len(u.objects) == 1 {
		return u.objects[0].SourceURL
	}
	// The store root: the common prefix of the objects' URLs up to the root segment.
	o := u.objects[0]
	if u.root == "" {
		return o.StoreURL
	}
	if i := strings.Index(o.SourceURL, u.root); i >= 0 {
		return o.SourceURL[:i+len(u.root)]
	}
	return o.StoreURL
}

func hints(r *source.Resolved, u unit) catalog.Hints {
	h := catalog.Hints{Source: r.FactsSource}
	facts := source.Facts{}
	for k, v := range r.Facts {
		facts[k] = v
	}
	if len(u.objects) == 1 {
		for k, v := range u.objects[0].Facts {
			facts[k] = v
		}
	}
	if v, ok := floats(facts["voxel_size_nm"]); ok && len(v) == 3 {
		h.VoxelNM, h.VoxelSource = v, labelOf(r.FactsSource)
	} else if len(r.Dataset.VoxelSizeNM) == 3 {
		h.VoxelNM, h.VoxelSource = r.Dataset.VoxelSizeNM, catalog.FromManifest
	}
	// EMPIAR's REST API describes the plane of each image (y, x) only.
	if len(h.VoxelNM) == 0 {
		if v, ok := floats(facts["pixel_size_nm"]); ok && len(v) == 2 {
			h.VoxelNM, h.VoxelSource = []float64{0, v[0], v[1]}, labelOf(r.FactsSource)
		}
	}
	if v, ok := floats(facts["shape"]); ok && len(v) == 3 {
		h.Shape = []int64{int64(v[0]), int64(v[1]), int64(v[2])}
		h.ShapeSource = labelOf(r.FactsSource)
	} else if sets, ok := facts["imagesets"].([]map[string]any); ok && len(sets) == 1 {
		w, wok := sets[0]["image_width"].(int64)
		hh, hok := sets[0]["image_height"].(int64)
		if wok && hok {
			h.Shape = []int64{0, hh, w}
			h.ShapeSource = labelOf(r.FactsSource)
		}
	}
	if s, ok := facts["dtype"].(string); ok {
		h.DType = s
	}
	return h
}

// labelOf turns a resolver's FactsSource into a short provenance label.
func labelOf(s string) string {
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "web page"):
		return catalog.FromWebPage
	case strings.Contains(l, "neuroglancer"):
		return catalog.FromState
	case l == "":
		return "source"
	}
	if strings.Contains(l, "api") {
		return catalog.FromAPI + " (" + s + ")"
	}
	return s
}

func applyFacts(rec *catalog.Record, r *source.Resolved, u unit) {
	get := func(k string) string {
		if len(u.objects) == 1 {
			if v, ok := u.objects[0].Facts[k].(string); ok && v != "" {
				return v
			}
		}
		v, _ := r.Facts[k].(string)
		return v
	}
	if rec.Title == "" {
		rec.Title = get("title")
		if rec.Title == "" {
			rec.Title = r.Dataset.Title
		}
	}
	rec.DOI = get("doi")
	rec.License = get("license")
	if rec.Modality == "" {
		rec.Modality = get("modality")
	}
	rec.Specimen = get("specimen")
	// catalog.FromVolume filled the acquisition columns the file states;
	// the resolver's facts only fill a gap.
	if rec.Microscope == "" {
		rec.Microscope = get("microscope")
	}
}

func floats(v any) ([]float64, bool) {
	switch x := v.(type) {
	case []float64:
		return x, true
	case []int64:
		out := make([]float64, len(x))
		for i := range x {
			out[i] = float64(x[i])
		}
		return out, true
	case []int:
		out := make([]float64, len(x))
		for i := range x {
			out[i] = float64(x[i])
		}
		return out, true
	case []any:
		out := make([]float64, len(x))
		for i := range x {
			f, ok := x[i].(float64)
			if !ok {
				return nil, false
			}
			out[i] = f
		}
		return out, true
	}
	return nil, false
}

func ptr[T any](v T) *T { return &v }

func human(n int64) string {
	const unit = 1024
	if n < 0 {
		return "?"
	}
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// writeReport draws report.html: the table, and one card per array file or
// store, showing the coarsest level that still has ≥ 256 voxels across (so a
// pyramid costs a few chunks, not a full-resolution pass).
func writeReport(ctx context.Context, out *store.Store, rep *Report) error {
	type cand struct {
		key  string
		v    volume.Volume
		size int64
	}
	best := map[string]cand{}
	for _, rec := range rep.Records {
		k := catalog.VolumeKey(rec)
		v, ok := rep.vols[k]
		if !ok {
			continue
		}
		in := v.Info()
		var side int64
		for _, s := range in.Shape[max(0, len(in.Shape)-2):] {
			side = max(side, s)
		}
		group := rec.Dataset + "/" + rec.LocalPath
		if rec.ScaleLevel == nil {
			group += "#" + rec.Array
		}
		c, seen := best[group]
		switch {
		case !seen:
		case side >= 256 && (c.size < 256 || side < c.size):
		case c.size < 256 && side > c.size:
		default:
			continue
		}
		best[group] = cand{key: k, v: v, size: side}
	}
	vols := map[string]volume.Volume{}
	for _, c := range best {
		vols[c.key] = c.v
	}
	html, err := catalog.Report(ctx, rep.Records, vols, catalog.ReportOptions{Title: "imgdataset: " + rep.OutDir, Failures: rep.Failures})
	if err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	rep.HTML = "report.html"
	return out.WriteAll(ctx, rep.HTML, html)
}

// pageShapeConflict flags a volume whose dimensions are the ones a web page
// states, but in another order (the EPFL page says 1065x2048x1536 for a stack
// that is z=1065, y=1536, x=2048): the file's order wins and the row says so.
func pageShapeConflict(rec *catalog.Record, r *source.Resolved) {
	s, _ := r.Facts["page_volume_size"].(string)
	parts := strings.Split(strings.ToLower(s), "x")
	if len(parts) != 3 || rec.ShapeZ == 0 {
		return
	}
	page := make([]int64, 3)
	for i, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return
		}
		page[i] = n
	}
	file := []int64{rec.ShapeZ, rec.ShapeY, rec.ShapeX}
	a, b := append([]int64(nil), page...), append([]int64(nil), file...)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) || slices.Equal(page, file) {
		return
	}
	rec.Conflicts = append(rec.Conflicts, fmt.Sprintf("shape: web page states %s, file has (z,y,x) %d×%d×%d — same sizes in another order (axes swapped on the page)", s, file[0], file[1], file[2]))
}

// count says n things in English: "1 dataset", "5 datasets".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
