package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/scan"
	"github.com/imgdataset/imgdataset/store"
)

// keepEarlier adds to rep the rows of the catalog.json an earlier run left in
// opt.OutDir that this run did not write again, so that the table of an
// output directory is the union of every dataset completed there (issue #17).
// Rows of datasets this run did not take (--only) stay as they were; rows of
// its own datasets that it did not produce again (the dataset failed, or its
// source no longer lists the file) stay too, marked stale (catalog.NoteStale).
// The kept rows are checked against the disk as `imgdataset catalog` checks
// them, and their arrays join the report. The caller closes the result.
func keepEarlier(ctx context.Context, opt *Options, rep *Report) (*scan.Result, error) {
	st := store.New(store.NewFile(opt.OutDir))
	doc, written, err := scan.RunCatalog(ctx, st)
	st.Close()
	if err != nil {
		return nil, fmt.Errorf("earlier %s in %s: %w", scan.CatalogFile, opt.OutDir, err)
	}
	if doc == nil {
		return nil, nil
	}
	fresh := map[string]bool{}
	for _, rec := range rep.Records {
		fresh[rec.Dataset+"\x00"+rec.LocalPath] = true
	}
	inRun := map[string]*DatasetReport{}
	for _, d := range rep.Datasets {
		inRun[d.Name] = d
	}
	var old []catalog.Record
	for _, rec := range doc.Records {
		if fresh[rec.Dataset+"\x00"+rec.LocalPath] {
			continue
		}
		if dr, ok := inRun[rec.Dataset]; ok {
			markStale(&rec, dr)
		}
		old = append(old, rec)
	}
	if len(old) == 0 {
		return nil, nil
	}
	res, err := scan.Rows(ctx, opt.OutDir, old, written, scan.Options{Formats: opt.Formats, SampleBudget: opt.SampleBudget})
	if err != nil {
		return nil, fmt.Errorf("earlier rows of %s: %w", opt.OutDir, err)
	}
	for _, rec := range res.Records {
		if v, ok := res.Volumes[catalog.VolumeKey(rec)]; ok {
			rep.keep(rec, v)
		}
	}
	rep.Records = append(rep.Records, res.Records...)
	return res, nil
}

// markStale replaces a kept row's stale note, if any, by one saying why this
// run did not refresh it.
func markStale(rec *catalog.Record, dr *DatasetReport) {
	rec.Notes = slices.DeleteFunc(slices.Clone(rec.Notes), func(n string) bool { return strings.HasPrefix(n, catalog.NoteStale) })
	why := "the last run of the dataset did not find this file at its source"
	if dr.Status != "ok" {
		why = "the last run of the dataset failed"
		if len(dr.Errors) > 0 {
			why += " (" + dr.Errors[0] + ")"
		}
	}
	rec.Notes = append(rec.Notes, catalog.NoteStale+"kept from an earlier run; "+why)
}
