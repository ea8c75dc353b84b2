// Command mkvol writes a synthetic test volume with the project's own writers,
// for the format benchmarks (bench/formats.sh): a TIFF stack through
// format/tiff.Write, or an OME-Zarr through format/zarr.WriteNGFF.
//
// Usage:
//
//	go run ./bench/cmd/mkvol -shape 1024,1024,1024 -dtype uint8 -o big.tif
//	go run ./bench/cmd/mkvol -shape 512,1024,1024 -dtype int16 -chunks 64 -o big.zarr
//
// The voxel values are a smooth ramp plus 6 bits of deterministic noise, so
// compressed outputs have a ratio in the range of real EM data instead of
// the extremes of zeros or white noise. Memory is one TIFF page or the
// copy budget, whatever the shape.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

func main() {
	out := flag.String("o", "", "output .tif/.tiff file or .zarr directory")
	shapeFlag := flag.String("shape", "1024,1024,1024", "z,y,x (or y,x)")
	dtype := flag.String("dtype", "uint8", "uint8 or int16")
	chunk := flag.Int64("chunks", 64, "zarr chunk edge")
	level := flag.Int("level", 1, "zarr zstd level")
	compression := flag.String("compression", "none", "tiff compression: none, deflate or zstd")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "mkvol: -o is required")
		os.Exit(2)
	}
	var shape []int64
	for _, s := range strings.Split(*shapeFlag, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "mkvol: bad shape %q\n", *shapeFlag)
			os.Exit(2)
		}
		shape = append(shape, n)
	}
	if len(shape) != 2 && len(shape) != 3 {
		fmt.Fprintln(os.Stderr, "mkvol: shape must be y,x or z,y,x")
		os.Exit(2)
	}
	dt := volume.DType(*dtype)
	if dt != volume.Uint8 && dt != volume.Int16 {
		fmt.Fprintln(os.Stderr, "mkvol: dtype must be uint8 or int16")
		os.Exit(2)
	}
	if err := run(context.Background(), *out, newSynth(shape, dt), *chunk, *level, *compression); err != nil {
		fmt.Fprintln(os.Stderr, "mkvol:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string, v volume.Volume, chunk int64, level int, compression string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	l := strings.ToLower(abs)
	if strings.HasSuffix(l, ".tif") || strings.HasSuffix(l, ".tiff") {
		st := store.New(store.NewFile(filepath.Dir(abs)))
		w, err := st.NewWriter(ctx, filepath.Base(abs))
		if err != nil {
			return err
		}
		defer w.Abort()
		opt := tiff.WriteOptions{ImageJ: true, Unit: "nm", PixelWidth: 4, PixelHeight: 4, Spacing: 4, Compression: compression,
			DisplayRange: &[2]float64{0, 255}}
		if err := tiff.Write(ctx, w, v, opt); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		return w.Close()
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	st := store.New(store.NewFile(abs))
	n := len(v.Info().Shape)
	chunks := make([]int64, n)
	for i := range chunks {
		chunks[i] = chunk
	}
	return zarr.WriteNGFF(ctx, st, "", v, zarr.WriteOptions{Chunks: chunks, Compressor: "zstd", Level: level, Levels: 1})
}

// synth is a procedural volume: no storage, any region computed on demand.
type synth struct {
	info volume.Info
}

func newSynth(shape []int64, dt volume.DType) *synth {
	names := []string{"z", "y", "x"}[3-len(shape):]
	axes := make([]volume.Axis, len(shape))
	for i, n := range names {
		axes[i] = volume.Axis{Name: n, Size: shape[i], Scale: 4, Unit: "nm", ScaleKnown: true}
	}
	return &synth{info: volume.Info{Name: "synthetic", Shape: shape, DType: dt, Axes: axes, Compression: "none"}}
}

func (s *synth) Info() volume.Info { return s.info }

// ReadRegion fills dst with value(z, y, x) = ramp + noise, C order, little-endian.
func (s *synth) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(s.info, box, dst); err != nil {
		return err
	}
	start, stop := box.Start, box.Stop
	z0, z1 := int64(0), int64(1)
	if len(start) == 3 {
		z0, z1 = start[0], stop[0]
		start, stop = start[1:], stop[1:]
	}
	elem := s.info.DType.Size()
	i := 0
	for z := z0; z < z1; z++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		for y := start[0]; y < stop[0]; y++ {
			row := uint64(z*1_000_003+y) * 0x9E3779B97F4A7C15
			for x := start[1]; x < stop[1]; x++ {
				// A hash of (z, y, x), so a voxel's value does not depend on
				// the box it is read in.
				h := row ^ uint64(x)*0xBF58476D1CE4E5B9
				h ^= h >> 31
				h *= 0x94D049BB133111EB
				h ^= h >> 29
				v := (x+2*y+3*z)/8 + int64(h&63)
				if elem == 1 {
					dst[i] = byte(v)
				} else {
					binary.LittleEndian.PutUint16(dst[i:], uint16(v%4096))
				}
				i += elem
			}
		}
	}
	return nil
}
