package tiff

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// OME-TIFF limits: sibling files of one set opened at once, and in all.
const (
	omeConcurrency = 8
	omeMaxFiles    = 4096
)

// The parts of the OME-XML schema (2008-02 to 2016-06 alike) that decide
// how planes map to IFDs. encoding/xml matches local names, so every schema
// namespace and prefix parses.
type omeXML struct {
	Images     []omeImage `xml:"Image"`
	BinaryOnly *struct {
		MetadataFile string `xml:"MetadataFile,attr"`
	} `xml:"BinaryOnly"`
}

type omeImage struct {
	ID     string    `xml:"ID,attr"`
	Name   string    `xml:"Name,attr"`
	Pixels omePixels `xml:"Pixels"`
}

type omePixels struct {
	DimensionOrder    string        `xml:"DimensionOrder,attr"`
	Type              string        `xml:"Type,attr"`
	SizeX             int64         `xml:"SizeX,attr"`
	SizeY             int64         `xml:"SizeY,attr"`
	SizeZ             int64         `xml:"SizeZ,attr"`
	SizeC             int64         `xml:"SizeC,attr"`
	SizeT             int64         `xml:"SizeT,attr"`
	PhysicalSizeX     *float64      `xml:"PhysicalSizeX,attr"`
	PhysicalSizeXUnit string        `xml:"PhysicalSizeXUnit,attr"`
	PhysicalSizeY     *float64      `xml:"PhysicalSizeY,attr"`
	PhysicalSizeYUnit string        `xml:"PhysicalSizeYUnit,attr"`
	PhysicalSizeZ     *float64      `xml:"PhysicalSizeZ,attr"`
	PhysicalSizeZUnit string        `xml:"PhysicalSizeZUnit,attr"`
	TimeIncrement     *float64      `xml:"TimeIncrement,attr"`
	TimeIncrementUnit string        `xml:"TimeIncrementUnit,attr"`
	TiffData          []omeTiffData `xml:"TiffData"`
}

type omeTiffData struct {
	IFD        *int64 `xml:"IFD,attr"`
	PlaneCount *int64 `xml:"PlaneCount,attr"`
	FirstZ     int64  `xml:"FirstZ,attr"`
	FirstC     int64  `xml:"FirstC,attr"`
	FirstT     int64  `xml:"FirstT,attr"`
	UUID       *struct {
		FileName string `xml:"FileName,attr"`
	} `xml:"UUID"`
}

// isOME reports whether an ImageDescription holds OME-XML.
func isOME(desc string) bool {
	d := strings.TrimSpace(desc)
	return strings.HasSuffix(d, "OME>") && (strings.Contains(d, "<OME") || strings.Contains(d, ":OME"))
}

func parseOME(desc string) (*omeXML, error) {
	var o omeXML
	if err := xml.Unmarshal([]byte(desc), &o); err != nil {
		return nil, fmt.Errorf("OME-XML: %w", err)
	}
	return &o, nil
}

// firstDescription is the first ImageDescription of a walked file.
func (f *file) firstDescription() string {
	if m := f.metas[0]; m != nil && len(m.descriptions) > 0 {
		return m.descriptions[0]
	}
	return ""
}

// siblingKey resolves an OME FileName next to key; names with a path are
// refused, so a hostile file cannot point outside its directory.
func siblingKey(key, name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("OME file name %q is not a plain file name", name)
	}
	k := path.Join(path.Dir(key), name)
	if _, err := store.CleanKey(k); err != nil {
		return "", err
	}
	return k, nil
}

// omeSet is the files of one OME-TIFF dataset, loaded once each.
type omeSet struct {
	home  *file // the file whose OME-XML describes the set
	files map[string]*file
}

// omeSeries interprets f's OME-XML, one volume per Image. When the metadata
// cannot be honoured it returns an error wrapping errCorrupt with the reason,
// and the caller falls back to the plain page series; other errors are store
// failures.
func (r *reader) omeSeries(ctx context.Context, f *file) ([]*tiffVolume, error) {
	o, err := parseOME(f.firstDescription())
	if err != nil {
		return nil, notOME("%v", err)
	}
	set := &omeSet{home: f, files: map[string]*file{r.key: f}}
	var metadataFile string
	if len(o.Images) == 0 && o.BinaryOnly != nil {
		// A BinaryOnly file holds pixels only; the set's metadata lives in MetadataFile.
		mk, err := siblingKey(r.key, o.BinaryOnly.MetadataFile)
		if err != nil {
			return nil, notOME("BinaryOnly: %v", err)
		}
		mf, err := loadFile(ctx, r.st, mk, r.maxChunk, maxIFDs, r.jpeg)
		if err != nil {
			if errors.Is(err, store.ErrNotExist) || !fatal(err) {
				return nil, notOME("OME metadata file: %v", err)
			}
			return nil, err
		}
		if !isOME(mf.firstDescription()) {
			return nil, notOME("OME metadata file %q holds no OME-XML", mk)
		}
		if o, err = parseOME(mf.firstDescription()); err != nil {
			return nil, notOME("OME metadata file %q: %v", mk, err)
		}
		if len(o.Images) == 0 {
			return nil, notOME("OME metadata file %q describes no image", mk)
		}
		set.home = mf
		set.files[mk] = mf
		metadataFile = mk
	}
	if len(o.Images) == 0 {
		return nil, notOME("OME-XML describes no image")
	}
	var out []*tiffVolume
	var skipped []string
	for i := range o.Images {
		v, err := r.omeImage(ctx, set, &o.Images[i])
		if err != nil {
			if fatal(err) {
				return nil, err
			}
			skipped = append(skipped, fmt.Sprintf("OME image %d: %v", i, err))
			continue
		}
		if metadataFile != "" {
			v.info.Metadata["ome_metadata_file"] = metadataFile
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, notOME("%s", strings.Join(skipped, "; "))
	}
	if len(skipped) > 0 {
		out[0].info.Metadata["ome_skipped"] = skipped
	}
	return out, nil
}

// planeRef names the file and IFD index holding one plane.
type planeRef struct {
	key string
	ifd int64
	set bool
}

// notOME wraps reasons an OME image is skipped: they are not store failures.
func notOME(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), errCorrupt)
}

// omeImage builds the volume of one OME Image: planes in the Pixels'
// DimensionOrder, axes t, c, z (those larger than 1) then y, x.
func (r *reader) omeImage(ctx context.Context, set *omeSet, im *omeImage) (*tiffVolume, error) {
	px := &im.Pixels
	order := px.DimensionOrder
	if order == "" {
		order = "XYZCT"
	}
	if len(order) != 5 || order[:2] != "XY" || !strings.ContainsRune(order[2:], 'Z') ||
		!strings.ContainsRune(order[2:], 'C') || !strings.ContainsRune(order[2:], 'T') {
		return nil, notOME("DimensionOrder %q", px.DimensionOrder)
	}
	size := map[byte]int64{'Z': max(px.SizeZ, 1), 'C': max(px.SizeC, 1), 'T': max(px.SizeT, 1)}
	for d, n := range size {
		if n > maxIFDs {
			return nil, notOME("Size%c %d", d, n)
		}
	}
	// Interleaved samples carry channels inside each plane (RGB images).
	if spp := set.home.pages[0].spp; spp > 1 && size['C']%spp == 0 {
		size['C'] /= spp
	}
	nPlanes, ok := mul(size['Z'], size['C'], size['T'])
	if !ok || nPlanes > maxIFDs {
		return nil, notOME("%d planes", nPlanes)
	}
	dims := []byte(order[2:]) // fastest first
	refs := make([]planeRef, nPlanes)
	homeKey := set.home.r.key
	if len(px.TiffData) == 0 {
		for i := range refs {
			refs[i] = planeRef{homeKey, int64(i), true}
		}
	}
	for _, td := range px.TiffData {
		key := homeKey
		if td.UUID != nil && td.UUID.FileName != "" {
			var err error
			if key, err = siblingKey(homeKey, td.UUID.FileName); err != nil {
				return nil, notOME("%v", err)
			}
		}
		first := map[byte]int64{'Z': td.FirstZ, 'C': td.FirstC, 'T': td.FirstT}
		for d, v := range first {
			if v < 0 || v >= size[d] {
				return nil, notOME("TiffData First%c=%d outside Size%c=%d", d, v, d, size[d])
			}
		}
		idx := first[dims[0]] + size[dims[0]]*(first[dims[1]]+size[dims[1]]*first[dims[2]])
		ifd := int64(0)
		if td.IFD != nil {
			ifd = *td.IFD
		}
		count := nPlanes - idx // no IFD and no PlaneCount: every plane from here on
		switch {
		case td.PlaneCount != nil:
			count = min(*td.PlaneCount, count)
		case td.IFD != nil:
			count = 1
		}
		if ifd < 0 || ifd >= maxIFDs || count < 0 {
			return nil, notOME("TiffData IFD=%d PlaneCount=%d", ifd, count)
		}
		for k := int64(0); k < count; k++ {
			if !refs[idx+k].set {
				refs[idx+k] = planeRef{key, ifd + k, true}
			}
		}
	}
	need := map[string]int64{} // file → IFDs to walk
	for i, ref := range refs {
		if !ref.set {
			return nil, notOME("plane %d has no TiffData", i)
		}
		need[ref.key] = max(need[ref.key], ref.ifd+1)
	}
	if err := r.loadSiblings(ctx, set, need); err != nil {
		return nil, err
	}
	pages := make([]*page, nPlanes)
	for i, ref := range refs {
		f := set.files[ref.key]
		if ref.ifd >= int64(len(f.pages)) {
			return nil, notOME("plane %d is IFD %d of %q, which has %d", i, ref.ifd, ref.key, len(f.pages))
		}
		pages[i] = f.pages[ref.ifd]
	}
	p0 := pages[0]
	if p0.dtype == "" {
		return nil, notOME("%s", p0.unsupported)
	}
	if (px.SizeX != 0 && px.SizeX != p0.width) || (px.SizeY != 0 && px.SizeY != p0.height) {
		return nil, notOME("Pixels %dx%d, IFD %dx%d", px.SizeX, px.SizeY, p0.width, p0.height)
	}
	for i, p := range pages {
		if !stackable(&p0.layout, &p.layout) {
			return nil, notOME("plane %d differs in layout from plane 0", i)
		}
	}

	var lead []volume.Axis
	for i := 2; i >= 0; i-- {
		d := dims[i]
		if size[d] == 1 {
			continue
		}
		a := volume.Axis{Name: strings.ToLower(string(d)), Size: size[d], Scale: 1}
		switch d {
		case 'Z':
			setScale(&a, px.PhysicalSizeZ, px.PhysicalSizeZUnit, "µm")
		case 'T':
			setScale(&a, px.TimeIncrement, px.TimeIncrementUnit, "s")
		}
		lead = append(lead, a)
	}
	v := r.newVolume(pages, set.home.metas[0], lead)
	k := len(lead)
	if p0.spp > 1 && p0.planar == 2 {
		k++
	}
	setScale(&v.info.Axes[k], px.PhysicalSizeY, px.PhysicalSizeYUnit, "µm")
	setScale(&v.info.Axes[k+1], px.PhysicalSizeX, px.PhysicalSizeXUnit, "µm")
	md := v.info.Metadata
	if px.PhysicalSizeX != nil && *px.PhysicalSizeX > 0 || px.PhysicalSizeY != nil && *px.PhysicalSizeY > 0 {
		md["voxel_size_source"] = "OME-XML Pixels PhysicalSizeX/Y"
		delete(md, "voxel_size_note")
	}
	md["ome"] = true
	md["ome_dimension_order"] = order
	if im.ID != "" {
		md["ome_image_id"] = im.ID
	}
	if im.Name != "" {
		md["ome_image_name"] = im.Name
	}
	if len(need) > 1 {
		files := make([]string, 0, len(need))
		for k := range need {
			files = append(files, k)
		}
		sort.Strings(files)
		md["ome_files"] = files
	}
	return v, nil
}

// setScale calibrates an axis from an OME physical size, when given.
func setScale(a *volume.Axis, v *float64, unit, def string) {
	if v == nil || *v <= 0 {
		return
	}
	if unit == "" {
		unit = def
	}
	a.Scale, a.Unit, a.ScaleKnown = *v, unit, true
}

// loadSiblings walks the files of the set that are not loaded yet, each up
// to the IFDs it must provide, several at a time.
func (r *reader) loadSiblings(ctx context.Context, set *omeSet, need map[string]int64) error {
	var todo []string
	for k := range need {
		if _, ok := set.files[k]; !ok {
			todo = append(todo, k)
		}
	}
	if len(set.files)+len(todo) > omeMaxFiles {
		return notOME("OME set of %d files", len(set.files)+len(todo))
	}
	sort.Strings(todo)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(omeConcurrency)
	for _, k := range todo {
		g.Go(func() error {
			f, err := loadFile(gctx, r.st, k, r.maxChunk, int(need[k]), r.jpeg)
			if err != nil {
				if errors.Is(err, store.ErrNotExist) || !fatal(err) {
					return notOME("OME set file %q: %v", k, err)
				}
				return err
			}
			mu.Lock()
			set.files[k] = f
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}
