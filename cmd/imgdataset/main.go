// Command imgdataset gathers public electron-microscopy datasets into verified,
// block-accessible data and one metadata table. The commands are thin: all the
// work is in the pipeline package.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/internal/demo"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/transfer"
	"github.com/imgdataset/imgdataset/volume"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the run finished but a dataset failed
	exitUsage   = 2
	exitAborted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	var ue *pipeline.UsageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "imgdataset:", err)
		return exitUsage
	case ctx.Err() != nil:
		if len(args) > 0 && (args[0] == "run" || args[0] == "demo") {
			fmt.Fprintln(stderr, "imgdataset: interrupted; run again to resume")
		} else {
			fmt.Fprintln(stderr, "imgdataset: interrupted")
		}
		return exitAborted
	}
	fmt.Fprintln(stderr, "imgdataset:", err)
	return exitFailed
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "imgdataset",
		Short: "Gather public electron-microscopy datasets, verified and ready for machine learning",
		Long: `imgdataset resolves dataset links as people find them (web pages, file listings,
OMERO/IDR, EMPIAR, S3/GCS buckets, Neuroglancer links), downloads them in parallel
with resume and verification, reads every array they hold, writes one metadata
table and makes every volume block-accessible as OME-Zarr.

Exit codes: 0 success, 1 a dataset failed, 2 usage error, 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable, so that a word that names no command reaches Args and is
		// a typed usage error rather than cobra's untyped one.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q; commands: demo, run, plan, inspect, catalog, crop, convert, serve", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &pipeline.UsageError{Err: err} })
	root.AddCommand(demoCmd(), runCmd(), planCmd(), inspectCmd(), catalogCmd(), cropCmd(), convertCmd(), serveCmd())
	for _, c := range root.Commands() {
		c.Args = usageArgs(c.Args)
	}
	return root
}

// usagef is a usage error: the command line asks for something that cannot
// be done as asked; it exits 2.
func usagef(format string, args ...any) error {
	return &pipeline.UsageError{Err: fmt.Errorf(format, args...)}
}

// usageArgs makes a command's argument check fail with a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &pipeline.UsageError{Err: fmt.Errorf("%s: %w", cmd.Name(), err)}
		}
		return nil
	}
}

type runFlags struct {
	out      string
	only     []string
	progress string
	noConv   bool
	jsonOut  bool
	perHost  int
}

func (f *runFlags) add(c *cobra.Command, defOut string) {
	c.Flags().StringVar(&f.out, "out", defOut, "output directory")
	c.Flags().StringSliceVar(&f.only, "only", nil, "gather only these datasets (by name; repeatable)")
	c.Flags().StringVar(&f.progress, "progress", "auto", "progress display: auto (bars on a terminal, JSON lines otherwise), bars, json, none")
	c.Flags().BoolVar(&f.noConv, "no-convert", false, "do not write OME-Zarr copies of downloaded volumes")
	c.Flags().BoolVar(&f.jsonOut, "json", false, "print the run report as JSON")
	c.Flags().IntVar(&f.perHost, "per-host", 0, "maximum concurrent requests per host (0: 16 for web servers, 64 for S3/GCS)")
}

// validate checks the flags' values before any work is done.
func (f *runFlags) validate() error {
	switch f.progress {
	case "auto", "bars", "json", "none":
	default:
		return usagef("--progress %q: want auto, bars, json or none", f.progress)
	}
	if f.perHost < 0 {
		return usagef("--per-host %d: want 0 (the default per kind of server) or more", f.perHost)
	}
	return nil
}

// checkOnly refuses --only names that are not datasets of m, naming those that are.
func checkOnly(m *manifest.Manifest, only []string) error {
	var names []string
	for _, d := range m.Datasets {
		names = append(names, d.Name)
	}
	for _, o := range only {
		if !slices.Contains(names, o) {
			return usagef("--only %q: no such dataset; the manifest has %s", o, strings.Join(names, ", "))
		}
	}
	return nil
}

func (f *runFlags) options(cmd *cobra.Command) (pipeline.Options, func()) {
	opt := pipeline.Options{OutDir: f.out, Only: f.only, Convert: !f.noConv, Log: cmd.ErrOrStderr()}
	opt.Transfer.PerHost = f.perHost
	stop := func() {}
	mode := f.progress
	if mode == "auto" {
		mode = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			mode = "bars"
		}
	}
	switch mode {
	case "bars":
		ev, done := transfer.Bars(cmd.Context(), cmd.ErrOrStderr())
		opt.Transfer.Events, stop = ev, done
	case "json":
		opt.Transfer.Events = transfer.JSONLines(cmd.ErrOrStderr())
	}
	return opt, stop
}

func report(cmd *cobra.Command, rep *pipeline.Report, asJSON bool) error {
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "output: %s\n", rep.OutDir)
		for _, d := range rep.Datasets {
			fmt.Fprintf(w, "  %-32s %-7s %4d objects  %4d arrays", d.Name, d.Status, d.Objects, d.Arrays)
			if len(d.Outputs) > 0 {
				fmt.Fprintf(w, "  blocks: %s", strings.Join(d.Outputs, ", "))
			}
			fmt.Fprintln(w)
			for _, e := range d.Errors {
				fmt.Fprintf(w, "      error: %s\n", e)
			}
		}
		fmt.Fprintf(w, "table: %s (also %s, %s, %s)\n", filepath.Join(rep.OutDir, rep.Tables.CSV), rep.Tables.JSONL, rep.Tables.Parquet, rep.Tables.JSON)
		if rep.HTML != "" {
			fmt.Fprintf(w, "report: %s\n", filepath.Join(rep.OutDir, rep.HTML))
		}
		if len(rep.Records) > 0 {
			// Only when there is something to serve.
			fmt.Fprintf(w, "blocks over HTTP: imgdataset serve %s\n", rep.OutDir)
		}
	}
	if rep.Failed() {
		// The cause goes to stderr too, where a script (or --json, which
		// keeps stdout for the report) finds it next to the exit status.
		for _, d := range rep.Datasets {
			if d.Status != "ok" {
				fmt.Fprintf(cmd.ErrOrStderr(), "imgdataset: dataset %s failed: %s\n", d.Name, strings.Join(d.Errors, "; "))
			}
		}
		return exitError{exitFailed}
	}
	return nil
}

func loadManifest(args []string) (*manifest.Manifest, error) {
	if len(args) == 0 {
		return manifest.Default()
	}
	if len(args) == 1 && !strings.Contains(args[0], "://") && isManifestFile(args[0]) {
		b, err := os.ReadFile(args[0])
		if err != nil {
			return nil, err
		}
		m, err := manifest.Parse(b, args[0])
		if err != nil {
			// The manifest is what the command line asked for, and it is
			// not one: a usage error, with file:line: field.
			return nil, &pipeline.UsageError{Err: err}
		}
		return m, nil
	}
	urls := make([]string, len(args))
	for i, a := range args {
		urls[i] = a
		if !strings.Contains(a, "://") {
			if abs, err := filepath.Abs(a); err == nil {
				if _, err := os.Stat(abs); err == nil {
					// A local file or folder: the file resolver takes file:// URLs.
					urls[i] = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
				}
			}
		}
	}
	return manifest.FromURLs(urls)
}

// isManifestFile tells a manifest from a local data file or folder given as
// the one argument: a .yaml/.yml name, or a file whose start reads like one.
func isManifestFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".yaml", ".yml":
		return true
	}
	f, err := os.Open(p)
	if err != nil {
		return true // let the manifest loader report it
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		return false
	}
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	return bytes.Contains(head[:n], []byte("datasets:"))
}

func runCmd() *cobra.Command {
	var f runFlags
	var dryRun bool
	c := &cobra.Command{
		Use:   "run [MANIFEST | URL...]",
		Short: "Gather the datasets of a manifest (default: the five built-in datasets)",
		Example: `  imgdataset run --out data                      # the five default datasets
  imgdataset run my-datasets.yaml --out data --only empiar-11759
  imgdataset run https://www.ebi.ac.uk/empiar/EMPIAR-11759/ s3://bucket/x.zarr --out data
  imgdataset run --dry-run                       # what would be fetched (same as plan)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			m, err := loadManifest(args)
			if err != nil {
				return err
			}
			if err := checkOnly(m, f.only); err != nil {
				return err
			}
			if dryRun {
				return printPlan(cmd, m, f.only, f.jsonOut, true, 50)
			}
			opt, stop := f.options(cmd)
			rep, err := pipeline.Run(cmd.Context(), m, opt)
			stop()
			if err != nil {
				return err
			}
			return report(cmd, rep, f.jsonOut)
		},
	}
	f.add(c, "imgdataset-out")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "resolve and list what would be fetched; download nothing (as plan -v)")
	return c
}

func demoCmd() *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline offline against local mirrors of the five sources",
		Long: `demo starts loopback mirrors of the five kinds of sources (an EBI-style file listing,
the EPFL lab page, an OMERO.web/IDR API, the EMPIAR API, an S3 bucket, a GCS bucket and a
short-link redirect to a Neuroglancer state), fills them with generated sample data in the
real formats, runs the same pipeline as 'run' against them, prints where everything went
and stops the servers. No network is needed.`,
		Example: `  imgdataset demo
  imgdataset demo --out /tmp/demo --progress none`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if err := checkOnly(&manifest.Manifest{Datasets: demo.Datasets()}, f.only); err != nil {
				return err
			}
			opt, stop := f.options(cmd)
			rep, err := demo.Run(cmd.Context(), opt)
			stop()
			if err != nil {
				return err
			}
			return report(cmd, rep, f.jsonOut)
		},
	}
	f.add(c, "imgdataset-demo")
	return c
}

func planCmd() *cobra.Command {
	var verbose, asJSON bool
	var only []string
	var rate float64
	c := &cobra.Command{
		Use:   "plan [MANIFEST | URL...]",
		Short: "Resolve datasets and list every object, size and total; download nothing",
		Example: `  imgdataset plan
  imgdataset plan -v my-datasets.yaml
  imgdataset plan --json https://www.epfl.ch/labs/cvlab/data/data-em/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !(rate > 0) {
				return usagef("--rate %g: want a positive rate in MB/s", rate)
			}
			m, err := loadManifest(args)
			if err != nil {
				return err
			}
			if err := checkOnly(m, only); err != nil {
				return err
			}
			return printPlan(cmd, m, only, asJSON, verbose, rate)
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every object")
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	c.Flags().StringSliceVar(&only, "only", nil, "plan only these datasets")
	c.Flags().Float64Var(&rate, "rate", 50, "assumed download rate in MB/s for the estimate")
	return c
}

// printPlan resolves m and prints the plan (rate in MB/s for the estimate).
func printPlan(cmd *cobra.Command, m *manifest.Manifest, only []string, asJSON, verbose bool, rate float64) error {
	pr, err := pipeline.Plan(cmd.Context(), m, pipeline.Options{Only: only, Log: cmd.ErrOrStderr()})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(pr)
	}
	pr.Print(cmd.OutOrStdout(), verbose, rate*1e6)
	for _, d := range pr.Datasets {
		if d.Error != "" {
			return exitError{exitFailed}
		}
	}
	return nil
}

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
			fmt.Fprintf(w, "%s: %s, %d array(s)\n", res.Path, res.Format, len(res.Arrays))
			for _, a := range res.Arrays {
				fmt.Fprintf(w, "  %s: %s %v chunks %v compression %s\n", a.Name, a.DType, a.Shape, a.Chunks, a.Compression)
				for _, ax := range a.Axes {
					fmt.Fprintf(w, "    %-3s size %-7d scale %-12g offset %-10g %s\n", ax.Name, ax.Size, ax.Scale, ax.Offset, ax.Unit)
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
out. Remote objects are cataloged from their headers only.`,
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

func parseZYX(flag, v string, least int64) ([]int64, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return nil, usagef("--%s %q: want three integers z,y,x", flag, v)
	}
	out := make([]int64, 3)
	for i, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || n < least {
			return nil, usagef("--%s %q: want three integers z,y,x of at least %d", flag, v, least)
		}
		out[i] = n
	}
	return out, nil
}

func cropCmd() *cobra.Command {
	var size, origin, out string
	var seed int64
	var scale int
	var align, asJSON bool
	var of outputFlags
	c := &cobra.Command{
		Use:   "crop SRC --size Z,Y,X (--origin Z,Y,X | --seed N) -o OUT",
		Short: "Copy a region of any volume (local or remote) to OME-Zarr, N5, TIFF, DM3 or precomputed",
		Long: `crop reads only the chunks a region touches and streams them to OUT, in the
format OUT's name asks for:

` + pipeline.OutputNames() + `
Any other name is refused (exit status 2) before anything is read. The crop
sits where it came from: its translation is the origin × the voxel size (from
the run's catalog.json for a file inside a run's output, else from the file),
in one unit for all spatial axes (nm, or µm when the source is in µm or coarser).
The origin, seed, source and scale, and where the voxel size came from, are
recorded in the output's attributes where the format has room.

With --seed the origin is random but reproducible, and it is chosen inside the
tissue: origins are drawn from a PCG stream seeded by N (snapped to the chunk
grid with --align); for each draw the same region is read on the coarsest scale
whose axes are all at least 4 voxels, and the draw is kept when at least 50% of
those voxels are non-zero ("empty" means 0, the fill value of resin/background
and of missing chunks). After 32 draws the best one is used and the note says so.`,
		Example: `  imgdataset crop gs://neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg --size 1000,1000,1000 --seed 42 --align -o crop.zarr
  imgdataset crop data/volumedata.tif --size 64,256,256 --origin 0,0,0 -o sub.tif`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sz, err := parseZYX("size", size, 1)
			if err != nil {
				return err
			}
			if sz == nil {
				return usagef("--size Z,Y,X is required")
			}
			o, err := parseZYX("origin", origin, 0)
			if err != nil {
				return err
			}
			switch {
			case o != nil && cmd.Flags().Changed("seed"):
				return usagef("--origin and --seed: give one (an origin, or a seed that draws one)")
			case o == nil && !cmd.Flags().Changed("seed"):
				return usagef("--origin Z,Y,X or --seed N is required")
			}
			spec := manifest.Crop{Size: sz, Origin: o, Scale: scale, AlignToChunks: align}
			if cmd.Flags().Changed("seed") {
				spec.Seed = &seed
			}
			if out == "" {
				return &pipeline.UsageError{Err: errors.New("-o OUT is required")}
			}
			if err := of.validate(); err != nil {
				return err
			}
			res, err := pipeline.Crop(cmd.Context(), args[0], spec, out, pipeline.Options{Log: cmd.ErrOrStderr(), Output: of.options(), Work: of.work})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %v at origin %v of %s (scale %d) → %s\n  %s\n", res.Array, res.Size, res.Origin, res.Source, res.Scale, res.Output, res.Note)
			return nil
		},
	}
	c.Flags().StringVar(&size, "size", "", "region size z,y,x in voxels (required)")
	c.Flags().StringVar(&origin, "origin", "", "region origin z,y,x in voxels")
	c.Flags().Int64Var(&seed, "seed", 0, "draw a reproducible random origin inside the tissue")
	c.Flags().IntVar(&scale, "scale", 0, "scale level (0 = full resolution)")
	c.Flags().BoolVar(&align, "align", false, "snap a random origin to the chunk grid (fewer chunks touched)")
	c.Flags().StringVarP(&out, "output", "o", "", "output: .zarr, .ome.zarr, .n5, .tif, .tiff, .dm3 or .precomputed")
	c.Flags().BoolVar(&asJSON, "json", false, "print what was cropped as JSON")
	of.add(c, false)
	return c
}

// outputFlags are the flags of crop and convert that say how to write.
type outputFlags struct {
	chunks      int64
	levels      int
	zarrVersion int
	bigTIFF     bool
	downsample  string
	work        volume.WorkLimit
}

func (f *outputFlags) add(c *cobra.Command, levels bool) {
	addWorkFlags(c, &f.work)
	c.Flags().Int64Var(&f.chunks, "chunks", 128, "chunk (block) edge in voxels of .zarr, .n5 and .precomputed outputs")
	if levels {
		c.Flags().IntVar(&f.levels, "levels", 1, "multiscale levels of .zarr and .precomputed outputs (each halves the spatial axes)")
		c.Flags().StringVar(&f.downsample, "downsample", "auto", "how levels are reduced: mean, mode (labels), or auto (mode for label images)")
	}
	c.Flags().IntVar(&f.zarrVersion, "zarr-version", 0, "2 (NGFF 0.4) or 3 (NGFF 0.5, sharded) for .zarr outputs (default: 3 for .ome.zarr, 2 for .zarr)")
	c.Flags().BoolVar(&f.bigTIFF, "bigtiff", false, "write .tif outputs as BigTIFF even when classic TIFF would do (ImageJ 1 cannot open BigTIFF)")
}

// addWorkFlags binds the work limit of commands that read whole arrays or
// regions: a hostile header can declare an array that takes days to read.
func addWorkFlags(c *cobra.Command, w *volume.WorkLimit) {
	c.Flags().Int64Var(&w.Chunks, "max-chunks", volume.DefaultWorkChunks, "refuse to read more storage chunks than this (-1: no limit)")
	c.Flags().Int64Var(&w.Bytes, "max-bytes", volume.DefaultWorkBytes, "refuse to read more decoded bytes than this (-1: no limit)")
}

// validate checks the output flags' values before any work is done.
func (f *outputFlags) validate() error {
	if f.chunks < 1 {
		return usagef("--chunks %d: want a chunk edge of at least 1 voxel", f.chunks)
	}
	if f.levels < 0 {
		return usagef("--levels %d: want 1 or more", f.levels)
	}
	return nil
}

func (f *outputFlags) options() pipeline.OutputOptions {
	return pipeline.OutputOptions{Chunk: f.chunks, Levels: f.levels, ZarrVersion: f.zarrVersion, BigTIFF: f.bigTIFF, Downsample: f.downsample}
}

func convertCmd() *cobra.Command {
	var out, array string
	var of outputFlags
	c := &cobra.Command{
		Use:   "convert SRC -o OUT",
		Short: "Convert any volume the tool reads to OME-Zarr, N5, TIFF, DM3 or precomputed",
		Long: `convert writes one array of SRC to OUT, in the format OUT's name asks for:

` + pipeline.OutputNames() + `
Any other name is refused (exit status 2) before anything is read. The output
has the voxel size the metadata table gives the array (a file inside a run's
output takes its row of catalog.json, so a size from the web page, API or
manifest is kept; any other source the size its file states), in one unit for
all spatial axes (nm, or µm when the source is in µm or coarser), and says
where that size came from in its attributes where the format has room.`,
		Example: `  imgdataset convert volumedata.tif -o volumedata.zarr --levels 4
  imgdataset convert stack.zarr -o stack.tif                 # classic TIFF that ImageJ opens
  imgdataset convert volumedata.tif -o volumedata.ome.zarr   # NGFF 0.5, sharded
  imgdataset convert s3://janelia-cosem-datasets/jrc_mus-nacc-2/jrc_mus-nacc-2.zarr --array recon-2/em/fibsem-int16/s5 -o s5.n5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &pipeline.UsageError{Err: errors.New("-o OUT is required")}
			}
			if err := of.validate(); err != nil {
				return err
			}
			if err := pipeline.Convert(cmd.Context(), args[0], array, out, pipeline.Options{Log: cmd.ErrOrStderr(), Output: of.options(), Work: of.work}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s → %s\n", args[0], out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output: .zarr, .ome.zarr, .n5, .tif, .tiff, .dm3 or .precomputed")
	c.Flags().StringVar(&array, "array", "", "which array of SRC (default: the first)")
	of.add(c, true)
	return c
}
