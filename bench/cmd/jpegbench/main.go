// Command jpegbench measures the JPEG decode rate of codec/jpeg per CPU
// second of one thread, on chunks written to disk so that a peer (PIL,
// bench/py/jpeg_peer.py) decodes the very same bytes. bench/jpeg.sh drives it:
//
//	jpegbench gen  -dir D [-n 32]          raw EM-like 64³ chunks (64×4096 images) and image/jpeg q75 encodings
//	jpegbench rate -dir D/set -impl I      decode every D/set/*.jpg in a loop, one locked thread, print one JSON line
//
// -impl is "libjpeg-turbo" (through purego) or "go" (image/jpeg, the
// fallback). Each decode goes into a freshly allocated chunk buffer, as the
// precomputed reader does, so the rate is the reader's, not a best case.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	"image"
	stdjpeg "image/jpeg"

	"github.com/imgdataset/imgdataset/codec/jpeg"
	"github.com/imgdataset/imgdataset/sample"
)

// side is the chunk edge: Janelia's JPEG volumes use 64³ chunks, stored as
// 64-wide, 4096-high images.
const side = 64

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: jpegbench gen|rate [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "rate":
		err = rate(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jpegbench:", err)
		os.Exit(1)
	}
}

// gen writes n chunks of synthetic EM texture: D/raw/NNN.raw (for the peer to
// encode with libjpeg) and D/go-q75/NNN.jpg (encoded by image/jpeg, as the
// precomputed writer does).
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	n := fs.Int("n", 32, "number of chunks")
	fs.Parse(args)
	if *dir == "" || *n < 1 {
		return errors.New("gen: -dir and -n ≥ 1 are required")
	}
	for _, sub := range []string{"raw", "go-q75"} {
		if err := os.MkdirAll(filepath.Join(*dir, sub), 0o755); err != nil {
			return err
		}
	}
	for i := 0; i < *n; i++ {
		pix := sample.EM([3]int64{side, side, side}, uint64(i+1), 1)
		name := fmt.Sprintf("%03d", i)
		if err := os.WriteFile(filepath.Join(*dir, "raw", name+".raw"), pix, 0o644); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(*dir, "go-q75", name+".jpg"))
		if err != nil {
			return err
		}
		img := &image.Gray{Pix: pix, Stride: side, Rect: image.Rect(0, 0, side, side*side)}
		if err := stdjpeg.Encode(f, img, &stdjpeg.Options{Quality: 75}); err != nil {
			f.Close()
			return fmt.Errorf("encode chunk %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// result is one measurement, the same fields as bench/py/jpeg_peer.py prints.
type result struct {
	Tool      string  `json:"tool"`
	Set       string  `json:"set"`
	Chunks    int     `json:"chunks"`
	Decodes   int     `json:"decodes"`
	Pixels    int64   `json:"pixels"`
	CPUSec    float64 `json:"cpu_s"`
	WallSec   float64 `json:"wall_s"`
	MpxPerCPU float64 `json:"mpx_per_cpu_s"`
}

// rusageThread is Linux's RUSAGE_THREAD, missing from package syscall.
const rusageThread = 1

func threadCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(rusageThread, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// rate decodes every chunk of a set in a loop on one locked thread for at
// least -min of that thread's CPU time and prints Mpx per CPU-second.
func rate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	dir := fs.String("dir", "", "directory of .jpg chunks")
	impl := fs.String("impl", jpeg.ImplTurbo, `"libjpeg-turbo" or "go"`)
	minCPU := fs.Duration("min", 3*time.Second, "least CPU time to measure")
	fs.Parse(args)
	files, err := filepath.Glob(filepath.Join(*dir, "*.jpg"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("rate: no .jpg in %q (%v)", *dir, err)
	}
	sort.Strings(files)
	chunks := make([][]byte, len(files))
	for i, f := range files {
		if chunks[i], err = os.ReadFile(f); err != nil {
			return err
		}
	}
	dec, err := jpeg.New(*impl)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// One untimed pass: the library's pages and the handle's buffers.
	for _, c := range chunks {
		if _, err := decode(dec, c); err != nil {
			return err
		}
	}
	r := result{Tool: "imgdataset codec/jpeg: " + dec.Name(), Set: filepath.Base(*dir), Chunks: len(chunks)}
	c0, t0 := threadCPU(), time.Now()
	for r.CPUSec < minCPU.Seconds() {
		for _, c := range chunks {
			px, err := decode(dec, c)
			if err != nil {
				return err
			}
			r.Pixels += px
			r.Decodes++
		}
		r.CPUSec = threadCPU() - c0
	}
	r.WallSec = time.Since(t0).Seconds()
	r.MpxPerCPU = float64(r.Pixels) / r.CPUSec / 1e6
	return json.NewEncoder(os.Stdout).Encode(r)
}

// decode decodes one 64×4096 grey chunk into a new buffer, as the
// precomputed reader does, and returns its pixel count.
func decode(dec *jpeg.Decoder, c []byte) (int64, error) {
	buf := make([]byte, side*side*side)
	f, err := dec.Decode(jpeg.Dst{Pix: buf, Stride: side, Width: side, Height: side * side, Color: jpeg.Gray}, nil, c)
	if err != nil {
		return 0, err
	}
	return int64(f.Width) * int64(f.Height), nil
}
