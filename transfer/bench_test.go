package transfer

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

// BenchmarkManySmall fetches 300 objects of 16 KiB (zarr-chunk-like) from a
// loopback server per iteration.
func BenchmarkManySmall(b *testing.B) {
	s := newServer(b, false)
	var names []string
	for i := range 300 {
		n := fmt.Sprintf("c/%d", i)
		s.put(n, randBytes(uint64(i), 16<<10))
		names = append(names, n)
	}
	jobs := []Job{{Dataset: "d", Objects: s.objects(names...)}}
	b.SetBytes(300 * 16 << 10)
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		opt := benchOptions(b, filepath.Join(dir, fmt.Sprint(i)))
		opt.PerHost, opt.Total = 32, 64
		benchRun(b, jobs, opt)
	}
}

// BenchmarkLargeSplit fetches one 64 MiB file in 4 MiB ranges per iteration.
func BenchmarkLargeSplit(b *testing.B) {
	s := newServer(b, false)
	s.put("big", randBytes(1, 64<<20))
	jobs := []Job{{Dataset: "d", Objects: s.objects("big")}}
	b.SetBytes(64 << 20)
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		opt := benchOptions(b, filepath.Join(dir, fmt.Sprint(i)))
		opt.PartSize = 4 << 20
		opt.PerHost, opt.Total = 8, 8
		benchRun(b, jobs, opt)
	}
}

func benchRun(b *testing.B, jobs []Job, opt Options) {
	b.Helper()
	sum, err := Run(b.Context(), jobs, opt)
	if err == nil {
		err = sum.Err()
	}
	if err != nil {
		b.Fatal(err)
	}
}

func benchOptions(b *testing.B, out string) Options {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return Options{OutDir: out, Stores: &store.Opener{HTTP: &http.Client{Transport: tr}}}
}
