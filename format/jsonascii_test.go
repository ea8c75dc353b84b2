package format

import (
	"encoding/json"
	"testing"
)

func TestASCIIJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"ascii unchanged", map[string]any{"unit": "nm", "n": 3}, `{"n":3,"unit":"nm"}`},
		{"micro sign", map[string]any{"units": []string{"µm", "Å"}}, `{"units":["\u00b5m","\u00c5"]}`},
		{"beyond the BMP", "a😀b", `"a\ud83d\ude00b"`},
		{"escapes kept", "tab\there \"µ\"", `"tab\there \"\u00b5\""`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			got := ASCIIJSON(b)
			if string(got) != c.want {
				t.Errorf("ASCIIJSON(%s) = %s, want %s", b, got, c.want)
			}
			for i, x := range got {
				if x >= 0x80 {
					t.Fatalf("byte %d of %s is not ASCII", i, got)
				}
			}
			// The same value, read back.
			var a, o any
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			ja, _ := json.Marshal(a)
			jo, _ := json.Marshal(o)
			if string(ja) != string(jo) {
				t.Errorf("read back %s, want %s", ja, jo)
			}
		})
	}
}
