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

// convertAll makes every downloaded file volume block-accessible as OME-Zarr.
// Chunked stores (zarr, n5, precomputed) are already block-accessible and are
// left as they are. Equally shaped 2-D sections that carry a z spacing (serial
// sections, one DM3 per slice) are stacked into one 3-D volume first, which
// also gets its own catalog row because it is a new array.
func convertAll(ctx context.Context, opt *Options, out *store.Store, r *source.Resolved, vols []volume.Volume, dr *DatasetReport, rep *Report) ([]catalog.Record, error) {
	var singles []volume.Volume
	var sections []volume.Volume
	for _, v := range vols {
		in := v.Info()
		if strings.HasPrefix(in.Compression, "zarr") || in.Metadata["store_format"] != nil {
			continue
		}
		if len(in.Shape) == 2 && zSpacing(in) != nil {
			sections = append(sections, v)
			continue
		}
		if len(in.Shape) >= 2 && isFileFormat(in) {
			singles = append(singles, v)
		}
	}
	var recs []catalog.Record
	if len(sections) >= 2 {
		zs := zSpacing(sections[0].Info())
		st, err := volume.Stack("stack", sections, volume.Axis{Name: "z", Scale: zs.value, Unit: zs.unit, ScaleKnown: true})
		if err != nil {
			opt.logf("  %s: sections not stacked: %v", r.Dataset.Name, err)
			singles = append(singles, sections...)
		} else {
			key := path.Join(r.Dataset.Name, scan.CopiesDir, "stack.zarr")
			opt.logf("  %s: stacking %d sections (z spacing %g %s) → %s", r.Dataset.Name, len(sections), zs.value, zs.unit, key)
			if err := zarr.WriteNGFF(ctx, out, key, st, zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, 3), Name: "stack"}); err != nil {
				return recs, fmt.Errorf("write %s: %w", key, err)
			}
			dr.Outputs = append(dr.Outputs, key)
			f, cv, err := opt.Formats.Open(ctx, out, key)
			if err != nil {
				return recs, fmt.Errorf("reopen %s: %w", key, err)
			}
			rec := catalog.Record{Dataset: r.Dataset.Name, LocalPath: key, Format: f.Name(), Status: "ok", MetadataSource: r.FactsSource,
				Notes: []string{fmt.Sprintf("stack of %d sections; z spacing %g %s from %s", len(sections), zs.value, zs.unit, zs.source)}}
			catalog.FromVolume(ctx, &rec, cv[0], hints(r, unit{}), opt.SampleBudget)
			rec.Array = scan.ArrayName(key, cv[0].Info().Name)
			applyFacts(&rec, r, unit{})
			recs = append(recs, rec)
			rep.keep(rec, cv[0])
		}
	} else {
		singles = append(singles, sections...)
	}
	for _, v := range singles {
		in := v.Info()
		name := safeName(in.Name) + ".zarr"
		key := path.Join(r.Dataset.Name, scan.CopiesDir, name)
		opt.logf("  %s: converting %s %v → %s", r.Dataset.Name, in.Name, in.Shape, key)
		if err := zarr.WriteNGFF(ctx, out, key, v, zarr.WriteOptions{Chunks: cube(opt.ConvertChunk, len(in.Shape)), Name: in.Name}); err != nil {
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
