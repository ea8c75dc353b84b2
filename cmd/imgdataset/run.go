package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/internal/demo"
	"github.com/imgdataset/imgdataset/internal/term"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/transfer"
)

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

// options are the pipeline options of the flags, with the display the
// --progress mode asks for; call stop when the pipeline has returned and
// before anything else is printed.
func (f *runFlags) options(cmd *cobra.Command) (opt pipeline.Options, stop func()) {
	opt = pipeline.Options{OutDir: f.out, Only: f.only, Convert: !f.noConv, Log: cmd.ErrOrStderr()}
	opt.Transfer.PerHost = f.perHost
	stop = func() {}
	mode := f.progress
	if mode == "auto" {
		mode = "json"
		if stderrIsTerminal() {
			mode = "bars"
		}
	}
	switch mode {
	case "bars":
		t := term.New(context.WithoutCancel(cmd.Context()), cmd.ErrOrStderr())
		opt.Display, opt.Transfer.Events, stop = t, t.Event, t.Close
	case "json":
		opt.Transfer.Events = transfer.JSONLines(cmd.ErrOrStderr())
	}
	return opt, stop
}

// stderrIsTerminal reports whether a person is watching stderr, so that
// progress can be drawn as bars.
func stderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// display is the display of a command without a --progress flag (convert,
// crop): bars on a terminal, plain lines otherwise.
func display(cmd *cobra.Command) (d pipeline.Display, stop func()) {
	if !stderrIsTerminal() {
		return pipeline.Lines(cmd.ErrOrStderr()), func() {}
	}
	t := term.New(context.WithoutCancel(cmd.Context()), cmd.ErrOrStderr())
	return t, t.Close
}

func report(cmd *cobra.Command, rep *pipeline.Report, asJSON bool) error {
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if rep.Shard != nil {
		// A task of a sharded run: the table and report are finalize's.
		fmt.Fprintf(w, "output: %s (shard %s)\n", rep.OutDir, rep.Shard.Task)
		fmt.Fprintf(w, "  downloaded %d of %d objects", rep.Shard.Objects, rep.Shard.Total)
		if rep.Shard.Already {
			fmt.Fprint(w, " (already done)")
		}
		fmt.Fprintf(w, "\nafter all tasks: imgdataset finalize %s\n", rep.OutDir)
		for _, d := range rep.Datasets {
			for _, e := range d.Errors {
				fmt.Fprintf(w, "  %s error: %s\n", d.Name, e)
			}
		}
	} else {
		fmt.Fprintf(w, "output: %s\n", rep.OutDir)
		for _, d := range rep.Datasets {
			line := fmt.Sprintf("  %-32s %-7s %-11s %-10s", d.Name, d.Status, pipeline.Count(d.Objects, "object"), pipeline.Count(d.Arrays, "array"))
			if len(d.Outputs) > 0 {
				line += "  blocks: " + strings.Join(d.Outputs, ", ")
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
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
		// The causes go to stderr only, one line per failure, where a script
		// (or --json, which keeps stdout for the report) finds them next to
		// the exit status; the summary above says which datasets failed.
		for _, d := range rep.Datasets {
			for _, e := range d.Errors {
				// A single file's dataset is named after the file: say it once.
				e = strings.TrimPrefix(e, d.Name+": ")
				fmt.Fprintln(cmd.ErrOrStderr(), pipeline.ErrorLine(d.Name+" failed: "+e))
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
	var sf shardFlags
	c := &cobra.Command{
		Use:   "run [MANIFEST | URL...]",
		Short: "Gather the datasets of a manifest (default: the five built-in datasets)",
		Long: `run resolves, downloads (resumably), reads, converts and catalogs the datasets of a
manifest, the five built-in ones by default, or of URLs, local files and folders.

stdout gets a summary: one line per dataset, where the table and report are. Each
failure is one line on stderr, "imgdataset: <dataset> failed: <object>: <cause>";
report.html and catalog.json list the failures too. Exit codes: 0 success, 1 a dataset
failed, 2 usage error, 130 interrupted (run again to resume).

With --shard the downloads are split into N tasks by object (balanced by
size, the same split in every task and every rerun); each task downloads its
objects and keeps a journal of its own. 'imgdataset finalize OUT' then reads,
crops and converts everything and writes the table, report and catalog.json
once, as one run does.
` + shardHelp,
		Example: `  imgdataset run --out data                      # the five default datasets
  imgdataset run my-datasets.yaml --out data --only empiar-11759
  imgdataset run https://www.ebi.ac.uk/empiar/EMPIAR-11759/ s3://bucket/x.zarr --out data
  imgdataset run --dry-run                       # what would be fetched (same as plan)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			task, err := sf.spec()
			if err != nil {
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
				return printPlan(cmd, m, f.only, f.jsonOut, true, 50<<20)
			}
			opt, stop := f.options(cmd)
			opt.Shard = task
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
	sf.add(c)
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
	var rate string
	c := &cobra.Command{
		Use:   "plan [MANIFEST | URL...]",
		Short: "Resolve datasets and list every object, size and total; download nothing",
		Long: `plan resolves the datasets of a manifest (the five built-in ones by default) or of URLs,
local files and folders, and lists what run would fetch. A dataset that cannot be
resolved is "failed" in the table and one line on stderr says why (exit 1).`,
		Example: `  imgdataset plan
  imgdataset plan -v my-datasets.yaml
  imgdataset plan --json https://www.epfl.ch/labs/cvlab/data/data-em/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			bps, err := parseRate(rate)
			if err != nil {
				return err
			}
			m, err := loadManifest(args)
			if err != nil {
				return err
			}
			if err := checkOnly(m, only); err != nil {
				return err
			}
			return printPlan(cmd, m, only, asJSON, verbose, bps)
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every object")
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	c.Flags().StringSliceVar(&only, "only", nil, "plan only these datasets")
	c.Flags().StringVar(&rate, "rate", "50", "assumed download rate for the estimate, in MiB/s (50) or with a unit (800KiB/s, 1GiB/s)")
	return c
}

// printPlan resolves m and prints the plan (rate in bytes/s for the estimate).
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
	pr.Print(cmd.OutOrStdout(), verbose, rate)
	failed := false
	for _, d := range pr.Datasets {
		if d.Error != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), pipeline.ErrorLine(d.Name+" failed: "+d.Error))
			failed = true
		}
	}
	if failed {
		return exitError{exitFailed}
	}
	return nil
}
