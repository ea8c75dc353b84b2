// Package serve makes every cataloged volume of an imgdataset output directory
// block-accessible over HTTP: a JSON list of the volumes, voxel blocks as raw
// little-endian bytes or .npy, and a read-only virtual OME-NGFF 0.4
// multiscale group per volume (Zarr v2, uncompressed chunks made on the fly
// from volume.ReadRegion), so zarr-python, napari, neuroglancer or plain curl
// can read any volume whatever its source format.
//
// Routes (GET and HEAD):
//
//	/                                  HTML index
//	/volumes                           JSON list of VolumeInfo
//	/volumes/{id}                      JSON VolumeInfo
//	/volumes/{id}/block?origin=&size=  voxels, C order, little-endian (&format=npy for .npy)
//	/zarr/{id}/.zgroup, .zattrs        the NGFF group: multiscales with axes, units, scales
//	/zarr/{id}/.zmetadata              the group's metadata consolidated (zarr.open_consolidated)
//	/zarr/{id}/{k}/.zarray, .zattrs, i.j.k  level k (0 = the volume itself) as a Zarr v2 array
//
// The levels of a group are those of the multiscale volume (OME-Zarr or N5
// pyramid, precomputed scales, TIFF SubIFDs) whose finest level is {id};
// any other volume is a group of one level. Until the group replaced it,
// /zarr/{id}/ was the bare array now at /zarr/{id}/0/; its old keys answer
// 404 with a message naming the new place (a .zarray at the group's root
// would make neuroglancer and zarr.open see one array without scales).
package serve

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/format/all"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 256 << 20
	DefaultMemory   = 1 << 30
	// DefaultWriteTimeout is the default of Options.WriteTimeout.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxQueue is the default of Options.MaxQueue.
	DefaultMaxQueue = 1024
)

// minMemory is the smallest Options.Memory: a few default zarr chunks of the
// widest dtype.
const minMemory = 4 << 20

// Options configure a Server.
type Options struct {
	// MaxBytes caps the voxel bytes of one block request and of one zarr
	// chunk (default DefaultMaxBytes).
	MaxBytes int64
	// Memory caps the bytes all requests in flight hold together: their
	// output buffers and an estimate of the chunks their reads decode
	// (default DefaultMemory); requests beyond it wait. One request reserves
	// at most Memory/8 at a time (blocks are streamed in slabs of at most
	// Memory/16, read in tiles when their chunks would not fit), and while
	// a slab is being written only its buffer, so that clients that stop
	// reading cannot take the budget from the others.
	Memory int64
	// MaxQueue is the most requests that may wait for memory at once
	// (default DefaultMaxQueue); a request beyond them is answered 503
	// Service Unavailable with Retry-After instead of waiting, so that a
	// flood of requests holds no more than that many connections idle.
	// A block already being streamed waits for its next slab regardless.
	MaxQueue int
	// WriteTimeout bounds the time the client may take to accept one slab or
	// chunk (default DefaultWriteTimeout): a client that stops reading is
	// disconnected and the memory it held released.
	WriteTimeout time.Duration
	// ErrorLog receives the details of internal errors, which responses
	// leave out (they hold local paths); nil = log.Default().
	ErrorLog *log.Logger
	// Formats reads the volumes; nil = every format the tool knows.
	Formats *format.Registry
	// CORSOrigin, when set, is sent as Access-Control-Allow-Origin so a web
	// viewer on that origin (e.g. neuroglancer) may read the data; "" sends none.
	CORSOrigin string
	// Hosts, when not empty, are the only Host header names accepted (without
	// port): a loopback server should answer only to loopback names, so a web
	// page cannot reach it by DNS rebinding.
	Hosts []string
}

// Axis is one axis of a served volume with its physical voxel size.
type Axis struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// VoxelSize is the physical step in Unit; nil when unknown.
	VoxelSize *float64 `json:"voxel_size,omitempty"`
	// Offset is the physical position of index 0 in Unit.
	Offset float64 `json:"offset"`
	// Unit is "nanometer" for every spatial axis whose size is known in a length unit.
	Unit string `json:"unit,omitempty"`
	// Source says where VoxelSize came from ("file", "web page", ...).
	Source string `json:"source,omitempty"`
}

// VolumeInfo describes a served volume.
type VolumeInfo struct {
	ID         string  `json:"id"`
	Key        string  `json:"key"` // catalog.VolumeKey of its row
	Dataset    string  `json:"dataset"`
	Path       string  `json:"path"` // local path, relative to the directory
	Array      string  `json:"array"`
	Format     string  `json:"format"`
	Shape      []int64 `json:"shape"`
	DType      string  `json:"dtype"`
	Chunks     []int64 `json:"chunks"`      // storage chunks; null when unchunked
	ZarrChunks []int64 `json:"zarr_chunks"` // chunks of the virtual zarr view
	Axes       []Axis  `json:"axes"`
	Bytes      int64   `json:"bytes"`
	BlockURL   string  `json:"block_url"`
	// ZarrURL is the NGFF multiscale group (Zarr v2) of this volume: every
	// level of the pyramid it is the finest level of, else itself alone.
	ZarrURL string `json:"zarr_url"`
	// ZarrArrayURL is this volume as a Zarr v2 array: level 0 of its group.
	ZarrArrayURL string `json:"zarr_array_url"`
	// ZarrLevels are the ids of the volumes that are the levels "0", "1", …
	// of the group, finest first.
	ZarrLevels []string `json:"zarr_levels"`
	// Pyramid, for a coarser level of a served pyramid, is the id of its
	// finest level, whose group holds every level.
	Pyramid string `json:"pyramid,omitempty"`
	// ZarrError says why a volume has no zarr view (a dtype zarr v2 cannot express).
	ZarrError string `json:"zarr_error,omitempty"`
}

// entry is a served volume.
type entry struct {
	VolumeInfo
	rec   catalog.Record
	vol   volume.Volume
	in    volume.Info
	etag  string
	unit  string  // unitStamp of its file or store when vol was opened
	zdt   string  // zarr v2 dtype, "" when none
	zgrid []int64 // number of zarr chunks per axis
}

// Server answers the routes of the package doc. It is an http.Handler.
type Server struct {
	dir      string
	opt      Options
	catStamp string       // state of the catalog (or directory) at start
	st       *store.Store // reopens units that changed on disk
	mu       sync.RWMutex // guards byID and list, whose entries current replaces
	byID     map[string]*entry
	list     []*entry
	skipped  []Skipped
	groups   map[string][]string // id → ids of the levels of its zarr group; fixed at Open
	mem      *semaphore.Weighted
	writing  atomic.Int64 // responses blocked in a write, holding their slab
	waiting  atomic.Int64 // requests waiting for their first reservation
	l        *loaded
}

// Open finds and opens every cataloged volume of dir (an output directory of
// `imgdataset run` or `demo`; without catalog.json, whatever `imgdataset
// catalog` finds under it). Only metadata is read.
func Open(ctx context.Context, dir string, opt Options) (*Server, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	opt.MaxBytes = max(opt.MaxBytes, 16) // one element of the widest dtype always fits
	if opt.Memory <= 0 {
		opt.Memory = DefaultMemory
	}
	opt.Memory = max(opt.Memory, minMemory)
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.MaxQueue <= 0 {
		opt.MaxQueue = DefaultMaxQueue
	}
	if opt.ErrorLog == nil {
		opt.ErrorLog = log.Default()
	}
	if opt.Formats == nil {
		opt.Formats = all.Registry()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", dir, err)
	}
	l, err := load(ctx, abs, opt.Formats)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: abs, opt: opt, catStamp: l.stamp, st: store.New(store.NewFile(abs)), byID: map[string]*entry{}, skipped: l.skipped, mem: semaphore.NewWeighted(opt.Memory), l: l}
	for i := range s.skipped {
		s.skipped[i].Reason = s.clean(s.skipped[i].Reason)
	}
	ids := assignIDs(l.recs)
	for i, rec := range l.recs {
		e, reason := s.newEntry(ids[i], rec, l.vols[i], unitStamp(abs, rec))
		if e == nil {
			s.skipped = append(s.skipped, Skipped{Key: catalog.VolumeKey(rec), Reason: reason})
			continue
		}
		s.byID[e.ID] = e
		s.list = append(s.list, e)
	}
	s.groups = groupLevels(s.list)
	for _, e := range s.list {
		e.ZarrLevels = s.groups[e.ID]
		if ids := s.groups[e.ID]; len(ids) > 1 {
			for _, id := range ids[1:] {
				s.byID[id].Pyramid = e.ID
			}
		}
	}
	return s, nil
}

// newEntry describes volume v of row rec, opened when its unit had the given
// stamp; a nil entry comes with the reason it cannot be served.
func (s *Server) newEntry(id string, rec catalog.Record, v volume.Volume, unit string) (*entry, string) {
	in := v.Info()
	if in.DType.Size() == 0 || len(in.Axes) != len(in.Shape) {
		return nil, fmt.Sprintf("dtype %q has no fixed-size byte layout", in.DType)
	}
	if !sane(in) {
		// Chunk arithmetic must not overflow on a lying header.
		return nil, fmt.Sprintf("shape %v is too large to address", in.Shape)
	}
	e := &entry{rec: rec, vol: v, in: in, unit: unit, etag: etagFor(s.catStamp, unit, rec)}
	e.VolumeInfo = VolumeInfo{
		ID: id, Key: catalog.VolumeKey(rec), Dataset: rec.Dataset, Path: rec.LocalPath, Array: rec.Array, Format: rec.Format,
		Shape: in.Shape, DType: string(in.DType), Chunks: in.Chunks, Axes: axesOf(in, rec), Bytes: in.NumBytes(),
		BlockURL: "/volumes/" + id + "/block", ZarrURL: "/zarr/" + id, ZarrArrayURL: "/zarr/" + id + "/0",
	}
	if e.Shape == nil {
		e.Shape = []int64{}
	}
	if zdt, ok := typeStr(in.DType); ok {
		e.zdt = zdt
		e.ZarrChunks = zarrChunks(in, s.chunkLimit())
		e.zgrid = chunkGrid(in.Shape, e.ZarrChunks)
	} else {
		e.ZarrError = fmt.Sprintf("dtype %s has no zarr v2 equivalent", in.DType)
	}
	return e, ""
}

// sane reports whether a volume's byte size and every chunk boundary fit in an int64.
func sane(in volume.Info) bool {
	for _, n := range in.Shape {
		if n < 0 || n > 1<<62 {
			return false
		}
	}
	_, ok := prodBounded(in.Shape, (1<<63-1)/int64(in.DType.Size()))
	return ok
}

// Volumes lists the served volumes, in catalog order.
func (s *Server) Volumes() []VolumeInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]VolumeInfo, len(s.list))
	for i, e := range s.list {
		out[i] = e.VolumeInfo
	}
	return out
}

// Skipped lists the catalog rows that are not served, and why.
func (s *Server) Skipped() []Skipped { return s.skipped }

// Close releases the open files.
func (s *Server) Close() error {
	s.l.close()
	return s.st.Close()
}

// Serve answers HTTP on ln until ctx is cancelled, then shuts down gracefully
// (requests in flight get a few seconds to finish).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are written slab by slab, each under its own deadline
		// (Options.WriteTimeout); idle keep-alive connections go after a while.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    s.opt.ErrorLog,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		http.Error(w, "host "+r.Host+" is not served here", http.StatusMisdirectedRequest)
		return
	}
	if s.opt.CORSOrigin != "" {
		w.Header().Set("Access-Control-Allow-Origin", s.opt.CORSOrigin)
		w.Header().Set("Access-Control-Expose-Headers", "ETag, Content-Length, X-Shape, X-DType")
	}
	if s.opt.CORSOrigin != "" && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		// A browser's preflight, sent before a read with headers beyond
		// the simple ones (a viewer's Range or cache headers). Headers
		// grant nothing on a read-only server, so any asked for are allowed.
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
		if h := r.Header.Get("Access-Control-Request-Headers"); h != "" {
			w.Header().Set("Access-Control-Allow-Headers", h)
		}
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only server: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	if err := s.route(w, r); err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) error {
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	switch {
	case len(segs) == 0:
		return s.index(w, r)
	case segs[0] == "volumes" && len(segs) == 1:
		return s.writeJSON(w, r, s.Volumes(), "")
	case segs[0] == "volumes" && (len(segs) == 2 || len(segs) == 3 && segs[2] == "block"):
		e, err := s.lookup(segs[1])
		if err != nil {
			return err
		}
		if e, err = s.current(r.Context(), e); err != nil {
			return err
		}
		if len(segs) == 2 {
			return s.writeJSON(w, r, e.VolumeInfo, e.etag)
		}
		return s.block(w, r, e)
	case segs[0] == "zarr" && len(segs) == 3:
		return s.zarrGroup(w, r, segs[1], segs[2])
	case segs[0] == "zarr" && len(segs) == 4:
		e, err := s.lookup(segs[1])
		if err != nil {
			return err
		}
		ids := s.groups[e.ID]
		k, ok := levelIndex(segs[2], len(ids))
		if !ok {
			return notFound("group /zarr/%s/ has no level %q (its levels are 0..%d)", e.ID, segs[2], len(ids)-1)
		}
		if e, err = s.lookup(ids[k]); err != nil {
			return err
		}
		if e, err = s.current(r.Context(), e); err != nil {
			return err
		}
		return s.zarr(w, r, e, segs[3])
	}
	return notFound("no such resource %s (see / for the volumes)", r.URL.Path)
}

func (s *Server) lookup(id string) (*entry, error) {
	if !validID(id) {
		return nil, badRequest("%q is not a volume id (ids use only letters, digits, '.', '_' and '-')", id)
	}
	s.mu.RLock()
	e, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return nil, notFound("no volume %q (GET /volumes lists them)", id)
	}
	return e, nil
}

func (s *Server) hostAllowed(host string) bool {
	if len(s.opt.Hosts) == 0 {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	for _, a := range s.opt.Hosts {
		if strings.EqualFold(h, a) {
			return true
		}
	}
	return false
}

// fail answers an error: the client's own mistakes with their 4xx and
// message, a cancelled request with nothing (the client is gone), anything
// else with 500 saying which request failed. The detail of a 500 goes to the
// log only: errors of the readers name local files by absolute path, which a
// client has no business seeing.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	w.Header().Del("ETag")
	switch {
	case errors.As(err, &he):
		if he.retryAfter != "" {
			w.Header().Set("Retry-After", he.retryAfter)
		}
		http.Error(w, he.msg, he.code)
	case r.Context().Err() != nil:
		// Nobody is listening; a status line would go nowhere.
	case errors.Is(err, volume.ErrOutOfBounds):
		http.Error(w, s.clean(err.Error()), http.StatusBadRequest)
	default:
		s.logf("serve: %s %s: %v", r.Method, r.URL.Path, err)
		http.Error(w, "internal error answering "+r.URL.Path+" (the server log has the detail)", http.StatusInternalServerError)
	}
}

// logf logs an internal error in full.
func (s *Server) logf(format string, args ...any) { s.opt.ErrorLog.Printf(format, args...) }

// clean makes a message fit for a client: the served directory becomes ".".
func (s *Server) clean(msg string) string {
	return strings.ReplaceAll(msg, s.dir, ".")
}

// notModified sets the ETag and reports whether the client's copy is current.
func notModified(w http.ResponseWriter, r *http.Request, etag string) bool {
	if etag == "" {
		return false
	}
	q := `"` + etag + `"`
	w.Header().Set("ETag", q)
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == q || t == "*" {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// writeBody sends b with its length; HEAD gets the headers only. A write
// error means the client hung up: there is nobody left to tell.
func writeBody(w http.ResponseWriter, r *http.Request, ctype string, b []byte) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}
