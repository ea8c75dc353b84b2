package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/imgdataset/imgdataset/manifest"
)

// DefaultIDRFileTree is the public HTTPS tree of IDR's original files.
const DefaultIDRFileTree = "https://ftp.ebi.ac.uk/pub/databases/IDR/"

// idrClientPrefix starts the import-time paths OMERO reports for IDR filesets.
const idrClientPrefix = "/uod/idr/filesets/"

// Bounds of an OMERO dataset walk.
const (
	omeroPageLimit = 500
	omeroMaxImages = 100000
	omeroParallel  = 8
)

// OMERO resolves an OMERO.web (IDR) image or dataset link to the original
// files of every image, mapped to IDR's public file tree. OMERO.web itself
// only serves JPEG renderings, so there is deliberately no pixel fallback.
type OMERO struct{}

// Kind implements Resolver.
func (o *OMERO) Kind() string { return manifest.KindOMERO }

var (
	imgDetailRE = regexp.MustCompile(`^(.*?)/webclient/img_detail/(\d+)/?$`)
	webclientRE = regexp.MustCompile(`^(.*?)/webclient/?$`)
	showRE      = regexp.MustCompile(`^(image|dataset)-(\d+)`)
)

// OMEROLink is what an OMERO.web URL names.
type OMEROLink struct {
	Base      string // scheme://host[/prefix], without a trailing slash
	ImageID   int64  // 0 when the link names only a dataset
	DatasetID int64  // 0 when unknown
}

// ParseOMEROLink understands /webclient/img_detail/<iid>/?dataset=<did> and
// /webclient/?show=image-<iid> or ?show=dataset-<did>.
func ParseOMEROLink(raw string) (OMEROLink, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return OMEROLink{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return OMEROLink{}, fmt.Errorf("%q is not an http(s) OMERO.web link", raw)
	}
	var l OMEROLink
	q := u.Query()
	if m := imgDetailRE.FindStringSubmatch(u.Path); m != nil {
		l.ImageID, _ = strconv.ParseInt(m[2], 10, 64)
		l.Base = u.Scheme + "://" + u.Host + m[1]
	} else if m := webclientRE.FindStringSubmatch(u.Path); m != nil && q.Get("show") != "" {
		l.Base = u.Scheme + "://" + u.Host + m[1]
		for _, part := range strings.Split(q.Get("show"), "|") {
			if sm := showRE.FindStringSubmatch(part); sm != nil {
				id, _ := strconv.ParseInt(sm[2], 10, 64)
				if sm[1] == "image" && l.ImageID == 0 {
					l.ImageID = id
				} else if sm[1] == "dataset" && l.DatasetID == 0 {
					l.DatasetID = id
				}
			}
		}
	} else {
		return OMEROLink{}, fmt.Errorf("%q is not an OMERO.web image or dataset link (want …/webclient/img_detail/<id>/ or …/webclient/?show=…)", raw)
	}
	if d := q.Get("dataset"); d != "" && l.DatasetID == 0 {
		id, err := strconv.ParseInt(d, 10, 64)
		if err != nil || id <= 0 {
			return OMEROLink{}, fmt.Errorf("%q: bad dataset id %q", raw, d)
		}
		l.DatasetID = id
	}
	if l.ImageID <= 0 && l.DatasetID <= 0 {
		return OMEROLink{}, fmt.Errorf("%q names no image or dataset", raw)
	}
	return l, nil
}

// omeroImage is the subset of the OMERO JSON image object used here.
type omeroImage struct {
	ID     int64  `json:"@id"`
	Name   string `json:"Name"`
	Pixels *struct {
		SizeX, SizeY, SizeZ, SizeC, SizeT           int64
		PhysicalSizeX, PhysicalSizeY, PhysicalSizeZ *omeroLength
		Type                                        *struct {
			Value string `json:"value"`
		}
	} `json:"Pixels"`
}

type omeroLength struct {
	Value float64 `json:"Value"`
	Unit  string  `json:"Unit"`
}

// nm converts an OMERO length to nanometres; 0 when the unit is unknown.
func (l *omeroLength) nm() float64 {
	if l == nil {
		return 0
	}
	f := map[string]float64{"NANOMETER": 1, "MICROMETER": 1e3, "MILLIMETER": 1e6, "ANGSTROM": 0.1, "PICOMETER": 1e-3, "METER": 1e9}[strings.ToUpper(l.Unit)]
	return l.Value * f
}

// ImgData is the subset of /webgateway/imgData/<id>/ used here.
type ImgData struct {
	ID   int64 `json:"id"`
	Size struct {
		Width, Height, Z, C, T int64
	} `json:"size"`
	PixelSize struct {
		X, Y, Z *float64 // µm; null when unknown
	} `json:"pixel_size"`
	Meta struct {
		ImageName   string `json:"imageName"`
		ImageID     int64  `json:"imageId"`
		DatasetName string `json:"datasetName"`
		DatasetID   *int64 `json:"datasetId"`
		ProjectName string `json:"projectName"`
		PixelsType  string `json:"pixelsType"`
		ImageAuthor string `json:"imageAuthor"`
	} `json:"meta"`
}

// OriginalFilePaths is /webgateway/original_file_paths/<id>/.
type OriginalFilePaths struct {
	Repo    []string `json:"repo"`
	Client  []string `json:"client"`
	Fileset *struct {
		ID int64 `json:"id"`
	} `json:"fileset"`
}

// omeroData decodes {"data": …} whose value is an object or a list of
// objects (the server and its documentation disagree).
func omeroData(body []byte) ([]json.RawMessage, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
		Meta *struct {
			TotalCount int64 `json:"totalCount"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	d := bytes.TrimSpace(env.Data)
	switch {
	case len(d) == 0 || bytes.Equal(d, []byte("null")):
		return nil, errors.New(`no "data" field`)
	case d[0] == '{':
		return []json.RawMessage{d}, nil
	case d[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(d, &list); err != nil {
			return nil, err
		}
		return list, nil
	}
	return nil, fmt.Errorf(`"data" is neither an object nor a list`)
}

func getJSON(ctx context.Context, c *http.Client, rawURL string, v any) error {
	body, _, err := get(ctx, c, rawURL, maxPageBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decode JSON: %w", rawURL, err)
	}
	return nil
}

// Resolve implements Resolver.
func (o *OMERO) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	link, err := ParseOMEROLink(ds.URL)
	if err != nil {
		return nil, err
	}
	c := env.jarClient()
	res := &Resolved{FactsSource: "OMERO JSON API", Facts: Facts{}}
	// IDR's documented way in: this GET creates the anonymous public session.
	if _, _, err := get(ctx, c, link.Base+"/webclient/?experimenter=-1", maxPageBytes); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("anonymous session request failed (continuing without): %v", err))
	}

	var images []omeroImage
	if link.DatasetID > 0 {
		images, err = o.datasetImages(ctx, c, link)
		if err != nil {
			return nil, err
		}
		res.Facts["dataset_id"] = link.DatasetID
	} else {
		body, _, err := get(ctx, c, fmt.Sprintf("%s/api/v0/m/images/%d/", link.Base, link.ImageID), maxPageBytes)
		if err != nil {
			return nil, err
		}
		list, err := omeroData(body)
		if err != nil || len(list) == 0 {
			return nil, fmt.Errorf("image %d: bad JSON API answer: %v", link.ImageID, err)
		}
		var im omeroImage
		if err := json.Unmarshal(list[0], &im); err != nil {
			return nil, fmt.Errorf("image %d: %w", link.ImageID, err)
		}
		images = []omeroImage{im}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("dataset %d: %w (the dataset lists no images)", link.DatasetID, ErrNoObjects)
	}

	tree := env.IDRFileTree
	if tree == "" {
		tree = DefaultIDRFileTree
	}
	if !strings.HasSuffix(tree, "/") {
		tree += "/"
	}
	perImage := make([][]Object, len(images))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(omeroParallel)
	for i := range images {
		im := images[i]
		g.Go(func() error {
			objs, err := o.imageObjects(gctx, c, link.Base, tree, im)
			perImage[i] = objs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, objs := range perImage {
		for _, ob := range objs {
			if seen[ob.SourceURL] {
				res.Notes = append(res.Notes, fmt.Sprintf("image %d shares file %s with another image", images[i].ID, ob.SourceURL))
				continue
			}
			seen[ob.SourceURL] = true
			if !ds.Take.Match(ob.Path) {
				continue
			}
			res.Objects = append(res.Objects, ob)
		}
	}
	if len(res.Objects) == 0 {
		return nil, fmt.Errorf("%w: take patterns matched none of %d files", ErrNoObjects, len(seen))
	}
	if f := res.Objects[0].Facts; f != nil {
		for _, k := range []string{"dataset_name", "project_name"} {
			if v, ok := f[k]; ok {
				res.Facts[k] = v
			}
		}
	}
	res.Facts["image_count"] = len(images)
	if _, err := statObjects(ctx, env, res.Objects, false); err != nil {
		return nil, err
	}
	return res, nil
}

// datasetImages pages through /api/v0/m/images/?dataset=<id>.
func (o *OMERO) datasetImages(ctx context.Context, c *http.Client, link OMEROLink) ([]omeroImage, error) {
	var out []omeroImage
	seen := map[int64]bool{}
	for offset := 0; ; {
		u := fmt.Sprintf("%s/api/v0/m/images/?dataset=%d&limit=%d&offset=%d", link.Base, link.DatasetID, omeroPageLimit, offset)
		var page struct {
			Data []omeroImage `json:"data"`
			Meta struct {
				TotalCount int `json:"totalCount"`
			} `json:"meta"`
		}
		if err := getJSON(ctx, c, u, &page); err != nil {
			return nil, fmt.Errorf("dataset %d: list images: %w", link.DatasetID, err)
		}
		fresh := 0
		for _, im := range page.Data {
			if !seen[im.ID] {
				seen[im.ID] = true
				out = append(out, im)
				fresh++
			}
		}
		if len(page.Data) > 0 && fresh == 0 {
			return nil, fmt.Errorf("dataset %d: the server repeats images at offset %d (pagination ignored?)", link.DatasetID, offset)
		}
		offset += len(page.Data)
		if len(out) > omeroMaxImages {
			return nil, fmt.Errorf("dataset %d: more than %d images", link.DatasetID, omeroMaxImages)
		}
		if len(page.Data) == 0 || offset >= page.Meta.TotalCount {
			return out, nil
		}
	}
}

// imageObjects maps one image to its original files with per-image facts.
func (o *OMERO) imageObjects(ctx context.Context, c *http.Client, base, tree string, im omeroImage) ([]Object, error) {
	var paths OriginalFilePaths
	if err := getJSON(ctx, c, fmt.Sprintf("%s/webgateway/original_file_paths/%d/", base, im.ID), &paths); err != nil {
		return nil, fmt.Errorf("image %d (%s): original file paths unavailable, and OMERO.web serves only JPEG renderings, so there is no lossless fallback: %w", im.ID, im.Name, err)
	}
	if len(paths.Client) == 0 {
		return nil, fmt.Errorf("image %d (%s): original_file_paths lists no client paths", im.ID, im.Name)
	}
	var meta ImgData
	metaErr := getJSON(ctx, c, fmt.Sprintf("%s/webgateway/imgData/%d/", base, im.ID), &meta)
	facts := imageFacts(im, meta, metaErr == nil)

	var objs []Object
	for _, cp := range paths.Client {
		src, _, err := MapIDRPath(tree, cp)
		if err != nil {
			return nil, fmt.Errorf("image %d (%s): %w", im.ID, im.Name, err)
		}
		u, err := url.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("image %d: mapped URL %q: %w", im.ID, src, err)
		}
		dir, name, err := splitURL(u)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", im.ID, err)
		}
		objs = append(objs, Object{
			StoreURL:  dir,
			Key:       name,
			SourceURL: src,
			Path:      name,
			Size:      -1,
			Facts:     facts,
		})
	}
	return objs, nil
}

// MapIDRPath maps an OMERO client path /uod/idr/filesets/<study>/… to the
// public file tree; rel is the path below the tree root.
func MapIDRPath(tree, clientPath string) (src, rel string, err error) {
	r, ok := strings.CutPrefix(clientPath, idrClientPrefix)
	if !ok {
		return "", "", fmt.Errorf("original file %q is not under %s, so it has no public URL", clientPath, idrClientPrefix)
	}
	for _, seg := range strings.Split(r, "/") {
		if seg == "" || seg == "." || seg == ".." || !safeName(seg) {
			return "", "", fmt.Errorf("original file %q: unsafe path", clientPath)
		}
	}
	if !strings.HasSuffix(tree, "/") {
		tree += "/"
	}
	return tree + escapeRel(r), r, nil
}

// imageFacts merges the JSON API image and imgData; imgData wins (its sizes
// are converted to µm by the server).
func imageFacts(im omeroImage, md ImgData, haveMD bool) Facts {
	f := Facts{"image_id": im.ID, "image_name": im.Name}
	var z, y, x int64
	var dtype string
	var vz, vy, vx float64
	if p := im.Pixels; p != nil {
		z, y, x = p.SizeZ, p.SizeY, p.SizeX
		if p.Type != nil {
			dtype = p.Type.Value
		}
		vz, vy, vx = p.PhysicalSizeZ.nm(), p.PhysicalSizeY.nm(), p.PhysicalSizeX.nm()
		if p.SizeC > 0 {
			f["size_c"] = p.SizeC
		}
		if p.SizeT > 0 {
			f["size_t"] = p.SizeT
		}
	}
	if haveMD {
		if md.Size.Width > 0 {
			z, y, x = md.Size.Z, md.Size.Height, md.Size.Width
			f["size_c"], f["size_t"] = md.Size.C, md.Size.T
		}
		if md.Meta.PixelsType != "" {
			dtype = md.Meta.PixelsType
		}
		um := func(p *float64, old float64) float64 {
			if p != nil && *p > 0 {
				return *p * 1000
			}
			return old
		}
		vz, vy, vx = um(md.PixelSize.Z, vz), um(md.PixelSize.Y, vy), um(md.PixelSize.X, vx)
		if md.Meta.ImageName != "" {
			f["image_name"] = md.Meta.ImageName
		}
		if md.Meta.DatasetName != "" {
			f["dataset_name"] = md.Meta.DatasetName
		}
		if md.Meta.ProjectName != "" {
			f["project_name"] = md.Meta.ProjectName
		}
		if md.Meta.ImageAuthor != "" {
			f["image_author"] = md.Meta.ImageAuthor
		}
	}
	if z > 0 && y > 0 && x > 0 {
		f["shape"] = []int64{z, y, x}
	}
	if dtype != "" {
		f["dtype"] = dtype
	}
	if vx > 0 && vy > 0 {
		if vz > 0 {
			f["voxel_size_nm"] = []float64{round9(vz), round9(vy), round9(vx)}
		} else {
			f["pixel_size_nm"] = []float64{round9(vy), round9(vx)}
		}
	}
	return f
}

// round9 removes binary noise from unit conversions (0.02 µm × 1000 = 20.000000000000004).
func round9(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 9, 64), 64)
	return r
}
