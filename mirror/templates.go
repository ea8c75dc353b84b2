package mirror

import (
	"embed"
	"encoding/json"
	"fmt"
)

// The templates are copies of real responses' shapes from
// /work/shared/docs/wire-samples (see the README there for the full record):
//
//   - empiar-api-entry-11759.json: GET https://www.ebi.ac.uk/empiar/api/entry/11759/,
//     re-serialized by reedmarkham/macroscope
//     examples/logs/metadata/metadata_catalog_20250611_221633.json @ b21a5b6.
//   - epfl-data-em-links.extracted.json: description text and the 10 hrefs of
//     article#post-2138 on https://www.epfl.ch/labs/cvlab/data/data-em/, from
//     yuriyzubov/image_harvest reference_metadata/web_metadata.json @ 6a533f0
//     (rendered in a headless browser; the page markup itself was never saved).
//   - hemibrain-ng-state.json: the Neuroglancer state behind
//     https://tinyurl.com/hemibrain-ng, same yuriyzubov file, key hemibrain
//     (parsed and re-serialized; the redirect URL itself was never saved).
//   - idr-webclient-imgData-9762957.json: GET
//     https://idr.openmicroscopy.org/webclient/imgData/9762957/ (a screen image,
//     used for its key set only), from BiAPoL/blog browse_idr.ipynb @ 4472bcf.
//
//go:embed templates/*.json
var templates embed.FS

// loadTemplate decodes one embedded template into v.
func loadTemplate(name string, v any) error {
	b, err := templates.ReadFile("templates/" + name)
	if err != nil {
		return fmt.Errorf("mirror: template %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("mirror: template %s: %w", name, err)
	}
	return nil
}

// epflLinks is the shape of epfl-data-em-links.extracted.json.
type epflLinks struct {
	Description string   `json:"dataset_description"`
	Links       []string `json:"download_links"`
}
