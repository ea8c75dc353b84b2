package deps

import (
	"os"
	"path/filepath"
	"testing"
)

// maxBinaryBytes bounds the size of the imgdataset binary (decimal MB, as
// docs/benchmarks.md reports it). It was 67.7 MB while the demo linked
// gofakes3 and fake-gcs-server, 34.2 MB without them (issue #14).
const maxBinaryBytes = 40_000_000

// TestBinarySize builds the command the way a user does and fails when it
// outgrows the bound: a heavy dependency that slips past the rules of
// TestDependencyRules still shows here.
func TestBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("building the binary skipped in -short mode")
	}
	goBin, mod := mainModule(t)
	exe := filepath.Join(t.TempDir(), "imgdataset")
	run(t, goBin, mod.Dir, "build", "-o", exe, "./cmd/imgdataset")
	fi, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("./cmd/imgdataset: %d bytes (%.1f MB)", fi.Size(), float64(fi.Size())/1e6)
	if fi.Size() > maxBinaryBytes {
		t.Errorf("./cmd/imgdataset is %.1f MB, over the %.0f MB bound; `go list -deps ./cmd/imgdataset` shows what it links", float64(fi.Size())/1e6, float64(maxBinaryBytes)/1e6)
	}
}
