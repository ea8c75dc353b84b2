package dm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imgdataset/imgdataset/volume"
)

// imageTags returns the ImageTags group of one ImageList entry, an empty
// group when it has none.
func imageTags(im *Tag) *Tag {
	if tags := im.Lookup("ImageTags"); tags != nil {
		return tags
	}
	return &Tag{Group: true}
}

// acquisition returns what one ImageList entry states about its acquisition.
func acquisition(im *Tag, shape []int64) volume.Acquisition {
	return readAcquisition(imageTags(im), len(shape), map[string]any{})
}

// readAcquisition reads the acquisition facts of an image of the given rank
// from its ImageTags; notes gets where they were read and the raw values
// they were read from (microscope_source, acquisition_date_raw, ...).
func readAcquisition(tags *Tag, rank int, notes map[string]any) volume.Acquisition {
	var a volume.Acquisition
	for _, p := range []string{"Session Info.Microscope", "Microscope Info.Name", "Microscope Info.Microscope"} {
		if s, ok := tags.String(p); ok && strings.TrimSpace(s) != "" && s != "[]" {
			a.Microscope = strings.TrimSpace(s)
			notes["microscope_source"] = "ImageTags." + p
			break
		}
	}
	if v, ok := tags.Float("Microscope Info.Voltage"); ok && v > 0 {
		a.VoltageKV = v / 1000
	}
	if s, ok := tags.String("Microscope Info.Illumination Mode"); ok && s != "" {
		// The rsciio mapping: anything mentioning STEM or SEM is that, else TEM.
		switch {
		case strings.Contains(s, "STEM"):
			a.Mode = "STEM"
		case strings.Contains(s, "SEM"):
			a.Mode = "SEM"
		default:
			a.Mode = "TEM"
		}
	}
	a.ZSpacing = zSpacing(tags, rank)
	a.DateTime = acquisitionTime(tags, notes)
	return a
}

// metadata gathers the facts of one ImageList entry for Info.Metadata
// (formats.md §3.4): the acquisition facts as Acquisition.AddTo shows them
// and the free-form facts around them. Keys are stable snake_case names;
// every value is JSON-encodable.
func metadata(im *Tag, shape []int64) map[string]any {
	m := map[string]any{}
	tags := imageTags(im)
	readAcquisition(tags, len(shape), m).AddTo(m)
	// In diffraction the "magnification" fields hold the camera length (mm),
	// as rsciio maps them.
	// STEM reports Imaging Mode DIFFRACTION while scanning, so there only the
	// Operation Mode counts.
	imaging, _ := tags.String("Microscope Info.Imaging Mode")
	operation, _ := tags.String("Microscope Info.Operation Mode")
	illumination, _ := tags.String("Microscope Info.Illumination Mode")
	diffraction := strings.EqualFold(operation, "DIFFRACTION") ||
		(strings.EqualFold(imaging, "DIFFRACTION") && operation == "" && !strings.Contains(illumination, "STEM"))
	if v, ok := tags.Float("Microscope Info.STEM Camera Length"); ok && v > 0 {
		m["camera_length"] = v
		m["camera_length_source"] = "ImageTags.Microscope Info.STEM Camera Length"
	}
	if v, ok := tags.Float("Microscope Info.Indicated Magnification"); ok {
		if !diffraction {
			m["indicated_magnification"] = v
		} else if _, set := m["camera_length"]; !set {
			m["camera_length"] = v
			m["camera_length_source"] = "ImageTags.Microscope Info.Indicated Magnification (diffraction)"
		}
	}
	if v, ok := tags.Float("Microscope Info.Actual Magnification"); ok && !diffraction {
		m["actual_magnification"] = v
	}
	for p, k := range map[string]string{"Meta Data.Format": "signal_format", "Meta Data.Signal": "signal"} {
		if s, ok := tags.String(p); ok && s != "" {
			m[k] = s
		}
	}
	for p, k := range map[string]string{
		"Microscope Info.Illumination Mode": "illumination_mode",
		"Microscope Info.Imaging Mode":      "imaging_mode",
		"Session Info.Operator":             "operator",
		"Session Info.Specimen":             "specimen",
		"DataBar.Device Name":               "device_name",
	} {
		if s, ok := tags.String(p); ok && s != "" {
			m[k] = s
		}
	}
	if v, ok := tags.Float("DataBar.Exposure Time (s)"); ok {
		m["exposure_time_s"] = v
	}
	if v, ok := tags.Float("DigiScan.Sample Time"); ok {
		m["digiscan_sample_time_us"] = v
	}
	if b := im.Lookup("ImageData.Calibrations.Brightness"); b != nil {
		ic := map[string]any{}
		if v, ok := b.Float("Origin"); ok {
			ic["origin"] = v
		}
		if v, ok := b.Float("Scale"); ok {
			ic["scale"] = v
		}
		if s, ok := b.String("Units"); ok {
			ic["units"] = s
		}
		if len(ic) > 0 {
			m["intensity_calibration"] = ic
		}
	}
	if v, ok := im.Float("ImageData.PixelDepth"); ok {
		m["pixel_depth"] = int(v)
	}
	return m
}

// zSpacing returns the section spacing of a 2-D slice of a serial-section
// stack, which 3View files keep in "Meta Data.Dimension info.<rank>".
func zSpacing(tags *Tag, rank int) volume.Spacing {
	if rank != 2 {
		return volume.Spacing{}
	}
	p := "Meta Data.Dimension info." + strconv.Itoa(rank)
	d := tags.Lookup(p)
	if d == nil {
		return volume.Spacing{}
	}
	scale, ok := d.Float("Scale")
	unit, _ := d.String("Units")
	if !ok || unit == "" || scale <= 0 {
		return volume.Spacing{}
	}
	return volume.Spacing{Value: scale, Unit: unit, Source: "ImageTags." + p}
}

// acquisitionTime returns the locale-formatted DataBar date and time in
// ISO 8601, "" when the tags hold none, and notes in m what it was read
// from and how. A slash date with both fields ≤ 12 is ambiguous; an unambiguous
// reference settles it: a ctime-style timestamp elsewhere in the tags
// (DigiScan writes one) or the Windows FILETIME "Acquisition Time (OS)".
func acquisitionTime(tags *Tag, m map[string]any) string {
	// EELS spectra written without a DataBar keep the date in the EELS group.
	var dateRaw, timeRaw, datePath string
	for _, p := range [][2]string{{"DataBar.Acquisition Date", "DataBar.Acquisition Time"}, {"EELS.Acquisition.Date", "EELS.Acquisition.Start time"}} {
		if s, ok := tags.String(p[0]); ok && s != "" {
			dateRaw, datePath = s, "ImageTags."+p[0]
			timeRaw, _ = tags.String(p[1])
			break
		}
	}
	if dateRaw != "" {
		m["acquisition_date_raw"] = dateRaw
	}
	if timeRaw != "" {
		m["acquisition_time_raw"] = timeRaw
	}
	var refs []reference
	if p, ts, ok := findTimestamp(tags, "ImageTags", 0); ok {
		refs = append(refs, reference{p, ts})
		m["timestamp"] = ts.Format("2006-01-02T15:04:05")
		m["timestamp_source"] = p
	}
	if ft, ok := tags.Float("DataBar.Acquisition Time (OS)"); ok {
		if ts, ok := fromFiletime(ft); ok {
			refs = append(refs, reference{"ImageTags.DataBar.Acquisition Time (OS)", ts})
			m["acquisition_time_os_utc"] = ts.Format("2006-01-02T15:04:05Z")
		}
	}
	cands, how := parseDate(dateRaw)
	clock, clockOK := parseClock(timeRaw)
	var d time.Time
	var source string
	switch {
	case len(cands) == 2:
		// Ambiguous: keep the reading within a day of a reference, else US order.
		d, source = cands[0], datePath+" (ambiguous, assumed M/D/Y)"
		for _, r := range refs {
			near0, near1 := nearDay(cands[0], r.t), nearDay(cands[1], r.t)
			if near0 != near1 {
				if near1 {
					d = cands[1]
				}
				source = datePath + " (ambiguous, resolved by " + r.path + ")"
				break
			}
		}
	case len(cands) == 1:
		d, source = cands[0], datePath+" ("+how+")"
	case len(refs) > 0:
		// No usable DataBar date: the first reference gives date and time
		// (a FILETIME is UTC, which the source name says).
		d, source = refs[0].t, refs[0].path
		clock, clockOK = refs[0].t, true
	default:
		return ""
	}
	for _, r := range refs {
		if !nearDay(d, r.t) {
			m["acquisition_datetime_conflict"] = fmt.Sprintf("date %q read as %s, but %s is %s",
				dateRaw, d.Format("2006-01-02"), r.path, r.t.Format("2006-01-02T15:04:05"))
			break
		}
	}
	date := d.Format("2006-01-02")
	m["acquisition_date"] = date
	m["acquisition_datetime_source"] = source
	if !clockOK {
		return date
	}
	t := clock.Format("15:04:05")
	m["acquisition_time"] = t
	return date + "T" + t
}

type reference struct {
	path string
	t    time.Time
}

// nearDay reports whether the calendar day d is within a day of t, which
// allows for a UTC reference against a local date.
func nearDay(d, t time.Time) bool {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	diff := d.Sub(day)
	return diff >= -24*time.Hour && diff <= 24*time.Hour
}

// fromFiletime converts a Windows FILETIME (100 ns ticks since 1601, UTC).
func fromFiletime(ft float64) (time.Time, bool) {
	const epochDiff = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	s := ft/1e7 - epochDiff
	if s < 0 || s > 1e10 { // before 1970 or after 2286: not a timestamp
		return time.Time{}, false
	}
	return time.Unix(int64(s), 0).UTC(), true
}

// findTimestamp looks below t for a string tag holding a ctime-style
// timestamp ("Mon Jun 11 22:26:45 2018"), which names its month and is
// therefore unambiguous.
func findTimestamp(t *Tag, at string, depth int) (string, time.Time, bool) {
	if depth > 8 {
		return "", time.Time{}, false
	}
	for i, c := range t.Children {
		name := c.Name
		if name == "" {
			name = strconv.Itoa(i)
		}
		p := at + "." + name
		if c.Group {
			if q, ts, ok := findTimestamp(c, p, depth+1); ok {
				return q, ts, true
			}
			continue
		}
		if s, ok := c.Value.(string); ok && len(s) < 64 {
			s = strings.Join(strings.Fields(s), " ")
			for _, layout := range []string{"Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04:05.000 2006"} {
				if ts, err := time.Parse(layout, s); err == nil {
					return p, ts, true
				}
			}
		}
	}
	return "", time.Time{}, false
}

// parseDate reads a DataBar date and returns the day at midnight UTC and how
// it was read: "ISO", "D.M.Y" (dotted dates are day first in every locale
// that uses them), "D/M/Y" or "M/D/Y" when one field exceeds 12, or "month
// name". An ambiguous slash date returns two candidates, M/D/Y (the US layout
// DM writes by default) first and D/M/Y second.
func parseDate(s string) ([]time.Time, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ""
	}
	for _, layout := range []string{"Monday, January 2, 2006", "Monday, 2 January 2006", "Mon, Jan 2, 2006",
		"January 2, 2006", "Jan 2, 2006", "2 January 2006", "2 Jan 2006", "02-Jan-2006", "2-Jan-2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return []time.Time{t}, "month name"
		}
	}
	sep := ""
	for _, c := range []string{".", "/", "-"} {
		if strings.Count(s, c) == 2 {
			sep = c
			break
		}
	}
	if sep == "" {
		return nil, ""
	}
	parts := strings.Split(s, sep)
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 || v > 9999 {
			return nil, ""
		}
		n[i] = v
	}
	if len(strings.TrimSpace(parts[0])) == 4 {
		return dates("ISO", [3]int{n[0], n[1], n[2]})
	}
	y := n[2]
	if len(strings.TrimSpace(parts[2])) <= 2 {
		y += 2000
		if y > time.Now().Year() {
			y -= 100
		}
	}
	switch {
	case sep == ".":
		return dates("D.M.Y", [3]int{y, n[1], n[0]})
	case n[0] > 12:
		return dates("D"+sep+"M"+sep+"Y", [3]int{y, n[1], n[0]})
	case n[1] > 12:
		return dates("M"+sep+"D"+sep+"Y", [3]int{y, n[0], n[1]})
	case n[0] == n[1]:
		return dates("M"+sep+"D"+sep+"Y", [3]int{y, n[0], n[1]})
	}
	return dates("ambiguous", [3]int{y, n[0], n[1]}, [3]int{y, n[1], n[0]})
}

// dates validates year-month-day triples.
func dates(how string, ymd ...[3]int) ([]time.Time, string) {
	var out []time.Time
	for _, v := range ymd {
		y, mo, d := v[0], v[1], v[2]
		if mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1900 || y > 9999 {
			return nil, ""
		}
		t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
		if t.Day() != d { // 31 February and the like
			return nil, ""
		}
		out = append(out, t)
	}
	return out, how
}

// parseClock reads a DataBar time in 24 h or 12 h form.
func parseClock(s string) (time.Time, bool) {
	s = strings.ToUpper(strings.Join(strings.Fields(s), " "))
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{"15:04:05", "15:04", "3:04:05 PM", "3:04 PM", "3:04:05PM", "15:04:05.999999999", "15.04.05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
