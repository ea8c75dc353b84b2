package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/internal/corpus"
)

func TestShuffleInverse(t *testing.T) {
	for _, ts := range []int{1, 2, 3, 4, 8, 16, 255} {
		for _, n := range []int{0, 1, 7, 64, 1000, 4099} {
			in := randomBytes(uint64(ts*n+1), n)
			// Naive reference for byte shuffle.
			want := make([]byte, n)
			ne := n / ts
			for i := range ne {
				for j := range ts {
					want[j*ne+i] = in[i*ts+j]
				}
			}
			copy(want[ne*ts:], in[ne*ts:])
			got := make([]byte, n)
			shuffleBytes(got, in, ts)
			if !bytes.Equal(got, want) {
				t.Fatalf("shuffle ts=%d n=%d differs from the reference", ts, n)
			}
			back := make([]byte, n)
			unshuffleBytes(back, got, ts, nil)
			if !bytes.Equal(back, in) {
				t.Fatalf("unshuffle ts=%d n=%d does not invert", ts, n)
			}
			// Naive reference for bit shuffle: row 8*j+i, element e at byte e/8 bit e%8.
			bw := make([]byte, n)
			if ne%8 != 0 {
				copy(bw, in)
			} else {
				nb := ne / 8
				for e := range ne {
					for j := range ts {
						for i := range 8 {
							if in[e*ts+j]>>i&1 != 0 {
								bw[(8*j+i)*nb+e/8] |= 1 << (e % 8)
							}
						}
					}
				}
				copy(bw[ne*ts:], in[ne*ts:])
			}
			bitShuffle(got, in, ts)
			if !bytes.Equal(got, bw) {
				t.Fatalf("bitshuffle ts=%d n=%d differs from the reference", ts, n)
			}
			bitUnshuffle(back, got, ts)
			if !bytes.Equal(back, in) {
				t.Fatalf("bitunshuffle ts=%d n=%d does not invert", ts, n)
			}
		}
	}
}

// typedSample makes n bytes of little-endian elements of size ts that vary
// slowly, with noise in the low byte, like image data.
func typedSample(seed uint64, n, ts int) []byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for e := 0; e*ts < n; e++ {
		v := uint64(1000+e/5) + uint64(rng.IntN(8))
		for j := 0; j < ts && e*ts+j < n; j++ {
			b[e*ts+j] = byte(v >> (8 * (j % 8)))
		}
	}
	return b
}

var bloscCNames = []string{"blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"}

func TestBloscRoundTrip(t *testing.T) {
	c := New()
	defer c.Close()
	lengths := []int{0, 5, 127, 128, 1001, 70001}
	for _, cname := range bloscCNames {
		for _, ts := range []int{1, 2, 4, 8, 16} {
			for _, shuffle := range []int{BloscNoShuffle, BloscShuffle, BloscBitShuffle, BloscAutoShuffle} {
				for _, n := range lengths {
					in := typedSample(uint64(n+ts), n, ts)
					opt := BloscOptions{CName: cname, CLevel: 5, Shuffle: shuffle, TypeSize: ts}
					if n == 70001 && shuffle == BloscShuffle {
						opt.BlockSize = 4096 // many blocks plus a leftover one
					}
					checkBloscRoundTrip(t, c, in, opt)
				}
			}
		}
		// Levels (and the block sizes they imply) on one larger input.
		for _, level := range []int{0, 1, 9} {
			checkBloscRoundTrip(t, c, typedSample(5, 300001, 2), BloscOptions{CName: cname, CLevel: level, Shuffle: BloscShuffle, TypeSize: 2})
		}
		// Incompressible data falls back to a stored chunk.
		rnd := randomBytes(11, 5000)
		enc := checkBloscRoundTrip(t, c, rnd, BloscOptions{CName: cname, CLevel: 5, Shuffle: BloscShuffle, TypeSize: 4})
		if enc[2]&bloscFlagMemcpyed == 0 || len(enc) != len(rnd)+16 {
			t.Errorf("%s: random data not stored (flags %#x, %d bytes)", cname, enc[2], len(enc))
		}
		// Many blocks: the stored chunk reuses the buffer the blocks that
		// did compress were written to, and must not keep any of them.
		big := append(typedSample(6, 70000, 1), randomBytes(12, 400000)...)
		enc = checkBloscRoundTrip(t, c, big, BloscOptions{CName: cname, CLevel: 5, Shuffle: BloscNoShuffle, TypeSize: 1})
		if enc[2]&bloscFlagMemcpyed == 0 {
			t.Logf("%s: %d mostly random bytes compressed to %d", cname, len(big), len(enc))
		}
	}
}

func checkBloscRoundTrip(t *testing.T, c *Codecs, in []byte, opt BloscOptions) []byte {
	t.Helper()
	enc, err := c.EncodeBlosc(in, opt)
	if err != nil {
		t.Fatalf("%+v len %d: encode: %v", opt, len(in), err)
	}
	if len(enc) > len(in)+16 {
		t.Errorf("%+v len %d: %d encoded bytes exceed the stored size", opt, len(in), len(enc))
	}
	if got := int(binary.LittleEndian.Uint32(enc[12:])); got != len(enc) {
		t.Errorf("%+v: header cbytes %d, chunk is %d bytes", opt, got, len(enc))
	}
	got, err := BloscDecode(enc, len(in))
	if err != nil {
		t.Fatalf("%+v len %d: decode: %v", opt, len(in), err)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("%+v len %d: round trip differs", opt, len(in))
	}
	if len(in) > 0 {
		if _, err := BloscDecode(enc, len(in)-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%+v: decode with a too small maximum: %v, want ErrTooLarge", opt, err)
		}
	}
	return enc
}

func TestBloscViaCodecs(t *testing.T) {
	c := New()
	defer c.Close()
	in := typedSample(3, 100000, 1)
	enc, err := c.Encode("blosc", 0, in)
	if err != nil {
		t.Fatal(err)
	}
	if enc[0] != 2 || enc[2]>>5 != bloscFormatLZ4 || enc[2]&bloscFlagShuffle == 0 || enc[3] != 1 {
		t.Errorf("default blosc header %x, want version 2, lz4, shuffle, typesize 1", enc[:4])
	}
	got, err := c.Decode("blosc", enc, len(in))
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("decode: %v", err)
	}
	if _, err := c.Encode("blosc", 10, in); err == nil {
		t.Error("level 10 accepted")
	}
}

// chunk builds a Blosc1 chunk by hand: header fields, then body (bstarts
// and streams), with cbytes filled in unless given.
func chunk(version, flags, typesize byte, nbytes, blocksize uint32, body []byte) []byte {
	b := []byte{version, 1, flags, typesize}
	b = binary.LittleEndian.AppendUint32(b, nbytes)
	b = binary.LittleEndian.AppendUint32(b, blocksize)
	b = binary.LittleEndian.AppendUint32(b, uint32(16+len(body)))
	return append(b, body...)
}

func le32s(v ...int) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(int32(x)))
	}
	return b
}

func TestBloscHandBuilt(t *testing.T) {
	data := typedSample(1, 512, 2)
	shuf := make([]byte, 512)
	shuffleBytes(shuf, data, 2)
	bits := make([]byte, 512)
	bitShuffle(bits, data, 2)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// blosclz stream for 300 bytes: "ab" then a 298-byte run... kept valid by
	// ending in a literal.
	blz := []byte{0x01, 'a', 'b', 0xE0, 0xFF, 0x1F, 0x01, 0x00, 'z'} // 2 + (9+255+31) + 1 = 298
	blzOut := append(bytes.Repeat([]byte("ab"), 149)[:297], 'z')
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"stored", chunk(2, 0x02|0x01, 2, 512, 512, data), data},
		{"stored ignores trailing bytes", append(chunk(2, 0x02, 1, 4, 4, []byte("wxyz")), 1, 2, 3), []byte("wxyz")},
		{"empty", chunk(2, 0x00, 1, 0, 0, nil), []byte{}},
		// typesize 2, 256 elements ≥ 128: two raw streams of 256 bytes.
		{"split raw streams, shuffled", chunk(2, 0x01, 2, 512, 512, cat(le32s(20, 256), shuf[:256], le32s(256), shuf[256:])), data},
		{"dont-split flag", chunk(2, 0x10|0x01, 2, 512, 512, cat(le32s(20, 512), shuf)), data},
		{"bit shuffle", chunk(2, 0x10|0x04, 2, 512, 512, cat(le32s(20, 512), bits)), data},
		// Two blocks of 256 (128 elements each: split) then the shuffle is
		// per block.
		{"two blocks, split, per-block shuffle", func() []byte {
			s0, s1 := make([]byte, 256), make([]byte, 256)
			shuffleBytes(s0, data[:256], 2)
			shuffleBytes(s1, data[256:], 2)
			return chunk(2, 0x01, 2, 512, 256, cat(le32s(24, 24+8+256), le32s(128), s0[:128], le32s(128), s0[128:], le32s(128), s1[:128], le32s(128), s1[128:]))
		}(), data},
		// A leftover block is never split, even when large enough.
		{"leftover block", func() []byte {
			s0 := make([]byte, 256)
			shuffleBytes(s0, data[:256], 2)
			l := make([]byte, 255)
			shuffleBytes(l, data[256:511], 2)
			return chunk(2, 0x01, 2, 511, 256, cat(le32s(24, 24+8+256), le32s(128), s0[:128], le32s(128), s0[128:], le32s(255), l))
		}(), data[:511]},
		{"blosclz stream", chunk(2, 0x00, 1, 298, 298, cat(le32s(20, len(blz)), blz)), blzOut},
		// Bit shuffle with an element count not a multiple of 8: copied as is.
		{"bit shuffle, odd count", chunk(2, 0x10|0x04, 2, 26, 26, cat(le32s(20, 26), data[:26])), data[:26]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BloscDecode(tt.in, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes %x…, want %d bytes %x…", len(got), got[:min(len(got), 8)], len(tt.want), tt.want[:min(len(tt.want), 8)])
			}
		})
	}
}

func TestBloscDecodeErrors(t *testing.T) {
	raw := cat2(le32s(20, 8), []byte("abcdefgh"))
	tests := []struct {
		name   string
		in     []byte
		maxOut int
		is     error  // when set, the error must wrap it
		msg    string // substring of the error
	}{
		{"short header", []byte{2, 1, 0, 1}, 100, nil, "shorter than the 16-byte header"},
		{"version 3", chunk(3, 0, 1, 8, 8, raw), 100, ErrUnsupported, "format version 3"},
		{"version 1", chunk(1, 0, 1, 8, 8, raw), 100, nil, "format version 1"},
		{"reserved flag", chunk(2, 0x08, 1, 8, 8, raw), 100, nil, "reserved flag"},
		{"too large", chunk(2, 0x10, 1, 8, 8, raw), 7, ErrTooLarge, "declares 8 bytes"},
		{"huge declared size", chunk(2, 0x10, 1, 0xFFFFFFF0, 8, raw), math.MaxInt, nil, "exceeds the Blosc1 limit"},
		{"zero block size", chunk(2, 0x10, 1, 8, 0, raw), 100, nil, "block size 0"},
		{"zero type size", chunk(2, 0x10, 0, 8, 8, raw), 100, nil, "type size 0"},
		{"truncated chunk", chunk(2, 0x10, 1, 8, 8, raw)[:30], 100, nil, "compressed bytes"},
		{"stored size mismatch", chunk(2, 0x02, 1, 9, 9, []byte("abcdefgh")), 100, nil, "stored chunk"},
		{"bad codec version", func() []byte { b := chunk(2, 0x10, 1, 8, 8, raw); b[1] = 2; return b }(), 100, nil, "internal codec format version 2"},
		{"unknown codec", chunk(2, 0x10|5<<5, 1, 8, 8, cat2(le32s(20, 3), []byte("abc"))), 100, ErrUnsupported, "internal codec format 5"},
		{"offset table too long", chunk(2, 0x10, 1, 64, 8, raw), 100, nil, "offset table"},
		{"negative offset", chunk(2, 0x10, 1, 8, 8, cat2(le32s(-1, 8), []byte("abcdefgh"))), 100, nil, "offset -1"},
		{"offset past end", chunk(2, 0x10, 1, 8, 8, cat2(le32s(29, 8), []byte("abcdefgh"))), 100, nil, "offset 29"},
		{"stream overruns", chunk(2, 0x10, 1, 8, 8, cat2(le32s(20, 9), []byte("abcdefgh"))), 100, nil, "overruns"},
		{"negative stream size", chunk(2, 0x10, 1, 8, 8, cat2(le32s(20, -2), []byte("abcdefgh"))), 100, nil, "size -2"},
		{"short blosclz", chunk(2, 0x10, 1, 8, 8, cat2(le32s(20, 4), []byte{0x02, 'a', 'b', 'c'})), 100, nil, "blosclz"},
		{"bad lz4", chunk(2, 0x10|1<<5, 1, 8, 8, cat2(le32s(20, 3), []byte{0xF0, 1, 2})), 100, nil, "lz4"},
		{"bad snappy", chunk(2, 0x10|2<<5, 1, 8, 8, cat2(le32s(20, 3), []byte{9, 0, 0})), 100, nil, "snappy"},
		{"bad zlib", chunk(2, 0x10|3<<5, 1, 8, 8, cat2(le32s(20, 3), []byte{0x78, 0x9c, 0})), 100, nil, "zlib"},
		{"bad zstd", chunk(2, 0x10|4<<5, 1, 8, 8, cat2(le32s(20, 3), []byte{0x28, 0xb5, 0x2f})), 100, nil, "zstd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BloscDecode(tt.in, tt.maxOut)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "blosc: ") {
				t.Errorf("error %q does not start with blosc: and mention %q", err, tt.msg)
			}
		})
	}
	// Through Codecs the error names the codec once.
	if _, err := New().Decode("blosc", chunk(3, 0, 1, 8, 8, raw), 100); err == nil || !strings.HasPrefix(err.Error(), "codec blosc: format version") {
		t.Errorf("Codecs.Decode error: %v", err)
	}
}

func cat2(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }

// Every codec's output for a wrong size must fail, not be accepted short.
func TestBloscWrongDecodedSize(t *testing.T) {
	c := New()
	defer c.Close()
	in := append(bytes.Repeat([]byte("0123456789abcdefghij"), 150), typedSample(4, 1000, 1)...)
	for _, cname := range bloscCNames {
		enc, err := c.EncodeBlosc(in, BloscOptions{CName: cname, CLevel: 5, TypeSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if enc[2]&bloscFlagMemcpyed != 0 {
			t.Fatalf("%s: sample stored, not compressed", cname)
		}
		// Claim one byte more per block: the stream now decodes short.
		bad := append([]byte{}, enc...)
		binary.LittleEndian.PutUint32(bad[4:], uint32(len(in)+1))
		binary.LittleEndian.PutUint32(bad[8:], uint32(len(in)+1))
		if _, err := BloscDecode(bad, 1<<20); err == nil {
			t.Errorf("%s: stream decoded into a larger block", cname)
		}
		// Claim one byte less: the stream decodes long.
		binary.LittleEndian.PutUint32(bad[4:], uint32(len(in)-1))
		binary.LittleEndian.PutUint32(bad[8:], uint32(len(in)-1))
		if _, err := BloscDecode(bad, 1<<20); err == nil {
			t.Errorf("%s: stream decoded into a smaller block", cname)
		}
	}
}

// benchChunk is a 4 MiB int16 image-like chunk (smooth signal plus noise),
// Blosc-compressed with lz4, byte shuffle, level 5 as numcodecs defaults.
func benchChunk(tb testing.TB) (raw, enc []byte) {
	const w, h = 2048, 1024
	rng := rand.New(rand.NewPCG(42, 42))
	raw = make([]byte, 2*w*h)
	for y := range h {
		for x := range w {
			v := 1000 + 300*math.Sin(float64(x)/60)*math.Cos(float64(y)/45) + rng.NormFloat64()*12
			binary.LittleEndian.PutUint16(raw[2*(y*w+x):], uint16(int16(v)))
		}
	}
	enc, err := BloscEncode(raw, BloscOptions{CName: "lz4", CLevel: 5, Shuffle: BloscShuffle, TypeSize: 2})
	if err != nil {
		tb.Fatal(err)
	}
	return raw, enc
}

// TestWriteBenchChunk writes the benchmark chunk for bench/blosc.sh when
// BLOSC_BENCH_CHUNK names the output file; otherwise it only checks that
// the chunk round-trips.
func TestWriteBenchChunk(t *testing.T) {
	raw, enc := benchChunk(t)
	got, err := BloscDecode(enc, len(raw))
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("bench chunk does not round-trip: %v", err)
	}
	if path := os.Getenv("BLOSC_BENCH_CHUNK"); path != "" {
		if err := os.WriteFile(filepath.Clean(path), enc, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d bytes (ratio %.2f)", path, len(enc), float64(len(raw))/float64(len(enc)))
	}
}

// BenchmarkBloscLZ4Decode decodes the benchmark chunk into one reused
// buffer, as the zarr and n5 readers do with their pooled chunk buffers;
// bench/blosc.sh compares it with c-blosc (whose output buffer comes from
// malloc, also reused and not cleared). Besides MB/s it reports cpu-MB/s,
// decoded bytes per CPU-second of the whole process (GC included), where
// available.
func BenchmarkBloscLZ4Decode(b *testing.B) {
	benchBloscDecode(b, true)
}

// BenchmarkBloscLZ4DecodeAlloc is BenchmarkBloscLZ4Decode through Decode,
// which returns a newly allocated (and so zeroed) buffer every time.
func BenchmarkBloscLZ4DecodeAlloc(b *testing.B) {
	benchBloscDecode(b, false)
}

func benchBloscDecode(b *testing.B, into bool) {
	raw, enc := benchChunk(b)
	c := New()
	defer c.Close()
	b.SetBytes(int64(len(raw)))
	b.ReportMetric(float64(len(raw))/float64(len(enc)), "ratio")
	buf := make([]byte, len(raw))
	cpu0 := processCPU()
	n := 0
	for b.Loop() {
		var err error
		if into {
			_, err = c.DecodeInto("blosc", buf, enc)
		} else {
			_, err = c.Decode("blosc", enc, len(raw))
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(n)*float64(len(raw))/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}

func FuzzBloscDecode(f *testing.F) {
	c := New()
	defer c.Close()
	for i, cname := range bloscCNames {
		for _, shuffle := range []int{BloscNoShuffle, BloscShuffle, BloscBitShuffle} {
			// Small seeds keep the fuzzer's minimisation quick.
			in := append(bytes.Repeat([]byte{1, 0, 2, 0, 3, 0}, 60), typedSample(uint64(i), 300+i, 2)...)
			enc, err := c.EncodeBlosc(in, BloscOptions{CName: cname, CLevel: 5, Shuffle: shuffle, TypeSize: 2, BlockSize: 256})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(enc)
		}
	}
	f.Add(chunk(2, 0x02, 1, 4, 4, []byte("wxyz")))
	f.Add(chunk(2, 0x10, 1, 8, 8, cat2(le32s(20, 8), []byte("abcdefgh"))))
	dir, rows := corpusRows()
	seeds := corpusBloscChunks(dir, rows)
	if len(seeds) == 0 {
		f.Log("shared corpus not found; fuzzing from synthetic seeds only")
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const maxOut = 1 << 20
	buf := make([]byte, maxOut)
	stale := bytes.Repeat([]byte{0xa5}, maxOut)
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := c.Decode("blosc", src, maxOut)
		// Into a reused, dirty buffer the result must be the same: blocks
		// cover the whole output, so no stale byte may show through.
		copy(buf, stale) // a plain loop here would be coverage-instrumented
		into, ierr := c.DecodeInto("blosc", buf, src)
		if (err == nil) != (ierr == nil) {
			t.Fatalf("Decode error %v, DecodeInto error %v", err, ierr)
		}
		if err != nil {
			return
		}
		if len(out) > maxOut || len(out) != int(binary.LittleEndian.Uint32(src[4:])) {
			t.Fatalf("decoded %d bytes, header says %d", len(out), binary.LittleEndian.Uint32(src[4:]))
		}
		if !bytes.Equal(into, out) {
			t.Fatalf("DecodeInto differs from Decode")
		}
	})
}

// corpusBloscChunks lists the chunk files, under the shared corpus rows
// whose features mention blosc, that start with a Blosc1 header. dir is the
// corpus directory ("" when absent).
func corpusBloscChunks(dir string, rows []corpus.Entry) []string {
	var out []string
	for _, e := range rows {
		if !strings.Contains(strings.Join(e.Features, ";"), "blosc") {
			continue
		}
		_ = filepath.WalkDir(filepath.Join(dir, e.Path), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), ".json") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil && len(b) >= 16 && b[0] == 2 && int(binary.LittleEndian.Uint32(b[12:])) == len(b) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// corpusRows finds the corpus without skipping, for fuzz seeds.
func corpusRows() (string, []corpus.Entry) {
	dir := os.Getenv("IMGDATASET_CORPUS")
	if dir == "" {
		root, err := corpus.RepoRoot()
		if err != nil {
			return "", nil
		}
		dir = filepath.Join(root, "..", "shared", "testdata")
	}
	rows, err := corpus.Load(dir)
	if err != nil {
		return "", nil
	}
	return dir, rows
}

// TestCorpusBloscChunks decodes every Blosc chunk of the corpus rows; the
// decoded values are compared with the expected checksums by format/zarr's
// corpus test, which reads the same rows through the Zarr reader.
func TestCorpusBloscChunks(t *testing.T) {
	dir, rows := corpus.Category(t, "zarr")
	paths := corpusBloscChunks(dir, rows)
	if len(paths) < 20 {
		t.Fatalf("found only %d Blosc chunks in the corpus rows that mention blosc", len(paths))
	}
	c := New()
	defer c.Close()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := int(binary.LittleEndian.Uint32(b[4:]))
		out, err := c.Decode("blosc", b, n)
		if err != nil || len(out) != n {
			t.Errorf("%s: %v", p, err)
		}
	}
	t.Logf("%d corpus Blosc chunks decode", len(paths))
}

// BenchmarkZstdDecode decodes the benchmark chunk compressed with zstd
// (level 1, as the zarr writers here default to) into one reused buffer;
// its CPU profile shows whether klauspost/compress takes its amd64
// assembly paths (sequence decoding, huff0 4X decoders).
func BenchmarkZstdDecode(b *testing.B) {
	raw, _ := benchChunk(b)
	c := New()
	defer c.Close()
	enc, err := c.Encode("zstd", 1, raw)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportMetric(float64(len(raw))/float64(len(enc)), "ratio")
	buf := make([]byte, len(raw)+32)
	for b.Loop() {
		if _, err := c.DecodeInto("zstd", buf, enc); err != nil {
			b.Fatal(err)
		}
	}
}
