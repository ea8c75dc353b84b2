package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func inspectCmd() *cobra.Command {
	var asJSON, checksum bool
	var work volume.WorkLimit
	c := &cobra.Command{
		Use:   "inspect PATH-or-URL",
		Short: "Show the arrays, shapes, voxel sizes and metadata of one file or store",
		Example: `  imgdataset inspect volumedata.tif
  imgdataset inspect --json --checksum F57-8_test1_3VBSED_slice_0000.dm3
  imgdataset inspect https://example.org/data/stack.tif    # reads only headers, by range`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := pipeline.Inspect(cmd.Context(), args[0], checksum, pipeline.Options{Work: work})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "%s: %s, %s\n", res.Path, res.Format, pipeline.Count(len(res.Arrays), "array"))
			for _, a := range res.Arrays {
				chunks := "unchunked"
				if len(a.Chunks) > 0 {
					chunks = "chunks " + joinInts(a.Chunks)
				}
				fmt.Fprintf(w, "  %s: %s %s, %s, compression %s\n", a.Name, a.DType, joinInts(a.Shape), chunks, a.Compression)
				for _, ax := range a.Axes {
					fmt.Fprintf(w, "    %-3s size %-7d %s\n", ax.Name, ax.Size, axisText(ax))
				}
				if a.SHA256_16 != "" {
					fmt.Fprintf(w, "    sha256_16 %s\n", a.SHA256_16)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the inspect contract as JSON")
	c.Flags().BoolVar(&checksum, "checksum", false, "hash the decoded array (sha256_16 over C-order little-endian bytes)")
	addWorkFlags(c, &work)
	return c
}

func catalogCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "catalog PATH-or-URL...",
		Short: "Write the metadata table for local trees or remote objects (remote: headers only)",
		Long: `catalog writes one table row per array of the files and stores it is given.
A run's output directory (it has a catalog.json) gives the run's own table back,
page and API facts included; a file changed since the run is read again and keeps
those facts. In any other directory each array is a row named by the first folder
level below it, and the tool's OME-Zarr copies (<dataset>/ome-zarr/*.zarr) are left
out. Remote objects are cataloged from their headers only. A target with nothing a
format reads (a folder without arrays, a file that is no image) is an error that says
why (exit 1), not an empty table.`,
		Example: `  imgdataset catalog data/ -o table.csv
  imgdataset catalog data/ -o report.html
  imgdataset catalog https://example.org/stack.tif s3://bucket/store.zarr -o table.parquet`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch strings.ToLower(filepath.Ext(out)) {
			case ".jsonl", ".csv", "", "-", ".parquet", ".html":
			default:
				return usagef("-o %s: supported outputs are .csv, .jsonl, .parquet and .html", out)
			}
			res, err := pipeline.Catalog(cmd.Context(), args, pipeline.Options{})
			if err != nil {
				return err
			}
			defer res.Close()
			recs := res.Records
			var b []byte
			switch strings.ToLower(filepath.Ext(out)) {
			case ".jsonl":
				b, err = catalog.JSONLines(recs)
			case ".csv", "", "-":
				b, err = catalog.CSV(recs)
			case ".parquet":
				b, err = catalog.Parquet(recs)
			case ".html":
				b, err = catalog.Report(cmd.Context(), recs, res.Volumes, catalog.ReportOptions{Title: "imgdataset catalog: " + strings.Join(args, " ")})
			default:
				return usagef("-o %s: supported outputs are .csv, .jsonl, .parquet and .html", out)
			}
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			st := store.New(store.NewFile(filepath.Dir(abs)))
			if err := st.WriteAll(cmd.Context(), filepath.Base(abs), b); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d rows → %s\n", len(recs), out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "-", "table file (.csv, .jsonl, .parquet) or report (.html); - for CSV on stdout")
	return c
}

// axisText is an axis's calibration as a person reads it: lengths in nm
// (the one unit of every table), other units as the file states them.
func axisText(ax pipeline.InspectAxis) string {
	if nm, ok := volume.ToNanometres(ax.Scale, ax.Unit); ok {
		off, _ := volume.ToNanometres(ax.Offset, ax.Unit)
		return "voxel " + volume.ReadableNM(nm) + ", offset " + volume.ReadableNM(off)
	}
	s := "scale " + volume.Readable(ax.Scale) + ", offset " + volume.Readable(ax.Offset)
	if ax.Unit != "" {
		s += " " + ax.Unit
	}
	return s
}

// joinInts writes a shape or chunk size the way the report does: 100×96.
func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, "×")
}
