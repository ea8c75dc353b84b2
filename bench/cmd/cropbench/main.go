// Command cropbench measures a large crop from a sharded JPEG Neuroglancer
// precomputed volume served over loopback with added latency, written to
// OME-Zarr, against the machine's own JPEG decode rate. bench/crop.sh drives it:
//
//	cropbench gen   -dir D              write the synthetic source volume once
//	cropbench serve -dir D -mode file   serve it (file server or GCS mirror) with latency
//	cropbench crop  -url U …            crop it and print the figures
//
// The server runs in its own process so that the crop's peak RSS, measured
// with /usr/bin/time -v, is the crop's alone.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/pipeline"
	"github.com/imgdataset/imgdataset/source"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Layout of the source volume: Janelia's JPEG volumes (hemibrain) use 64³
// chunks, quality 75, murmurhash3_x86_128 with preshift 9 and gzip minishard
// indexes; shard and minishard bits are scaled down so that a 1152³ volume
// has 8 shards. gen -hash identity writes the older benchmark layout.
const (
	bucket = "cropbench"
	prefix = "vol"
	chunk  = 64
)

var sharding = precomputed.Sharding{Type: "neuroglancer_uint64_sharded_v1", Hash: "identity",
	PreshiftBits: 9, MinishardBits: 3, ShardBits: 3, MinishardIndexEncoding: "gzip", DataEncoding: "raw"}

// pilScript measures PIL's (libjpeg-turbo's) single-core decode rate.
const pilScript = "bench/py/pil_decode_rate.py"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cropbench gen|serve|crop [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(ctx, os.Args[2:])
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "crop":
		err = crop(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cropbench:", err)
		os.Exit(1)
	}
}

// synth is a cheap deterministic EM-like texture computed on demand, so that a
// 1.5 GB source never sits in memory: smooth structures from three periodic
// tables along oblique directions plus per-voxel hash noise.
type synth struct {
	info    volume.Info
	a, b, c []float32
}

func newSynth(n int64) *synth {
	const period = 4096
	tab := func(seed uint64) []float32 {
		t := make([]float32, period)
		v, vel := 0.0, 0.0
		s := seed
		for i := range t {
			s = splitmix(s)
			vel = 0.97*vel + (float64(s>>40)/float64(1<<24) - 0.5)
			v = 0.995*v + 0.1*vel
			t[i] = float32(v)
		}
		// Normalise to ±1 so the sum below stays in range.
		m := float32(0)
		for _, x := range t {
			m = max(m, float32(math.Abs(float64(x))))
		}
		for i := range t {
			t[i] /= m
		}
		return t
	}
	in := volume.Info{Name: "synth", Shape: []int64{n, n, n}, DType: volume.Uint8}
	for _, name := range []string{"z", "y", "x"} {
		in.Axes = append(in.Axes, volume.Axis{Name: name, Size: n, Scale: 8, Unit: "nanometer", ScaleKnown: true})
	}
	return &synth{info: in, a: tab(1), b: tab(2), c: tab(3)}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (s *synth) Info() volume.Info { return s.info }

func (s *synth) ReadRegion(ctx context.Context, box volume.Box, dst []byte) error {
	if err := volume.CheckRead(s.info, box, dst); err != nil {
		return err
	}
	n := int64(len(s.a))
	i := 0
	for z := box.Start[0]; z < box.Stop[0]; z++ {
		for y := box.Start[1]; y < box.Stop[1]; y++ {
			row := (z*s.info.Shape[1] + y) * s.info.Shape[2]
			for x := box.Start[2]; x < box.Stop[2]; x++ {
				v := 128 + 45*s.a[(x+2*z)%n] + 35*s.b[(y+3*z)%n] + 25*s.c[(x+y+z)%n]
				v += float32(int64(splitmix(uint64(row+x))>>59) - 16) // noise ±16
				dst[i] = uint8(min(255, max(0, v)))
				i++
			}
		}
	}
	return nil
}

func gen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory (required)")
	n := fs.Int64("size", 1152, "edge of the cubic source volume in voxels")
	q := fs.Int("quality", 75, "JPEG quality")
	hash := fs.String("hash", "murmurhash3_x86_128", `sharding hash: "murmurhash3_x86_128" (as hemibrain) or "identity"`)
	fs.Parse(args)
	if *dir == "" {
		return errors.New("gen: -dir is required")
	}
	if _, err := os.Stat(filepath.Join(*dir, prefix, "info")); err == nil {
		fmt.Printf("source: reusing %s\n", filepath.Join(*dir, prefix))
		return nil
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	sh := sharding
	sh.Hash = *hash
	t0 := time.Now()
	err := precomputed.Write(ctx, store.New(store.NewFile(*dir)), prefix, newSynth(*n), precomputed.WriteOptions{
		Encoding: precomputed.EncJPEG, JPEGQuality: *q, ChunkSize: [3]int64{chunk, chunk, chunk},
		Sharding: &sh, Resolution: [3]float64{8, 8, 8},
	})
	if err != nil {
		return err
	}
	var total int64
	var files int
	filepath.WalkDir(*dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
				files++
			}
		}
		return nil
	})
	raw := *n * *n * *n
	fmt.Printf("source: wrote %d³ uint8 (%d MB raw) as %d files, %.1f MB (ratio %.1f) in %s\n",
		*n, raw/1e6, files, float64(total)/1e6, float64(raw)/float64(total), time.Since(t0).Round(time.Second))
	return nil
}

// addrs is what serve tells the crop process.
type addrs struct {
	Data    string `json:"data"`    // base URL of the volume (http mode) or GCS endpoint (gcs mode)
	Control string `json:"control"` // GET /stats, POST /reset
	Latency string `json:"latency"`
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "directory written by gen (required)")
	mode := fs.String("mode", "file", `"file": net/http file server; "gcs": the GCS mirror (mirror package, objects in RAM)`)
	latency := fs.Duration("latency", 20*time.Millisecond, "latency added to every request")
	addrFile := fs.String("addr-file", "", "write the URLs here as JSON (required)")
	fs.Parse(args)
	if *dir == "" || *addrFile == "" {
		return errors.New("serve: -dir and -addr-file are required")
	}
	faults := mirror.FaultConfig{Latency: *latency}
	var counter *mirror.Counter
	var a addrs
	switch *mode {
	case "file":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		counter = mirror.NewCounter()
		h := counter.Wrap(mirror.Faults(noDirs(http.StripPrefix("/"+bucket+"/", http.FileServer(http.Dir(*dir)))), faults))
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		defer srv.Close()
		a.Data = "http://" + ln.Addr().String() + "/" + bucket + "/" + prefix + "/"
	case "gcs":
		objs := map[string][]byte{}
		err := filepath.WalkDir(*dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(*dir, p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			objs[bucket+"/"+filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			return err
		}
		m, err := mirror.Start(ctx, mirror.Content{GCS: objs}, mirror.Options{Faults: &faults})
		if err != nil {
			return err
		}
		defer m.Close()
		counter = m.Counters[mirror.NameGCS]
		a.Data = m.GCS
	default:
		return fmt.Errorf("serve: mode %q", *mode)
	}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"requests": counter.Requests(), "bytes": counter.Bytes(), "paths": counter.Paths()})
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) { counter.Reset() })
	csrv := &http.Server{Handler: mux}
	go csrv.Serve(cln)
	defer csrv.Close()
	a.Control = "http://" + cln.Addr().String()
	a.Latency = latency.String()
	b, _ := json.Marshal(a)
	if err := os.WriteFile(*addrFile, b, 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// noDirs answers 404 for directory URLs, as bucket HTTP endpoints do: the
// volume root is a prefix, not an object. (With a listing page there, format
// detection takes the HTML for the object at the root and finds no format;
// see the report.)
func noDirs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type stats struct {
	Requests int64                       `json:"requests"`
	Bytes    int64                       `json:"bytes"`
	Paths    map[string]mirror.PathCount `json:"paths"`
}

func control(ctx context.Context, method, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func crop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("crop", flag.ExitOnError)
	dir := fs.String("dir", "", "directory written by gen: its shards give the chunks for the decode-rate measurement (required)")
	addrFile := fs.String("addr-file", "", "the file serve wrote (required)")
	mode := fs.String("mode", "file", `"file" reads precomputed over http://; "gcs" over gs:// with the GCS endpoint`)
	out := fs.String("out", "", "OME-Zarr output path (must not exist; required)")
	o := fs.Int64("origin", 64, "crop origin on every axis")
	n := fs.Int64("size", 1000, "crop edge")
	decodeTime := fs.Duration("decode-time", 4*time.Second, "time spent on each single-core decode measurement")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the crop here")
	python := fs.String("python", "/usr/bin/python3", "python with PIL, for the libjpeg-turbo reference rate (\"\" skips it)")
	workers := fs.Int("workers", 0, "experiment: instead of pipeline.Crop, copy the same window into a zarr array with volume.Copy and this many workers")
	fs.Parse(args)
	if *dir == "" || *addrFile == "" || *out == "" {
		return errors.New("crop: -dir, -addr-file and -out are required")
	}
	ab, err := os.ReadFile(*addrFile)
	if err != nil {
		return err
	}
	var a addrs
	if err := json.Unmarshal(ab, &a); err != nil {
		return err
	}
	in, err := precomputed.ReadInfo(ctx, store.New(store.NewFile(filepath.Join(*dir, prefix))), "")
	if err != nil {
		return err
	}
	sc := in.Scales[0]
	vsize := [3]int64{sc.Size[2], sc.Size[1], sc.Size[0]} // z, y, x
	origin := []int64{*o, *o, *o}
	size := []int64{*n, *n, *n}

	touched, need, chunks, err := cropChunks(filepath.Join(*dir, prefix, sc.Key), *in.Scales[0].Sharding, vsize, origin, size)
	if err != nil {
		return err
	}
	before, beforeCPU, err := decodeRate(chunks, *decodeTime)
	if err != nil {
		return err
	}
	pil, err := newPILRate(*python, chunks)
	if err != nil {
		return err
	}
	defer pil.close()
	pil.measure(*decodeTime)

	opt := pipeline.Options{}
	hc := pipeline.NewHTTPClient()
	var url string
	switch *mode {
	case "file":
		url = a.Data
		opt.Env = source.Env{Stores: &store.Opener{HTTP: hc}}
	case "gcs":
		url = "gs://" + bucket + "/" + prefix
		opt.Env = source.Env{Stores: &store.Opener{HTTP: hc, GCSEndpoint: a.Data}}
	default:
		return fmt.Errorf("crop: mode %q", *mode)
	}
	opt.StoreHTTP = hc
	if err := control(ctx, http.MethodPost, a.Control+"/reset", nil); err != nil {
		return fmt.Errorf("reset counter: %w", err)
	}
	runtime.GC()
	debug.FreeOSMemory() // garbage of loading the sample, so the RSS is the crop's
	load1 := loadavg()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	sched0 := readSched()
	t0 := time.Now()
	what := "pipeline.Crop"
	if *workers > 0 {
		what = fmt.Sprintf("experiment: volume.Copy with %d workers (not the product path)", *workers)
		err = copyWorkers(ctx, opt.Env.Stores, url, origin, size, *out, *workers)
	} else {
		_, err = pipeline.Crop(ctx, url, manifest.Crop{Origin: origin, Size: size}, *out, opt)
	}
	wall := time.Since(t0)
	sched1 := readSched()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	load2 := loadavg()
	var st stats
	if err := control(ctx, http.MethodGet, a.Control+"/stats", &st); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	after, afterCPU, err := decodeRate(chunks, *decodeTime)
	if err != nil {
		return err
	}
	pil.measure(*decodeTime)

	var shardReqs, infoReqs, other int64
	var shardBytes int64
	shards := map[string]bool{}
	for p, pc := range st.Paths {
		switch {
		case strings.HasSuffix(p, ".shard"):
			shardReqs += pc.Requests
			shardBytes += pc.Bytes
			shards[p] = true
		case strings.HasSuffix(p, "/info"):
			infoReqs += pc.Requests
		default:
			other += pc.Requests
		}
	}
	var outBytes int64
	filepath.WalkDir(*out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				outBytes += fi.Size()
			}
		}
		return nil
	})
	vox := float64(*n * *n * *n)
	rate := vox / wall.Seconds()
	single := (before + after) / 2
	singleCPU := (beforeCPU + afterCPU) / 2
	cores := runtime.NumCPU()
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	limit := int64(touched) + 2*int64(len(shards))

	fmt.Printf("route:            %s (%s), %s latency per request\n", *mode, url, a.Latency)
	fmt.Printf("source:           %d×%d×%d uint8, 64³ JPEG q%d chunks, %d shards\n", vsize[0], vsize[1], vsize[2], jpegQ(sc), countShards(filepath.Join(*dir, prefix, sc.Key)))
	fmt.Printf("crop:             %d³ at origin %v → OME-Zarr (blosc-lz4, 128³ chunks), %.0f MB written\n", *n, origin, float64(outBytes)/1e6)
	fmt.Printf("copy:             %s\n", what)
	fmt.Printf("wall time:        %.2f s, %.1f Mvoxel/s; process CPU %.2f s (%.2f cores busy)\n", wall.Seconds(), rate/1e6, cpu, cpu/wall.Seconds())
	fmt.Printf("Go scheduler:     Ps idle %.2f of %.2f P-seconds (%.0f%%; runtime/metrics: no goroutine ready to run, i.e. waiting on I/O)\n",
		sched1.idle-sched0.idle, sched1.total-sched0.total, 100*(sched1.idle-sched0.idle)/(sched1.total-sched0.total))
	fmt.Printf("decode 1 core:    %.1f Mvoxel/s before, %.1f after by wall clock; %.1f and %.1f per CPU-second of the thread (image/jpeg, %d of the crop's chunks, one goroutine)\n",
		before/1e6, after/1e6, beforeCPU/1e6, afterCPU/1e6, len(chunks))
	fmt.Printf("target (wall):    %d cores × %.1f = %.1f Mvoxel/s; crop reaches %.0f%% (goal ≥ 80%%)\n", cores, single/1e6, float64(cores)*single/1e6, 100*rate/(float64(cores)*single))
	fmt.Printf("target (CPU):     %d cores × %.1f = %.1f Mvoxel/s; crop reaches %.0f%% (unloaded-machine view)\n", cores, singleCPU/1e6, float64(cores)*singleCPU/1e6, 100*rate/(float64(cores)*singleCPU))
	if pil.err != nil {
		fmt.Printf("libjpeg-turbo:    skipped: %v\n", pil.err)
	} else {
		pw, pc := pil.median()
		fmt.Printf("libjpeg-turbo:    %s, 1 core: %.1f Mvoxel/s by wall clock, %.1f per CPU-second of the thread (median of %d, same chunks)\n", pil.version, pw/1e6, pc/1e6, len(pil.wall))
		fmt.Printf("vs libjpeg-turbo: %d cores × %.1f = %.1f Mvoxel/s (wall); crop reaches %.0f%% (goal ≥ 40%%); by CPU rate %d × %.1f = %.1f, crop reaches %.0f%%\n",
			cores, pw/1e6, float64(cores)*pw/1e6, 100*rate/(float64(cores)*pw), cores, pc/1e6, float64(cores)*pc/1e6, 100*rate/(float64(cores)*pc))
		fmt.Printf("crop CPU/voxel:   %.2f ns per output voxel; libjpeg-turbo decode %.2f ns per voxel (%.0f%% of the crop's CPU would be decoding at that rate)\n",
			cpu/vox*1e9, 1e9/pc, 100*(vox/pc)/cpu)
	}
	fmt.Printf("CPU efficiency:   JPEG decode at the single-core CPU rate is %.0f%% of the process's CPU time\n", 100*(vox/singleCPU)/cpu)
	fmt.Printf("requests:         %d to shards (%.0f MB), %d info, %d other; chunks touched %d, shards touched %d, limit %d → %s\n",
		shardReqs, float64(shardBytes)/1e6, infoReqs, other, touched, len(shards), limit, okStr(shardReqs <= limit))
	fmt.Printf("bytes:            %.0f MB read from shards for %.0f MB of touched chunks (%.2f×)\n",
		float64(shardBytes)/1e6, float64(need)/1e6, float64(shardBytes)/float64(need))
	fmt.Printf("load average:     %.2f %.2f %.2f before, %.2f %.2f %.2f after\n", load1[0], load1[1], load1[2], load2[0], load2[1], load2[2])
	var others []string
	for p, pc := range st.Paths {
		if !strings.HasSuffix(p, ".shard") {
			others = append(others, fmt.Sprintf("%s×%d", p, pc.Requests))
		}
	}
	sort.Strings(others)
	fmt.Printf("metadata paths:   %s\n", strings.Join(others, " "))
	return nil
}

// sched is the Go runtime's account of its Ps' time (runtime/metrics): total
// is GOMAXPROCS × wall time, idle the part with no goroutine ready to run,
// which a load of other processes does not inflate.
type sched struct{ total, idle float64 }

func readSched() sched {
	ms := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(ms)
	return sched{total: ms[0].Value.Float64(), idle: ms[1].Value.Float64()}
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func okStr(ok bool) string {
	if ok {
		return "ok"
	}
	return "OVER"
}

func jpegQ(s precomputed.Scale) int {
	if s.JPEGQuality != nil {
		return *s.JPEGQuality
	}
	return 0
}

func countShards(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*.shard"))
	return len(m)
}

func loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err == nil {
		fmt.Sscanf(string(b), "%f %f %f", &l[0], &l[1], &l[2])
	}
	return l
}

// maxSample bounds the chunks kept for the decode measurement, so that they
// add little to the crop process's RSS.
const maxSample = 256

// cropChunks returns the number of chunks the crop touches, their total
// stored size, and the stored (JPEG) bytes of an evenly spread sample of them, read straight from the
// shard files: the shard index, the gzip minishard indexes, the chunk ranges.
func cropChunks(scaleDir string, sh precomputed.Sharding, vsize [3]int64, origin, size []int64) (int, int64, [][]byte, error) {
	var grid, lo, hi [3]int64 // x, y, z
	for d := 0; d < 3; d++ {
		zyx := 2 - d
		grid[d] = (vsize[zyx] + chunk - 1) / chunk
		lo[d] = origin[zyx] / chunk
		hi[d] = (origin[zyx] + size[zyx] - 1) / chunk
	}
	var nbits [3]int
	for d := 0; d < 3; d++ {
		for int64(1)<<nbits[d] < grid[d] {
			nbits[d]++
		}
	}
	want := map[uint64]bool{}
	for z := lo[2]; z <= hi[2]; z++ {
		for y := lo[1]; y <= hi[1]; y++ {
			for x := lo[0]; x <= hi[0]; x++ {
				want[morton([3]int64{x, y, z}, nbits)] = true
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(scaleDir, "*.shard"))
	if err != nil {
		return 0, 0, nil, err
	}
	step := uint64(max(1, len(want)/maxSample))
	var out [][]byte
	found := 0
	var need int64
	for _, f := range files {
		if err := shardChunks(f, sh, want, step, &found, &need, &out); err != nil {
			return 0, 0, nil, err
		}
	}
	if found != len(want) {
		return 0, 0, nil, fmt.Errorf("found %d of the %d chunks the crop touches", found, len(want))
	}
	return found, need, out, nil
}

// shardChunks walks the minishard indexes of one shard file, adds the sizes of
// the wanted chunks to need and appends the bytes of every step-th one to out. It reads by range, so that the
// crop process never holds a whole shard (its peak RSS is measured).
func shardChunks(path string, sh precomputed.Sharding, want map[uint64]bool, step uint64, found *int, need *int64, out *[][]byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	idxEnd := uint64(16) << sh.MinishardBits
	index := make([]byte, idxEnd)
	if _, err := f.ReadAt(index, 0); err != nil {
		return fmt.Errorf("%s: shard index: %w", path, err)
	}
	for m := uint64(0); m < 1<<sh.MinishardBits; m++ {
		start := binary.LittleEndian.Uint64(index[16*m:])
		end := binary.LittleEndian.Uint64(index[16*m+8:])
		if start == end {
			continue
		}
		zb := make([]byte, end-start)
		if _, err := f.ReadAt(zb, int64(idxEnd+start)); err != nil {
			return fmt.Errorf("%s minishard %d: %w", path, m, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zb))
		if err != nil {
			return fmt.Errorf("%s minishard %d: %w", path, m, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return fmt.Errorf("%s minishard %d: %w", path, m, err)
		}
		k := len(raw) / 24
		var id, pos uint64 = 0, idxEnd
		for i := 0; i < k; i++ {
			id += binary.LittleEndian.Uint64(raw[8*i:])
			s := pos + binary.LittleEndian.Uint64(raw[8*(k+i):])
			e := s + binary.LittleEndian.Uint64(raw[8*(2*k+i):])
			pos = e
			if !want[id] {
				continue
			}
			*need += int64(e - s)
			if uint64(*found)%step == 0 {
				b := make([]byte, e-s)
				if _, err := f.ReadAt(b, int64(s)); err != nil {
					return fmt.Errorf("%s chunk %d: %w", path, id, err)
				}
				*out = append(*out, b)
			}
			*found++
		}
	}
	return nil
}

// morton is the compressed Morton code of a grid cell (x, y, z), as the
// sharded format numbers chunks.
func morton(g [3]int64, nbits [3]int) uint64 {
	var id uint64
	j := 0
	for i := 0; i < 64; i++ {
		for d := 0; d < 3; d++ {
			if i < nbits[d] {
				id |= uint64(g[d]>>i&1) << j
				j++
			}
		}
	}
	return id
}

// rusageThread is Linux's RUSAGE_THREAD, missing from package syscall.
const rusageThread = 1

// decodeRate decodes chunks with image/jpeg on one goroutine, locked to its
// thread, for at least d and returns voxels per second of wall time and per
// second of that thread's CPU time (which other processes' load does not
// dilute).
func decodeRate(chunks [][]byte, d time.Duration) (wall, cpu float64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r0, r1 syscall.Rusage
	syscall.Getrusage(rusageThread, &r0)
	var vox int64
	t0 := time.Now()
	for i := 0; time.Since(t0) < d; i++ {
		img, err := jpeg.Decode(bytes.NewReader(chunks[i%len(chunks)]))
		if err != nil {
			return 0, 0, err
		}
		r := img.Bounds()
		vox += int64(r.Dx()) * int64(r.Dy())
	}
	el := time.Since(t0).Seconds()
	syscall.Getrusage(rusageThread, &r1)
	c := tv(r1.Utime) + tv(r1.Stime) - tv(r0.Utime) - tv(r0.Stime)
	return float64(vox) / el, float64(vox) / c, nil
}

// pilRate runs PIL on the crop's sample chunks, written to a temp directory.
type pilRate struct {
	python, dir string
	files       []string
	version     string
	wall, cpu   []float64 // voxels per second, one entry per measurement
	err         error     // why there is no figure (no python, no PIL)
}

func newPILRate(python string, chunks [][]byte) (*pilRate, error) {
	p := &pilRate{python: python}
	if python == "" {
		p.err = errors.New("-python \"\"")
		return p, nil
	}
	dir, err := os.MkdirTemp("", "cropbench-chunks-")
	if err != nil {
		return nil, err
	}
	p.dir = dir
	for i, c := range chunks {
		f := filepath.Join(dir, fmt.Sprintf("c%04d.jpg", i))
		if err := os.WriteFile(f, c, 0o644); err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
	}
	return p, nil
}

func (p *pilRate) close() {
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// measure runs one measurement of about d; a failure is kept in p.err and
// ends further measurements.
func (p *pilRate) measure(d time.Duration) {
	if p.err != nil {
		return
	}
	args := append([]string{pilScript, fmt.Sprintf("%.1f", d.Seconds())}, p.files...)
	out, err := exec.Command(p.python, args...).CombinedOutput()
	if err != nil {
		p.err = fmt.Errorf("%s %s: %v: %s", p.python, pilScript, err, bytes.TrimSpace(out))
		return
	}
	f := strings.Fields(string(out))
	val := func(k string) string {
		for i := 0; i+1 < len(f); i++ {
			if f[i] == k {
				return f[i+1]
			}
		}
		return ""
	}
	w, err1 := strconv.ParseFloat(val("mvox_wall"), 64)
	c, err2 := strconv.ParseFloat(val("mvox_cpu"), 64)
	if err1 != nil || err2 != nil {
		p.err = fmt.Errorf("%s: unexpected output %q", pilScript, out)
		return
	}
	p.version = "PIL " + val("pil") + ", libjpeg-turbo " + val("libjpeg-turbo")
	p.wall = append(p.wall, w*1e6)
	p.cpu = append(p.cpu, c*1e6)
}

// median returns the median wall and CPU rates (the mean of the middle two
// for an even count).
func (p *pilRate) median() (wall, cpu float64) {
	med := func(x []float64) float64 {
		s := append([]float64(nil), x...)
		sort.Float64s(s)
		n := len(s)
		if n%2 == 1 {
			return s[n/2]
		}
		return (s[n/2-1] + s[n/2]) / 2
	}
	return med(p.wall), med(p.cpu)
}

// copyWorkers is the crop without pipeline.Crop: the same precomputed window
// copied into a zarr array (zstd, 128³ chunks) by volume.Copy with the given
// number of workers, to show what more requests in flight would give.
func copyWorkers(ctx context.Context, op *store.Opener, url string, origin, size []int64, out string, workers int) error {
	st, err := op.Open(ctx, url)
	if err != nil {
		return err
	}
	vols, err := precomputed.Format{}.Open(ctx, st, "")
	if err != nil {
		return err
	}
	win, err := volume.Window(vols[0], origin, size)
	if err != nil {
		return err
	}
	in := win.Info()
	in.Chunks = []int64{128, 128, 128}
	dst := store.New(store.NewFile(filepath.Dir(out)))
	w, err := zarr.CreateArray(ctx, dst, filepath.Base(out)+"/s0", in, zarr.WriteOptions{Chunks: in.Chunks})
	if err != nil {
		return err
	}
	if err := volume.Copy(ctx, w, win, volume.CopyOptions{Workers: workers}); err != nil {
		return err
	}
	return w.Close(ctx)
}
