package tiff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// jeolRoot is the root element of the XML JEOL SightX writes as the
// ImageDescription of its TIFFs.
const jeolRoot = "TemReporter"

// readJEOL reads the TemReporter XML of a JEOL SightX TIFF: a file whose
// Make (SightX writes "JEOL Ltd.") or Software names JEOL and whose
// ImageDescription is that XML. Its leaves go under "jeol_sightx", the
// acquisition facts into vm.acq; a TEM image's calibration is returned.
// Only a synthetic file built from rosettasciio's reader has been seen.
func (r *reader) readJEOL(ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale {
	isJEOL := func(tag uint16) bool {
		s, err := r.ascii(ctx, d, d.find(tag), 256)
		return err == nil && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "JEOL")
	}
	e := d.find(tagImageDescription)
	if e == nil || e.typ != typeASCII || !(isJEOL(tagMake) || isJEOL(tagSoftware)) {
		return nil
	}
	// Read the bytes as they are: SightX text may hold NULs and \x01
	// around its lines, which ascii would cut at.
	b, err := r.raw(ctx, d, e, maxVendorText)
	if err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (JEOL TemReporter): %v", tagImageDescription, err))
		return nil
	}
	text := jeolXML(string(b))
	if !strings.Contains(text, "<"+jeolRoot) {
		return nil // another JEOL writer: Make and Software are in the metadata anyway
	}
	leaves, err := parseXMLLeaves(text)
	if err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (JEOL TemReporter XML): %v", tagImageDescription, err))
	}
	if len(leaves) == 0 {
		return nil
	}
	vm.fields["jeol_sightx"] = leaves
	jeolDerived(leaves, &vm.acq, vm.fields)
	xn, xd, okX, errX := r.rational(ctx, d, tagXResolution)
	yn, yd, okY, errY := r.rational(ctx, d, tagYResolution)
	unit, errU := r.uint1(ctx, d, tagResolutionUnit, 2)
	if err := errors.Join(errX, errY, errU); err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("JEOL calibration: %v", err))
		return nil
	}
	if !okY {
		yn, yd = xn, xd
	}
	if !okX {
		return nil
	}
	s := jeolScale(leaves, [2]uint32{yn, yd}, [2]uint32{xn, xd}, unit)
	if s == nil {
		vm.noSpecimenScale = "JEOL SightX: no specimen calibration for this mode; X/YResolution is the detector pitch"
		vm.warnings = append(vm.warnings, vm.noSpecimenScale)
	}
	return s
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

// jeolDerived fills the acquisition facts TemReporter leaves state, mapped
// as rosettasciio maps them: Instruments is the microscope, the electron
// gun's AccelerationVoltage is in volts, and the imaging system's
// SelectorValue is the magnification, or in diffraction (ModeString DIFF)
// the camera length in SelectorUnitString, which goes into fields as
// camera_length and camera_length_unit.
func jeolDerived(leaves map[string]any, a *volume.Acquisition, fields map[string]any) {
	if s, ok := jeolLeaf(leaves, "Instruments").(string); ok && s != "" {
		a.Microscope = s
	}
	if v, ok := jeolLeaf(leaves, "ElectronGun/AccelerationVoltage").(float64); ok && v > 0 {
		a.VoltageKV = v / 1000
	}
	if s, ok := jeolLeaf(leaves, "DateTime").(string); ok {
		if d, ok := isoDateTime(s); ok {
			a.DateTime = d
		}
	}
	if s, ok := jeolLeaf(leaves, "Eos/EosMode").(string); ok && s != "" {
		// STEM is "modeASID" in rosettasciio's scale code, "eosASID" in its mapping.
		a.Mode = "TEM"
		if strings.HasSuffix(s, "ASID") {
			a.Mode = "STEM"
		}
	}
	v, ok := jeolLeaf(leaves, "ImageFormingSystem/SelectorValue").(float64)
	if !ok || v <= 0 {
		return
	}
	if jeolLeaf(leaves, "ImageFormingSystem/ModeString") == "DIFF" {
		fields["camera_length"] = v
		if u, ok := jeolLeaf(leaves, "ImageFormingSystem/SelectorUnitString").(string); ok && u != "" {
			fields["camera_length_unit"] = u
		}
		return
	}
	a.Magnification = v
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
