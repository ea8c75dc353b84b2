package pipeline

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// framed is an array with the physical frame its table row gives it.
type framed struct {
	v   volume.Volume
	f   volume.Frame
	rel string // the file or store it is in, relative to the dataset directory
}

// convertAll makes every downloaded file volume block-accessible as OME-Zarr,
// in the frame the table gives it (so a voxel size from the web page is in
// the copy too) and saying where that came from. Chunked stores (zarr, n5,
// precomputed) are already block-accessible and are left as they are.
// Equally shaped 2-D sections that carry a z spacing (serial sections, one
// DM3 per slice) are stacked into one 3-D volume first, which also gets its
// own catalog row because it is a new array.
func convertAll(ctx context.Context, opt *Options, out *store.Store, r *source.Resolved, vols []framed, dr *DatasetReport, rep *Report) ([]catalog.Record, error) {
	var singles []framed
	var sections []framed
	for _, fv := range vols {
		in := fv.v.Info()
		if strings.HasPrefix(in.Compression, "zarr") || in.Metadata["store_format"] != nil {
			continue
		}
		if len(in.Shape) == 2 && zSpacing(in) != nil {
			sections = append(sections, fv)
			continue
		}
		if len(in.Shape) >= 2 && isFileFormat(in) {
			singles = append(singles, fv)
		}
	}
	var recs []catalog.Record
	names := newCopyNames(r.Objects)
	if len(sections) >= 2 {
		zs := zSpacing(sections[0].v.Info())
		parts := make([]volume.Volume, len(sections))
		for i, fv := range sections {
			parts[i] = fv.v
		}
		st, err := volume.Stack("stack", parts, volume.Axis{Name: "z", Scale: zs.value, Unit: zs.unit, ScaleKnown: true})
		if err != nil {
			opt.logf("  %s: sections not stacked: %v", r.Dataset.Name, err)
			singles = append(singles, sections...)
		} else {
			key := path.Join(r.Dataset.Name, scan.CopiesDir, names.take("stack"))
			opt.logf("  %s: stacking %d sections (z spacing %s) → %s", r.Dataset.Name, len(sections), zs, key)
			if err := opt.Work.Check(st.Info(), volume.Full(st.Info().Shape)); err != nil {
				return recs, fmt.Errorf("stack: %w", err)
			}
			// The stack is a new array: its frame is resolved as its row is.
			h := hints(r, unit{})
			fr := resolveFrame(ctx, st, h)
			wopt := zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, 3), Name: "stack", Attributes: map[string]any{"imgdataset": frameAttrs(fr)}}
			if err := writeShown(ctx, opt, out, key, volume.Reframe(st, fr), wopt, fmt.Sprintf("%s: stacking %d sections", r.Dataset.Name, len(sections))); err != nil {
				return recs, fmt.Errorf("write %s: %w", key, err)
			}
			dr.Outputs = append(dr.Outputs, key)
			f, cv, err := opt.Formats.Open(ctx, out, key)
			if err != nil {
				return recs, fmt.Errorf("reopen %s: %w", key, err)
			}
			rec := catalog.Record{Dataset: r.Dataset.Name, LocalPath: key, Format: f.Name(), Status: "ok", MetadataSource: r.FactsSource,
				Notes: []string{fmt.Sprintf("stack of %d sections; z spacing %s from %s", len(sections), zs, zs.source)}}
			catalogOutput(ctx, &rec, cv[0], h, fr, opt.SampleBudget)
			rec.Array = scan.ArrayName(key, cv[0].Info().Name)
			applyFacts(&rec, r, unit{})
			recs = append(recs, rec)
			rep.keep(rec, cv[0])
		}
	} else {
		singles = append(singles, sections...)
	}
	for _, fv := range singles {
		in := fv.v.Info()
		key := path.Join(r.Dataset.Name, scan.CopiesDir, names.take(copyBase(fv.rel)))
		opt.logf("  %s: converting %s (%s) → %s", r.Dataset.Name, in.Name, volume.ReadableShape(in.Shape), key)
		if err := opt.Work.Check(in, volume.Full(in.Shape)); err != nil {
			return recs, fmt.Errorf("convert %s: %w", in.Name, err)
		}
		wopt := zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, len(in.Shape)), Name: in.Name, Attributes: map[string]any{"imgdataset": withDecoder(frameAttrs(fv.f), in)}}
		if err := writeShown(ctx, opt, out, key, volume.Reframe(fv.v, fv.f), wopt, fmt.Sprintf("%s: converting %s", r.Dataset.Name, path.Base(in.Name))); err != nil {
			return recs, fmt.Errorf("convert %s: %w", in.Name, err)
		}
		dr.Outputs = append(dr.Outputs, key)
	}
	return recs, nil
}

// writeShown writes v as OME-Zarr at key with a bar named name on the
// display: conversions of multi-GB files take minutes.
func writeShown(ctx context.Context, opt *Options, out *store.Store, key string, v volume.Volume, wopt zarr.WriteOptions, name string) error {
	ph := opt.display().Phase(name, v.Info().NumBytes())
	wopt.Progress = ph.Update
	err := zarr.WriteNGFF(ctx, out, key, v, wopt)
	ph.End(err)
	return err
}

type spacing struct {
	value  float64
	unit   string
	source string
}

// String is the spacing as a person reads it: in nm, four digits.
func (s *spacing) String() string {
	if nm, ok := volume.ToNanometres(s.value, s.unit); ok {
		return volume.ReadableNM(nm)
	}
	return volume.Readable(s.value) + " " + s.unit
}

func zSpacing(in volume.Info) *spacing {
	zs, ok := in.Metadata["z_spacing"].(map[string]any)
	if !ok {
		return nil
	}
	v, ok := zs["value"].(float64)
	u, _ := zs["unit"].(string)
	if !ok || u == "" {
		return nil
	}
	s, _ := zs["source"].(string)
	return &spacing{value: v, unit: u, source: s}
}

func isFileFormat(in volume.Info) bool {
	_, chunked := in.Metadata["ngff_version"]
	return !chunked
}

// copyNames hands out the names of a dataset's copies in its CopiesDir, so
// that no two copies share one and none is the name of something downloaded
// there (an original ome-zarr/x.zarr is never written into).
type copyNames map[string]bool // lower-cased: one file on a case-insensitive disk

// newCopyNames reserves the names in CopiesDir that the dataset's objects use.
func newCopyNames(objs []source.Object) copyNames {
	n := copyNames{}
	for _, o := range objs {
		if dir, rest, ok := strings.Cut(o.Path, "/"); ok && dir == scan.CopiesDir {
			first, _, _ := strings.Cut(rest, "/")
			n[strings.ToLower(first)] = true
		}
	}
	return n
}

// take returns base + ".zarr", or base-2.zarr, base-3.zarr… when taken.
func (n copyNames) take(base string) string {
	name := base + ".zarr"
	for i := 2; n[strings.ToLower(name)]; i++ {
		name = fmt.Sprintf("%s-%d.zarr", base, i)
	}
	n[strings.ToLower(name)] = true
	return name
}

// copyBase names the copy of the file at rel (relative to the dataset
// directory) by its whole path, folders joined by "--", so that a/vol.tif and
// b/vol.tif get copies of their own.
func copyBase(rel string) string {
	segs := strings.Split(strings.ReplaceAll(rel, "\\", "/"), "/")
	for i, s := range segs {
		segs[i] = safeName(s)
	}
	return strings.Join(segs, "--")
}

func safeName(s string) string {
	s = path.Base(strings.ReplaceAll(s, "\\", "/"))
	for _, ext := range []string{".tif", ".tiff", ".dm3", ".dm4", ".TIF", ".TIFF", ".DM3", ".DM4"} {
		s = strings.TrimSuffix(s, ext)
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	if b.Len() == 0 {
		return "volume"
	}
	return b.String()
}
