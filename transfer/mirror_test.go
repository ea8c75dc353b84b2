package transfer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgdataset/imgdataset/mirror"
)

// TestMirrorFaults runs downloads through the shared fault decorator with
// several seeds: every run must end byte-identical.
func TestMirrorFaults(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := newTestServer(t)
			small, big := fillServer(s, 15, 1<<20+99)
			s.srv.Config.Handler = mirror.Faults(s, mirror.FaultConfig{
				Seed:          seed,
				Status503Prob: 0.1, Status429Prob: 0.05,
				ResetProb: 0.1, TruncateProb: 0.1,
			})
			out := t.TempDir()
			opt := testOptions(t, out)
			opt.Retries = 20
			jobs := []Job{{Dataset: "a", Objects: s.objects(small...)}, {Dataset: "b", Objects: s.objects(big)}}
			sum := runOK(t, jobs, opt)
			checkTree(t, out, sum, s, "a", small...)
			checkTree(t, out, sum, s, "b", big)
		})
	}
}

// TestMirrorChangedETag: the content changes (new ETag, inverted bytes) after
// the first requests of a split download; the result must be the new content.
func TestMirrorChangedETag(t *testing.T) {
	s := newTestServer(t)
	data := randBytes(5, 1<<20)
	s.put("big", data)
	s.srv.Config.Handler = mirror.Faults(s, mirror.FaultConfig{ChangeETagAfter: 4})
	out := t.TempDir()
	opt := testOptions(t, out)
	opt.RetryDelay = time.Millisecond
	runOK(t, []Job{{Dataset: "d", Objects: s.objects("big")}}, opt)
	got, err := os.ReadFile(filepath.Join(out, "d", "big"))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(data)
	for i := range want {
		want[i] ^= 0xff
	}
	if !bytes.Equal(got, want) {
		t.Error("result is not the changed content")
	}
}
