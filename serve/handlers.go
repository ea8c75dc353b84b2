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
		res, err := s.reserve(r.Context(), p.reserve, !started)
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

// provenance says where a served array comes from, for its attributes.
func (e *entry) provenance() map[string]any {
	return map[string]any{
		"id": e.ID, "key": e.Key, "dataset": e.Dataset, "path": e.Path, "array": e.Array, "format": e.Format,
		"source_url": e.rec.SourceURL, "voxel_size_source": e.rec.VoxelSource,
	}
}

// zattrs are the attributes of a level's array: its axis names (xarray's
// _ARRAY_DIMENSIONS, which neuroglancer also reads when it is given the
// array alone) and where the data came from. The physical frame is the
// group's.
func (e *entry) zattrs() map[string]any {
	names := make([]string, len(e.Axes))
	for i, a := range e.Axes {
		names[i] = strings.ToLower(a.Name)
	}
	p := e.provenance()
	p["note"] = "read-only virtual view made by imgdataset serve: uncompressed chunks read on request from the original"
	return map[string]any{"_ARRAY_DIMENSIONS": names, "imgdataset": p}
}

// groupAttrs are the attributes of the group whose levels are ls, finest
// first: NGFF 0.4 multiscales with the paths "0", "1", … and each level's
// scale (and translation, when any level is moved) in the finest level's
// unit, and where the data came from. Axes NGFF 0.4 cannot express get no
// multiscales; "imgdataset"."ngff" says why.
func groupAttrs(ls []*entry) map[string]any {
	base := ls[0]
	prov := base.provenance()
	ids := make([]string, len(ls))
	for i, e := range ls {
		ids[i] = e.ID
	}
	prov["levels"] = ids
	prov["note"] = "read-only virtual view made by imgdataset serve: the levels are uncompressed Zarr v2 arrays read on request from the originals"
	out := map[string]any{"imgdataset": prov}
	axes, err := ngffAxes(base)
	if err != nil {
		prov["ngff"] = "no multiscales: " + err.Error()
		return out
	}
	scales := make([][]float64, len(ls))
	trans := make([][]float64, len(ls))
	moved := false
	for k, e := range ls {
		scales[k], trans[k] = levelTransform(base, e, k)
		for _, v := range trans[k] {
			moved = moved || v != 0
		}
	}
	datasets := make([]map[string]any, len(ls))
	for k := range ls {
		ct := []map[string]any{{"type": "scale", "scale": scales[k]}}
		if moved {
			ct = append(ct, map[string]any{"type": "translation", "translation": trans[k]})
		}
		datasets[k] = map[string]any{"path": strconv.Itoa(k), "coordinateTransformations": ct}
	}
	out["multiscales"] = []map[string]any{{
		"version":  "0.4",
		"name":     base.ID,
		"axes":     axes,
		"datasets": datasets,
	}}
	return out
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
	res, err := s.reserve(r.Context(), p.reserve, true)
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

// zarrGroup answers /zarr/{id}/{key}: the NGFF group of volume id, whose
// levels are the arrays /zarr/{id}/0/, /zarr/{id}/1/, …
func (s *Server) zarrGroup(w http.ResponseWriter, r *http.Request, id, key string) error {
	ls, err := s.groupLevels(r, id)
	if err != nil {
		return err
	}
	tags := make([]string, len(ls))
	for i, e := range ls {
		tags[i] = e.etag
	}
	etag := shortHash(strings.Join(tags, ","))
	switch key {
	case ".zgroup":
		return s.writeJSON(w, r, map[string]int{"zarr_format": 2}, etag+"-zgroup")
	case ".zattrs":
		return s.writeJSON(w, r, groupAttrs(ls), etag+"-zattrs")
	case ".zmetadata":
		// Consolidated metadata: an HTTP store cannot list its keys, so
		// without it zarr.open_consolidated and Group.arrays() see no levels.
		md := map[string]any{".zgroup": map[string]int{"zarr_format": 2}, ".zattrs": groupAttrs(ls)}
		for k, e := range ls {
			md[strconv.Itoa(k)+"/.zarray"] = e.zarray()
			md[strconv.Itoa(k)+"/.zattrs"] = e.zattrs()
		}
		return s.writeJSON(w, r, map[string]any{"zarr_consolidated_format": 1, "metadata": md}, etag+"-zmetadata")
	}
	if key == ".zarray" || strings.Trim(key, "0123456789.") == "" {
		// The bare array /zarr/{id}/ was until the group replaced it.
		return notFound("/zarr/%s/ is an NGFF multiscale group (.zgroup, .zattrs); volume %s is its array /zarr/%s/0/ (and /zarr/%s/0/%s)", id, id, id, id, key)
	}
	return notFound("no key %q in group /zarr/%s/ (its levels are 0..%d)", key, id, len(ls)-1)
}

// groupLevels returns the current entries of the levels of volume id's
// group, finest first. A level that changed on disk so that it no longer
// fits the pyramid makes the group unavailable rather than wrong.
func (s *Server) groupLevels(r *http.Request, id string) ([]*entry, error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	ids := s.groups[e.ID]
	ls := make([]*entry, len(ids))
	for k, lid := range ids {
		le, err := s.lookup(lid)
		if err != nil {
			return nil, err
		}
		if ls[k], err = s.current(r.Context(), le); err != nil {
			return nil, err
		}
		if ls[k].zdt == "" {
			return nil, notFound("volume %s: %s", ls[k].ID, ls[k].ZarrError)
		}
		if k > 0 && !downsampled(ls[k-1], ls[k]) {
			return nil, &httpError{code: http.StatusServiceUnavailable, msg: fmt.Sprintf("volume %s: level %d (%s) changed on disk and no longer fits the pyramid", id, k, lid)}
		}
	}
	return ls, nil
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
Zarr v2: each volume is an OME-NGFF 0.4 multiscale group, <code>zarr.open_group(fsspec.get_mapper("http://HOST/zarr/ID"), mode="r")</code>,
its levels the arrays <code>/zarr/ID/0</code>, <code>/zarr/ID/1</code>, … (neuroglancer: <code>zarr2://http://HOST/zarr/ID/</code>, served with <code>--cors</code>).</p>
<table><tr><th>id</th><th>dataset</th><th>path</th><th>array</th><th>shape</th><th>dtype</th><th>voxel size</th><th></th></tr>
{{range .Volumes}}<tr><td><a href="/volumes/{{.ID}}">{{.ID}}</a></td><td>{{.Dataset}}</td><td>{{.Path}}</td><td>{{.Array}}</td><td>{{ints .Shape}}</td><td>{{.DType}}</td><td>{{axes .Axes}}</td>
<td><a href="{{.BlockURL}}?size={{example .Shape}}&amp;format=npy">block.npy</a>{{if not .ZarrError}} <a href="{{.ZarrURL}}/.zattrs">zarr</a>{{if gt (len .ZarrLevels) 1}} ({{len .ZarrLevels}} levels){{end}}{{end}}{{if .Pyramid}} level of <a href="/volumes/{{.Pyramid}}">{{.Pyramid}}</a>{{end}}</td></tr>
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
