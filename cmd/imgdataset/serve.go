package main

import (
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgdataset/imgdataset/serve"
)

// serveOverhead is the resident memory serve needs beyond --memory: the
// runtime and its collector's headroom, the program's code, the open volumes'
// metadata and connection buffers (docs/benchmarks.md has the measurement).
// Half of it is given to the Go heap as headroom over the reservations.
const serveOverhead = 64 << 20

func serveCmd() *cobra.Command {
	var addr, cors string
	var maxBytes, memory int64
	var maxQueue int
	var writeTimeout time.Duration
	c := &cobra.Command{
		Use:   "serve DIR",
		Short: "Serve blocks of every cataloged volume of an output directory over HTTP",
		Long: `serve opens every volume listed in DIR/catalog.json (an output directory of
'run' or 'demo'; without catalog.json, every file and store under DIR) and
answers, read-only:

  /                                      an HTML index
  /volumes                               the volumes as JSON (id, shape, dtype, chunks, axes, voxel sizes)
  /volumes/ID/block?origin=Z,Y,X&size=Z,Y,X[&format=npy]
                                         the voxels, C order, little-endian (raw, or a .npy file)
  /zarr/ID/.zgroup, .zattrs, .zmetadata  each volume as an OME-NGFF 0.4 multiscale group (Zarr v2)
  /zarr/ID/K/.zarray, .zattrs, I.J.K     its level K (0 = the volume; 1, 2, ... the coarser levels
                                         of its pyramid), an uncompressed Zarr v2 array

so zarr-python (zarr.open_group(fsspec.get_mapper(URL), mode="r")), napari or
neuroglancer (zarr2://URL, with --cors) reads any volume whatever its source
format, with axis names, voxel sizes in nanometres and every level.
It listens on loopback unless --addr says otherwise.`,
		Example: `  imgdataset serve imgdataset-demo
  imgdataset serve data --addr 127.0.0.1:9000 --max-bytes 67108864
  curl -o b.npy 'http://127.0.0.1:8642/volumes/ID/block?origin=0,0,0&size=64,256,256&format=npy'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, port, err := net.SplitHostPort(addr)
			if err == nil {
				_, err = net.LookupPort("tcp", port)
			}
			if err != nil {
				return usagef("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8642 (%v)", addr, err)
			}
			if maxBytes < 0 || memory < 0 || writeTimeout < 0 || maxQueue < 0 {
				return usagef("--max-bytes, --memory, --max-queue and --write-timeout must not be negative")
			}
			opt := serve.Options{MaxBytes: maxBytes, Memory: memory, MaxQueue: maxQueue, WriteTimeout: writeTimeout, CORSOrigin: cors}
			if _, set := os.LookupEnv("GOMEMLIMIT"); !set && memory > 0 {
				// --memory bounds what requests reserve; this keeps the
				// garbage of finished requests from doubling the heap
				// before the collector runs (GOGC's default headroom).
				debug.SetMemoryLimit(memory + serveOverhead/2)
			}
			if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
				opt.Hosts = []string{"127.0.0.1", "localhost", "::1"}
			}
			srv, err := serve.Open(cmd.Context(), args[0], opt)
			if err != nil {
				return err
			}
			defer srv.Close()
			// Opening samples statistics of every volume; return that
			// garbage now rather than serve on top of it.
			debug.FreeOSMemory()
			for _, s := range srv.Skipped() {
				fmt.Fprintf(cmd.ErrOrStderr(), "not served: %s: %s\n", s.Key, s.Reason)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %d volume(s) of %s on http://%s/ (Ctrl-C stops)\n", len(srv.Volumes()), args[0], ln.Addr())
			return srv.Serve(cmd.Context(), ln)
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8642", "listen address")
	c.Flags().Int64Var(&maxBytes, "max-bytes", serve.DefaultMaxBytes, "largest block or chunk one request may ask for, in bytes")
	c.Flags().Int64Var(&memory, "memory", serve.DefaultMemory, "bytes all requests in flight may hold together (buffers and chunks being decoded)")
	c.Flags().IntVar(&maxQueue, "max-queue", serve.DefaultMaxQueue, "requests that may wait for memory at once; more are answered 503 with Retry-After")
	c.Flags().DurationVar(&writeTimeout, "write-timeout", serve.DefaultWriteTimeout, "time a client may take to accept one slab of a response before it is disconnected")
	c.Flags().StringVar(&cors, "cors", "", "Access-Control-Allow-Origin to send (e.g. https://neuroglancer-demo.appspot.com); none by default")
	return c
}
