package volume

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestAcquisitionAddTo(t *testing.T) {
	cases := []struct {
		name string
		a    Acquisition
		md   map[string]any // before
		want map[string]any
	}{
		{"nothing known adds nothing", Acquisition{}, map[string]any{"make": "FEI"}, map[string]any{"make": "FEI"}},
		{"every fact",
			Acquisition{Microscope: "JEM-ARM300F2", VoltageKV: 300, Magnification: 5e4, DateTime: "2021-05-18T13:52:35+09:00", Mode: "TEM",
				ZSpacing: Spacing{Value: 50, Unit: "nm", Source: "ImageTags.Meta Data.Dimension info.2"}},
			map[string]any{},
			map[string]any{"microscope": "JEM-ARM300F2", "voltage_kv": 300.0, "magnification": 5e4,
				"acquisition_datetime": "2021-05-18T13:52:35+09:00", "acquisition_mode": "TEM",
				"z_spacing": map[string]any{"value": 50.0, "unit": "nm", "source": "ImageTags.Meta Data.Dimension info.2"}}},
		{"the typed value replaces the key", Acquisition{Microscope: "Quanta"}, map[string]any{"microscope": "old"}, map[string]any{"microscope": "Quanta"}},
		{"a spacing without a value is none", Acquisition{ZSpacing: Spacing{Unit: "nm", Source: "x"}}, map[string]any{}, map[string]any{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.a.AddTo(c.md)
			if !reflect.DeepEqual(c.md, c.want) {
				t.Errorf("got %v, want %v", c.md, c.want)
			}
			if _, err := json.Marshal(c.md); err != nil {
				t.Errorf("not JSON: %v", err)
			}
		})
	}
}
