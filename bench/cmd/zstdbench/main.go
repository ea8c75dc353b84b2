// Command zstdbench decodes the same zstd chunks with the pure-Go decoder
// (klauspost/compress) and with libzstd loaded at run time, one goroutine,
// alternating rounds, and prints MB of decoded data per CPU-second of each,
// for bench/zstd.sh.
//
// Usage: zstdbench [-rounds 3] [-max 256] CHUNK_FILE...
//
// Every chunk is decoded into one reused buffer of -size bytes (the chunk's
// decoded size), as the Zarr reader does, and the two decoders' outputs are
// compared byte for byte.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/imgdataset/imgdataset/codec"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds per decoder (alternated)")
	size := flag.Int("size", 64*64*64*2, "decoded bytes of one chunk")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: zstdbench [-rounds N] [-size BYTES] CHUNK_FILE...")
		os.Exit(2)
	}
	if err := run(flag.Args(), *rounds, *size); err != nil {
		fmt.Fprintln(os.Stderr, "zstdbench:", err)
		os.Exit(1)
	}
}

func run(paths []string, rounds, size int) error {
	var chunks [][]byte
	var stored int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		chunks = append(chunks, b)
		stored += int64(len(b))
	}
	// One OS thread for the decoding goroutine: the CPU time of the thread
	// is what a core spends, whatever else the machine runs.
	runtime.LockOSThread()
	os.Setenv("IMGDATASET_ZSTD", "go")
	goc := codec.New()
	os.Unsetenv("IMGDATASET_ZSTD")
	cc := codec.New()
	decoders := []*codec.Codecs{goc, cc}
	if cc.ZstdDecoder() == goc.ZstdDecoder() {
		// A CGO_ENABLED=0 build, or no libzstd.so.1 here.
		fmt.Println("# libzstd not loaded: the pure-Go decoder only")
		decoders = decoders[:1]
	}
	// The same bytes from both.
	a, b := make([]byte, 0, size+32), make([]byte, 0, size+32)
	for i, ch := range chunks {
		x, err := goc.DecodeInto("zstd", a, ch)
		if err != nil {
			return fmt.Errorf("%s: go: %w", paths[i], err)
		}
		y, err := cc.DecodeInto("zstd", b, ch)
		if err != nil {
			return fmt.Errorf("%s: libzstd: %w", paths[i], err)
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s: decoders differ", paths[i])
		}
	}
	fmt.Printf("# %d chunks, %d stored bytes, %d decoded bytes each\n", len(chunks), stored, size)
	buf := make([]byte, 0, size+32)
	for r := 0; r < rounds; r++ {
		for _, c := range decoders {
			runtime.GC()
			t0, c0 := time.Now(), threadCPU()
			var n int64
			for _, ch := range chunks {
				out, err := c.DecodeInto("zstd", buf, ch)
				if err != nil {
					return err
				}
				n += int64(len(out))
			}
			cpu := threadCPU() - c0
			wall := time.Since(t0)
			fmt.Printf("decoder %q round %d bytes %d wall_s %.4f cpu_s %.4f MB_per_cpu_s %.1f\n",
				c.ZstdDecoder(), r, n, wall.Seconds(), cpu.Seconds(), float64(n)/cpu.Seconds()/1e6)
		}
	}
	return nil
}

// threadCPU is the calling thread's CPU time (user + system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
