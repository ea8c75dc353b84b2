package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
)

// PlanDataset is what one dataset would bring.
type PlanDataset struct {
	Name    string             `json:"name"`
	URL     string             `json:"url"`
	Kind    string             `json:"kind"`
	Objects []source.Object    `json:"objects"`
	Volumes []source.VolumeRef `json:"volumes,omitempty"`
	Bytes   int64              `json:"bytes"`
	Unknown int                `json:"objects_of_unknown_size"`
	// Approx counts objects whose size in Bytes is a listing's rounded figure.
	Approx int          `json:"objects_of_approximate_size"`
	Facts  source.Facts `json:"facts,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// PlanResult lists every object and the totals, before anything is downloaded.
type PlanResult struct {
	Datasets []PlanDataset `json:"datasets"`
	Objects  int           `json:"objects"`
	Bytes    int64         `json:"bytes"`
	Approx   bool          `json:"approximate,omitempty"` // some sizes are listing estimates
}

// Plan resolves every dataset and reports what a run would fetch.
func Plan(ctx context.Context, m *manifest.Manifest, opt Options) (*PlanResult, error) {
	opt.Defaults()
	ds, err := selectDatasets(m, opt.Only)
	if err != nil {
		return nil, err
	}
	resolved, errs := resolveAll(ctx, &opt.Env, ds)
	pr := &PlanResult{}
	for i, d := range ds {
		p := PlanDataset{Name: d.Name, URL: d.URL, Kind: d.Kind}
		if errs[i] != nil {
			p.Error = store.Brief(errs[i])
		} else {
			r := resolved[i]
			p.Kind, p.Objects, p.Volumes, p.Facts = r.Kind, r.Objects, r.Volumes, r.Facts
			for _, o := range r.Objects {
				switch sz := o.EstimatedSize(); {
				case sz < 0:
					p.Unknown++
				case o.Size < 0:
					p.Approx++
					p.Bytes += sz
				default:
					p.Bytes += sz
				}
			}
		}
		pr.Objects += len(p.Objects)
		pr.Bytes += p.Bytes
		pr.Approx = pr.Approx || p.Approx > 0
		pr.Datasets = append(pr.Datasets, p)
	}
	return pr, nil
}

// Print writes a human-readable plan. rateBps estimates the download time.
func (pr *PlanResult) Print(w io.Writer, verbose bool, rateBps float64) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tKIND\tOBJECTS\tSIZE\tNOTE")
	for _, d := range pr.Datasets {
		note := ""
		switch {
		case d.Error != "":
			note = "failed (the reason follows on stderr)"
		case len(d.Volumes) > 0:
			note = count(len(d.Volumes), "volume") + " read in place (crop)"
		}
		if d.Unknown > 0 {
			note += fmt.Sprintf(" %d of unknown size", d.Unknown)
		}
		size := human(d.Bytes)
		if d.Approx > 0 {
			size = "≈" + size
			note += fmt.Sprintf(" %d sized by the listing (exact once downloaded)", d.Approx)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.Name, d.Kind, len(d.Objects), size, strings.TrimSpace(note))
	}
	tw.Flush()
	if verbose {
		for _, d := range pr.Datasets {
			for _, o := range d.Objects {
				size := human(o.EstimatedSize())
				if o.Size < 0 && o.SizeHint > 0 {
					size = "≈" + size
				}
				fmt.Fprintf(w, "  %s/%s\t%s\t%s\n", d.Name, o.Path, size, o.SourceURL)
			}
			for _, v := range d.Volumes {
				fmt.Fprintf(w, "  %s/%s\t(crop of %s volume)\t%s\n", d.Name, v.Path, v.Format, v.StoreURL)
			}
		}
	}
	approx := ""
	if pr.Approx {
		approx = "≈"
	}
	fmt.Fprintf(w, "total: %d objects, %s%s", pr.Objects, approx, human(pr.Bytes))
	if rateBps > 0 && pr.Bytes > 0 {
		fmt.Fprintf(w, ", about %s at %s/s", eta(float64(pr.Bytes)/rateBps), human(int64(rateBps)))
	}
	fmt.Fprintln(w)
}

func eta(sec float64) string {
	switch {
	case sec < 90:
		return fmt.Sprintf("%.0f s", sec)
	case sec < 5400:
		return fmt.Sprintf("%.0f min", sec/60)
	}
	return fmt.Sprintf("%.1f h", sec/3600)
}
