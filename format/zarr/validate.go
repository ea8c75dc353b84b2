package zarr

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"math/big"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/imgdataset/imgdataset/format"
)

// schemaFS holds JSON Schemas (draft 2020-12) for OME-NGFF image metadata,
// written for this package from the 0.4 and 0.5 specifications.
//
//go:embed schema/*.json
var schemaFS embed.FS

const schemaBase = "https://imgdataset.invalid/ngff/"

// maxNGFFAttrs bounds the metadata ValidateNGFF parses.
const maxNGFFAttrs = 16 << 20

// ValidateNGFF checks OME-NGFF image metadata against the JSON Schema of
// version "0.4" (attrs is a group's .zattrs) or "0.5" (attrs is the
// attributes of a group's zarr.json, or the whole zarr.json); "" picks 0.5
// when attrs has an "ome" key and 0.4 otherwise. Beyond the schema it checks
// the MUST rules JSON Schema cannot state: axis names are unique, and so are
// the label-values of an "image-label" object's colors and properties (a
// label image's metadata is validated with its multiscales). The error says
// where and why the metadata is invalid.
func ValidateNGFF(attrs []byte, version string) error {
	if len(attrs) > maxNGFFAttrs {
		return fmt.Errorf("ngff: %d bytes of metadata, more than %d", len(attrs), maxNGFFAttrs)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(attrs))
	if err != nil {
		return fmt.Errorf("ngff: metadata is not JSON: %w", err)
	}
	if m, ok := doc.(map[string]any); ok && m["zarr_format"] != nil {
		if a, ok := m["attributes"]; ok {
			doc = a
		}
	}
	if version == "" {
		version = "0.4"
		if m, ok := doc.(map[string]any); ok && m["ome"] != nil {
			version = "0.5"
		}
	}
	sch, err := compileNGFF(version)
	if err != nil {
		return err
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("ngff %s: invalid metadata: %s", version, reasons(ve))
		}
		return fmt.Errorf("ngff %s: %w", version, err)
	}
	if err := uniqueAxisNames(doc, version); err != nil {
		return err
	}
	return uniqueLabelValues(doc, version)
}

// compileNGFF compiles the embedded schema of version. It never fetches
// anything: every $ref resolves within the embedded files.
func compileNGFF(version string) (*jsonschema.Schema, error) {
	switch version {
	case "0.4", "0.5":
	default:
		return nil, fmt.Errorf("ngff version %q (want 0.4 or 0.5): %w", version, format.ErrNotSupported)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	for _, f := range []struct{ file, url string }{
		{"schema/ngff-defs.json", schemaBase + "defs.json"},
		{"schema/ngff-" + version + ".json", schemaBase + version + "/image.json"},
	} {
		b, err := schemaFS.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("ngff schema %s: %w", f.file, err)
		}
		d, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("ngff schema %s: %w", f.file, err)
		}
		if err := c.AddResource(f.url, d); err != nil {
			return nil, fmt.Errorf("ngff schema %s: %w", f.file, err)
		}
	}
	sch, err := c.Compile(schemaBase + version + "/image.json")
	if err != nil {
		return nil, fmt.Errorf("ngff schema %s: %w", version, err)
	}
	return sch, nil
}

// noLoader refuses every URL the embedded resources do not cover.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not embedded (no network loading)", url)
}

// reasons flattens a validation error tree into "at /path: message" lines,
// leaves only, so the reason is the specific failing rule.
func reasons(ve *jsonschema.ValidationError) string {
	printer := message.NewPrinter(language.English)
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, fmt.Sprintf("at %q: %s", "/"+joinPtr(e.InstanceLocation), e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("and %d more", len(out)-8))
	}
	var b bytes.Buffer
	for i, s := range out {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

func joinPtr(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(s)
	}
	return b.String()
}

// uniqueAxisNames enforces that no multiscale names an axis twice (the schema
// only rejects identical axis objects). doc has passed the schema.
func uniqueAxisNames(doc any, version string) error {
	root, _ := doc.(map[string]any)
	if version == "0.5" {
		root, _ = root["ome"].(map[string]any)
	}
	ms, _ := root["multiscales"].([]any)
	for i, m := range ms {
		mm, _ := m.(map[string]any)
		axes, _ := mm["axes"].([]any)
		seen := map[string]bool{}
		for _, a := range axes {
			am, _ := a.(map[string]any)
			name, _ := am["name"].(string)
			if seen[name] {
				return fmt.Errorf("ngff %s: invalid metadata: at \"/multiscales/%d/axes\": axis name %q appears twice", version, i, name)
			}
			seen[name] = true
		}
	}
	return nil
}

// uniqueLabelValues enforces that the colors and properties of an
// "image-label" object give each label-value once. doc has passed the schema,
// so label-values are integers (compared as the numbers JSON decoded).
func uniqueLabelValues(doc any, version string) error {
	root, _ := doc.(map[string]any)
	at := "/image-label"
	if version == "0.5" {
		root, _ = root["ome"].(map[string]any)
		at = "/ome/image-label"
	}
	il, _ := root["image-label"].(map[string]any)
	for _, key := range []string{"colors", "properties"} {
		list, _ := il[key].([]any)
		seen := map[string]bool{}
		for i, e := range list {
			m, _ := e.(map[string]any)
			v := fmt.Sprint(m["label-value"])
			// 1, 1.0 and 1e0 are the same label.
			if r, ok := new(big.Rat).SetString(v); ok {
				v = r.RatString()
			}
			if seen[v] {
				return fmt.Errorf("ngff %s: invalid metadata: at %q: label-value %s appears twice", version, fmt.Sprintf("%s/%s/%d", at, key, i), v)
			}
			seen[v] = true
		}
	}
	return nil
}
