// Package n5 reads (and, for tests and small outputs, writes) N5 containers
// through a store.Store.
//
// An N5 container is a tree of groups and datasets, each a prefix holding an
// attributes.json. A dataset lists its dimensions fastest-varying first and
// stores each block as a key "<dataset>/<i0>/<i1>/…" holding a big-endian
// header and a compressed big-endian payload; edge blocks are truncated. The
// volumes returned here are in C order (the reverse of "dimensions"), with
// little-endian elements, as the volume seam requires.
//
// Compressions: raw, gzip (and zlib), bzip2, lz4 (lz4-java block framing), xz,
// zstd and blosc (through package codec). Calibration comes from N5 Viewer
// ("pixelResolution", "downsamplingFactors", root "scales") or tensorstore /
// Neuroglancer ("resolution", "units", "axes") attributes, inherited from
// ancestor groups as Neuroglancer does.
package n5

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

const (
	attrsName = "attributes.json"
	// maxWalkNodes bounds the groups a listing walk visits.
	maxWalkNodes = 10000
	// maxScales bounds the s0, s1, … datasets probed in a multiscale group.
	maxScales = 64
	// maxAncestors bounds how many parent groups lend attributes to a dataset.
	maxAncestors = 8
)

// Format is the N5 implementation of format.Format. Its zero value is ready
// to use; each Open gets its own codec state, shared by the volumes it returns.
type Format struct{}

var _ format.Format = Format{}

// Name implements format.Format.
func (Format) Name() string { return "n5" }

var _ format.StoreLayout = Format{}

// StoreSuffixes implements format.StoreLayout.
func (Format) StoreSuffixes() []string { return []string{".n5"} }

// StoreMarkers implements format.StoreLayout: every group and dataset of an N5
// container holds an attributes.json.
func (Format) StoreMarkers() []string { return []string{attrsName} }

// Detect implements format.Format: key (a prefix, or its attributes.json) is
// N5 when its attributes carry an "n5" version or dataset "dimensions", or
// when it is a multiscale group whose s0 is such a dataset.
func (Format) Detect(ctx context.Context, st *store.Store, key string, head []byte) bool {
	prefix, isAttrs := splitKey(key)
	if head != nil && !isAttrs {
		return false
	}
	o := newOpener(st)
	if a, err := o.attrs(ctx, prefix); err == nil && a != nil && a.isN5() {
		return true
	}
	a, err := o.attrs(ctx, join(prefix, "s0"))
	return err == nil && a != nil && a.isDataset()
}

// Open implements format.Format. It returns the dataset at key; or the
// datasets s0, s1, … of a multiscale group; or, when the store can list,
// every dataset below key. Volumes are named by their path in the store.
func (Format) Open(ctx context.Context, st *store.Store, key string) ([]volume.Volume, error) {
	prefix, _ := splitKey(key)
	o := newOpener(st)
	ds, err := o.open(ctx, prefix)
	if err != nil {
		return nil, err
	}
	vs := make([]volume.Volume, len(ds))
	for i, d := range ds {
		vs[i] = d
	}
	return vs, nil
}

// splitKey turns a key naming a prefix or its attributes.json into the prefix.
func splitKey(key string) (prefix string, isAttrs bool) {
	k := strings.Trim(strings.ReplaceAll(key, "\\", "/"), "/")
	if k == attrsName {
		return "", true
	}
	if strings.HasSuffix(k, "/"+attrsName) {
		return strings.TrimSuffix(k, "/"+attrsName), true
	}
	return k, false
}

// join appends name to a prefix ("" is the store root).
func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

// opener carries the state of one Open: codecs and the attributes read so far.
type opener struct {
	st    *store.Store
	cs    *codec.Codecs
	cache map[string]attrs // prefix → attributes (nil: none)
}

func newOpener(st *store.Store) *opener {
	return &opener{st: st, cs: codec.New(), cache: map[string]attrs{}}
}

// attrs reads the attributes of prefix; (nil, nil) when it has none.
func (o *opener) attrs(ctx context.Context, prefix string) (attrs, error) {
	if a, ok := o.cache[prefix]; ok {
		return a, nil
	}
	key := join(prefix, attrsName)
	b, err := o.st.ReadAll(ctx, key, maxAttrBytes)
	if errors.Is(err, store.ErrNotExist) {
		o.cache[prefix] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("n5 %s: %w", o.st, err)
	}
	a, err := parseAttrs(b)
	if err != nil {
		return nil, fmt.Errorf("n5 %s: %q: %w: %w", o.st, key, err, format.ErrCorrupt)
	}
	o.cache[prefix] = a
	return a, nil
}

func (o *opener) open(ctx context.Context, prefix string) ([]*dataset, error) {
	a, err := o.attrs(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if a != nil && a.isDataset() {
		d, err := o.openDataset(ctx, prefix, a)
		if err != nil {
			return nil, err
		}
		return []*dataset{d}, nil
	}
	// An N5 Viewer / n5-spark multiscale group: s0, s1, … without listing,
	// because HTTP stores cannot list.
	var out []*dataset
	for i := range maxScales {
		p := join(prefix, "s"+strconv.Itoa(i))
		sa, err := o.attrs(ctx, p)
		if err != nil {
			return nil, err
		}
		if sa == nil || !sa.isDataset() {
			break
		}
		d, err := o.openDataset(ctx, p, sa)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if len(out) > 0 {
		return out, nil
	}
	return o.walk(ctx, prefix)
}

// walk lists the hierarchy under root level by level, stopping at datasets
// so that block keys are not listed below them.
func (o *opener) walk(ctx context.Context, root string) ([]*dataset, error) {
	queue := []string{root}
	var found []string
	for visited := 0; len(queue) > 0; visited++ {
		if visited >= maxWalkNodes {
			return nil, fmt.Errorf("n5 %s %q: more than %d groups", o.st, root, maxWalkNodes)
		}
		p := queue[0]
		queue = queue[1:]
		if p != root {
			a, err := o.attrs(ctx, p)
			if err != nil {
				return nil, err
			}
			if a != nil && a.isDataset() {
				found = append(found, p)
				continue
			}
		}
		lp := ""
		if p != "" {
			lp = p + "/"
		}
		err := o.st.List(ctx, lp, "/", func(oi store.ObjectInfo) error {
			if oi.IsDir {
				queue = append(queue, strings.TrimSuffix(oi.Key, "/"))
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, store.ErrNotSupported) {
				return nil, fmt.Errorf("n5 %s %q: a group without s0, s1, … datasets, in a store that cannot list: %w", o.st, root, err)
			}
			return nil, fmt.Errorf("n5 %s %q: %w", o.st, root, err)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("n5 %s %q: no datasets in this container", o.st, root)
	}
	slices.SortFunc(found, naturalCompare)
	out := make([]*dataset, 0, len(found))
	for _, p := range found {
		a, err := o.attrs(ctx, p)
		if err != nil {
			return nil, err
		}
		d, err := o.openDataset(ctx, p, a)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// inherited merges the attributes of prefix's ancestors (nearest wins) into a.
func (o *opener) inherited(ctx context.Context, prefix string, a attrs) attrs {
	m := a
	dir := prefix
	for range maxAncestors {
		if dir == "" {
			break
		}
		dir = path.Dir(dir)
		if dir == "." {
			dir = ""
		}
		pa, err := o.attrs(ctx, dir)
		if err != nil || pa == nil {
			continue
		}
		m = m.merge(pa)
	}
	return m
}

// scaleLevel is N from a dataset named "sN", or -1.
func scaleLevel(prefix string) int {
	b := path.Base(prefix)
	if len(b) < 2 || b[0] != 's' {
		return -1
	}
	n, err := strconv.Atoi(b[1:])
	if err != nil || n < 0 || strconv.Itoa(n) != b[1:] {
		return -1
	}
	return n
}

// openDataset validates a dataset's attributes and builds its volume.
func (o *opener) openDataset(ctx context.Context, prefix string, a attrs) (*dataset, error) {
	meta, err := parseDataset(a)
	if err != nil {
		if errors.Is(err, errUnsupportedType) {
			err = fmt.Errorf("%w: %w", format.ErrNotSupported, err)
		} else {
			// Attributes that contradict the format: malformed metadata.
			err = fmt.Errorf("%w: %w", err, format.ErrCorrupt)
		}
		return nil, fmt.Errorf("n5 %s: dataset %q: %w", o.st, prefix, err)
	}
	n := len(meta.dims)
	level := scaleLevel(prefix)
	m := o.inherited(ctx, prefix, a)
	cal := parseCalibration(m, n, level)

	shape := reversed(meta.dims)
	axes := make([]volume.Axis, n)
	std := []string{"z", "y", "x"}
	for c := range n {
		i := n - 1 - c // N5 index of C axis c
		name := "dim" + strconv.Itoa(c)
		if k := c - (n - 3); k >= 0 {
			name = std[k]
		}
		if cal.names[i] != "" {
			name = cal.names[i]
		}
		axes[c] = volume.Axis{Name: name, Size: shape[c], Scale: cal.scale[i], Offset: cal.offset[i],
			Unit: cal.units[i], ScaleKnown: cal.known}
	}
	md := map[string]any{
		"compression":   meta.comp.Params,
		"n5_dimensions": meta.dims,
		"n5_blockSize":  meta.block,
	}
	var version string
	if m.get("n5", &version) {
		md["n5_version"] = version
	}
	if cal.factors != nil {
		md["downsamplingFactors"] = cal.factors
	}
	if level >= 0 {
		md["level"] = level
	}
	name := prefix
	if name == "" {
		name = path.Base(strings.TrimRight(strings.ReplaceAll(o.st.String(), "\\", "/"), "/"))
	}
	d := &dataset{
		st:   o.st,
		cs:   o.cs,
		key:  prefix,
		meta: meta,
		grid: reversed(meta.block),
		elem: meta.dtype.Size(),
		info: volume.Info{
			Name:        name,
			Shape:       shape,
			DType:       meta.dtype,
			Axes:        axes,
			Chunks:      reversed(meta.block),
			Compression: meta.comp.name(),
			Metadata:    md,
		},
	}
	if err := d.info.Validate(); err != nil {
		return nil, fmt.Errorf("n5 %s: dataset %q: %w", o.st, prefix, err)
	}
	return d, nil
}

// naturalCompare orders paths with digit runs compared by value, so s10
// follows s9.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
