// Command readall decodes a whole array through the format registry and
// reports the throughput, for bench/formats.sh.
//
// Usage: go run ./bench/cmd/readall [-mode full|slabs|checksum] [-array NAME] PATH
//
// Modes:
//
//	full      one ReadRegion of the whole array into one buffer (what zarr's z[:] does)
//	slabs     ReadRegion in slabs of the slowest axis within -budget, into one reused buffer
//	checksum  volume.Checksum16 with -budget (what `inspect --checksum` does)
//
// For every pass it prints the decoded bytes, the wall time, MB/s (10^6 bytes
// of decoded data per second), the user and system CPU seconds of the pass
// and the peak RSS of the process so far.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func main() {
	mode := flag.String("mode", "slabs", "full, slabs or checksum")
	array := flag.String("array", "", "array name (default: the first)")
	budget := flag.Int64("budget", 64<<20, "slab size in bytes for slabs and checksum")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file (of the passes after the first when -reps > 1: the first pays the page faults of a fresh buffer)")
	reps := flag.Int("reps", 1, "passes in one process; full and slabs reuse their buffer, so passes after the first measure decoding without first-touch page faults")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: readall [-mode full|slabs|checksum] PATH")
		os.Exit(2)
	}
	if err := run(context.Background(), flag.Arg(0), *array, *mode, *budget, *cpuprofile, max(1, *reps)); err != nil {
		fmt.Fprintln(os.Stderr, "readall:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, target, array, mode string, budget int64, cpuprofile string, reps int) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	root, key := abs, ""
	if !fi.IsDir() {
		root, key = filepath.Dir(abs), filepath.Base(abs)
	}
	st := store.New(store.NewFile(root))
	start := time.Now()
	_, vols, err := all.Registry().Open(ctx, st, key)
	if err != nil {
		return err
	}
	v := vols[0]
	for _, c := range vols {
		if array != "" && (c.Info().Name == array || strings.HasSuffix(c.Info().Name, "/"+array)) {
			v = c
		}
	}
	openT := time.Since(start)
	startProfile := func() error {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		return pprof.StartCPUProfile(f)
	}
	if cpuprofile != "" {
		defer pprof.StopCPUProfile()
	}
	in := v.Info()
	var full, slab []byte
	for r := 0; r < reps; r++ {
		if cpuprofile != "" && r == min(1, reps-1) {
			if err := startProfile(); err != nil {
				return err
			}
		}
		u0, s0 := cpuTimes()
		start = time.Now()
		extra := ""
		switch mode {
		case "full":
			if full == nil {
				full = make([]byte, in.NumBytes())
				// numpy (1.16+ on Linux ≥ 4.6) asks for transparent huge
				// pages for every array of 4 MiB or more, so zarr-python's
				// z[:] pays 512× fewer first-touch page faults than a
				// plain Go buffer; the destination here gets the same
				// hint, so that both sides allocate alike.
				_ = syscall.Madvise(full, syscall.MADV_HUGEPAGE)
			}
			if err := v.ReadRegion(ctx, volume.Full(in.Shape), full); err != nil {
				return err
			}
		case "slabs":
			if err := slabs(ctx, v, budget, &slab); err != nil {
				return err
			}
		case "checksum":
			sum, err := volume.Checksum16(ctx, v, budget)
			if err != nil {
				return err
			}
			extra = " sha256_16 " + sum
		default:
			return fmt.Errorf("unknown mode %q", mode)
		}
		d := time.Since(start)
		u1, s1 := cpuTimes()
		fmt.Printf("mode %s rep %d array %s shape %v dtype %s bytes %d open_s %.4f read_s %.4f MBps %.1f user_s %.2f sys_s %.2f maxrss_MiB %.1f%s\n",
			mode, r, in.Name, in.Shape, in.DType, in.NumBytes(), openT.Seconds(), d.Seconds(),
			float64(in.NumBytes())/d.Seconds()/1e6, u1-u0, s1-s0, maxRSS(), extra)
	}
	return nil
}

// cpuTimes returns the user and system CPU seconds of the process so far:
// on a shared machine wall time includes other workers' load, CPU time less so.
func cpuTimes() (user, sys float64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()) / 1e9, float64(ru.Stime.Nano()) / 1e9
}

// maxRSS is the peak resident set of the process in MiB.
func maxRSS() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}

// slabs reads the array in C-order slabs of the slowest axis that fit budget
// (the whole of the faster axes), into one reused buffer.
func slabs(ctx context.Context, v volume.Volume, budget int64, bufp *[]byte) error {
	in := v.Info()
	elem := int64(in.DType.Size())
	slab := append([]int64(nil), in.Shape...)
	for i := range slab {
		rest := volume.Prod(in.Shape[i+1:]) * elem
		if rest <= budget {
			slab[i] = max(1, min(in.Shape[i], budget/max(rest, 1)))
			break
		}
		slab[i] = 1
	}
	return volume.Grid(in.Shape, slab, volume.Full(in.Shape), func(_ []int64, region volume.Box) error {
		nb := region.NumElements() * elem
		if int64(cap(*bufp)) < nb {
			*bufp = make([]byte, nb)
		}
		return v.ReadRegion(ctx, region, (*bufp)[:nb])
	})
}
