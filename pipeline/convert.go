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
	v volume.Volume
	f volume.Frame
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
			key := path.Join(r.Dataset.Name, scan.CopiesDir, "stack.zarr")
			opt.logf("  %s: stacking %d sections (z spacing %g %s) → %s", r.Dataset.Name, len(sections), zs.value, zs.unit, key)
			if err := opt.Work.Check(st.Info(), volume.Full(st.Info().Shape)); err != nil {
				return recs, fmt.Errorf("stack: %w", err)
			}
			// The stack is a new array: its frame is resolved as its row is.
			h := hints(r, unit{})
			fr := resolveFrame(ctx, st, h)
			wopt := zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, 3), Name: "stack", Attributes: map[string]any{"imgdataset": frameAttrs(fr)}}
			if err := zarr.WriteNGFF(ctx, out, key, volume.Reframe(st, fr), wopt); err != nil {
				return recs, fmt.Errorf("write %s: %w", key, err)
			}
			dr.Outputs = append(dr.Outputs, key)
			f, cv, err := opt.Formats.Open(ctx, out, key)
			if err != nil {
				return recs, fmt.Errorf("reopen %s: %w", key, err)
			}
			rec := catalog.Record{Dataset: r.Dataset.Name, LocalPath: key, Format: f.Name(), Status: "ok", MetadataSource: r.FactsSource,
				Notes: []string{fmt.Sprintf("stack of %d sections; z spacing %g %s from %s", len(sections), zs.value, zs.unit, zs.source)}}
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
		name := safeName(in.Name) + ".zarr"
		key := path.Join(r.Dataset.Name, scan.CopiesDir, name)
		opt.logf("  %s: converting %s %v → %s", r.Dataset.Name, in.Name, in.Shape, key)
		if err := opt.Work.Check(in, volume.Full(in.Shape)); err != nil {
			return recs, fmt.Errorf("convert %s: %w", in.Name, err)
		}
		wopt := zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, len(in.Shape)), Name: in.Name, Attributes: map[string]any{"imgdataset": frameAttrs(fv.f)}}
		if err := zarr.WriteNGFF(ctx, out, key, volume.Reframe(fv.v, fv.f), wopt); err != nil {
			return recs, fmt.Errorf("convert %s: %w", in.Name, err)
		}
		dr.Outputs = append(dr.Outputs, key)
	}
	return recs, nil
}

type spacing struct {
	value  float64
	unit   string
	source string
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
