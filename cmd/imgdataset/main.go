// Command imgdataset gathers public electron-microscopy datasets into verified,
// block-accessible data and one metadata table. The commands are thin: all the
// work is in the pipeline package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/store"
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
		fmt.Fprintln(stderr, pipeline.ErrorLine(err.Error()))
		return exitUsage
	case ctx.Err() != nil:
		if len(args) > 0 && (args[0] == "run" || args[0] == "demo") {
			fmt.Fprintln(stderr, "imgdataset: interrupted; run again to resume")
		} else {
			fmt.Fprintln(stderr, "imgdataset: interrupted")
		}
		return exitAborted
	}
	fmt.Fprintln(stderr, pipeline.ErrorLine(store.Brief(err)))
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
				return usagef("unknown command %q; commands: demo, run, plan, inspect, catalog, crop, convert, finalize, status, serve", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &pipeline.UsageError{Err: err} })
	root.AddCommand(demoCmd(), runCmd(), planCmd(), inspectCmd(), catalogCmd(), cropCmd(), convertCmd(), finalizeCmd(), statusCmd(), serveCmd())
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
