package volume

// Acquisition is what a file states about how its image was recorded, in
// fixed units, for readers that need the facts rather than a vendor's tag
// tree (the catalog's columns). Format readers fill it from their vendor
// metadata; every field's zero value means the file does not say.
type Acquisition struct {
	// Microscope names the instrument as the file does ("Quanta 250",
	// "JEM-ARM300F2"), without surrounding blanks.
	Microscope string
	// VoltageKV is the accelerating voltage in kilovolts.
	VoltageKV float64
	// Magnification is the magnification the vendor reports as such (×);
	// in diffraction, where vendors store a camera length in that field,
	// it stays 0.
	Magnification float64
	// DateTime is when the image was recorded, in ISO 8601: a date
	// ("2006-01-02"), or a date and time to the second
	// ("2006-01-02T15:04:05"), with a zone ("Z", "+09:00") only when the
	// file states one.
	DateTime string
	// Mode is the imaging mode, "TEM", "STEM" or "SEM".
	Mode string
	// ZSpacing is the distance between consecutive sections when the image
	// is one 2-D section of a serial-section series (3View DM files state
	// it), which no axis of the image can hold.
	ZSpacing Spacing
}

// Spacing is a physical distance as a file states it.
type Spacing struct {
	Value  float64 // in Unit; 0 when unknown
	Unit   string  // as the file writes it ("nm", "µm", ...; see ToNanometres)
	Source string  // where in the file it was read
}

// AddTo writes the known facts into md under the keys JSON views of
// Info.Metadata show them by (microscope, voltage_kv, magnification,
// acquisition_datetime, acquisition_mode, and z_spacing as {value, unit,
// source}), replacing what md held under those keys. Readers call it so
// inspect and catalog.json show what the typed fields say; code that needs
// a fact reads the field, never these keys.
func (a Acquisition) AddTo(md map[string]any) {
	if a.Microscope != "" {
		md["microscope"] = a.Microscope
	}
	if a.VoltageKV != 0 {
		md["voltage_kv"] = a.VoltageKV
	}
	if a.Magnification != 0 {
		md["magnification"] = a.Magnification
	}
	if a.DateTime != "" {
		md["acquisition_datetime"] = a.DateTime
	}
	if a.Mode != "" {
		md["acquisition_mode"] = a.Mode
	}
	if z := a.ZSpacing; z.Value != 0 {
		md["z_spacing"] = map[string]any{"value": z.Value, "unit": z.Unit, "source": z.Source}
	}
}
