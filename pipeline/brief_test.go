package pipeline

import (
	"strings"
	"testing"
)

func TestErrorLineClipsTheMiddle(t *testing.T) {
	for _, c := range []struct {
		msg       string
		wantRunes int
	}{
		{"short: cause", len([]rune("imgdataset: short: cause"))},
		{strings.Repeat("a", 150) + ": " + strings.Repeat("b", 150), MaxLine},
	} {
		got := ErrorLine(c.msg)
		if n := len([]rune(got)); n != c.wantRunes || !strings.HasPrefix(got, "imgdataset: ") || !strings.HasSuffix(got, c.msg[len(c.msg)-5:]) {
			t.Errorf("ErrorLine(%d runes) = %d runes %q", len(c.msg), n, got)
		}
	}
}
