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
