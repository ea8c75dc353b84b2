package source

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"sort"
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
	body, _, apiErr := get(ctx, c, apiURL, maxPageBytes)
	var facts Facts
	if apiErr == nil {
		if facts, apiErr = ParseEMPIAREntry(body, id); apiErr != nil {
			apiErr = fmt.Errorf("%s: %w", apiURL, apiErr)
		}
	}
	if apiErr != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("EMPIAR REST API unavailable (%v); facts from the entry XML only", apiErr))
	} else {
		res.Facts, res.FactsSource = facts, "EMPIAR REST API"
	}

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

	// The entry XML (the page's "Download xml") sits beside data/ as
	// <id>.xml: it fills what the API lacks and is compared with it.
	xmlURL := strings.TrimSuffix(archive, "/") + "/" + id + ".xml"
	if xb, _, err := get(ctx, c, xmlURL, maxPageBytes); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("entry XML unavailable (%v)", err))
	} else if xf, err := ParseEMPIARXML(xb, id); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("entry XML %s: %v", xmlURL, err))
	} else if res.Facts == nil {
		res.Facts, res.FactsSource = xf, "EMPIAR entry XML"
	} else {
		res.Notes = append(res.Notes, mergeFacts(res.Facts, xf, "EMPIAR REST API", "entry XML")...)
		res.FactsSource = "EMPIAR REST API + entry XML"
	}
	if res.Facts == nil {
		return nil, fmt.Errorf("EMPIAR-%s: neither the REST API nor the entry XML answered: %w", id, apiErr)
	}
	facts = res.Facts

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

// empiarMeta is an entry as both the REST API and the entry XML describe it.
type empiarMeta struct {
	title, doi, modality, release, deposition, datasetSize, scale string
	authors                                                       []string
	sets                                                          []empiarSet
}

type empiarSet struct {
	name, directory, category, dataFormat, voxelType, details string
	numImages                                                 *int64
	pixelWidthA, pixelHeightA                                 *float64 // ångström
	imageWidth, imageHeight                                   int64    // 0: not given
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
	m := empiarMeta{title: e.Title, doi: e.EntryDOI, modality: e.ExperimentType, release: e.ReleaseDate,
		deposition: e.DepositionDate, datasetSize: e.DatasetSize, scale: e.Scale}
	for _, a := range e.Authors {
		m.authors = append(m.authors, a.Author.Name)
	}
	for _, is := range e.Imagesets {
		set := empiarSet{name: is.Name, directory: is.Directory, category: is.Category, dataFormat: is.DataFormat,
			voxelType: is.VoxelType, details: is.Details, pixelWidthA: is.PixelWidth, pixelHeightA: is.PixelHeight}
		if n, err := is.NumImages.Int64(); err == nil {
			set.numImages = &n
		}
		set.imageWidth, _ = looseInt(is.ImageWidth)
		set.imageHeight, _ = looseInt(is.ImageHeight)
		m.sets = append(m.sets, set)
	}
	return m.facts(id), nil
}

// empiarXML is the entry XML (namespace http://pdbe.org/empiar; elements
// are matched by local name).
type empiarXML struct {
	XMLName   xml.Name `xml:"entry"`
	Accession string   `xml:"accessionCode,attr"`
	Admin     struct {
		Title          string `xml:"title"`
		EntryDOI       string `xml:"entryDOI"`
		ExperimentType string `xml:"experimentType"`
		Scale          string `xml:"scale"`
		KeyDates       struct {
			Deposition string `xml:"depositionDate"`
			Release    string `xml:"releaseDate"`
		} `xml:"keyDates"`
		DatasetSize struct {
			Units string `xml:"units,attr"`
			Value string `xml:",chardata"`
		} `xml:"datasetSize"`
		Authors []string `xml:"authorsList>author"`
	} `xml:"admin"`
	ImageSets []struct {
		Name       string `xml:"name"`
		Directory  string `xml:"directory"`
		Category   string `xml:"category"`
		DataFormat string `xml:"dataFormat"`
		VoxelType  string `xml:"voxelType"`
		NumImages  string `xml:"numImagesOrTiltSeries"`
		Details    string `xml:"details"`
		Dims       struct {
			ImageWidth  string `xml:"imageWidth"`
			PixelWidth  string `xml:"pixelWidth"`
			ImageHeight string `xml:"imageHeight"`
			PixelHeight string `xml:"pixelHeight"`
		} `xml:"dimensions"`
	} `xml:"imageSet"`
}

// ParseEMPIARXML reads an entry XML into the same facts as ParseEMPIAREntry.
// Its directory is "/data" where the API says "data"; both are kept as given.
func ParseEMPIARXML(body []byte, id string) (Facts, error) {
	var e empiarXML
	if err := xml.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("entry XML of EMPIAR-%s: %w", id, err)
	}
	if acc := strings.TrimSpace(e.Accession); acc != "" && acc != "EMPIAR-"+id {
		return nil, fmt.Errorf("entry XML of EMPIAR-%s describes %s", id, acc)
	}
	m := empiarMeta{title: e.Admin.Title, doi: e.Admin.EntryDOI, modality: e.Admin.ExperimentType, scale: e.Admin.Scale,
		release: e.Admin.KeyDates.Release, deposition: e.Admin.KeyDates.Deposition, authors: e.Admin.Authors}
	if v := strings.TrimSpace(e.Admin.DatasetSize.Value); v != "" {
		m.datasetSize = strings.TrimSpace(v + " " + strings.TrimSpace(e.Admin.DatasetSize.Units))
	}
	for _, is := range e.ImageSets {
		set := empiarSet{name: is.Name, directory: is.Directory, category: is.Category, dataFormat: is.DataFormat,
			voxelType: is.VoxelType, details: is.Details}
		if n, ok := looseInt(json.RawMessage(strconv.Quote(strings.TrimSpace(is.NumImages)))); ok {
			set.numImages = &n
		}
		set.pixelWidthA = looseFloat(is.Dims.PixelWidth)
		set.pixelHeightA = looseFloat(is.Dims.PixelHeight)
		set.imageWidth, _ = looseInt(json.RawMessage(strconv.Quote(strings.TrimSpace(is.Dims.ImageWidth))))
		set.imageHeight, _ = looseInt(json.RawMessage(strconv.Quote(strings.TrimSpace(is.Dims.ImageHeight))))
		m.sets = append(m.sets, set)
	}
	return m.facts(id), nil
}

// looseFloat reads a positive finite number from text; nil otherwise.
func looseFloat(s string) *float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// facts turns an entry into the Facts keys the catalog reads.
func (e empiarMeta) facts(id string) Facts {
	f := Facts{"accession": "EMPIAR-" + id}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			f[k] = v
		}
	}
	set("title", e.title)
	set("doi", e.doi)
	set("modality", e.modality)
	set("release_date", e.release)
	set("deposition_date", e.deposition)
	set("dataset_size", e.datasetSize)
	set("scale", e.scale)
	var authors []string
	for _, a := range e.authors {
		if n := strings.TrimSpace(a); n != "" {
			authors = append(authors, n)
		}
	}
	if len(authors) > 0 {
		f["authors"] = authors
	}
	var sets []map[string]any
	var total int64
	for _, is := range e.sets {
		m := map[string]any{}
		for k, v := range map[string]string{"name": is.name, "directory": is.directory, "category": is.category,
			"data_format": is.dataFormat, "voxel_type": is.voxelType, "details": is.details} {
			if v != "" {
				m[k] = v
			}
		}
		if is.numImages != nil {
			m["num_images"] = *is.numImages
			total += *is.numImages
		}
		if is.pixelWidthA != nil && *is.pixelWidthA > 0 {
			m["pixel_width_nm"] = round9(*is.pixelWidthA / 10)
		}
		if is.pixelHeightA != nil && *is.pixelHeightA > 0 {
			m["pixel_height_nm"] = round9(*is.pixelHeightA / 10)
		}
		if is.imageWidth > 0 {
			m["image_width"] = is.imageWidth
		}
		if is.imageHeight > 0 {
			m["image_height"] = is.imageHeight
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
	return f
}

// mergeFacts adds to dst what only src has, and returns a note for every
// scalar fact the two sources state differently (dst's value stays).
func mergeFacts(dst, src Facts, dstName, srcName string) []string {
	var notes []string
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := src[k]
		have, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		if reflect.DeepEqual(have, v) {
			continue
		}
		switch v.(type) {
		case string, int64, float64:
			notes = append(notes, fmt.Sprintf("%s: %s says %v, %s says %v", k, dstName, have, srcName, v))
		}
	}
	return notes
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
