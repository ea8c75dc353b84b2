// Package corpus locates the shared conformance corpus (real files written by
// other software) and parses its MANIFEST.tsv, for tests.
package corpus

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir returns the corpus directory: $IMGDATASET_CORPUS, else ../shared/testdata
// relative to the repository root. When neither exists the test is skipped with
// a message that says how to provide it.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("IMGDATASET_CORPUS"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err == nil {
			return d
		}
		t.Skipf("IMGDATASET_CORPUS=%s has no MANIFEST.tsv; corpus tests skipped", d)
	}
	root, err := RepoRoot()
	if err == nil {
		d := filepath.Join(root, "..", "shared", "testdata")
		if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err == nil {
			return d
		}
	}
	t.Skip("conformance corpus not found (set IMGDATASET_CORPUS or place it at ../shared/testdata); corpus tests skipped")
	return ""
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		d = p
	}
}

// Entry is one row of MANIFEST.tsv.
type Entry struct {
	Path             string
	Category         string
	Kind             string
	License          string
	Writer           string
	Features         []string
	ExpectedUpstream string
	Expected         map[string]any // parsed expected_computed JSON (nil when empty)
	Notes            string
	Fields           map[string]string // every column by name
}

// HasFeature reports whether the row carries a feature tag.
func (e Entry) HasFeature(f string) bool {
	for _, x := range e.Features {
		if x == f {
			return true
		}
	}
	return false
}

// Load parses MANIFEST.tsv in dir.
func Load(dir string) ([]Entry, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("MANIFEST.tsv: %w", err)
	}
	var out []Entry
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("MANIFEST.tsv: %w", err)
		}
		m := map[string]string{}
		for i, h := range header {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		e := Entry{Path: m["path"], Category: m["category"], Kind: m["kind"], License: m["license"],
			Writer: m["writer"], ExpectedUpstream: m["expected_upstream"], Notes: m["notes"], Fields: m}
		if m["features"] != "" {
			e.Features = strings.Split(m["features"], ";")
		}
		if s := strings.TrimSpace(m["expected_computed"]); s != "" {
			var v map[string]any
			if err := json.Unmarshal([]byte(s), &v); err == nil {
				e.Expected = v
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Category returns the rows of one category (dm, tiff, zarr, n5, precomputed, omero-json).
func Category(t testing.TB, cat string) (dir string, rows []Entry) {
	t.Helper()
	dir = Dir(t)
	all, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Category == cat {
			rows = append(rows, e)
		}
	}
	return dir, rows
}
