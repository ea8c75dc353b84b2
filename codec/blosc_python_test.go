package codec

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The python-blosc oracle (Debian python3-blosc, c-blosc 1.21) checks both
// directions: chunks written by C decode byte-exact in Go, and chunks written
// by Go decode byte-exact in C.

const pythonBlosc = "/usr/bin/python3"

func requirePythonBlosc(t *testing.T) {
	t.Helper()
	out, err := exec.Command(pythonBlosc, "-c", "import blosc, numpy; print(blosc.blosclib_version)").CombinedOutput()
	if err != nil {
		t.Skipf("python3 with blosc and numpy not available (%v: %s); install Debian python3-blosc to run the C cross-check", err, bytes.TrimSpace(out))
	}
	t.Logf("oracle: c-blosc %s", bytes.TrimSpace(out))
}

// pyCompress writes, for every case, NAME.raw and NAME.blosc compressed by
// c-blosc, and prints the case names.
const pyCompress = `
import sys, os, numpy as np, blosc
out = sys.argv[1]
blosc.set_nthreads(1)
def data(seed, kind, n, ts):
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if kind == "zeros":
        b = np.zeros(n, np.uint8); b[::997] = 7
        return b.tobytes()
    ne = n // ts
    v = (1000 + np.arange(ne, dtype=np.uint64) // 5 + rng.integers(0, 8, ne).astype(np.uint64))
    a = np.zeros((ne, ts), np.uint8)
    for j in range(ts):
        a[:, j] = (v >> np.uint64(8 * (j % 8))) & np.uint64(255)
    return a.tobytes() + rng.integers(0, 256, n - ne * ts, dtype=np.uint8).tobytes()
kinds = ["smooth", "smooth", "zeros", "random"]
lengths = [200, 1001, 40003, 150001]
cases = []
i = 0
for cname in ["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"]:
    for shuffle in [0, 1, 2]:
        for ts in [1, 2, 4, 8, 16]:
            for clevel in [1, 5, 9]:
                cases.append((cname, shuffle, ts, clevel, 0, kinds[i % 4], lengths[(i // 4) % 4]))
                i += 1
    # Forced block sizes: many blocks, a leftover block, bit shuffle with an
    # element count that is not a multiple of 8 (copied unchanged).
    cases.append((cname, 1, 4, 5, 4096, "smooth", 50003))
    cases.append((cname, 2, 2, 5, 1000, "smooth", 50003))
    cases.append((cname, 2, 8, 5, 4096, "smooth", 50001))
    # Chunks large enough for the Go decoder to split across goroutines.
    cases.append((cname, 1, 2, 5, 0, "smooth", 600003))
    cases.append((cname, 2, 4, 5, 0, "smooth", 400001))
for k, (cname, shuffle, ts, clevel, bs, kind, n) in enumerate(cases):
    raw = data(k, kind, n, ts)
    blosc.set_blocksize(bs)
    enc = blosc.compress(raw, typesize=ts, clevel=clevel, shuffle=shuffle, cname=cname)
    name = "c%03d_%s_s%d_t%d_l%d_b%d_%s_%d" % (k, cname, shuffle, ts, clevel, bs, kind, n)
    open(os.path.join(out, name + ".raw"), "wb").write(raw)
    open(os.path.join(out, name + ".blosc"), "wb").write(enc)
    print(name)
blosc.set_blocksize(0)
`

// pyCheck decompresses every NAME.blosc named on stdin and compares it with
// NAME.raw, printing "NAME OK" or "NAME FAIL reason".
const pyCheck = `
import sys, os, blosc
d = sys.argv[1]
blosc.set_nthreads(1)
for name in sys.stdin.read().split():
    enc = open(os.path.join(d, name + ".blosc"), "rb").read()
    raw = open(os.path.join(d, name + ".raw"), "rb").read()
    try:
        got = blosc.decompress(enc)
    except Exception as e:
        print(name, "FAIL", repr(e)); continue
    print(name, "OK" if got == raw else "FAIL differs (%d vs %d bytes)" % (len(got), len(raw)))
`

func TestBloscPythonToGo(t *testing.T) {
	requirePythonBlosc(t)
	dir := t.TempDir()
	cmd := exec.Command(pythonBlosc, "-c", pyCompress, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python compress: %v\n%s", err, stderr.Bytes())
	}
	names := strings.Fields(string(out))
	if len(names) < 270 {
		t.Fatalf("python wrote only %d cases", len(names))
	}
	c := New()
	defer c.Close()
	formats := map[byte]int{}
	stored := 0
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, name+".raw"))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := os.ReadFile(filepath.Join(dir, name+".blosc"))
		if err != nil {
			t.Fatal(err)
		}
		if enc[2]&bloscFlagMemcpyed != 0 {
			stored++
		} else {
			formats[enc[2]>>5]++
		}
		got, err := c.Decode("blosc", enc, len(raw))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: decoded data differs from the original", name)
		}
	}
	// Every internal codec must really have been exercised, not just stored.
	for f := range byte(5) {
		if formats[f] < 10 {
			t.Errorf("only %d compressed chunks with codec format %d", formats[f], f)
		}
	}
	t.Logf("%d c-blosc chunks decoded byte-exact (%d stored, per codec format %v)", len(names), stored, formats)
}

func TestBloscGoToPython(t *testing.T) {
	requirePythonBlosc(t)
	dir := t.TempDir()
	c := New()
	defer c.Close()
	lengths := []int{200, 1001, 40003, 150001}
	var names []string
	formats := map[byte]int{}
	i := 0
	write := func(opt BloscOptions, kind string, n int) {
		var raw []byte
		switch kind {
		case "random":
			raw = randomBytes(uint64(i), n)
		case "zeros":
			raw = make([]byte, n)
			for k := 0; k < n; k += 997 {
				raw[k] = 7
			}
		default:
			raw = typedSample(uint64(i), n, max(opt.TypeSize, 1))
		}
		enc, err := c.EncodeBlosc(raw, opt)
		if err != nil {
			t.Fatalf("%+v: %v", opt, err)
		}
		name := fmt.Sprintf("g%03d_%s_s%d_t%d_l%d_b%d_%s_%d", i, opt.CName, opt.Shuffle, opt.TypeSize, opt.CLevel, opt.BlockSize, kind, n)
		if err := os.WriteFile(filepath.Join(dir, name+".raw"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".blosc"), enc, 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		if enc[2]&bloscFlagMemcpyed == 0 {
			formats[enc[2]>>5]++
		}
		i++
	}
	kinds := []string{"smooth", "smooth", "zeros", "random"}
	for _, cname := range bloscCNames {
		for _, shuffle := range []int{BloscNoShuffle, BloscShuffle, BloscBitShuffle} {
			for _, ts := range []int{1, 2, 4, 8, 16} {
				for _, level := range []int{1, 5, 9} {
					write(BloscOptions{CName: cname, CLevel: level, Shuffle: shuffle, TypeSize: ts}, kinds[i%4], lengths[(i/4)%4])
				}
			}
		}
		write(BloscOptions{CName: cname, CLevel: 5, Shuffle: BloscShuffle, TypeSize: 4, BlockSize: 4096}, "smooth", 50003)
		write(BloscOptions{CName: cname, CLevel: 5, Shuffle: BloscBitShuffle, TypeSize: 2, BlockSize: 1000}, "smooth", 50003)
		write(BloscOptions{CName: cname, CLevel: 0, Shuffle: BloscShuffle, TypeSize: 2}, "smooth", 5000)
	}
	cmd := exec.Command(pythonBlosc, "-c", pyCheck, dir)
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python decompress: %v\n%s", err, stderr.Bytes())
	}
	ok := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, " OK") {
			ok++
		} else {
			t.Errorf("c-blosc: %s", line)
		}
	}
	if ok != len(names) {
		t.Errorf("c-blosc decoded %d of %d Go chunks", ok, len(names))
	}
	for f := range byte(5) {
		if formats[f] < 10 {
			t.Errorf("only %d compressed Go chunks with codec format %d", formats[f], f)
		}
	}
	t.Logf("%d Go chunks decoded byte-exact by c-blosc (compressed per codec format %v)", ok, formats)
}
