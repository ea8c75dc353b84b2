package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// parallelCases are multi-block chunks covering every internal codec and
// filter, with a leftover block, each above bloscParallelMin.
func parallelCases(t *testing.T) []struct {
	name     string
	raw, enc []byte
} {
	t.Helper()
	opts := []BloscOptions{
		{CName: "lz4", CLevel: 5, Shuffle: BloscShuffle, TypeSize: 2, BlockSize: 32 << 10},
		{CName: "blosclz", CLevel: 5, Shuffle: BloscNoShuffle, TypeSize: 4, BlockSize: 20 << 10},
		{CName: "zlib", CLevel: 1, Shuffle: BloscShuffle, TypeSize: 4, BlockSize: 64 << 10},
		{CName: "zstd", CLevel: 3, Shuffle: BloscBitShuffle, TypeSize: 8, BlockSize: 48 << 10},
		{CName: "snappy", CLevel: 5, Shuffle: BloscShuffle, TypeSize: 16, BlockSize: 32 << 10},
		{CName: "lz4hc", CLevel: 3, Shuffle: BloscShuffle, TypeSize: 3, BlockSize: 30 << 10},
	}
	var out []struct {
		name     string
		raw, enc []byte
	}
	for i, o := range opts {
		raw := typedSample(uint64(i), bloscParallelMin+5001, o.TypeSize)
		if o.Shuffle == BloscNoShuffle {
			// Unshuffled noise does not compress; repeat a stretch instead.
			copy(raw[len(raw)/2:], raw)
		}
		// The leftover block does not end on an element for most type sizes.
		enc, err := BloscEncode(raw, o)
		if err != nil {
			t.Fatal(err)
		}
		if enc[2]&bloscFlagMemcpyed != 0 {
			t.Fatalf("%s: sample stored, not compressed", o.CName)
		}
		out = append(out, struct {
			name     string
			raw, enc []byte
		}{fmt.Sprintf("%s/ts=%d/shuffle=%d", o.CName, o.TypeSize, o.Shuffle), raw, enc})
	}
	return out
}

func TestBloscParallelMatchesSerial(t *testing.T) {
	c := New()
	defer c.Close()
	for _, tc := range parallelCases(t) {
		for _, workers := range []int{0, 1, 2, 3, 8} {
			got, err := c.decodeBloscWorkers(tc.enc, len(tc.raw), workers)
			if err != nil {
				t.Fatalf("%s workers=%d: %v", tc.name, workers, err)
			}
			if !bytes.Equal(got, tc.raw) {
				t.Fatalf("%s workers=%d: decoded data differs", tc.name, workers)
			}
		}
	}
}

// The error of the first bad block wins, however many goroutines decode.
func TestBloscParallelFirstError(t *testing.T) {
	c := New()
	defer c.Close()
	tc := parallelCases(t)[0]
	bad := append([]byte{}, tc.enc...)
	h, err := parseBloscHeader(bad)
	if err != nil || h.nblocks < 4 {
		t.Fatalf("%s: %d blocks (%v), want at least 4", tc.name, h.nblocks, err)
	}
	for _, j := range []int{h.nblocks - 1, 1, 3} {
		off := binary.LittleEndian.Uint32(bad[bloscHeaderSize+4*j:])
		binary.LittleEndian.PutUint32(bad[off:], 0x7FFFFFF0) // stream 0 overruns the chunk
	}
	for _, workers := range []int{1, 2, 3, 8} {
		for range 5 {
			_, err := c.decodeBloscWorkers(bad, len(tc.raw), workers)
			if err == nil {
				t.Fatalf("workers=%d: no error", workers)
			}
			const want = "block 1 stream 0: size 2147483632"
			if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
				t.Fatalf("workers=%d: error %q, want it to start with %q", workers, got, want)
			}
		}
	}
}

// Bytes that no stream covers (a split block whose size is not a multiple
// of the type size, which c-blosc never writes) decode as zeros, whatever a
// reused scratch buffer held before.
func TestBloscUncoveredBytesAreZero(t *testing.T) {
	data := typedSample(9, 600, 2)
	shuf := make([]byte, 600)
	shuffleBytes(shuf[:300], data[:300], 2)
	shuffleBytes(shuf[300:], data[300:], 2)
	// Two blocks of 301 bytes (150 elements each: split in two raw
	// streams of 150 bytes, leaving byte 300 of each block uncovered).
	body := bytes.Join([][]byte{
		le32s(24, 24+2*154),
		le32s(150), shuf[:150], le32s(150), shuf[150:300],
		le32s(150), shuf[300:450], le32s(150), shuf[450:],
	}, nil)
	for _, tt := range []struct {
		name  string
		flags byte
		want  []byte // the 600 covered bytes
	}{
		{"shuffle", 0x01, data},
		// 150 elements are not a multiple of 8: the block is copied as is.
		{"bit shuffle", 0x04, shuf},
		{"no shuffle", 0x00, shuf},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			defer c.Close()
			c.bloscScratch.Put(&bloscScratch{tmp: bytes.Repeat([]byte{0xEE}, 4096)})
			got, err := c.decodeBloscWorkers(chunk(2, tt.flags, 2, 602, 301, body), 602, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got[300] != 0 || got[601] != 0 {
				t.Fatalf("uncovered bytes are %#x and %#x, want 0", got[300], got[601])
			}
			if !bytes.Equal(got[:300], tt.want[:300]) || !bytes.Equal(got[301:601], tt.want[300:]) {
				t.Fatal("covered bytes differ")
			}
		})
	}
}
