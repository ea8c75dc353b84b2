package tiff

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/volume"
)

// SubIFD limits. Series building reads only the first IFD of each SubIFD
// chain a top-level page lists (depth 1, as tifffile does); SubIFDs nested in
// SubIFDs are counted in the metadata but never followed, so a hostile tree or
// a cycle cannot make the reader recurse.
const (
	maxSubIFDsPerPage = 64      // SubIFD offsets read from one page
	maxSubIFDPages    = 1 << 16 // SubIFD pages read for one file
	subIFDConcurrency = 16      // SubIFD reads in flight
)

// subRef names one SubIFD to read: the file holding it and its offset.
type subRef struct {
	r   *reader
	off int64
}

// readSubIFDs reads and parses the IFDs refs name, concurrently. A SubIFD
// that is corrupt is nil in the result and reported as a warning; only a
// failing store or context is an error.
func readSubIFDs(ctx context.Context, refs []subRef) ([]*page, []*ifd, []string, error) {
	pages := make([]*page, len(refs))
	ifds := make([]*ifd, len(refs))
	errs := make([]error, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(subIFDConcurrency)
	for i, ref := range refs {
		g.Go(func() error {
			r := ref.r
			c, e, n := r.ifdSizes()
			d, err := r.readIFD(gctx, ref.off, c+windowEntries*e+n)
			var p *page
			if err == nil {
				p, err = r.parsePage(gctx, d, -1)
			}
			if err != nil {
				if fatal(err) {
					return err
				}
				errs[i] = err
				return nil
			}
			pages[i], ifds[i] = p, d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, nil, err
	}
	var warns []string
	for i, err := range errs {
		if err != nil {
			warns = append(warns, fmt.Sprintf("SubIFD at %d: %v", refs[i].off, err))
		}
	}
	return pages, ifds, warns, nil
}

// hasSubIFDs reports whether a top-level page of f lists a usable SubIFD.
func (f *file) hasSubIFDs() bool {
	for _, p := range f.pages {
		if len(p.subOffs) > 0 {
			return true
		}
	}
	return false
}

// seriesOut is one series with its pyramid levels, finest first.
type seriesOut struct {
	v      *tiffVolume
	levels []*tiffVolume
	sub    bool // the series starts with a SubIFD page: it cannot head a pyramid
}

// subIFDSeries builds the series of a file whose pages have SubIFDs the way
// tifffile's generic series do: every top-level page is followed by the first
// IFD of each of its SubIFD chains; pages of one layout form one series
// wherever they sit (so SubIFDs the size of their parent join its series);
// and a series that is a 2×, 3× or 4× reduction of another becomes its
// pyramid level.
func (r *reader) subIFDSeries(ctx context.Context, f *file) (series []seriesOut, skipped, warns []string, err error) {
	seen := make(map[int64]bool, len(f.pages))
	for _, p := range f.pages {
		seen[p.ifdOff] = true
	}
	var refs []subRef
	var parent []int
collect:
	for i, p := range f.pages {
		for _, off := range p.subOffs {
			if seen[off] {
				// tifffile drops duplicate pages; here it also breaks cycles.
				warns = append(warns, fmt.Sprintf("SubIFD at %d of IFD %d already read", off, p.ifdOff))
				continue
			}
			if len(refs) >= maxSubIFDPages {
				warns = append(warns, fmt.Sprintf("stopped after %d SubIFDs", maxSubIFDPages))
				break collect
			}
			seen[off] = true
			refs = append(refs, subRef{r, off})
			parent = append(parent, i)
		}
	}
	subPages, subIFDs, ws, err := readSubIFDs(ctx, refs)
	if err != nil {
		return nil, nil, nil, err
	}
	warns = append(warns, ws...)

	type item struct {
		p    *page
		d    *ifd // SubIFDs only: for the metadata of a series they start
		meta *pageMeta
		sub  bool
	}
	type grp struct{ items []item }
	var groups []*grp
	byLayout := map[layout]*grp{}
	add := func(it item) {
		key := it.p.layout
		key.subfileType = 0 // tifffile's page hash ignores it
		g := byLayout[key]
		if g == nil {
			g = &grp{}
			byLayout[key] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, it)
	}
	k := 0
	for i, p := range f.pages {
		add(item{p: p, meta: f.metas[i]})
		for ; k < len(refs) && parent[k] == i; k++ {
			if subPages[k] != nil {
				add(item{p: subPages[k], d: subIFDs[k], sub: true})
			}
		}
	}
	for _, g := range groups {
		head := g.items[0]
		if head.p.dtype == "" {
			skipped = append(skipped, fmt.Sprintf("IFD at %d: %s", head.p.ifdOff, head.p.unsupported))
			continue
		}
		meta := head.meta
		if meta == nil && head.d != nil {
			if meta, err = r.parseMeta(ctx, head.d); err != nil {
				if fatal(err) {
					return nil, nil, nil, err
				}
				warns = append(warns, err.Error())
				meta = nil
			}
		}
		if meta == nil {
			meta = &pageMeta{}
		}
		pages := make([]*page, len(g.items))
		for i, it := range g.items {
			pages[i] = it.p
		}
		v := r.genericSeries(group{pages: pages, meta: meta})
		series = append(series, seriesOut{v: v, sub: head.sub})
	}
	return pyramidize(series), skipped, warns, nil
}

// pyramidize moves every series that is a reduction of an earlier one into
// that one's levels, as tifffile's pyramidize_series does: the factor (2, 3
// or 4) is fixed by the first level, and each level is one step below the
// last; a series that starts with a SubIFD cannot head a pyramid.
func pyramidize(series []seriesOut) []seriesOut {
	for i := 0; i < len(series); i++ {
		a := &series[i]
		if a.sub {
			continue
		}
		var p int64
		for j := i + 1; j < len(series); {
			last := a.v.info
			if n := len(a.levels); n > 0 {
				last = a.levels[n-1].info
			}
			b := series[j].v
			ok := false
			if p == 0 {
				for _, f := range []int64{2, 3, 4} {
					if subresolution(last, b.info, f) == 1 {
						p, ok = f, true
						break
					}
				}
			} else {
				ok = subresolution(last, b.info, p) == 1
			}
			if !ok {
				j++
				continue
			}
			a.levels = append(a.levels, b)
			series = append(series[:j], series[j+1:]...)
		}
	}
	return series
}

// subresolution returns r when b is a's image reduced by p^r along y and x
// (sizes rounded either way) with every other axis equal, else -1.
func subresolution(a, b volume.Info, p int64) int {
	if a.DType != b.DType || len(a.Axes) != len(b.Axes) || len(a.Shape) != len(b.Shape) || len(a.Axes) != len(a.Shape) {
		return -1
	}
	level := -1
	for k := range a.Axes {
		if a.Axes[k].Name != b.Axes[k].Name {
			return -1
		}
		i, j := a.Shape[k], b.Shape[k]
		if n := a.Axes[k].Name; n != "y" && n != "x" {
			if i != j {
				return -1
			}
			continue
		}
		if level < 0 {
			d := int64(1)
			for r := 0; r < 16; r++ {
				if d > i {
					return -1
				}
				if math.Abs(float64(i)/float64(d)-float64(j)) < 1 {
					level = r
					break
				}
				d *= p
			}
			if level < 0 {
				return -1
			}
			continue
		}
		d := int64(1)
		for range level {
			d *= p
		}
		if d > i || math.Abs(float64(i)/float64(d)-float64(j)) >= 1 {
			return -1
		}
	}
	return level
}

// omeLevels returns the pyramid levels held in the SubIFDs of an OME
// series' planes, as tifffile's OME series do: level k+1 is the k-th SubIFD
// of every plane. Levels stop at the first one some plane lacks or that
// does not decode as one stack.
func (r *reader) omeLevels(ctx context.Context, v *tiffVolume) ([]*tiffVolume, []string, error) {
	if v.virtual || len(v.pages) == 0 || len(v.pages[0].subOffs) == 0 {
		return nil, nil, nil
	}
	var levels []*tiffVolume
	var warns []string
	budget := maxSubIFDPages
	for k := range v.pages[0].subOffs {
		if budget < len(v.pages) {
			warns = append(warns, fmt.Sprintf("stopped after %d SubIFDs", maxSubIFDPages-budget))
			break
		}
		budget -= len(v.pages)
		refs := make([]subRef, len(v.pages))
		for i, p := range v.pages {
			if k >= len(p.subOffs) {
				warns = append(warns, fmt.Sprintf("plane %d has no SubIFD %d: pyramid stops at level %d", i, k, k))
				return levels, warns, nil
			}
			refs[i] = subRef{p.src, p.subOffs[k]}
		}
		pages, _, ws, err := readSubIFDs(ctx, refs)
		if err != nil {
			return nil, nil, err
		}
		if len(ws) > 0 {
			return levels, append(warns, ws...), nil
		}
		for i, p := range pages {
			if !stackable(&pages[0].layout, &p.layout) {
				warns = append(warns, fmt.Sprintf("SubIFD %d of plane %d differs from plane 0's: pyramid stops at level %d", k, i, k))
				return levels, warns, nil
			}
		}
		if pages[0].dtype == "" {
			warns = append(warns, fmt.Sprintf("SubIFD %d: %s", k, pages[0].unsupported))
			return levels, warns, nil
		}
		lead := append([]volume.Axis(nil), v.info.Axes[:v.nlead]...)
		levels = append(levels, r.newVolume(pages, nil, lead))
	}
	return levels, warns, nil
}

// markLevel states in lv's metadata that it is level n of base's pyramid, and
// derives its y and x scales from base's: the pixel grows by the downsampling.
func markLevel(base, lv *tiffVolume, n int) {
	md := lv.info.Metadata
	md["level"] = n
	md["level_of"] = base.info.Name
	ds := make([]float64, len(lv.info.Shape))
	for k := range ds {
		ds[k] = 1
		if k < len(base.info.Shape) && lv.info.Shape[k] > 0 {
			ds[k] = float64(base.info.Shape[k]) / float64(lv.info.Shape[k])
		}
		a := &lv.info.Axes[k]
		if k >= len(base.info.Axes) || (a.Name != "y" && a.Name != "x") {
			continue
		}
		b := base.info.Axes[k]
		if b.ScaleKnown {
			a.Scale, a.Unit, a.ScaleKnown = b.Scale*ds[k], b.Unit, true
			a.Offset = b.Offset
		} else {
			a.Scale, a.Unit, a.ScaleKnown = 1, "", false
		}
	}
	md["downsampling"] = ds
	if s, ok := base.info.Metadata["voxel_size_source"].(string); ok {
		md["voxel_size_source"] = s + ", scaled to level " + fmt.Sprint(n)
	}
}
