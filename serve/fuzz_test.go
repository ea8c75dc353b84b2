package serve

import (
	"net/url"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/volume"
)

// FuzzQuery feeds arbitrary request paths, block queries and chunk keys to
// the parsers: none may panic, and whatever they accept must be safe to act on
// (a box inside the volume within the byte cap, ids without path steps, chunk
// indices inside the grid).
func FuzzQuery(f *testing.F) {
	seeds := []struct{ path, query, chunk string }{
		{"/volumes/abc/block", "origin=0,0,0&size=1,2,3", "0.0.0"},
		{"/volumes/a.b_c-d/block", "origin=5,6,7&size=10,10,10&format=npy", "1.2.3"},
		{"/zarr/x/.zarray", "size=20,30,40", "2.2.3"},
		{"/volumes/%2e%2e/block", "origin=-1,0,0&size=1,1,1", "01.0.0"},
		{"/zarr/..%2f..%2fetc/passwd", "origin=0,0,0&size=9223372036854775807,2,2", "+1.0.0"},
		{"//volumes//", "origin=,,&size=1,,", "..."},
		{"/volumes/a%00b", "size=1,1,1&size=1,1,1", "9223372036854775807.0.0"},
		{"/volumes/\u00e9", "origin=0x1,0,0&size=1e3,1,1&format=tiff", "-1.0.0"},
		{"", "size=%zz", ""},
	}
	for _, s := range seeds {
		f.Add(s.path, s.query, s.chunk)
	}
	in := volume.Info{Name: "fuzz", Shape: []int64{20, 30, 40}, DType: volume.Uint16,
		Axes: []volume.Axis{{Name: "z", Size: 20}, {Name: "y", Size: 30}, {Name: "x", Size: 40}}}
	const maxBytes = 4096
	chunks := zarrChunks(in, maxBytes)
	grid := chunkGrid(in.Shape, chunks)
	f.Fuzz(func(t *testing.T, path, query, chunk string) {
		if segs, err := splitPath(path); err == nil {
			for _, s := range segs {
				if s == ".." || s == "." || strings.ContainsAny(s, "/\\\x00") {
					t.Fatalf("splitPath(%q) accepted segment %q", path, s)
				}
			}
			for _, s := range segs {
				if validID(s) && (strings.Contains(s, "/") || s == "..") {
					t.Fatalf("validID accepted %q", s)
				}
			}
		}
		if q, err := url.ParseQuery(query); err == nil {
			if req, err := parseBlockQuery(q, in, maxBytes); err == nil {
				if err := req.box.Within(in.Shape); err != nil || req.box.Empty() {
					t.Fatalf("%q: accepted box %v: %v", query, req.box, err)
				}
				if req.bytes != req.box.NumElements()*2 || req.bytes > maxBytes {
					t.Fatalf("%q: %d bytes for box %v (cap %d)", query, req.bytes, req.box, maxBytes)
				}
			}
		}
		if idx, err := parseChunkKey(chunk, grid); err == nil {
			if len(idx) != len(grid) {
				t.Fatalf("chunk %q: %d indices", chunk, len(idx))
			}
			for i := range idx {
				if idx[i] < 0 || idx[i] >= grid[i] {
					t.Fatalf("chunk %q: index %v outside grid %v", chunk, idx, grid)
				}
			}
			if joined := strings.ReplaceAll(joinInts(idx), ",", "."); joined != chunk {
				t.Fatalf("chunk %q parsed as %v: two names for one chunk", chunk, idx)
			}
		}
	})
}

// FuzzZarrChunks checks the chunk choice for any shape, stored chunks and
// cap: every chunk is positive, no larger than the cap allows, and the grid
// covers the array.
func FuzzZarrChunks(f *testing.F) {
	f.Add(int64(21), int64(30), int64(43), int64(8), int64(16), int64(16), int64(4096), uint8(2))
	f.Add(int64(1<<40), int64(1<<40), int64(1<<40), int64(1), int64(1), int64(1<<40), int64(256<<20), uint8(8))
	f.Add(int64(0), int64(5), int64(5), int64(0), int64(0), int64(0), int64(1), uint8(1))
	f.Fuzz(func(t *testing.T, z, y, x, cz, cy, cx, maxBytes int64, elem uint8) {
		dt := map[uint8]volume.DType{1: volume.Uint8, 2: volume.Uint16, 4: volume.Float32, 8: volume.Float64, 16: volume.Complex128}[elem]
		if dt == "" || z < 0 || y < 0 || x < 0 || maxBytes < 16 {
			return
		}
		in := volume.Info{Shape: []int64{z, y, x}, DType: dt}
		if cz > 0 && cy > 0 && cx > 0 {
			in.Chunks = []int64{cz, cy, cx}
		}
		ch := zarrChunks(in, maxBytes)
		p := int64(dt.Size())
		for i, c := range ch {
			if c <= 0 || c > max(in.Shape[i], 1) {
				t.Fatalf("shape %v chunks %v: chunk %d", in.Shape, ch, c)
			}
			if p > maxBytes/c {
				t.Fatalf("shape %v chunks %v: above %d bytes", in.Shape, ch, maxBytes)
			}
			p *= c
		}
		for i, g := range chunkGrid(in.Shape, ch) {
			if want := (in.Shape[i]-1)/ch[i] + 1; in.Shape[i] > 0 && g != want || in.Shape[i] == 0 && g != 0 {
				t.Fatalf("grid %d × %d does not cover %d", g, ch[i], in.Shape[i])
			}
		}
	})
}
