// Package source turns the links people use into concrete objects: one resolver
// per kind of place (file listing, web page, OMERO/IDR, EMPIAR, S3/GCS bucket,
// Neuroglancer link). Resolvers only look (list, HEAD, read small metadata);
// they never download data — that is the transfer package's job.
package source

import (
	"context"
	"net/http"
	"time"

	"github.com/imgdataset/imgdataset/manifest"
	"github.com/imgdataset/imgdataset/store"
)

// Object is one thing to download.
type Object struct {
	// StoreURL is the root the object is read from, as store.Opener.Open takes it
	// (https://host/dir/, s3://bucket/prefix/, gs://bucket/prefix/, file:///dir).
	StoreURL string `json:"store_url"`
	// Key is the object's key inside StoreURL ("" when StoreURL is the object).
	Key string `json:"key"`
	// SourceURL is the object's public URL, for the catalog.
	SourceURL string `json:"source_url"`
	// Path is where it goes, relative to the dataset's output directory
	// (slash-separated; validated with store.CleanKey before any write).
	Path string `json:"path"`
	// Size is -1 when unknown.
	Size int64 `json:"size"`
	// SizeHint is an approximate size when Size is unknown, such as "32K" in a
	// directory index: good for plans and progress, never for verification.
	// Zero means no hint.
	SizeHint int64 `json:"size_hint,omitempty"`
	// Verification data the server gave, if any.
	ETag   string `json:"etag,omitempty"`
	MD5    []byte `json:"md5,omitempty"`
	CRC32C uint32 `json:"crc32c,omitempty"`
	HasCRC bool   `json:"has_crc32c,omitempty"`
	// Facts are per-object values from an API or page (see Facts keys).
	Facts Facts `json:"facts,omitempty"`
}

// VolumeRef is a remote volume read in place (a crop), not downloaded whole.
type VolumeRef struct {
	StoreURL string `json:"store_url"` // root of the volume (e.g. gs://bucket/path/)
	Key      string `json:"key"`       // usually ""
	Format   string `json:"format"`    // "precomputed", "zarr", ...
	Path     string `json:"path"`      // output name relative to the dataset directory
}

// Facts are metadata values a resolver learned from an API or a web page.
// Keys used across the project: "title", "doi", "license", "modality",
// "specimen", "microscope", "voltage_kv", "magnification", "acquisition_date",
// "voxel_size_nm" ([]float64 z,y,x), "shape" ([]int64 z,y,x), "dtype",
// "description", "image_id", "image_name". Values must be JSON-encodable.
type Facts map[string]any

// Resolved is what a resolver found for one dataset.
type Resolved struct {
	Dataset manifest.Dataset `json:"dataset"`
	Kind    string           `json:"kind"`
	Objects []Object         `json:"objects"`
	Volumes []VolumeRef      `json:"volumes,omitempty"`
	// Facts are dataset-level values; FactsSource says where they came from
	// ("EMPIAR REST API", "OMERO JSON API", "web page", ...).
	Facts       Facts    `json:"facts,omitempty"`
	FactsSource string   `json:"facts_source,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// Env is what resolvers share: one HTTP client (pooled, with a cookie jar where
// needed) and one store opener, so the same code reaches real services and mirrors.
type Env struct {
	HTTP   *http.Client
	Stores *store.Opener
	// RequestTimeout bounds each resolver request (pages, APIs, short
	// links), body included, when HTTP has no Timeout of its own; zero
	// selects DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Chromium is the path of the headless browser for JavaScript pages; empty
	// means look up "chromium" on PATH when needed.
	Chromium string
	// IDRFileTree replaces "https://ftp.ebi.ac.uk/pub/databases/IDR/" when mapping
	// OMERO original-file paths to the public file tree (mirrors, other IDR hosts).
	IDRFileTree string
	// Logf receives progress notes; nil discards them.
	Logf func(format string, args ...any)
	// StoreMeta reports whether an object's base name is a chunked store's
	// metadata (format.Registry.IsStoreMarker, passed in so that this package
	// needs no format): a bucket walk keeps such objects whatever take says,
	// since a store without its metadata is unreadable. nil keeps the Zarr
	// metadata the bucket walk itself reads.
	StoreMeta func(name string) bool
}

// Resolver resolves datasets of one kind.
type Resolver interface {
	Kind() string
	Resolve(ctx context.Context, env *Env, ds manifest.Dataset) (*Resolved, error)
}

// EstimatedSize is Size when known, else SizeHint when given, else -1.
func (o Object) EstimatedSize() int64 {
	switch {
	case o.Size >= 0:
		return o.Size
	case o.SizeHint > 0:
		return o.SizeHint
	}
	return -1
}
