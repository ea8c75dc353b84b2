// Command outcodec compares the compressors an OME-Zarr output can use on
// real decoded blocks of a volume: encode and decode MB per CPU-second of one
// thread, and the compression ratio. It chose the crop's output compression
// (docs/benchmarks.md, bench/crop.sh).
//
// Usage: outcodec [-blocks 8] [-edge 128] [-rounds 3] PATH
//
// PATH is any volume the format registry opens (a precomputed directory, a
// zarr store); blocks are read along the diagonal of the array.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/codec"
	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func main() {
	blocks := flag.Int("blocks", 8, "blocks to read")
	edge := flag.Int64("edge", 128, "block edge (the output chunk)")
	rounds := flag.Int("rounds", 3, "rounds; medians are printed")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: outcodec [-blocks N] [-edge N] [-rounds N] PATH")
		os.Exit(2)
	}
	if err := run(context.Background(), flag.Arg(0), *blocks, *edge, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "outcodec:", err)
		os.Exit(1)
	}
}

type candidate struct {
	name string
	enc  func(c *codec.Codecs, b []byte) ([]byte, error)
	id   string // codec id for DecodeInto
}

func candidates(elem int) []candidate {
	zstd := func(l int) func(c *codec.Codecs, b []byte) ([]byte, error) {
		return func(c *codec.Codecs, b []byte) ([]byte, error) { return c.Encode("zstd", l, b) }
	}
	blosc := func(cname string, l int, sh int) func(c *codec.Codecs, b []byte) ([]byte, error) {
		return func(c *codec.Codecs, b []byte) ([]byte, error) {
			return c.EncodeBlosc(b, codec.BloscOptions{CName: cname, CLevel: l, Shuffle: sh, TypeSize: elem})
		}
	}
	return []candidate{
		{"zstd level 3 (today's default)", zstd(3), "zstd"},
		{"zstd level 1", zstd(1), "zstd"},
		{"blosc lz4 level 5, shuffle", blosc("lz4", 5, codec.BloscShuffle), "blosc"},
		{"blosc lz4 level 5, no shuffle", blosc("lz4", 5, codec.BloscNoShuffle), "blosc"},
		{"blosc zstd level 1, shuffle", blosc("zstd", 1, codec.BloscShuffle), "blosc"},
		{"lz4 (numcodecs)", func(c *codec.Codecs, b []byte) ([]byte, error) { return c.Encode("lz4", 0, b) }, "lz4"},
	}
}

func run(ctx context.Context, target string, nblocks int, edge int64, rounds int) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	st := store.New(store.NewFile(abs))
	_, vols, err := all.Registry().Open(ctx, st, "")
	if err != nil {
		return err
	}
	v := vols[0]
	in := v.Info()
	elem := in.DType.Size()
	var data [][]byte
	var total int64
	for i := 0; i < nblocks; i++ {
		b := volume.Box{Start: make([]int64, len(in.Shape)), Stop: make([]int64, len(in.Shape))}
		for d, n := range in.Shape {
			e := min(edge, n)
			span := max(0, n-e)
			b.Start[d] = span * int64(i) / int64(max(1, nblocks-1))
			b.Stop[d] = b.Start[d] + e
		}
		buf := make([]byte, b.NumElements()*int64(elem))
		if err := v.ReadRegion(ctx, b, buf); err != nil {
			return err
		}
		data = append(data, buf)
		total += int64(len(buf))
	}
	fmt.Printf("# %s: %d blocks of %d³ %s (%d MB), %d rounds, medians; one thread\n", in.Name, nblocks, edge, in.DType, total>>20, rounds)
	runtime.LockOSThread()
	c := codec.New()
	defer c.Close()
	fmt.Printf("%-32s %10s %14s %14s\n", "codec", "ratio", "encode MB/cpu-s", "decode MB/cpu-s")
	for _, cd := range candidates(elem) {
		var encRates, decRates []float64
		var stored int64
		out := make([]byte, 0, len(data[0])+64)
		for r := 0; r < rounds; r++ {
			encs := make([][]byte, len(data))
			c0 := threadCPU()
			for i, b := range data {
				if encs[i], err = cd.enc(c, b); err != nil {
					return fmt.Errorf("%s: %w", cd.name, err)
				}
			}
			encRates = append(encRates, float64(total)/(threadCPU()-c0).Seconds()/1e6)
			stored = 0
			c0 = threadCPU()
			for i, e := range encs {
				got, err := c.DecodeInto(cd.id, out[:0:cap(out)], e)
				if err != nil {
					return fmt.Errorf("%s decode: %w", cd.name, err)
				}
				if r == 0 && !bytes.Equal(got, data[i]) {
					return fmt.Errorf("%s: round trip differs", cd.name)
				}
				stored += int64(len(e))
			}
			decRates = append(decRates, float64(total)/(threadCPU()-c0).Seconds()/1e6)
		}
		fmt.Printf("%-32s %10.2f %14.0f %14.0f\n", cd.name, float64(total)/float64(stored), median(encRates), median(decRates))
	}
	return nil
}

func median(x []float64) float64 {
	sort.Float64s(x)
	return x[len(x)/2]
}

// threadCPU is the calling thread's CPU time (Linux RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
