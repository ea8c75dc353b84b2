package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ReadDocument decodes a catalog.json written by WriteAll. A document of a
// newer schema than this package writes is refused rather than half read.
func ReadDocument(b []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("catalog.json: %w", err)
	}
	if d.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("catalog.json: schema version %d; this imgdataset reads up to %d", d.SchemaVersion, SchemaVersion)
	}
	return &d, nil
}

// UnmarshalJSON reads the flat form MarshalJSON writes. Derived columns
// (extents) are recomputed from shape and voxel size, not read.
func (r *Record) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = Record{}
	for _, c := range columns() {
		raw, ok := m[c.name]
		if !ok || c.set == nil {
			continue // missing, or derived
		}
		if err := c.set(r, raw); err != nil {
			return fmt.Errorf("record field %s: %w", c.name, err)
		}
	}
	if raw, ok := m["metadata"]; ok {
		if err := json.Unmarshal(raw, &r.Metadata); err != nil {
			return fmt.Errorf("record field metadata: %w", err)
		}
	}
	// A crop origin missing an axis is no crop origin: the table never guesses.
	for i := range 3 {
		if raw, ok := m[cropColumn(i)]; !ok || bytes.Equal(raw, []byte("null")) {
			r.CropOrigin = nil
		}
	}
	return nil
}
