// Command convertprof runs the conversion `imgdataset convert` runs
// (pipeline.Convert) under the CPU and heap profilers, for bench/convert.sh
// and for finding what is slow in the convert path.
//
// Usage:
//
//	go run ./bench/cmd/convertprof -cpuprofile cpu.out -levels 4 in.tif out.zarr
//	go tool pprof -top cpu.out
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/imgdataset/imgdataset/pipeline"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write a CPU profile to this file")
	mem := flag.String("memprofile", "", "write a heap profile (in use at the end, allocations overall) to this file")
	levels := flag.Int("levels", 4, "multiscale levels")
	chunks := flag.Int64("chunks", 128, "chunk edge")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: convertprof [-cpuprofile F] [-memprofile F] [-levels N] IN OUT")
		os.Exit(2)
	}
	if err := run(*cpu, *mem, flag.Arg(0), flag.Arg(1), *levels, *chunks); err != nil {
		fmt.Fprintln(os.Stderr, "convertprof:", err)
		os.Exit(1)
	}
}

func run(cpu, mem, in, out string, levels int, chunks int64) error {
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile %s: %w", cpu, err)
		}
		defer pprof.StopCPUProfile()
	}
	opt := pipeline.Options{Log: os.Stderr, Output: pipeline.OutputOptions{Chunk: chunks, Levels: levels}}
	if err := pipeline.Convert(context.Background(), in, "", out, opt); err != nil {
		return err
	}
	if mem != "" {
		f, err := os.Create(mem)
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return fmt.Errorf("heap profile %s: %w", mem, err)
		}
	}
	return nil
}
