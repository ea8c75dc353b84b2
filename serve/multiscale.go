package serve

import (
	"cmp"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
)

// The NGFF view: /zarr/{id}/ is a Zarr v2 group holding the levels of a
// multiscale volume as the arrays "0", "1", … (finest first), with OME-NGFF
// 0.4 "multiscales" in its .zattrs. A group, not a bare array: a client that
// finds .zarray at the root (neuroglancer, zarr.open) treats the URL as one
// array and ignores the multiscales, so the voxel size and the other levels
// would be lost.

// pyramidKey says which multiscale volume an entry is a level of, and which
// level: the readers state it in their metadata (NGFF and N5 "level", a
// precomputed "scale_index", a TIFF SubIFD level's "level_of"). Entries of
// the same unit with the same key are levels of one pyramid; an entry that
// states no level is level 0 of a pyramid of its own name (which the SubIFD
// levels of a TIFF page join).
func pyramidKey(e *entry) (key string, level int) {
	md := e.in.Metadata
	unit := e.rec.Dataset + "\x00" + e.rec.LocalPath + "\x00"
	if of, ok := md["level_of"].(string); ok {
		lv, _ := intOf(md["level"])
		return unit + "name\x00" + of, lv
	}
	if lv, ok := intOf(md["scale_index"]); ok {
		if _, ok := md["scale_key"]; ok {
			return unit + "precomputed", lv
		}
	}
	if lv, ok := intOf(md["level"]); ok {
		ms, _ := md["multiscale_name"].(string)
		if g, ok := md["multiscale_group"].(string); ok {
			// NGFF: the levels' paths are the group's to choose.
			return unit + "ngff\x00" + g + "\x00" + ms, lv
		}
		return unit + "level\x00" + path.Dir(e.in.Name) + "\x00" + ms, lv
	}
	return unit + "name\x00" + e.in.Name, 0
}

// intOf reads a small non-negative integer of reader metadata.
func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, n >= 0
	case int64:
		return int(n), n >= 0 && n < 1<<31
	case float64:
		return int(n), n >= 0 && n < 1<<31 && n == math.Trunc(n)
	}
	return 0, false
}

// groupLevels finds the pyramids among list (in catalog order) and returns,
// for the id of each entry, the ids of the levels its group serves: every
// level of a pyramid for its finest level, the entry alone for any other
// entry. A level joins its pyramid only when it is a downsampling of the
// level before it: same dtype, rank and axis names, no axis larger and one
// smaller; one that is not stays a group of its own.
func groupLevels(list []*entry) map[string][]string {
	type lv struct {
		e     *entry
		level int
	}
	byKey := map[string][]lv{}
	var keys []string
	for _, e := range list {
		if e.zdt == "" {
			continue
		}
		k, n := pyramidKey(e)
		if _, seen := byKey[k]; !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], lv{e, n})
	}
	out := map[string][]string{}
	for _, e := range list {
		out[e.ID] = []string{e.ID}
	}
	for _, k := range keys {
		ls := byKey[k]
		if len(ls) < 2 {
			continue
		}
		slices.SortStableFunc(ls, func(a, b lv) int { return cmp.Compare(a.level, b.level) })
		ids := []string{ls[0].e.ID}
		prev := ls[0]
		for _, l := range ls[1:] {
			if l.level == prev.level || !downsampled(prev.e, l.e) {
				continue
			}
			ids = append(ids, l.e.ID)
			prev = l
		}
		out[ids[0]] = ids
	}
	return out
}

// downsampled reports whether fine and coarse can be consecutive levels of
// one NGFF multiscale: same dtype, rank and axes, coarse no larger on any
// axis and smaller on at least one.
func downsampled(fine, coarse *entry) bool {
	if fine.zdt != coarse.zdt || len(fine.Shape) != len(coarse.Shape) {
		return false
	}
	smaller := false
	for i := range fine.Shape {
		if !strings.EqualFold(fine.Axes[i].Name, coarse.Axes[i].Name) || coarse.Shape[i] > fine.Shape[i] {
			return false
		}
		smaller = smaller || coarse.Shape[i] < fine.Shape[i]
	}
	return smaller
}

// ngffAxis is an axis of NGFF 0.4 multiscales metadata.
type ngffAxis struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	Unit string `json:"unit,omitempty"`
}

// ngffAxes describes the axes of e (the finest level) as NGFF 0.4 does, and
// says why they cannot be NGFF 0.4 axes when they cannot: 2 to 5 axes, 2 or
// 3 of them space, at most one time and one channel (or other) axis, time
// first and space last.
func ngffAxes(e *entry) ([]ngffAxis, error) {
	axes := make([]ngffAxis, len(e.Axes))
	// rank of each type in the order NGFF 0.4 requires
	order := map[string]int{"time": 0, "channel": 1, "": 1, "space": 2}
	count := map[string]int{}
	last := 0
	for i, a := range e.Axes {
		n := ngffAxis{Name: strings.ToLower(a.Name)}
		switch n.Name {
		case "z", "y", "x":
			n.Type = "space"
			if a.Unit == "nanometer" {
				n.Unit = a.Unit
			}
		case "c":
			n.Type = "channel"
		case "t":
			n.Type = "time"
		}
		axes[i] = n
		kind := n.Type
		if kind == "channel" {
			kind = "" // a channel and a custom axis share one place
		}
		count[kind]++
		if order[n.Type] < last {
			return nil, fmt.Errorf("axes %s: NGFF 0.4 orders them time, channel, space", axisList(axes[:i+1]))
		}
		last = order[n.Type]
	}
	switch {
	case len(axes) < 2 || len(axes) > 5:
		return nil, fmt.Errorf("%d axes: NGFF 0.4 images have 2 to 5", len(axes))
	case count["space"] < 2:
		return nil, fmt.Errorf("axes %s: NGFF 0.4 needs 2 or 3 space axes (z, y, x)", axisList(axes))
	case count["time"] > 1 || count[""] > 1:
		return nil, fmt.Errorf("axes %s: NGFF 0.4 allows one time and one channel or custom axis", axisList(axes))
	}
	seen := map[string]bool{}
	for _, a := range axes {
		if seen[a.Name] {
			return nil, fmt.Errorf("axes %s: names repeat", axisList(axes))
		}
		seen[a.Name] = true
	}
	return axes, nil
}

func axisList(axes []ngffAxis) string {
	names := make([]string, len(axes))
	for i, a := range axes {
		names[i] = a.Name
	}
	return strings.Join(names, ",")
}

// levelTransform is the scale and translation of level k of a group whose
// finest level is base, in base's unit: a level's own voxel size and offset
// when its file states them in that unit, otherwise base's scaled by the
// ratio of the shapes, its voxel centre moved half a base voxel per extra
// factor (as format/zarr writes pyramids). A voxel size from a web page,
// API or manifest describes the dataset's finest level, so a coarser level
// whose row got it derives its own.
func levelTransform(base, lv *entry, k int) (scale, trans []float64) {
	n := len(base.Axes)
	scale, trans = make([]float64, n), make([]float64, n)
	for i, b := range base.Axes {
		s0 := 1.0
		if b.VoxelSize != nil && *b.VoxelSize > 0 && !math.IsInf(*b.VoxelSize, 0) {
			s0 = *b.VoxelSize
		}
		a := lv.Axes[i]
		if k == 0 || a.VoxelSize != nil && *a.VoxelSize > 0 && !math.IsInf(*a.VoxelSize, 0) && a.Unit == b.Unit && a.Source == catalog.FromFile && b.VoxelSize != nil {
			scale[i], trans[i] = s0, b.Offset
			if k > 0 {
				scale[i], trans[i] = *a.VoxelSize, a.Offset
			}
			continue
		}
		f := 1.0
		if lv.Shape[i] > 0 {
			f = max(1, math.Round(float64(base.Shape[i])/float64(lv.Shape[i])))
		}
		scale[i], trans[i] = s0*f, b.Offset+(f-1)/2*s0
	}
	return scale, trans
}

// levelIndex parses the path of a level in a group of n levels: "0", "1", …
func levelIndex(seg string, n int) (int, bool) {
	if seg == "" || len(seg) > 4 || len(seg) > 1 && seg[0] == '0' || strings.TrimLeft(seg, "0123456789") != "" {
		return 0, false
	}
	k, err := strconv.Atoi(seg)
	return k, err == nil && k < n
}
