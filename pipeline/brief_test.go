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
		{strings.Repeat("a", 150) + " " + strings.Repeat("b", 150), MaxLine},
	} {
		got := ErrorLine(c.msg)
		if n := len([]rune(got)); n != c.wantRunes || !strings.HasPrefix(got, "imgdataset: ") || !strings.HasSuffix(got, c.msg[len(c.msg)-5:]) {
			t.Errorf("ErrorLine(%d runes) = %d runes %q", len(c.msg), n, got)
		}
	}
	// Whole layers are left out where they can be: the URL next to the cause stays whole.
	u := "https://s3.amazonaws.com/bucket?delimiter=%2F&list-type=2&prefix=" + strings.Repeat("p", 40)
	layered := "ds failed: resolve: s3: list s3://bucket/" + strings.Repeat("x", 60) + ": s3 store s3://bucket/: list \"x\": GET " + u + ": proxy 127.0.0.1:9: connection refused"
	if got := ErrorLine(layered); runeLen(got) > MaxLine || got != "imgdataset: ds failed: resolve: s3: …: list \"x\": GET "+u+": proxy 127.0.0.1:9: connection refused" {
		t.Errorf("ErrorLine of layers = %d runes %q", runeLen(got), got)
	}
	// Else words are kept whole where spaces allow.
	words := strings.Repeat("alpha beta gamma ", 30)
	got := ErrorLine(words)
	if n := len([]rune(got)); n > MaxLine || !strings.Contains(got, " … ") {
		t.Fatalf("ErrorLine = %d runes %q", n, got)
	}
	for _, w := range strings.Fields(strings.Replace(strings.TrimPrefix(got, "imgdataset: "), " … ", " ", 1)) {
		if w != "alpha" && w != "beta" && w != "gamma" {
			t.Errorf("word %q cut in %q", w, got)
		}
	}
}
