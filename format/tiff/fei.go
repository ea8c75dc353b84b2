package tiff

import (
	"context"
	"fmt"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// Private tags of Thermo Fisher (FEI) microscopes.
const (
	tagFEISFEG   = 34682 // Thermo/FEI SEM: INI text
	tagFEIHelios = 34683 // Thermo/FEI Helios: XML
)

// readFEI reads the INI text FEI SEMs write and the XML of the Helios
// line (which writes both); the pixel size is the INI's [Scan] PixelWidth
// and PixelHeight, in metres.
func (r *reader) readFEI(ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale {
	var ini map[string]any
	if s, ok := r.vendorText(ctx, d, tagFEISFEG, vm); ok {
		ini = parseINI(s)
		vm.fields["fei"] = ini
		feiDerived(ini, &vm.acq)
	}
	if s, ok := r.vendorText(ctx, d, tagFEIHelios, vm); ok {
		leaves, err := parseXMLLeaves(s)
		if err != nil {
			vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (FEI_HELIOS XML): %v", tagFEIHelios, err))
		}
		if len(leaves) > 0 {
			vm.fields["fei_helios"] = leaves
			heliosDerived(leaves, &vm.acq)
		}
	}
	w, okW := iniGet(ini, "Scan", "PixelWidth")
	h, okH := iniGet(ini, "Scan", "PixelHeight")
	x, ok := positive(w)
	if !ok || !okW {
		return nil
	}
	y, ok := positive(h)
	if !ok || !okH {
		y = x
	}
	return metres(y, x, fmt.Sprintf("FEI tag %d [Scan] PixelWidth/PixelHeight", tagFEISFEG))
}

// feiDerived fills the acquisition facts FEI INI metadata states.
func feiDerived(ini map[string]any, a *volume.Acquisition) {
	for _, k := range []string{"SystemType", "Type"} {
		if s, ok := iniString(ini, "System", k); ok {
			a.Microscope = s
			break
		}
	}
	for _, sec := range []string{"EBeam", "Beam"} {
		if v, ok := iniGet(ini, sec, "HV"); ok {
			if f, ok := v.(float64); ok {
				a.VoltageKV = f / 1000
				break
			}
		}
	}
	date, _ := iniString(ini, "User", "Date")
	clock, _ := iniString(ini, "User", "Time")
	if t, ok := parseFirst(date+" "+clock, "01/02/2006 03:04:05 PM", "01/02/2006 15:04:05"); ok {
		a.DateTime = t.Format("2006-01-02T15:04:05")
	} else if s, ok := iniString(ini, "PrivateFei", "TimeOfCreation"); ok {
		if t, ok := parseFirst(s, "02.01.2006 15:04:05"); ok {
			a.DateTime = t.Format("2006-01-02T15:04:05")
		}
	}
}

// heliosDerived fills the acquisition facts FEI Helios XML leaves state.
func heliosDerived(leaves map[string]any, a *volume.Acquisition) {
	for p, v := range leaves {
		s, ok := v.(string)
		if !ok || !strings.HasSuffix(p, "/AcquisitionDatetime") && p != "AcquisitionDatetime" {
			continue
		}
		if d, ok := isoDateTime(s); ok {
			a.DateTime = d
		}
		return
	}
}
