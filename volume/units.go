package volume

import "strings"

// ToNanometres converts a length in unit to nanometres. It understands the
// spellings EM files use: SI symbols and names, UDUNITS names (OME-NGFF),
// "um"/"micron", the µ (U+00B5) and μ (U+03BC) signs, ImageJ's literal `\u00B5m`
// escape, Å/angstrom and metres. ok is false for unknown or empty units.
func ToNanometres(v float64, unit string) (nm float64, ok bool) {
	f, ok := NanometresPer(unit)
	if !ok {
		return 0, false
	}
	return v * f, true
}

// NanometresPer returns how many nanometres one unit is.
func NanometresPer(unit string) (float64, bool) {
	u := strings.TrimSpace(unit)
	u = strings.ReplaceAll(u, `\u00B5`, "µ")
	u = strings.ReplaceAll(u, `\u00b5`, "µ")
	u = strings.ReplaceAll(u, "μ", "µ") // Greek mu → micro sign
	switch strings.ToLower(u) {
	case "pm", "picometer", "picometre", "picometers", "picometres":
		return 1e-3, true
	case "å", "a", "angstrom", "angstroms", "ångström", "ang":
		return 0.1, true
	case "nm", "nanometer", "nanometre", "nanometers", "nanometres":
		return 1, true
	case "µm", "um", "micron", "microns", "micrometer", "micrometre", "micrometers", "micrometres":
		return 1e3, true
	case "mm", "millimeter", "millimetre", "millimeters", "millimetres":
		return 1e6, true
	case "cm", "centimeter", "centimetre", "centimeters", "centimetres":
		return 1e7, true
	case "m", "meter", "metre", "meters", "metres":
		return 1e9, true
	}
	return 0, false
}

// The length units OneUnit writes: symbols every reader here, tifffile, ImageJ
// and N5 tools understand (the NGFF writer maps them to UDUNITS names).
const (
	Nanometre  = "nm"
	Micrometre = "µm"
)

// Spatial reports whether a is an axis of physical space: one named z, y or
// x (in any case), or one whose unit is a length.
func Spatial(a Axis) bool {
	switch strings.ToLower(a.Name) {
	case "z", "y", "x":
		return true
	case "c", "t", "channel", "time":
		return false
	}
	_, ok := NanometresPer(a.Unit)
	return ok
}

// OneUnit returns a copy of axes whose calibrated spatial axes share one
// length unit, with scales and offsets converted to it. Viewers (napari,
// ImageJ, neuroglancer) assume one unit for all spatial axes; a z in nm next
// to y and x in µm would be drawn 1000× stretched. The unit is nanometres
// unless every such axis is in micrometres or coarser, then micrometres, so
// a light-microscopy calibration keeps readable numbers. Axes without a
// calibration, with a unit that is not a length, or that are not spatial are
// returned unchanged.
func OneUnit(axes []Axis) []Axis {
	out := append([]Axis(nil), axes...)
	per, found := 1e3, false
	for _, a := range out {
		if f, ok := spatialUnit(a); ok {
			found = true
			if f < 1e3 {
				per = 1
			}
		}
	}
	if !found {
		return out
	}
	unit := Micrometre
	if per == 1 {
		unit = Nanometre
	}
	for i, a := range out {
		f, ok := spatialUnit(a)
		if !ok {
			continue
		}
		if f != per {
			out[i].Scale = convertLength(a.Scale, f, per)
			out[i].Offset = convertLength(a.Offset, f, per)
		}
		out[i].Unit = unit
	}
	return out
}

// spatialUnit returns the nanometres per unit of a calibrated spatial axis.
func spatialUnit(a Axis) (float64, bool) {
	if !a.ScaleKnown || !Spatial(a) {
		return 0, false
	}
	return NanometresPer(a.Unit)
}

// convertLength converts v from a unit of from nm to one of to nm, the
// way ToNanometres does when to is 1 nm, so an output in nm states exactly
// the value the metadata table reports.
func convertLength(v, from, to float64) float64 {
	return v * from / to
}
