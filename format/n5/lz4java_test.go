package n5

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func TestXXH32(t *testing.T) {
	// Reference values of xxHash32 (xxhsum / the xxHash test suite).
	cases := []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0x02CC5D05},
		{"a", 0, 0x550D7456},
		{"abc", 0, 0x32D153FF},
		{"Nobody inspects the spammish repetition", 0, 0xE2293B2F},
		{"", 1, 0x0B2CB792},
	}
	for _, c := range cases {
		if got := xxh32([]byte(c.in), c.seed); got != c.want {
			t.Errorf("xxh32(%q, %d) = %#08x, want %#08x", c.in, c.seed, got, c.want)
		}
	}
}

// lz4jBlock builds one lz4-java block by hand: magic, token, little-endian
// lengths and the masked checksum, then the body.
func lz4jBlock(method byte, level int, body []byte, olen int, check uint32) []byte {
	b := []byte(lz4jMagic)
	b = append(b, method|byte(level))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = binary.LittleEndian.AppendUint32(b, uint32(olen))
	b = binary.LittleEndian.AppendUint32(b, check)
	return append(b, body...)
}

func TestLZ4JavaHandBuilt(t *testing.T) {
	part1 := bytes.Repeat([]byte("abcdefgh"), 128) // compressible, 1024 bytes
	part2 := []byte("stored verbatim")
	comp := make([]byte, lz4.CompressBlockBound(len(part1)))
	n, err := lz4.CompressBlock(part1, comp, nil)
	if err != nil || n == 0 {
		t.Fatalf("CompressBlock: %d, %v", n, err)
	}
	sum := func(b []byte) uint32 { return xxh32(b, lz4jSeed) & lz4jChecksumMk }
	blk1 := lz4jBlock(lz4jMethodLZ4, 0, comp[:n], len(part1), sum(part1))
	blk2 := lz4jBlock(lz4jMethodRaw, 0, part2, len(part2), sum(part2))
	end := lz4jBlock(lz4jMethodRaw, 0, nil, 0, 0)
	want := append(append([]byte(nil), part1...), part2...)

	stream := bytes.Join([][]byte{blk1, blk2, end}, nil)
	corrupt := append([]byte(nil), stream...)
	corrupt[len(blk1)+lz4jHeaderLen] ^= 1 // a byte of the stored block
	badMagic := append([]byte(nil), stream...)
	badMagic[0] = 'X'

	cases := []struct {
		name   string
		in     []byte
		maxOut int
		ok     bool
	}{
		{"two blocks and end marker", stream, len(want), true},
		{"no end marker", bytes.Join([][]byte{blk1, blk2}, nil), len(want), true},
		{"trailing bytes after end marker are ignored", append(append([]byte(nil), stream...), 1, 2, 3), len(want), true},
		{"checksum mismatch", corrupt, len(want), false},
		{"bad magic", badMagic, len(want), false},
		{"over maxOut", stream, len(want) - 1, false},
		{"truncated header", stream[:len(blk1)+10], len(want), false},
		{"truncated body", stream[:len(blk1)+lz4jHeaderLen+3], len(want), false},
		{"block larger than its level allows", lz4jBlock(lz4jMethodRaw, 0, make([]byte, 1025), 1025, sum(make([]byte, 1025))), 4096, false},
		{"raw lengths disagree", lz4jBlock(lz4jMethodRaw, 0, part2, len(part2)+1, 0), 4096, false},
		{"unknown method", lz4jBlock(0x30, 0, part2, len(part2), sum(part2)), 4096, false},
		{"end marker with checksum", lz4jBlock(lz4jMethodRaw, 0, nil, 0, 7), 4096, false},
	}
	for _, c := range cases {
		got, err := decodeLZ4Java(c.in, c.maxOut)
		if c.ok {
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %v (%d bytes)", c.name, err, len(got))
			}
		} else if err == nil {
			t.Errorf("%s: succeeded", c.name)
		}
	}
}

func TestLZ4JavaEncodeRoundTrip(t *testing.T) {
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(i * i >> 3)
	}
	enc, err := encodeLZ4Java(data, 1) // 2 KiB blocks: three blocks
	if err != nil {
		t.Fatal(err)
	}
	if c := bytes.Count(enc, []byte(lz4jMagic)); c != 4 {
		t.Errorf("%d block headers, want 4 (three blocks and the end marker)", c)
	}
	got, err := decodeLZ4Java(enc, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip: %v", err)
	}
}
