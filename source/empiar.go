package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/html"

	"github.com/imgdataset/imgdataset/manifest"
)

// DefaultEMPIARTree is the public HTTPS tree of EMPIAR entries, used when the
// entry page does not name its archive.
const DefaultEMPIARTree = "https://ftp.ebi.ac.uk/empiar/world_availability/"

// EMPIAR resolves an EMPIAR entry page: facts from the REST API, files from
// the entry's public archive index (data/), walked with Listing.
type EMPIAR struct {
	// Listing walks the archive; nil means a Listing with default bounds.
	Listing *Listing
}

// Kind implements Resolver.
func (e *EMPIAR) Kind() string { return manifest.KindEMPIAR }

// Resolve implements Resolver.
func (e *EMPIAR) Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error) {
	u, err := url.Parse(strings.TrimSpace(ds.URL))
	if err != nil {
		return nil, err
	}
	m := empiarPathRE.FindStringSubmatch(u.Path)
	if m == nil {
		return nil, fmt.Errorf("%q is not an EMPIAR entry link (want …/empiar/EMPIAR-<id>/)", ds.URL)
	}
	id := m[1]
	host := u.Scheme + "://" + u.Host
	c := env.client()
	res := &Resolved{}

	apiURL := host + "/empiar/api/entry/" + id + "/"
	body, _, err := get(ctx, c, apiURL, maxPageBytes)
	if err != nil {
		return nil, fmt.Errorf("EMPIAR-%s REST API: %w", id, err)
	}
	facts, err := ParseEMPIAREntry(body, id)
	if err != nil {
		return nil, fmt.Errorf("EMPIAR-%s REST API %s: %w", id, apiURL, err)
	}
	res.Facts, res.FactsSource = facts, "EMPIAR REST API"

	archive := ""
	page, _, err := get(ctx, c, u.String(), maxPageBytes)
	if err == nil {
		archive = ArchiveURL(page)
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("entry page unavailable (%v); using the default archive location", err))
	}
	if archive == "" {
		archive = DefaultEMPIARTree + id
	}
	if a, err := url.Parse(archive); err != nil || (a.Scheme != "http" && a.Scheme != "https") {
		return nil, fmt.Errorf("EMPIAR-%s: archive URL %q is not an http(s) URL", id, archive)
	}
	l := e.Listing
	if l == nil {
		l = &Listing{}
	}
	dataURL := strings.TrimSuffix(archive, "/") + "/data/"
	objs, err := l.List(ctx, env, dataURL, ds.Take)
	if err != nil {
		return nil, fmt.Errorf("EMPIAR-%s files: %w", id, err)
	}
	res.Objects = objs
	if n, ok := facts["num_images"].(int64); ok && n > 0 {
		var got int64
		for _, o := range objs {
			if isDataExt(o.Path) {
				got++
			}
		}
		if got != n {
			res.Notes = append(res.Notes, fmt.Sprintf("the API counts %d images, %d data files were selected", n, got))
		}
	}
	return res, nil
}

// ArchiveURL finds the public-archive-ftp-url attribute on an EMPIAR entry page.
func ArchiveURL(page []byte) string {
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			_, more := z.TagName()
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				if string(k) == "public-archive-ftp-url" {
					if s := strings.TrimSpace(string(v)); s != "" {
						return s
					}
				}
			}
		}
	}
}

type empiarEntry struct {
	Title          string `json:"title"`
	EntryDOI       string `json:"entry_doi"`
	ExperimentType string `json:"experiment_type"`
	ReleaseDate    string `json:"release_date"`
	DepositionDate string `json:"deposition_date"`
	DatasetSize    string `json:"dataset_size"`
	Scale          string `json:"scale"`
	Authors        []struct {
		Author struct {
			Name string `json:"name"`
		} `json:"author"`
	} `json:"authors"`
	Imagesets []struct {
		Name        string          `json:"name"`
		Directory   string          `json:"directory"`
		Category    string          `json:"category"`
		DataFormat  string          `json:"data_format"`
		VoxelType   string          `json:"voxel_type"`
		NumImages   json.Number     `json:"num_images_or_tilt_series"`
		PixelWidth  *float64        `json:"pixel_width"`
		PixelHeight *float64        `json:"pixel_height"`
		ImageWidth  json.RawMessage `json:"image_width"`
		ImageHeight json.RawMessage `json:"image_height"`
		Details     string          `json:"details"`
	} `json:"imagesets"`
}

// ParseEMPIAREntry reads the REST API answer, keyed by accession
// ("EMPIAR-11759"), into facts. Å become nm; string widths become integers.
func ParseEMPIAREntry(body []byte, id string) (Facts, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	raw, ok := top["EMPIAR-"+id]
	if !ok {
		if len(top) != 1 {
			return nil, fmt.Errorf("answer has no key %q", "EMPIAR-"+id)
		}
		for _, v := range top {
			raw = v
		}
	}
	var e empiarEntry
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&e); err != nil {
		return nil, fmt.Errorf("entry EMPIAR-%s: %w", id, err)
	}
	f := Facts{"accession": "EMPIAR-" + id}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			f[k] = v
		}
	}
	set("title", e.Title)
	set("doi", e.EntryDOI)
	set("modality", e.ExperimentType)
	set("release_date", e.ReleaseDate)
	set("deposition_date", e.DepositionDate)
	set("dataset_size", e.DatasetSize)
	set("scale", e.Scale)
	var authors []string
	for _, a := range e.Authors {
		if n := strings.TrimSpace(a.Author.Name); n != "" {
			authors = append(authors, n)
		}
	}
	if len(authors) > 0 {
		f["authors"] = authors
	}
	var sets []map[string]any
	var total int64
	for _, is := range e.Imagesets {
		m := map[string]any{}
		for k, v := range map[string]string{"name": is.Name, "directory": is.Directory, "category": is.Category,
			"data_format": is.DataFormat, "voxel_type": is.VoxelType, "details": is.Details} {
			if v != "" {
				m[k] = v
			}
		}
		if n, err := is.NumImages.Int64(); err == nil {
			m["num_images"] = n
			total += n
		}
		if is.PixelWidth != nil && *is.PixelWidth > 0 {
			m["pixel_width_nm"] = round9(*is.PixelWidth / 10)
		}
		if is.PixelHeight != nil && *is.PixelHeight > 0 {
			m["pixel_height_nm"] = round9(*is.PixelHeight / 10)
		}
		if n, ok := looseInt(is.ImageWidth); ok {
			m["image_width"] = n
		}
		if n, ok := looseInt(is.ImageHeight); ok {
			m["image_height"] = n
		}
		sets = append(sets, m)
	}
	if len(sets) > 0 {
		f["imagesets"] = sets
		f["num_images"] = total
		if len(sets) == 1 {
			if w, ok := sets[0]["pixel_width_nm"].(float64); ok {
				if h, ok := sets[0]["pixel_height_nm"].(float64); ok {
					f["pixel_size_nm"] = []float64{h, w} // y, x
				}
			}
			if v, ok := sets[0]["data_format"]; ok {
				f["data_format"] = v
			}
		}
	}
	return f, nil
}

// looseInt reads a JSON number or a numeric string ("5628").
func looseInt(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, false
		}
		n = int64(f)
	}
	return n, n > 0
}
