// Command benchtransfer times transfer.Run alone on objects whose sizes are
// given, so no listing or HEAD happens: the download engine's own cost, to set
// beside the whole CLI (bench/transfer.sh runs both).
//
// Usage:
//
//	benchtransfer -base URL/DIR/ -names FILE -size BYTES -out DIR [-per-host 16] [-total 128] [-part-size 0]
//	benchtransfer -base URL/ -name big.bin -size BYTES -out DIR
//
// It prints one line: objects, bytes, seconds, MB/s (10^6 bytes per second).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/transfer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtransfer:", err)
		os.Exit(1)
	}
}

func run() error {
	base := flag.String("base", "", "store URL the names are relative to (ends in /)")
	namesFile := flag.String("names", "", "file with one object name per line")
	name := flag.String("name", "", "a single object name (instead of -names)")
	size := flag.Int64("size", -1, "size of every object in bytes (-1: unknown, the engine stats)")
	out := flag.String("out", "", "output directory")
	perHost := flag.Int("per-host", 0, "transfer.Options.PerHost (0: default)")
	total := flag.Int("total", 0, "transfer.Options.Total (0: default)")
	partSize := flag.Int64("part-size", 0, "transfer.Options.PartSize (0: default)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run here")
	events := flag.String("events", "", "write the run's progress events here as JSON lines, with times")
	flag.Parse()
	if *base == "" || *out == "" || (*namesFile == "") == (*name == "") {
		flag.Usage()
		os.Exit(2)
	}
	names := []string{*name}
	if *namesFile != "" {
		var err error
		if names, err = readNames(*namesFile); err != nil {
			return err
		}
	}
	root := strings.TrimSuffix(*base, "/") + "/"
	objs := make([]source.Object, len(names))
	for i, n := range names {
		objs[i] = source.Object{StoreURL: root, Key: n, SourceURL: root + n, Path: n, Size: *size}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt := transfer.Options{
		OutDir:   *out,
		Stores:   &store.Opener{HTTP: pipeline.NewHTTPClient()}, // the CLI's client
		PerHost:  *perHost,
		Total:    *total,
		PartSize: *partSize,
	}
	if *events != "" {
		f, err := os.Create(*events)
		if err != nil {
			return err
		}
		defer f.Close()
		enc := json.NewEncoder(f)
		opt.Events = func(e transfer.Event) { enc.Encode(e) }
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	sum, err := transfer.Run(ctx, []transfer.Job{{Dataset: "bench", Objects: objs}}, opt)
	if err == nil {
		err = sum.Err()
	}
	dt := time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	fmt.Printf("objects=%d bytes=%d seconds=%.3f MB/s=%.1f\n", len(objs), sum.Fetched, dt, float64(sum.Fetched)/dt/1e6)
	return nil
}

func readNames(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s names no object", p)
	}
	return names, nil
}
