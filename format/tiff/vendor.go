package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
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

// Private tags of microscope vendors whose metadata the reader surfaces.
const (
	tagFEISFEG       = 34682 // Thermo/FEI SEM: INI text
	tagFEIHelios     = 34683 // Thermo/FEI Helios: XML
	tagCZSEM         = 34118 // Zeiss SEM: "AP_KEY\nLabel = value unit" lines
	tagMicroManager  = 51123 // Micro-Manager per-plane JSON
	tagOlympusSIS    = 33560 // Olympus SIS: offset of a binary block
	tagOlympusSISINI = 33471 // Olympus SIS: INI text
	tagGatanFirst    = 65003 // DigitalMicrograph TIFF export: scalar tags
	tagGatanLast     = 65100
)

// Bounds on what vendor metadata may cost.
const (
	maxVendorText = 1 << 20 // bytes of one vendor tag read before parsing
	maxXMLLeaves  = 4096    // leaves kept from an XML tag
	maxXMLDepth   = 64      // element nesting an XML tag may use
	maxNumberText = 32      // longer INI values stay strings (hex dumps of zeros would parse as 0)
	maxGatanText  = 256     // bytes of one Gatan ASCII tag
)

// vendorMeta is the vendor metadata of one page, ready for Info.Metadata.
type vendorMeta struct {
	fields  map[string]any // "fei", "fei_helios", "zeiss_sem", ...
	derived map[string]any // "microscope", "voltage_kv", "acquisition_datetime"
	scale   *vendorScale   // the pixel size the tags state, nil when none
	jeol    *vendorScale   // the JEOL SightX calibration, ranked by pixelSize
	// noSpecimenScale is set when the vendor says the resolution tags are
	// not a specimen pixel size (JEOL diffraction and STEM: detector pitch).
	noSpecimenScale string
	warnings        []string
}

// readVendor reads the vendor tags of d. Bad or unreadable vendor data never
// fails Open: it becomes a warning. Only a cancelled context is returned.
func (r *reader) readVendor(ctx context.Context, d *ifd) (*vendorMeta, error) {
	vm := &vendorMeta{fields: map[string]any{}, derived: map[string]any{}}
	text := func(tag uint16) (string, bool) {
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
	if s, ok := text(tagFEISFEG); ok {
		ini := parseINI(s)
		vm.fields["fei"] = ini
		feiDerived(ini, vm.derived)
	}
	if s, ok := text(tagFEIHelios); ok {
		leaves, err := parseXMLLeaves(s)
		if err != nil {
			vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (FEI_HELIOS XML): %v", tagFEIHelios, err))
		}
		if len(leaves) > 0 {
			vm.fields["fei_helios"] = leaves
			heliosDerived(leaves, vm.derived)
		}
	}
	if s, ok := text(tagCZSEM); ok {
		if kv := parseCZSEM(s); len(kv) > 0 {
			vm.fields["zeiss_sem"] = kv
			czsemDerived(kv, vm.derived)
		} else {
			vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (CZ_SEM): not key/value text", tagCZSEM))
		}
	}
	if s, ok := text(tagMicroManager); ok {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (Micro-Manager JSON): %v", tagMicroManager, err))
		} else {
			vm.fields["micromanager"] = v
		}
	}
	if s, ok := text(tagOlympusSISINI); ok {
		vm.fields["olympus_sis_ini"] = parseINI(s)
	}
	if e := d.find(tagOlympusSIS); e != nil && isInteger(e.typ) {
		off, err := r.uint1(ctx, d, tagOlympusSIS, 0)
		var sis map[string]any
		if err == nil {
			sis, err = r.readSIS(ctx, off)
		}
		if err != nil {
			vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (Olympus SIS): %v", tagOlympusSIS, err))
		} else {
			vm.fields["olympus_sis"] = sis
			if m, ok := sis["magnification"].(float64); ok && m > 0 {
				vm.derived["magnification"] = m
			}
		}
	}
	r.readJEOL(ctx, d, vm)
	if g := r.gatanTags(ctx, d, vm); len(g) > 0 {
		vm.fields["gatan_tiff"] = g
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vm.scale = vm.pixelSize()
	return vm, nil
}

// gatanTags returns the scalar private tags DigitalMicrograph's TIFF export
// writes (units, origins, scales), keyed by tag number; tifffile has no names
// for them, so neither do we.
func (r *reader) gatanTags(ctx context.Context, d *ifd, vm *vendorMeta) map[string]any {
	out := map[string]any{}
	for i := range d.entries {
		e := &d.entries[i]
		if e.tag < tagGatanFirst || e.tag > tagGatanLast {
			continue
		}
		key := strconv.Itoa(int(e.tag))
		switch {
		case e.typ == typeASCII && e.count <= maxGatanText:
			s, err := r.ascii(ctx, d, e, maxGatanText)
			if err != nil {
				vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", e.tag, err))
				continue
			}
			out[key] = latin1(s)
		case e.count == 1 && (e.typ == typeDouble || e.typ == typeFloat):
			b, err := r.raw(ctx, d, e, 8)
			if err != nil {
				vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", e.tag, err))
				continue
			}
			var f float64
			if e.typ == typeDouble {
				f = math.Float64frombits(r.bo.Uint64(b))
			} else {
				f = float64(math.Float32frombits(r.bo.Uint32(b)))
			}
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				out[key] = f
			}
		case e.count == 1 && isInteger(e.typ) && e.typ != typeUndefined:
			v, err := r.raw(ctx, d, e, 8)
			if err != nil {
				vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", e.tag, err))
				continue
			}
			u, err := decodeUints(r.bo, e.typ, v)
			if err != nil || len(u) != 1 {
				continue
			}
			switch e.typ {
			case typeSLong:
				out[key] = int64(int32(u[0]))
			case typeSShort:
				out[key] = int64(int16(u[0]))
			case typeSByte:
				out[key] = int64(int8(u[0]))
			case typeSLong8:
				out[key] = int64(u[0])
			default:
				out[key] = u[0]
			}
		}
	}
	return out
}

// readSIS parses the Olympus SIS block at off as tifffile's read_sis does:
// a 60-byte header ("SIS0", acquisition minute/hour/day/month/year, name,
// sub-block count) and 8-byte sub-block entries, of which type 1 holds the
// calibration. Everything is little-endian whatever the file's byte order.
func (r *reader) readSIS(ctx context.Context, off uint64) (map[string]any, error) {
	const headSize, maxBlocks, calSize = 60, 256, 112
	if off > uint64(r.size) {
		return nil, fmt.Errorf("offset %d outside the file: %w", off, errCorrupt)
	}
	h, err := r.readAt(ctx, int64(off), headSize)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != "SIS0" {
		return nil, fmt.Errorf("no SIS0 magic at %d: %w", off, errCorrupt)
	}
	le := binary.LittleEndian
	i16 := func(b []byte) int { return int(int16(le.Uint16(b))) }
	minute, hour, day, month, year := i16(h[10:]), i16(h[12:]), i16(h[14:]), i16(h[16:]), i16(h[18:])
	out := map[string]any{"offset": off}
	if name := cString(h[26:58]); name != "" {
		out["name"] = name
	}
	t := time.Date(1900+year, time.Month(month+1), day, hour, minute, 0, 0, time.UTC)
	if month >= 0 && month < 12 && day >= 1 && day <= 31 && hour >= 0 && hour < 24 && minute >= 0 && minute < 60 && t.Day() == day {
		out["datetime"] = t.Format("2006-01-02T15:04")
	}
	n := i16(h[58:])
	if n < 0 || n > maxBlocks {
		return nil, fmt.Errorf("%d sub-blocks: %w", n, errCorrupt)
	}
	tab, err := r.readAt(ctx, int64(off)+headSize, int64(n)*8)
	if err != nil {
		return nil, err
	}
	for i := range n {
		e := tab[i*8:]
		if i16(e) != 1 {
			continue
		}
		b, err := r.readAt(ctx, int64(le.Uint32(e[4:])), calSize)
		if err != nil {
			return nil, err
		}
		m := math.Pow(10, float64(i16(b[10:])))
		for k, f := range map[string]float64{
			"pixel_size_x_m": math.Float64frombits(le.Uint64(b[12:])) * m,
			"pixel_size_y_m": math.Float64frombits(le.Uint64(b[20:])) * m,
			"magnification":  math.Float64frombits(le.Uint64(b[36:])),
		} {
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				out[k] = f
			}
		}
		if s := cString(b[46:80]); s != "" {
			out["camera_name"] = s
		}
		if s := cString(b[80:112]); s != "" {
			out["picture_type"] = s
		}
		break
	}
	return out, nil
}

// cString returns the Latin-1 text of b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(latin1(string(b)))
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

// feiDerived fills the catalog's common keys from FEI INI metadata.
func feiDerived(ini map[string]any, out map[string]any) {
	for _, k := range []string{"SystemType", "Type"} {
		if s, ok := iniString(ini, "System", k); ok {
			out["microscope"] = s
			break
		}
	}
	for _, sec := range []string{"EBeam", "Beam"} {
		if v, ok := iniGet(ini, sec, "HV"); ok {
			if f, ok := v.(float64); ok {
				out["voltage_kv"] = f / 1000
				break
			}
		}
	}
	date, _ := iniString(ini, "User", "Date")
	clock, _ := iniString(ini, "User", "Time")
	if t, ok := parseFirst(date+" "+clock, "01/02/2006 03:04:05 PM", "01/02/2006 15:04:05"); ok {
		out["acquisition_datetime"] = t.Format("2006-01-02T15:04:05")
	} else if s, ok := iniString(ini, "PrivateFei", "TimeOfCreation"); ok {
		if t, ok := parseFirst(s, "02.01.2006 15:04:05"); ok {
			out["acquisition_datetime"] = t.Format("2006-01-02T15:04:05")
		}
	}
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

// heliosDerived fills the common keys from FEI Helios XML leaves.
func heliosDerived(leaves map[string]any, out map[string]any) {
	for p, v := range leaves {
		s, ok := v.(string)
		if !ok || !strings.HasSuffix(p, "/AcquisitionDatetime") && p != "AcquisitionDatetime" {
			continue
		}
		if d, ok := isoDateTime(s); ok {
			out["acquisition_datetime"] = d
		}
		return
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

// parseCZSEM parses Zeiss SEM text: an "AP_NAME" line followed by a
// "Label = value unit" (or "Label :value") line, into lowercased name →
// {"label", "value", "unit"}. Value is float64 when it parses.
func parseCZSEM(s string) map[string]any {
	out := map[string]any{}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' })
	for i := 0; i+1 < len(lines); i++ {
		name := strings.TrimSpace(lines[i])
		if !czsemName(name) {
			continue
		}
		label, val, ok := strings.Cut(lines[i+1], "=")
		if !ok {
			label, val, ok = strings.Cut(lines[i+1], ":")
		}
		if !ok {
			continue
		}
		i++
		entry := map[string]any{"label": strings.TrimSpace(label)}
		val = strings.TrimSpace(val)
		entry["value"] = val
		// "2.233 nm" is a number and a unit; "25 Jan 2015" is neither.
		num, unit, _ := strings.Cut(val, " ")
		unit = strings.TrimSpace(unit)
		if f, ok := iniValue(num).(float64); ok && !strings.Contains(unit, " ") {
			entry["value"] = f
			if unit != "" {
				entry["unit"] = unit
			}
		}
		out[strings.ToLower(name)] = entry
	}
	return out
}

// czsemName reports whether s looks like a Zeiss parameter name (AP_…, DP_…, SV_…).
func czsemName(s string) bool {
	if len(s) < 4 || s[2] != '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// czsemDerived fills the common keys from Zeiss SEM metadata.
func czsemDerived(kv map[string]any, out map[string]any) {
	get := func(k string) (map[string]any, bool) {
		m, ok := kv[k].(map[string]any)
		return m, ok
	}
	for _, k := range []string{"ap_actualkv", "ap_manualkv"} {
		m, _ := get(k)
		f, ok := m["value"].(float64)
		if !ok {
			continue
		}
		if u := m["unit"]; u == "kV" || u == nil {
			out["voltage_kv"] = f
			break
		} else if u == "V" {
			out["voltage_kv"] = f / 1000
			break
		}
	}
	if m, ok := get("sv_instrument_id"); ok {
		if s, ok := m["value"].(string); ok && s != "" {
			out["microscope"] = s
		}
	}
	dm, ok1 := get("ap_date")
	tm, ok2 := get("ap_time")
	if ok1 {
		date, _ := dm["value"].(string)
		clock := ""
		if ok2 {
			clock, _ = tm["value"].(string)
		}
		if t, ok := parseFirst(date+" "+clock, "2 Jan 2006 15:04:05", "02 Jan 2006 15:04:05"); ok {
			out["acquisition_datetime"] = t.Format("2006-01-02T15:04:05")
		} else if t, ok := parseFirst(date, "2 Jan 2006", "02 Jan 2006"); ok {
			out["acquisition_datetime"] = t.Format("2006-01-02")
		}
	}
}

// addTo copies the vendor metadata into md. Derived keys never replace
// ones already set.
func (vm *vendorMeta) addTo(md map[string]any) {
	if vm == nil {
		return
	}
	for k, v := range vm.fields {
		md[k] = v
	}
	for k, v := range vm.derived {
		if _, ok := md[k]; !ok {
			md[k] = v
		}
	}
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

// pixelSize picks the vendor calibration in the order rosettasciio (the
// upstream of the corpus' vendor rows) trusts them: FEI, Zeiss SEM, Olympus
// SIS, JEOL SightX, then DigitalMicrograph's export tags. Values must be
// finite and positive in a known length unit; anything else states no
// calibration.
func (vm *vendorMeta) pixelSize() *vendorScale {
	pos := func(v any) (float64, bool) {
		f, ok := v.(float64)
		return f, ok && f > 0 && !math.IsInf(f, 0)
	}
	if ini, ok := vm.fields["fei"].(map[string]any); ok {
		w, okW := iniGet(ini, "Scan", "PixelWidth")
		h, okH := iniGet(ini, "Scan", "PixelHeight")
		if x, ok := pos(w); ok && okW {
			y, ok := pos(h)
			if !ok || !okH {
				y = x
			}
			return metres(y, x, fmt.Sprintf("FEI tag %d [Scan] PixelWidth/PixelHeight", tagFEISFEG))
		}
	}
	if kv, ok := vm.fields["zeiss_sem"].(map[string]any); ok {
		for _, k := range []string{"ap_image_pixel_size", "ap_pixel_size"} {
			m, _ := kv[k].(map[string]any)
			f, ok := pos(m["value"])
			unit, _ := m["unit"].(string)
			if _, known := volume.NanometresPer(unit); ok && known {
				return &vendorScale{y: f, x: f, unit: unit, source: fmt.Sprintf("Zeiss tag %d %s", tagCZSEM, strings.ToUpper(k))}
			}
		}
	}
	if sis, ok := vm.fields["olympus_sis"].(map[string]any); ok {
		x, okX := pos(sis["pixel_size_x_m"])
		y, okY := pos(sis["pixel_size_y_m"])
		if okX && okY {
			return metres(y, x, fmt.Sprintf("Olympus SIS tag %d pixel size", tagOlympusSIS))
		}
	}
	if vm.jeol != nil {
		return vm.jeol
	}
	if g, ok := vm.fields["gatan_tiff"].(map[string]any); ok {
		x, okX := pos(g["65009"])
		y, okY := pos(g["65010"])
		ux, _ := g["65003"].(string)
		uy, _ := g["65004"].(string)
		if _, known := volume.NanometresPer(ux); okX && okY && known && ux == uy {
			s := &vendorScale{y: y, x: x, unit: ux, source: "DigitalMicrograph tags 65009/65010 (scale), 65003/65004 (unit), 65006/65007 (origin)"}
			s.xOff, _ = g["65006"].(float64)
			s.yOff, _ = g["65007"].(float64)
			return s
		}
	}
	return nil
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

// jeolRoot is the root element of the XML JEOL SightX writes as the
// ImageDescription of its TIFFs.
const jeolRoot = "TemReporter"

// readJEOL reads the TemReporter XML of a JEOL SightX TIFF: a file whose
// Make (SightX writes "JEOL Ltd.") or Software names JEOL and whose
// ImageDescription is that XML. Its leaves go under "jeol_sightx", the
// common keys into derived, and a TEM image's calibration into vm.jeol.
// Only a synthetic file built from rosettasciio's reader has been seen.
func (r *reader) readJEOL(ctx context.Context, d *ifd, vm *vendorMeta) {
	isJEOL := func(tag uint16) bool {
		s, err := r.ascii(ctx, d, d.find(tag), 256)
		return err == nil && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "JEOL")
	}
	e := d.find(tagImageDescription)
	if e == nil || e.typ != typeASCII || !(isJEOL(tagMake) || isJEOL(tagSoftware)) {
		return
	}
	// Read the bytes as they are: SightX text may hold NULs and \x01
	// around its lines, which ascii would cut at.
	b, err := r.raw(ctx, d, e, maxVendorText)
	if err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (JEOL TemReporter): %v", tagImageDescription, err))
		return
	}
	text := jeolXML(string(b))
	if !strings.Contains(text, "<"+jeolRoot) {
		return // another JEOL writer: Make and Software are in the metadata anyway
	}
	leaves, err := parseXMLLeaves(text)
	if err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (JEOL TemReporter XML): %v", tagImageDescription, err))
	}
	if len(leaves) == 0 {
		return
	}
	vm.fields["jeol_sightx"] = leaves
	jeolDerived(leaves, vm.derived)
	xn, xd, okX, errX := r.rational(ctx, d, tagXResolution)
	yn, yd, okY, errY := r.rational(ctx, d, tagYResolution)
	unit, errU := r.uint1(ctx, d, tagResolutionUnit, 2)
	if err := errors.Join(errX, errY, errU); err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("JEOL calibration: %v", err))
		return
	}
	if !okY {
		yn, yd = xn, xd
	}
	if okX {
		vm.jeol = jeolScale(leaves, [2]uint32{yn, yd}, [2]uint32{xn, xd}, unit)
		if vm.jeol == nil {
			vm.noSpecimenScale = "JEOL SightX: no specimen calibration for this mode; X/YResolution is the detector pitch"
			vm.warnings = append(vm.warnings, vm.noSpecimenScale)
		}
	}
}

// jeolXML undoes SightX's framing of the XML: every line is trimmed of
// blanks, NULs and \x01 and the lines are joined, as rosettasciio does.
func jeolXML(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		b.WriteString(strings.Trim(line, " \r\n\t\x01\x00"))
	}
	return b.String()
}

// jeolLeaf returns the TemReporter leaf at path (below the root).
func jeolLeaf(leaves map[string]any, path string) any {
	return leaves[jeolRoot+"/"+path]
}

// jeolDerived fills the common keys from TemReporter leaves, mapped as
// rosettasciio maps them: Instruments is the microscope, the electron
// gun's AccelerationVoltage is in volts, and the imaging system's
// SelectorValue is the magnification, or in diffraction (ModeString DIFF)
// the camera length in SelectorUnitString.
func jeolDerived(leaves map[string]any, out map[string]any) {
	if s, ok := jeolLeaf(leaves, "Instruments").(string); ok && s != "" {
		out["microscope"] = s
	}
	if v, ok := jeolLeaf(leaves, "ElectronGun/AccelerationVoltage").(float64); ok && v > 0 {
		out["voltage_kv"] = v / 1000
	}
	if s, ok := jeolLeaf(leaves, "DateTime").(string); ok {
		if d, ok := isoDateTime(s); ok {
			out["acquisition_datetime"] = d
		}
	}
	if s, ok := jeolLeaf(leaves, "Eos/EosMode").(string); ok && s != "" {
		// STEM is "modeASID" in rosettasciio's scale code, "eosASID" in its mapping.
		out["acquisition_mode"] = "TEM"
		if strings.HasSuffix(s, "ASID") {
			out["acquisition_mode"] = "STEM"
		}
	}
	v, ok := jeolLeaf(leaves, "ImageFormingSystem/SelectorValue").(float64)
	if !ok || v <= 0 {
		return
	}
	if jeolLeaf(leaves, "ImageFormingSystem/ModeString") == "DIFF" {
		out["camera_length"] = v
		if u, ok := jeolLeaf(leaves, "ImageFormingSystem/SelectorUnitString").(string); ok && u != "" {
			out["camera_length_unit"] = u
		}
		return
	}
	out["magnification"] = v
}

// jeolScale is the specimen pixel size of a SightX TEM image in
// magnification mode: the resolution tags give the detector's pixel pitch
// (per inch when ResolutionUnit is 2, else per centimetre, as rosettasciio
// reads them), divided by the magnification. Diffraction patterns are in
// reciprocal space and STEM images state no pitch this way: nil.
func jeolScale(leaves map[string]any, yres, xres [2]uint32, resUnit uint64) *vendorScale {
	if jeolLeaf(leaves, "Eos/EosMode") != "eosTEM" || jeolLeaf(leaves, "ImageFormingSystem/ModeString") != "MAG" {
		return nil
	}
	mag, ok := jeolLeaf(leaves, "ImageFormingSystem/SelectorValue").(float64)
	if !ok || !(mag > 0) || math.IsInf(mag, 0) || xres[0] == 0 || xres[1] == 0 || yres[0] == 0 || yres[1] == 0 {
		return nil
	}
	perUnit, unitName := 0.01, "cm"
	if resUnit == 2 {
		perUnit, unitName = 0.0254, "inch"
	}
	x := float64(xres[1]) / float64(xres[0]) * perUnit / mag
	y := float64(yres[1]) / float64(yres[0]) * perUnit / mag
	return metres(y, x, fmt.Sprintf("JEOL SightX: 1/X,YResolution (per %s) / TemReporter magnification %g", unitName, mag))
}
