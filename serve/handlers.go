package serve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/catalog"
	"github.com/imgdataset/imgdataset/format"
	"github.com/imgdataset/imgdataset/volume"
)

// axesOf describes the axes of a served volume. Spatial voxel sizes come from
// the catalog row when it has them (it may hold a value from an API or web page
// the file lacks, with its source), otherwise from the file's calibration.
func axesOf(in volume.Info, rec catalog.Record) []Axis {
	out := make([]Axis, len(in.Axes))
	for i, ax := range in.Axes {
		a := Axis{Name: ax.Name, Size: in.Shape[i]}
		var vox, off *float64
		switch strings.ToLower(ax.Name) {
		case "z":
			vox, off = rec.VoxelZ, rec.OffsetZ
		case "y":
			vox, off = rec.VoxelY, rec.OffsetY
		case "x":
			vox, off = rec.VoxelX, rec.OffsetX
		}
		switch {
		case vox != nil:
			v := *vox
			a.VoxelSize, a.Unit, a.Source = &v, "nanometer", rec.VoxelSource
			if off != nil {
				a.Offset = *off
			} else if o, ok := volume.ToNanometres(ax.Offset, ax.Unit); ok && ax.ScaleKnown {
				a.Offset = o
			}
		case ax.ScaleKnown:
			v, o := ax.Scale, ax.Offset
			a.Unit = ax.Unit
			if nm, ok := volume.ToNanometres(v, ax.Unit); ok {
				v, a.Unit = nm, "nanometer"
				o, _ = volume.ToNanometres(o, ax.Unit)
			}
			a.VoxelSize, a.Offset, a.Source = &v, o, catalog.FromFile
		}
		out[i] = a
	}
	return out
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, v any, etag string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", r.URL.Path, err)
	}
	if notModified(w, r, etag) {
		return nil
	}
	writeBody(w, r, "application/json", append(b, '\n'))
	return nil
}

// block answers /volumes/{id}/block: the box as raw C-order little-endian
// bytes (shape and dtype in X-Shape and X-DType) or as a .npy file.
func (s *Server) block(w http.ResponseWriter, r *http.Request, e *entry) error {
	req, err := parseBlockQuery(r.URL.Query(), e.in, s.opt.MaxBytes)
	if err != nil {
		return err
	}
	shape := req.box.Shape()
	var head []byte
	ctype := "application/octet-stream"
	if req.format == "npy" {
		descr, nshape, ok := npyLayout(e.in.DType, shape)
		if !ok {
			return badRequest("dtype %s has no .npy equivalent; ask for format=raw", e.in.DType)
		}
		head = npyHeader(descr, nshape)
		ctype = "application/x-npy"
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", e.ID+".npy"))
	}
	w.Header().Set("X-Shape", joinInts(shape))
	w.Header().Set("X-DType", string(e.in.DType))
	if notModified(w, r, e.etag+"-"+shortHash(req.format+":"+joinInts(req.box.Start)+":"+joinInts(shape))) {
		return nil
	}
	total := int64(len(head)) + req.bytes
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Length", strconv.FormatInt(total, 10))
		return nil
	}
	// Stream the box in slabs, each read into its own buffer under a
	// reservation of its decoding footprint and written under a deadline,
	// so that neither a large block nor a client that stops reading holds
	// more than a share of the memory budget.
	elem := int64(e.in.DType.Size())
	started := false
	err = forEachSlab(req.box, e.in.Chunks, s.slabElems(e), func(b volume.Box) error {
		n := b.NumElements() * elem
		p := s.planRead(e, b, n)
		res, err := s.reserve(r.Context(), p.reserve)
		if err != nil {
			return err
		}
		defer res.release()
		buf := make([]byte, n)
		if err := readBox(r.Context(), e, b, buf, p); err != nil {
			return readError(e, fmt.Sprintf("read %v", b), err)
		}
		res.keep(n)
		if !started {
			// Headers go out only once the first slab is read, so a
			// failure there still gets its own status.
			started = true
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Content-Length", strconv.FormatInt(total, 10))
			if len(head) > 0 {
				if err := s.writeTimed(w, head); err != nil {
					return err
				}
			}
		}
		return s.writeTimed(w, buf)
	})
	if err != nil && started {
		// The status is sent; the short body tells the client (Go closes
		// a connection whose body falls short of its Content-Length).
		if r.Context().Err() == nil {
			s.logf("serve: %s: block of volume %s cut short: %v", r.URL, e.ID, err)
		}
		return nil
	}
	return err
}

// readError is the answer to a failed read of what (a block, a chunk) of a
// volume. Stored data that is corrupt is the fault of the data behind the
// server, not of the server: 502 Bad Gateway, with a short message that
// names the volume but not the file (the error itself holds local paths).
// A file that a symlink leads out of the served tree is refused (403).
// Any other failure stays an internal error.
func readError(e *entry, what string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		// store.ErrOutsideRoot: a symlink leading out of the served tree.
		return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf("volume %s: %s: refused: the data lies outside the served directory", e.ID, what)}
	}
	if errors.Is(err, format.ErrCorrupt) {
		return &httpError{code: http.StatusBadGateway, msg: fmt.Sprintf("volume %s: %s: the stored data is corrupt", e.ID, what)}
	}
	return fmt.Errorf("volume %s: %s: %w", e.ID, what, err)
}

// zarray is a Zarr v2 array's metadata, in the field order zarr writes.
type zarray struct {
	Chunks             []int64   `json:"chunks"`
	Compressor         *struct{} `json:"compressor"`
	DimensionSeparator string    `json:"dimension_separator"`
	DType              string    `json:"dtype"`
	FillValue          any       `json:"fill_value"`
	Filters            *struct{} `json:"filters"`
	Order              string    `json:"order"`
	Shape              []int64   `json:"shape"`
	ZarrFormat         int       `json:"zarr_format"`
}

func (e *entry) zarray() zarray {
	z := zarray{Chunks: e.ZarrChunks, DimensionSeparator: ".", DType: e.zdt, FillValue: 0, Order: "C", Shape: e.Shape, ZarrFormat: 2}
	if z.Chunks == nil {
		z.Chunks = []int64{}
	}
	if e.in.DType == volume.Bool {
		z.FillValue = false
	}
	return z
}

// zattrs are the attributes of the virtual array: an NGFF 0.4-style
// multiscales with this array as its one level (path "") and its voxel size as
// the scale, and where the data came from.
func (e *entry) zattrs() map[string]any {
	type ngffAxis struct {
		Name string `json:"name"`
		Type string `json:"type,omitempty"`
		Unit string `json:"unit,omitempty"`
	}
	axes := make([]ngffAxis, len(e.Axes))
	scale := make([]float64, len(e.Axes))
	trans := make([]float64, len(e.Axes))
	moved := false
	for i, a := range e.Axes {
		n := ngffAxis{Name: strings.ToLower(a.Name)}
		switch n.Name {
		case "z", "y", "x":
			n.Type = "space"
			if a.Unit == "nanometer" {
				n.Unit = a.Unit
			}
		case "c":
			n.Type = "channel"
		case "t":
			n.Type = "time"
		}
		axes[i] = n
		scale[i] = 1
		if a.VoxelSize != nil && *a.VoxelSize > 0 {
			scale[i] = *a.VoxelSize
		}
		trans[i] = a.Offset
		moved = moved || a.Offset != 0
	}
	ct := []map[string]any{{"type": "scale", "scale": scale}}
	if moved {
		ct = append(ct, map[string]any{"type": "translation", "translation": trans})
	}
	return map[string]any{
		"multiscales": []map[string]any{{
			"version":  "0.4",
			"name":     e.ID,
			"axes":     axes,
			"datasets": []map[string]any{{"path": "", "coordinateTransformations": ct}},
		}},
		"imgdataset": map[string]any{
			"id": e.ID, "key": e.Key, "dataset": e.Dataset, "path": e.Path, "array": e.Array, "format": e.Format,
			"source_url": e.rec.SourceURL, "voxel_size_source": e.rec.VoxelSource,
			"note": "read-only virtual view made by imgdataset serve: uncompressed chunks read on request from the original",
		},
	}
}

// zarr answers /zarr/{id}/{key} for the virtual Zarr v2 array.
func (s *Server) zarr(w http.ResponseWriter, r *http.Request, e *entry, key string) error {
	if e.zdt == "" {
		return notFound("volume %s: %s", e.ID, e.ZarrError)
	}
	switch key {
	case ".zarray":
		return s.writeJSON(w, r, e.zarray(), e.etag+"-zarray")
	case ".zattrs":
		return s.writeJSON(w, r, e.zattrs(), e.etag+"-zattrs")
	}
	idx, err := parseChunkKey(key, e.zgrid)
	if err != nil {
		return err
	}
	elem := int64(e.in.DType.Size())
	n := len(e.Shape)
	chunkBox := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
	region := volume.Box{Start: make([]int64, n), Stop: make([]int64, n)}
	full := true
	for i := range n {
		chunkBox.Start[i] = idx[i] * e.ZarrChunks[i]
		chunkBox.Stop[i] = chunkBox.Start[i] + e.ZarrChunks[i]
		region.Start[i] = chunkBox.Start[i]
		region.Stop[i] = min(chunkBox.Stop[i], e.Shape[i])
		full = full && region.Stop[i] == chunkBox.Stop[i]
	}
	if notModified(w, r, e.etag+"-c"+key) {
		return nil
	}
	size := chunkBox.NumElements() * elem
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		return nil
	}
	need := size
	if !full {
		need += region.NumElements() * elem
	}
	p := s.planRead(e, region, need)
	res, err := s.reserve(r.Context(), p.reserve)
	if err != nil {
		return err
	}
	defer res.release()
	buf := make([]byte, size)
	if full {
		if err := readBox(r.Context(), e, region, buf, p); err != nil {
			return readError(e, "chunk "+key, err)
		}
	} else {
		// Zarr v2 edge chunks are stored at full size; the part past the
		// array's end is the fill value, 0.
		part := make([]byte, region.NumElements()*elem)
		if err := readBox(r.Context(), e, region, part, p); err != nil {
			return readError(e, "chunk "+key, err)
		}
		volume.CopyBox(buf, chunkBox, part, region, region, int(elem))
	}
	res.keep(size)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	if err := s.writeTimed(w, buf); err != nil && r.Context().Err() == nil {
		s.logf("serve: %s: chunk of volume %s not delivered: %v", r.URL, e.ID, err)
	}
	return nil
}

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"ints": joinInts,
	"axes": func(as []Axis) string {
		var parts []string
		for _, a := range as {
			if a.VoxelSize == nil {
				parts = append(parts, a.Name+" ?")
				continue
			}
			u := a.Unit
			if u == "nanometer" {
				u = "nm"
			}
			parts = append(parts, fmt.Sprintf("%s %g %s", a.Name, *a.VoxelSize, u))
		}
		return strings.Join(parts, ", ")
	},
	"example": example,
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>imgdataset serve: {{.Dir}}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}code{font-size:12px}</style>
</head><body>
<h1>imgdataset serve</h1>
<p>{{len .Volumes}} volumes from <code>{{.Dir}}</code>. JSON: <a href="/volumes">/volumes</a>.
Blocks: <code>/volumes/ID/block?origin=z,y,x&amp;size=z,y,x[&amp;format=npy]</code> (C order, little-endian, at most {{.MaxBytes}} bytes).
Zarr v2: <code>zarr.open(fsspec.get_mapper("http://HOST/zarr/ID"), mode="r")</code>.</p>
<table><tr><th>id</th><th>dataset</th><th>path</th><th>array</th><th>shape</th><th>dtype</th><th>voxel size</th><th></th></tr>
{{range .Volumes}}<tr><td><a href="/volumes/{{.ID}}">{{.ID}}</a></td><td>{{.Dataset}}</td><td>{{.Path}}</td><td>{{.Array}}</td><td>{{ints .Shape}}</td><td>{{.DType}}</td><td>{{axes .Axes}}</td>
<td><a href="{{.BlockURL}}?size={{example .Shape}}&amp;format=npy">block.npy</a>{{if not .ZarrError}} <a href="{{.ZarrURL}}/.zarray">.zarray</a>{{end}}</td></tr>
{{end}}</table>
{{if .Skipped}}<h2>Not served</h2><ul>{{range .Skipped}}<li><code>{{.Key}}</code>: {{.Reason}}</li>{{end}}</ul>{{end}}
</body></html>
`))

func (s *Server) index(w http.ResponseWriter, r *http.Request) error {
	var b bytes.Buffer
	// The directory's name, not its absolute path: where the server's files
	// live is none of a client's business.
	err := indexPage.Execute(&b, map[string]any{"Dir": filepath.Base(s.dir), "Volumes": s.Volumes(), "Skipped": s.skipped, "MaxBytes": s.opt.MaxBytes})
	if err != nil {
		return fmt.Errorf("index page: %w", err)
	}
	writeBody(w, r, "text/html; charset=utf-8", b.Bytes())
	return nil
}
