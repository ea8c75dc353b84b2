// Command inspectall times pipeline.Inspect (header reads only, no checksum)
// over every file named on the command line or found under the directories
// named, all in one process, as the per-process CLI loop cannot show the cost
// of the reader itself apart from process start-up.
//
// Usage: go run ./bench/cmd/inspectall [-reps N] [-json] DIR-or-FILE...
//
// It prints one line: files, failures, repetitions, the median wall time of
// one pass over all files, and the time per file. With -json the inspect
// results of the last pass are encoded (to io.Discard) as the CLI does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/pipeline"
)

func main() {
	reps := flag.Int("reps", 5, "passes over all files; the median is printed")
	asJSON := flag.Bool("json", true, "encode every result as JSON, as `inspect --json` does")
	verbose := flag.Bool("v", false, "print every failure")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of all passes to this file")
	flag.Parse()
	files, err := collect(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "inspectall:", err)
		os.Exit(1)
	}
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "inspectall: no files")
		os.Exit(2)
	}
	ctx := context.Background()
	opt := pipeline.Options{}
	// One set of defaults for the whole run: a catalog of many files shares
	// the registry and clients too.
	opt.Defaults()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "inspectall:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "inspectall:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var times []time.Duration
	failed := 0
	for r := 0; r < max(1, *reps); r++ {
		failed = 0
		start := time.Now()
		for _, f := range files {
			res, err := pipeline.Inspect(ctx, f, false, opt)
			if err != nil {
				failed++
				if *verbose && r == 0 {
					fmt.Fprintln(os.Stderr, "fail:", err)
				}
				continue
			}
			if *asJSON {
				enc := json.NewEncoder(io.Discard)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					failed++
				}
			}
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	med := times[len(times)/2]
	fmt.Printf("files %d failed %d reps %d median_pass_s %.6f per_file_ms %.4f min_pass_s %.6f\n",
		len(files), failed, len(times), med.Seconds(), med.Seconds()*1000/float64(len(files)), times[0].Seconds())
}

// collect expands directories into the regular files below them, skipping
// hidden files, in a stable order.
func collect(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}
