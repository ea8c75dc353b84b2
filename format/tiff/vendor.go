package tiff

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/volume"
)

// Bounds on what vendor metadata may cost.
const (
	maxVendorText = 1 << 20 // bytes of one vendor tag read before parsing
	maxXMLLeaves  = 4096    // leaves kept from an XML tag
	maxXMLDepth   = 64      // element nesting an XML tag may use
	maxNumberText = 32      // longer INI values stay strings (hex dumps of zeros would parse as 0)
)

// vendorMeta is the vendor metadata of one page.
type vendorMeta struct {
	// fields are the free-form facts for Info.Metadata: each vendor's tag
	// tree ("fei", "zeiss_sem", ...) and facts no typed field holds.
	fields map[string]any
	acq    volume.Acquisition // what the vendors state about the acquisition
	scale  *vendorScale       // the pixel size the tags state, nil when none
	// noSpecimenScale is set when the vendor says the resolution tags are
	// not a specimen pixel size (JEOL diffraction and STEM: detector pitch).
	noSpecimenScale string
	warnings        []string
}

// vendorReader reads the private tags of one microscope vendor: it puts what
// the tags of d hold into vm and returns the pixel size they state, nil
// when none. Bad vendor data becomes a warning in vm, never an error.
type vendorReader func(r *reader, ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale

// vendors lists the vendor readers in the order rosettasciio (the upstream
// of the corpus' vendor rows) trusts their calibrations: FEI, Zeiss SEM,
// Olympus SIS, JEOL SightX, then DigitalMicrograph's export tags. The first
// that states a pixel size calibrates the page; acquisition facts that two
// vendors state are taken from the later one. Micro-Manager states no
// calibration.
func vendors() []vendorReader {
	return []vendorReader{
		(*reader).readFEI,
		(*reader).readZeiss,
		(*reader).readOlympus,
		(*reader).readJEOL,
		(*reader).readDMTIFF,
		(*reader).readMMPlane,
	}
}

// readVendor reads the vendor tags of d. Bad or unreadable vendor data never
// fails Open: it becomes a warning. Only a cancelled context is returned.
func (r *reader) readVendor(ctx context.Context, d *ifd) (*vendorMeta, error) {
	vm := &vendorMeta{fields: map[string]any{}}
	for _, read := range vendors() {
		if s := read(r, ctx, d, vm); s != nil && vm.scale == nil {
			vm.scale = s
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return vm, nil
}

// vendorText returns the text of the ASCII vendor tag of d, false when it
// is absent, empty or unreadable (which is a warning).
func (r *reader) vendorText(ctx context.Context, d *ifd, tag uint16, vm *vendorMeta) (string, bool) {
	e := d.find(tag)
	if e == nil {
		return "", false
	}
	s, err := r.ascii(ctx, d, e, maxVendorText)
	if err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", tag, err))
		return "", false
	}
	if e.nbytes() > maxVendorText {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %d bytes, parsed the first %d", tag, e.nbytes(), maxVendorText))
	}
	return s, s != ""
}

// positive returns v as a float64 when it is one, finite and above zero:
// the only values a vendor's pixel size may take.
func positive(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok && f > 0 && !math.IsInf(f, 0)
}

// latin1 converts DigitalMicrograph's Latin-1 text (µ is 0xB5) to UTF-8.
func latin1(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// parseINI parses "[Section]" / "key=value" text into section → key → value,
// values as float64 when they are finite numbers. Keys before any section go
// under "". Later duplicates win, as in Python's configparser-style readers.
func parseINI(s string) map[string]any {
	out := map[string]any{}
	var sec map[string]any
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			name := strings.TrimSpace(line[1 : len(line)-1])
			m, ok := out[name].(map[string]any)
			if !ok {
				m = map[string]any{}
				out[name] = m
			}
			sec = m
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if sec == nil {
			sec = map[string]any{}
			out[""] = sec
		}
		sec[strings.TrimSpace(k)] = iniValue(strings.TrimSpace(v))
	}
	return out
}

// iniValue returns v as a float64 when it is a short finite number, else v.
func iniValue(v string) any {
	if len(v) == 0 || len(v) > maxNumberText {
		return v
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return v
	}
	return f
}

// iniGet returns section/key of a parsed INI map.
func iniGet(ini map[string]any, section, key string) (any, bool) {
	sec, ok := ini[section].(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := sec[key]
	return v, ok
}

// iniString returns a non-empty string value of section/key.
func iniString(ini map[string]any, section, key string) (string, bool) {
	v, ok := iniGet(ini, section, key)
	s, _ := v.(string)
	return s, ok && s != ""
}

// parseFirst parses s with the first layout that fits.
func parseFirst(s string, layouts ...string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseXMLLeaves flattens XML into leaf path → text, e.g.
// "Metadata/Acquisition/AcquisitionDatetime". A repeated path gets "[n]"
// appended from its second occurrence. Leaves past maxXMLLeaves are dropped
// and reported in the error, as is malformed XML (the leaves read so far are kept).
func parseXMLLeaves(s string) (map[string]any, error) {
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = false
	out := map[string]any{}
	seen := map[string]int{}
	var path []string
	var text strings.Builder
	leaf := true
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) >= maxXMLDepth {
				return out, fmt.Errorf("elements nested deeper than %d", maxXMLDepth)
			}
			path = append(path, t.Name.Local)
			text.Reset()
			leaf = true
		case xml.CharData:
			if text.Len() < maxVendorText {
				text.Write(t)
			}
		case xml.EndElement:
			if len(path) == 0 {
				continue
			}
			if leaf {
				if len(out) >= maxXMLLeaves {
					return out, fmt.Errorf("more than %d leaves", maxXMLLeaves)
				}
				p := strings.Join(path, "/")
				if n := seen[p]; n > 0 {
					seen[p] = n + 1
					p = fmt.Sprintf("%s[%d]", p, n)
				} else {
					seen[p] = 1
				}
				out[p] = iniValue(strings.TrimSpace(text.String()))
			}
			path = path[:len(path)-1]
			leaf = false
			text.Reset()
		}
	}
}

// isoDateTime normalises an ISO 8601 timestamp, with any number of
// fraction digits and an optional zone offset, to whole seconds.
func isoDateTime(s string) (string, bool) {
	if t, ok := parseFirst(s, time.RFC3339Nano); ok {
		return t.Format("2006-01-02T15:04:05Z07:00"), true
	}
	if t, ok := parseFirst(s, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"); ok {
		return t.Format("2006-01-02T15:04:05"), true
	}
	return "", false
}

// addTo copies the vendor metadata into md, the acquisition facts as
// Acquisition.AddTo shows them.
func (vm *vendorMeta) addTo(md map[string]any) {
	if vm == nil {
		return
	}
	for k, v := range vm.fields {
		md[k] = v
	}
	vm.acq.AddTo(md)
	if len(vm.warnings) > 0 {
		md["vendor_warnings"] = vm.warnings
	}
}

// vendorScale is the pixel size a vendor tag states, and where it came from.
type vendorScale struct {
	y, x       float64 // pixel height and width in unit
	yOff, xOff float64 // physical position of the first pixel, in unit
	unit       string
	source     string
}

// metres states a pixel size given in metres in µm or nm, whichever reads
// better; nil when a size is not a finite positive length in that unit.
func metres(y, x float64, source string) *vendorScale {
	s := &vendorScale{y: y * 1e9, x: x * 1e9, unit: "nm", source: source}
	if x >= 1e-6 {
		s = &vendorScale{y: y * 1e6, x: x * 1e6, unit: "µm", source: source}
	}
	for _, v := range []float64{s.y, s.x} {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil
		}
	}
	return s
}

// acquisition returns what the vendor tags state about the acquisition.
func (vm *vendorMeta) acquisition() volume.Acquisition {
	if vm == nil {
		return volume.Acquisition{}
	}
	return vm.acq
}
