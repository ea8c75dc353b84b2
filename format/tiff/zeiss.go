package tiff

import (
	"context"
	"fmt"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// tagCZSEM is the private tag of Zeiss SEMs: "AP_KEY\nLabel = value unit" lines.
const tagCZSEM = 34118

// readZeiss reads the CZ_SEM text of Zeiss SEMs; the pixel size is
// AP_IMAGE_PIXEL_SIZE, else AP_PIXEL_SIZE, in the unit the text gives.
func (r *reader) readZeiss(ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale {
	s, ok := r.vendorText(ctx, d, tagCZSEM, vm)
	if !ok {
		return nil
	}
	kv := parseCZSEM(s)
	if len(kv) == 0 {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (CZ_SEM): not key/value text", tagCZSEM))
		return nil
	}
	vm.fields["zeiss_sem"] = kv
	czsemDerived(kv, &vm.acq)
	for _, k := range []string{"ap_image_pixel_size", "ap_pixel_size"} {
		m, _ := kv[k].(map[string]any)
		f, ok := positive(m["value"])
		unit, _ := m["unit"].(string)
		if _, known := volume.NanometresPer(unit); ok && known {
			return &vendorScale{y: f, x: f, unit: unit, source: fmt.Sprintf("Zeiss tag %d %s", tagCZSEM, strings.ToUpper(k))}
		}
	}
	return nil
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

// czsemDerived fills the acquisition facts Zeiss SEM metadata states.
func czsemDerived(kv map[string]any, a *volume.Acquisition) {
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
			a.VoltageKV = f
			break
		} else if u == "V" {
			a.VoltageKV = f / 1000
			break
		}
	}
	if m, ok := get("sv_instrument_id"); ok {
		if s, ok := m["value"].(string); ok && s != "" {
			a.Microscope = s
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
			a.DateTime = t.Format("2006-01-02T15:04:05")
		} else if t, ok := parseFirst(date, "2 Jan 2006", "02 Jan 2006"); ok {
			a.DateTime = t.Format("2006-01-02")
		}
	}
}
