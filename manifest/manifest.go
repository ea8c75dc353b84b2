// Package manifest defines the YAML list of datasets imgdataset gathers, validates
// it with errors that name the line and field, and embeds the default list of the
// five real EM datasets.
package manifest

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Kinds of source a dataset URL can be. An empty kind means "detect from the URL".
const (
	KindAuto         = ""
	KindListing      = "listing"      // an HTML file index (Apache/nginx, EBI FTP over HTTPS)
	KindWebPage      = "webpage"      // a page whose links point at the files
	KindOMERO        = "omero"        // an OMERO.web / IDR image or dataset page
	KindEMPIAR       = "empiar"       // an EMPIAR entry page
	KindS3           = "s3"           // an S3 bucket prefix
	KindGCS          = "gcs"          // a GCS bucket prefix
	KindNeuroglancer = "neuroglancer" // a Neuroglancer link (possibly shortened)
	KindPrecomputed  = "precomputed"  // a precomputed volume root
	KindFile         = "file"         // one file
)

// Kinds lists every valid kind.
var Kinds = []string{KindListing, KindWebPage, KindOMERO, KindEMPIAR, KindS3, KindGCS, KindNeuroglancer, KindPrecomputed, KindFile}

// Manifest is a list of datasets.
type Manifest struct {
	Version  int       `yaml:"version" json:"version"`
	Datasets []Dataset `yaml:"datasets" json:"datasets"`
}

// Dataset is one entry: where to start and what to take.
type Dataset struct {
	// Name names the output directory; lowercase letters, digits, '-', '_', '.'.
	Name string `yaml:"name" json:"name"`
	// URL is the link as a person finds it.
	URL string `yaml:"url" json:"url"`
	// Kind is a hint; empty means detect.
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Title is a human label for reports.
	Title string `yaml:"title,omitempty" json:"title,omitempty"`
	// Layer picks a Neuroglancer layer by name (default: first image layer).
	Layer string `yaml:"layer,omitempty" json:"layer,omitempty"`
	Take  Take   `yaml:"take,omitempty" json:"take,omitempty"`
	// VoxelSizeNM is a fallback voxel size (z, y, x) used only when the files
	// carry none; the catalog marks it as coming from the manifest.
	VoxelSizeNM []float64 `yaml:"voxel_size_nm,omitempty" json:"voxel_size_nm,omitempty"`
}

// Take says which part of a dataset to gather.
type Take struct {
	// Include and Exclude are glob patterns (path.Match syntax, plus "**" for
	// any depth) on object paths relative to the dataset root. No Include means all.
	Include []string `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	// Scales selects levels of a multiscale store by path name ("s0", "s3") or index.
	Scales []string `yaml:"scales,omitempty" json:"scales,omitempty"`
	// Crop takes a region of a volume instead of its files.
	Crop *Crop `yaml:"crop,omitempty" json:"crop,omitempty"`
}

// Crop is a region of a volume, chosen by origin or by a seeded random draw.
type Crop struct {
	Size   []int64 `yaml:"size" json:"size"`                         // z, y, x voxels
	Origin []int64 `yaml:"origin,omitempty" json:"origin,omitempty"` // z, y, x; empty = random
	Seed   *int64  `yaml:"seed,omitempty" json:"seed,omitempty"`
	Scale  int     `yaml:"scale,omitempty" json:"scale,omitempty"` // scale index, 0 = full resolution
	// AlignToChunks snaps a random origin to the chunk grid so fewer chunks are touched.
	AlignToChunks bool `yaml:"align_to_chunks,omitempty" json:"align_to_chunks,omitempty"`
}

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded manifest of the five real datasets.
func Default() (*Manifest, error) { return Parse(defaultYAML, "default.yaml") }

// DefaultYAML returns the embedded manifest text.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Error is a validation error with its position in the YAML.
type Error struct {
	File  string
	Line  int
	Field string // e.g. "datasets[2].take.crop.size"
	Msg   string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

// Errors collects every problem found, so a user fixes them in one go.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Parse decodes and validates a manifest; name is used in error messages.
func Parse(data []byte, name string) (*Manifest, error) {
	var m Manifest
	if err := yaml.UnmarshalWithOptions(data, &m, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("%s", yamlError(name, err))
	}
	if err := m.validate(data, name); err != nil {
		return nil, err
	}
	return &m, nil
}

// Reserved reports why name may not name a dataset, or "" when it may: a
// dataset's directory sits next to the run's own outputs in the output
// directory, and one of the same name would overwrite them or be overwritten.
func Reserved(name string) string {
	switch {
	case name == "catalog.json", name == "report.html":
		return "the run writes " + name + " into the output directory"
	case strings.HasPrefix(name, "metadata_table"):
		return "the run writes its tables metadata_table.* into the output directory"
	case name == "ome-zarr":
		// Directories called ome-zarr hold the tool's copies (see scan.CopiesDir).
		return "ome-zarr is the name of the directories of the tool's OME-Zarr copies"
	case strings.HasPrefix(name, "."):
		return "the run keeps its state in .imgdataset"
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func (m *Manifest) validate(src []byte, file string) error {
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: lineOf(src, field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if m.Version != 1 {
		add("version", "must be 1, got %d", m.Version)
	}
	if len(m.Datasets) == 0 {
		add("datasets", "at least one dataset is required")
	}
	seen := map[string]bool{}
	for i, d := range m.Datasets {
		p := fmt.Sprintf("datasets[%d]", i)
		if !nameRE.MatchString(d.Name) {
			add(p+".name", "%q must be 1–64 of [a-z0-9._-], starting with a letter or digit", d.Name)
		} else if why := Reserved(d.Name); why != "" {
			add(p+".name", "%q is reserved: %s; give the dataset another name", d.Name, why)
		} else if seen[d.Name] {
			add(p+".name", "duplicate name %q", d.Name)
		}
		seen[d.Name] = true
		if err := checkURL(d.URL); err != nil {
			add(p+".url", "%v", err)
		}
		if d.Kind != "" && !contains(Kinds, d.Kind) {
			add(p+".kind", "%q is not one of %s", d.Kind, strings.Join(Kinds, ", "))
		}
		for j, g := range append(append([]string{}, d.Take.Include...), d.Take.Exclude...) {
			if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil {
				add(fmt.Sprintf("%s.take.include/exclude[%d]", p, j), "bad pattern %q: %v", g, err)
			}
		}
		if len(d.VoxelSizeNM) != 0 && len(d.VoxelSizeNM) != 3 {
			add(p+".voxel_size_nm", "needs 3 values (z, y, x), got %d", len(d.VoxelSizeNM))
		}
		for _, v := range d.VoxelSizeNM {
			if !(v > 0) {
				add(p+".voxel_size_nm", "values must be positive, got %v", v)
			}
		}
		if c := d.Take.Crop; c != nil {
			cp := p + ".take.crop"
			if len(c.Size) != 3 {
				add(cp+".size", "needs 3 values (z, y, x), got %d", len(c.Size))
			}
			for _, s := range c.Size {
				if s <= 0 {
					add(cp+".size", "values must be positive, got %d", s)
				}
			}
			if len(c.Origin) != 0 && len(c.Origin) != 3 {
				add(cp+".origin", "needs 3 values (z, y, x), got %d", len(c.Origin))
			}
			if len(c.Origin) == 0 && c.Seed == nil {
				add(cp, "give either origin or seed, so the crop is reproducible")
			}
			if c.Scale < 0 {
				add(cp+".scale", "must be ≥ 0, got %d", c.Scale)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(strings.ReplaceAll(raw, " ", "%20"))
	if err != nil {
		return fmt.Errorf("%q: %v", raw, err)
	}
	switch u.Scheme {
	case "http", "https", "s3", "gs", "file":
		if u.Scheme != "file" && u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
		return nil
	case "precomputed":
		return nil
	case "":
		return fmt.Errorf("%q has no scheme (use https://, s3://, gs://, precomputed:// or file://)", raw)
	}
	return fmt.Errorf("%q: unsupported scheme %q", raw, u.Scheme)
}

// lineOf finds the line of a field path like "datasets[2].take.crop.size" in
// the YAML AST: the line of the field's key when it exists, else of its nearest
// existing parent; 0 when nothing matches.
func lineOf(src []byte, field string) int {
	file, err := parser.ParseBytes(src, 0)
	if err != nil {
		return 0
	}
	p := "$." + field
	for {
		i := strings.LastIndexAny(p, ".[")
		if i <= 1 {
			return 0
		}
		parent, last := p[:i], p[i:]
		if strings.HasPrefix(last, ".") {
			if n := filter(file, parent); n != nil {
				if l := keyLine(n, last[1:]); l > 0 {
					return l
				}
			}
		} else if n := filter(file, p); n != nil {
			return n.GetToken().Position.Line
		}
		p = parent
	}
}

func filter(file *ast.File, p string) ast.Node {
	yp, err := yaml.PathString(p)
	if err != nil {
		return nil
	}
	n, err := yp.FilterFile(file)
	if err != nil {
		return nil
	}
	return n
}

// keyLine returns the line of key inside a mapping node.
func keyLine(n ast.Node, key string) int {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	for _, v := range values {
		if v.Key != nil && v.Key.String() == key {
			return v.Key.GetToken().Position.Line
		}
	}
	return 0
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Match reports whether a relative object path is selected by Include/Exclude.
func (t Take) Match(rel string) bool {
	if len(t.Include) > 0 {
		ok := false
		for _, g := range t.Include {
			if Glob(g, rel) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, g := range t.Exclude {
		if Glob(g, rel) {
			return false
		}
	}
	return true
}

// Glob matches path.Match patterns where "**" matches any number of segments,
// and a pattern without "/" matches the base name at any depth.
func Glob(pattern, rel string) bool {
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(rel))
		return ok
	}
	return globSegs(strings.Split(pattern, "/"), strings.Split(rel, "/"))
}

func globSegs(p, s []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			for i := 0; i <= len(s); i++ {
				if globSegs(p[1:], s[i:]) {
					return true
				}
			}
			return false
		}
		if len(s) == 0 {
			return false
		}
		if ok, _ := path.Match(p[0], s[0]); !ok {
			return false
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// FromURLs builds a manifest with one dataset per URL, kinds left to detection.
func FromURLs(urls []string) (*Manifest, error) {
	m := &Manifest{Version: 1}
	used := map[string]int{}
	for _, u := range urls {
		name := nameFromURL(u)
		used[name]++
		if n := used[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		m.Datasets = append(m.Datasets, Dataset{Name: name, URL: u})
	}
	src := []byte(fmt.Sprintf("%d URLs on the command line", len(urls)))
	if err := m.validate(src, "command line"); err != nil {
		return nil, err
	}
	return m, nil
}

// nameFromURL derives a dataset name from the last meaningful part of a URL.
func nameFromURL(raw string) string {
	u, err := url.Parse(strings.ReplaceAll(raw, " ", "%20"))
	p := raw
	if err == nil {
		p = u.Host + u.Path
	}
	segs := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	name := "dataset"
	for i := len(segs) - 1; i >= 0; i-- {
		if s := segs[i]; s != "" && s != "data" && s != "datasets" {
			name = s
			break
		}
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	s := strings.Trim(b.String(), "-._")
	if s == "" {
		s = "dataset"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// yamlError puts a YAML error on one line, as compilers do: "m.yaml:5:5:
// unknown field "colour"". The parser's own form starts with "[line:col]"
// and appends a multi-line source excerpt, which a log line cannot hold.
func yamlError(name string, err error) string {
	msg := strings.TrimSpace(yaml.FormatError(err, false, false))
	if i := strings.Index(msg, "] "); strings.HasPrefix(msg, "[") && i > 0 {
		return name + ":" + msg[1:i] + ": " + strings.Join(strings.Fields(msg[i+2:]), " ")
	}
	return name + ": " + strings.Join(strings.Fields(msg), " ")
}
