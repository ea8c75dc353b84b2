package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/shard"
)

// shardHelp explains --shard in the help of the commands that take it.
const shardHelp = `
Sharded (one of N tasks writing one output, on any engine):
  --shard I/N     be task I of N (0-based); every task computes the same
                  deterministic plan and writes only its own files
  --shard auto    take I and N from the engine: Slurm arrays
                  (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of
                  SLURM_ARRAY_TASK_COUNT), Kubernetes Indexed Jobs
                  (JOB_COMPLETION_INDEX), AWS Batch (AWS_BATCH_JOB_ARRAY_INDEX),
                  Google Batch (BATCH_TASK_INDEX of BATCH_TASK_COUNT); N from
                  --shards or IMGDATASET_SHARDS where the engine does not say it
convert and crop split .zarr, .ome.zarr and .n5 outputs by regions of the
chunk (shard) grid; run splits the downloads by object. Then 'imgdataset
finalize OUT' writes what depends on all tasks (coarse pyramid levels and
metadata; for run the reading, conversions and the table), and 'imgdataset
status OUT' shows progress. A task killed at any moment is simply run again.`

// shardFlags are --shard and --shards.
type shardFlags struct {
	value  string
	shards int
}

func (f *shardFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.value, "shard", "", "run as task I/N of a sharded write (0-based), or auto from the engine's environment")
	c.Flags().IntVar(&f.shards, "shards", 0, "the number of tasks, for --shard auto on engines that do not tell it (Kubernetes, AWS Batch)")
}

// spec parses the flags against the process environment; a bad value is a
// usage error.
func (f *shardFlags) spec() (shard.Spec, error) {
	s, err := shard.Parse(f.value, f.shards, os.Getenv)
	if err != nil {
		return shard.Spec{}, &pipeline.UsageError{Err: err}
	}
	return s, nil
}

func finalizeCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "finalize OUT",
		Short: "Complete the output of sharded run, convert or crop tasks once all are done",
		Long: `finalize completes OUT, the output that 'run … --shard I/N', 'convert …
--shard I/N' or 'crop … --shard I/N' tasks wrote together. It checks that
every task is done (exit status 1 naming the missing ones, e.g. "shard 1/2
not done"), then writes what depends on all of them:

  convert, crop  the pyramid levels whose chunks span several tasks' regions,
                 and every array's and the group's metadata (.zarray/.zattrs,
                 zarr.json, attributes.json); the task records (OUT/.imgdataset)
                 are removed, so OUT is byte for byte what one process writes
  run            the tasks' journals are folded into OUT's, then the rest of
                 the run: reading every array, crops, OME-Zarr copies, the
                 table (metadata_table.*), report.html and catalog.json, the
                 same files and rows as one run

It holds the output's lock: it fails while a task still runs. Run it again
if it is interrupted.`,
		Example: `  for i in 0 1 2 3; do imgdataset convert vol.tif -o vol.ome.zarr --levels 4 --shard $i/4 & done; wait
  imgdataset finalize vol.ome.zarr`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := pipeline.Finalize(cmd.Context(), args[0], pipeline.Options{Log: cmd.ErrOrStderr()})
			if res != nil && res.Report != nil && (err == nil || res.Report.Failed()) {
				// The tasks of a run: the rest of the run, reported as run does.
				if rerr := report(cmd, res.Report, asJSON); rerr != nil || err == nil {
					return rerr
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: finalized %d %s tasks (%d %s)\n", res.Output, res.Tasks, res.Kind, res.Units, res.Unit)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print what was finalized as JSON")
	return c
}

func statusCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status OUT",
		Short: "Show the progress of the sharded tasks writing OUT",
		Long: `status reads the task records of OUT and prints, per kind of work
(conversion regions, crop regions), how many units and tasks are done out
of how many, and which tasks are not done. An output without task records
was finalized or written by one process.`,
		Example: `  imgdataset status vol.ome.zarr
  imgdataset status --json vol.ome.zarr`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := pipeline.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			if res.Finalized {
				fmt.Fprintf(w, "%s: no task records (finalized, or written by one process)\n", res.Output)
				return nil
			}
			for _, k := range res.Kinds {
				fmt.Fprintf(w, "%s: %d/%d %s done (%d/%d tasks)\n", res.Output, k.Done, k.Total, k.Unit, k.TasksDone, k.TasksTotal)
			}
			for _, t := range res.Tasks {
				switch {
				case t.Done:
				case t.Started:
					fmt.Fprintf(w, "  shard %s started, not done\n", t.Shard)
				default:
					fmt.Fprintf(w, "  shard %s not started\n", t.Shard)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return c
}

// printJSON writes v as indented JSON, the form of every --json output.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
