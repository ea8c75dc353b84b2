package catalog

import (
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// ArrayPath names an array by where it is, for a person: the file or store
// path below its dataset, then the array's path inside it
// ("jrc_mus-nacc-2.zarr/recon-2/em/fibsem-int16/s0", "emdata.zarr/s0"); a
// file's only array is the file ("volumedata.tif").
func ArrayPath(r Record) string {
	rel := strings.TrimPrefix(r.LocalPath, r.Dataset+"/")
	base := path.Base(rel)
	switch {
	case r.Array == "" || rel == "":
		return rel + r.Array
	case r.Array == base || r.Array == strings.TrimSuffix(base, path.Ext(base)):
		return rel
	case strings.HasPrefix(r.Array, base+"#"): // a file's further series: "a.tif#2"
		return path.Join(path.Dir(rel), r.Array)
	}
	return rel + "/" + r.Array
}

// shapeText is the shape along the axes the array has, z × y × x, then
// channels and time points: "33 × 48 × 64", "100 × 96", "64 × 64, 3 c".
func shapeText(r Record) string {
	var s []string
	for _, n := range []int64{r.ShapeZ, r.ShapeY, r.ShapeX} {
		if n > 0 {
			s = append(s, strconv.FormatInt(n, 10))
		}
	}
	out := strings.Join(s, " × ")
	if r.ShapeC > 1 {
		out += ", " + strconv.FormatInt(r.ShapeC, 10) + " c"
	}
	if r.ShapeT > 1 {
		out += ", " + strconv.FormatInt(r.ShapeT, 10) + " t"
	}
	return out
}

// voxelText is the voxel size in nm along the spatial axes the array has
// (– where the size is unknown), and which axes those are: "8 × 8 × 8",
// "z × y × x"; "7.998 × 7.998", "y × x" for an image. "" when none is known.
func voxelText(r Record) (string, string) {
	if r.VoxelZ == nil && r.VoxelY == nil && r.VoxelX == nil {
		return "", ""
	}
	var vs, axes []string
	for i, a := range []struct {
		name  string
		n     int64
		voxel *float64
	}{{"z", r.ShapeZ, r.VoxelZ}, {"y", r.ShapeY, r.VoxelY}, {"x", r.ShapeX, r.VoxelX}} {
		// An image has no z axis, though its z spacing may be known (serial
		// sections): the spacing belongs to the stack the row says it is part of.
		if a.n <= 0 && !(i == 0 && a.voxel != nil) {
			continue
		}
		axes = append(axes, a.name)
		if a.voxel == nil {
			vs = append(vs, "–")
		} else {
			vs = append(vs, volume.Readable(*a.voxel))
		}
	}
	return strings.Join(vs, " × "), strings.Join(axes, " × ")
}

// reportTable is the page's table: what a person looks for first (dataset,
// array, shape, dtype, voxel size and its source, status), then every other
// column of the table as a bookkeeping column shown on request, with
// numbers in four significant digits (the CSV has them in full).
func reportTable(rs []Record) ([]reportCol, [][]reportCell) {
	cols := []reportCol{
		{Name: "dataset", Label: "dataset"},
		{Name: "array", Label: "array"},
		{Name: "shape", Label: "shape"},
		{Name: "dtype", Label: "dtype"},
		{Name: "voxel_size_nm", Label: "voxel size (nm)"},
		{Name: "voxel_size_source", Label: "voxel size from"},
		{Name: "status", Label: "status"},
	}
	shown := map[string]bool{"dataset": true, "array": true, "dtype": true, "voxel_size_source": true, "status": true}
	var more []string
	for _, c := range Columns {
		if shown[c] || c == "schema_version" {
			continue
		}
		more = append(more, c)
	}
	more = append(more, "schema_version") // bookkeeping of the file format: last
	for _, c := range more {
		k, _ := columnKind(c)
		cols = append(cols, reportCol{Name: c, Label: c, Numeric: k.numeric(), More: true})
	}
	rows := make([][]reportCell, 0, len(rs))
	for _, r := range rs {
		fields := map[string]any{}
		for _, f := range r.Fields() {
			fields[f.Name] = f.Value
		}
		vox, axes := voxelText(r)
		row := []reportCell{
			{Text: r.Dataset},
			{Text: ArrayPath(r), Title: r.LocalPath + " # " + r.Array},
			{Text: shapeText(r)},
			{Text: r.DType},
			{Text: vox, Title: axes},
			{Text: r.VoxelSource},
			{Text: r.Status},
		}
		for i := range row {
			row[i].Missing = row[i].Text == ""
		}
		for _, c := range more {
			v := fields[c]
			text := cell(v)
			if x, ok := v.(float64); ok {
				text = volume.Readable(x)
			}
			row = append(row, reportCell{Text: text, Missing: v == nil})
		}
		rows = append(rows, row)
	}
	return cols, rows
}

// reportFailures lists what failed: the run's failures that gave no row,
// then every row whose status says it could not be read.
func reportFailures(rs []Record, fs []Failure) []reportFailure {
	var out []reportFailure
	for _, f := range fs {
		obj := f.Object
		if obj == "" {
			obj = "(the dataset)"
		}
		out = append(out, reportFailure{Dataset: f.Dataset, Object: obj, Reason: store.BriefText(f.Status)})
	}
	for _, r := range rs {
		if Failed(r.Status) {
			out = append(out, reportFailure{Dataset: r.Dataset, Object: ArrayPath(r), Reason: store.BriefText(r.Status)})
		}
	}
	return out
}

// groupConflicts says each conflict of a dataset once, with the arrays it
// concerns: sixteen sections that disagree with the API the same way are
// one line, "in 16 files", not sixteen copies.
func groupConflicts(rs []Record) []datasetConflicts {
	type group struct {
		arrays []string
		files  map[string]bool
	}
	byDataset := map[string]map[string]*group{}
	order := map[string][]string{}
	for _, r := range rs {
		for _, c := range r.Conflicts {
			m := byDataset[r.Dataset]
			if m == nil {
				m = map[string]*group{}
				byDataset[r.Dataset] = m
			}
			g := m[c]
			if g == nil {
				g = &group{files: map[string]bool{}}
				m[c] = g
				order[r.Dataset] = append(order[r.Dataset], c)
			}
			g.arrays = append(g.arrays, ArrayPath(r))
			g.files[r.LocalPath] = true
		}
	}
	var out []datasetConflicts
	for ds, m := range byDataset {
		dc := datasetConflicts{Dataset: ds}
		for _, c := range order[ds] {
			g := m[c]
			cg := conflictGroup{Text: c}
			switch {
			case len(g.arrays) == 1:
				cg.Where = g.arrays[0]
			case len(g.files) == len(g.arrays):
				cg.Where = strconv.Itoa(len(g.files)) + " files"
				cg.Arrays = g.arrays
			default:
				cg.Where = strconv.Itoa(len(g.arrays)) + " arrays"
				cg.Arrays = g.arrays
			}
			dc.Items = append(dc.Items, cg)
		}
		out = append(out, dc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dataset < out[j].Dataset })
	return out
}
