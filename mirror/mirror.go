// Package mirror runs loopback HTTP servers that imitate the five public
// sources closely enough that the same resolvers work on the real services
// and on the mirrors; only the hosts differ. Each server answers in the shapes
// of the real responses recorded in /work/shared/docs/wire-samples; where no
// real response was ever captured the code says so and what it follows
// instead.
//
// Every server sits behind a Counter (requests and body bytes) and a
// FaultHandler (latency, bandwidth cap, 429/503, resets, truncation,
// trickling, changed content), so tests can both measure and misbehave.
// The product never imports this package except where the demo wires it in.
package mirror

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Names of the servers, the keys of Mirrors.Counters and Mirrors.Faults.
const (
	NameEBIFTP        = "ebi-ftp"
	NameEPFL          = "epfl"
	NameEPFLDocs      = "epfl-docs"
	NameIDR           = "idr"
	NameEMPIAR        = "empiar"
	NameS3            = "s3"
	NameGCS           = "gcs"
	NameOpenOrganelle = "openorganelle"
	NameShortLink     = "shortlink"
)

var serverNames = []string{NameEBIFTP, NameEPFL, NameEPFLDocs, NameIDR, NameEMPIAR, NameS3, NameGCS, NameOpenOrganelle, NameShortLink}

// Default buckets; they exist even when Content puts nothing in them.
const (
	S3Bucket  = "janelia-cosem-datasets"
	GCSBucket = "neuroglancer-janelia-flyem-hemibrain"
)

// IDRImage is one image the IDR mirror knows.
type IDRImage struct {
	ID, DatasetID            int64
	DatasetName, ProjectName string
	Name                     string
	// ClientPath is the import path, /uod/idr/filesets/<study>/…; the file is
	// served by the EBI FTP mirror under /pub/databases/IDR/<study>/….
	// Empty means the idr0086 experimentD processed folder + Name.
	ClientPath string
	// Data is the TIFF bytes.
	Data []byte
	// Sizes and type; zero values are filled from the TIFF when it parses.
	SizeX, SizeY, SizeZ, SizeC, SizeT int
	PixelsType                        string
	// PhysicalSizeUM is x, y, z in µm; 0 = unknown (omitted from the JSON).
	PhysicalSizeUM [3]float64
	// ProjectID and DatasetDescription are optional extras for the JSON.
	ProjectID          int64
	DatasetDescription string
}

// Content is what the mirrors serve.
type Content struct {
	IDR      []IDRImage
	EMPIARID string // "11759"
	// EMPIARFiles are relative to world_availability/<id>/,
	// e.g. "data/F57-8_test1_3VBSED_slice_0000.dm3".
	EMPIARFiles map[string][]byte
	// EMPIAREntry is the API JSON body; nil = built from the wire-sample shape
	// with these files.
	EMPIAREntry []byte
	// EPFLFiles maps a file name to its bytes.
	EPFLFiles map[string][]byte
	// S3 and GCS map "bucket/key" to bytes.
	S3  map[string][]byte
	GCS map[string][]byte
}

// Options tune the mirrors.
type Options struct {
	// Faults is applied to every server; nil = none. Mirrors.Faults changes it
	// per server later.
	Faults *FaultConfig
	// Logf receives server errors and injected faults; nil = silent.
	Logf func(string, ...any)
}

// Mirrors are the running servers. The base URLs are http://127.0.0.1:port.
type Mirrors struct {
	EBIFTP, EPFL, EPFLDocs, IDR, EMPIAR, S3, GCS, OpenOrganelle, ShortLink string
	// Counters and Faults are keyed by the Name* constants.
	Counters map[string]*Counter
	Faults   map[string]*FaultHandler

	empiarID string
	servers  []*server
}

// EPFL constants: the real page path and the documents-host directory, whose
// name really starts with a space.
const (
	EPFLPagePath   = "/labs/cvlab/data/data-em/"
	EPFLJSPagePath = "/labs/cvlab/data/data-em-js/"
	EPFLDocsDir    = "/groups/c/cv/cvlab-unit/www/data/ ElectronMicroscopy_Hippocampus/"
)

// IDRImageURL is the link a person copies from IDR for an image.
func (m *Mirrors) IDRImageURL(iid, did int64) string {
	return fmt.Sprintf("%s/webclient/img_detail/%d/?dataset=%d", m.IDR, iid, did)
}

// IDRFileTreeURL replaces https://ftp.ebi.ac.uk/pub/databases/IDR/ (source.Env.IDRFileTree).
func (m *Mirrors) IDRFileTreeURL() string { return m.EBIFTP + "/pub/databases/IDR/" }

// EMPIAREntryURL is the entry page, like https://www.ebi.ac.uk/empiar/EMPIAR-11759/.
func (m *Mirrors) EMPIAREntryURL() string {
	return fmt.Sprintf("%s/empiar/EMPIAR-%s/", m.EMPIAR, m.empiarID)
}

// EMPIARFilesURL is the entry's file tree on the FTP mirror.
func (m *Mirrors) EMPIARFilesURL() string {
	return fmt.Sprintf("%s/empiar/world_availability/%s/", m.EBIFTP, m.empiarID)
}

// EPFLPageURL is the lab page; js selects the variant whose links only exist
// after its script runs.
func (m *Mirrors) EPFLPageURL(js bool) string {
	if js {
		return m.EPFL + EPFLJSPagePath
	}
	return m.EPFL + EPFLPagePath
}

// EPFLFileURL is the canonical (%20) URL of one file on the documents host.
func (m *Mirrors) EPFLFileURL(name string) string {
	return m.EPFLDocs + (&url.URL{Path: EPFLDocsDir + name}).EscapedPath()
}

// OpenOrganelleURL is the dataset page, like https://openorganelle.janelia.org/datasets/<name>.
func (m *Mirrors) OpenOrganelleURL(name string) string {
	return m.OpenOrganelle + "/datasets/" + url.PathEscape(name)
}

// ShortLinkURL stands in for https://tinyurl.com/hemibrain-ng.
func (m *Mirrors) ShortLinkURL() string { return m.ShortLink + "/hemibrain-ng" }

// Start builds the content and starts every server on 127.0.0.1. ctx's values
// reach every request's context, but its cancellation does not stop the
// servers: Close does (and cancels requests still running).
func Start(ctx context.Context, c Content, opt Options) (_ *Mirrors, err error) {
	if c.EMPIARID == "" {
		c.EMPIARID = "11759"
	}
	c.EMPIARID = strings.TrimPrefix(c.EMPIARID, "EMPIAR-")
	m := &Mirrors{Counters: map[string]*Counter{}, Faults: map[string]*FaultHandler{}, empiarID: c.EMPIARID}
	lns := map[string]net.Listener{}
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			m.Close()
		}
	}()
	base := map[string]string{}
	for _, n := range serverNames {
		ln, err := listen()
		if err != nil {
			return nil, err
		}
		lns[n] = ln
		base[n] = "http://" + ln.Addr().String()
	}
	m.EBIFTP, m.EPFL, m.EPFLDocs, m.IDR, m.EMPIAR = base[NameEBIFTP], base[NameEPFL], base[NameEPFLDocs], base[NameIDR], base[NameEMPIAR]
	m.S3, m.GCS, m.OpenOrganelle, m.ShortLink = base[NameS3], base[NameGCS], base[NameOpenOrganelle], base[NameShortLink]

	idr, err := newIDR(c.IDR, m.IDR)
	if err != nil {
		return nil, err
	}
	ebi, err := newEBITree(c, idr.images)
	if err != nil {
		return nil, err
	}
	epfl, err := newEPFLPage(c.EPFLFiles, m.EPFLDocs)
	if err != nil {
		return nil, err
	}
	empiar, err := newEMPIAR(c, m.EBIFTP)
	if err != nil {
		return nil, err
	}
	s3, err := newS3(c.S3)
	if err != nil {
		return nil, err
	}
	gcs, err := newGCS(c.GCS)
	if err != nil {
		return nil, err
	}
	short, err := newShortLink(m.ShortLink)
	if err != nil {
		return nil, err
	}
	handlers := map[string]http.Handler{
		NameEBIFTP:        apacheIndex{ebi},
		NameEPFL:          epfl,
		NameEPFLDocs:      newEPFLDocs(c.EPFLFiles),
		NameIDR:           idr,
		NameEMPIAR:        empiar,
		NameS3:            s3,
		NameGCS:           gcs,
		NameOpenOrganelle: openOrganelle{},
		NameShortLink:     short,
	}
	for _, n := range serverNames {
		s := serve(ctx, n, lns[n], handlers[n], opt)
		delete(lns, n)
		m.servers = append(m.servers, s)
		m.Counters[n] = s.counter
		m.Faults[n] = s.faults
	}
	return m, nil
}

// Close stops every server and waits for their handlers to return.
func (m *Mirrors) Close() {
	for _, s := range m.servers {
		s.close()
	}
	m.servers = nil
}
