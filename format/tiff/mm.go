package tiff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// Micro-Manager multipage TIFF header fields, at byte 8 of a classic TIFF
// [formats.md §4.5; tifffile read_micromanager_metadata].
const (
	mmIndexMagic        = 54773648 // index map header, followed by its offset
	mmIndexEntriesMagic = 3453623  // at the index map: header, then entry count
	mmSummaryMagic      = 2355492  // summary header, followed by its length; JSON at 40
	mmHeaderSize        = 40       // TIFF header and the four header/value pairs
	mmEntrySize         = 20       // channel, slice, frame, position, IFD offset (u32 each)
)

// mmInfo is what a Micro-Manager file's header points at.
type mmInfo struct {
	summary  any     // the summary metadata JSON, nil when absent or unreadable
	ifds     []int64 // IFD offsets the index map lists, ascending, unique
	entries  int
	dims     [4]int64 // channels, slices, frames, positions the index map spans
	warnings []string
}

// readMicroManager parses the Micro-Manager header in hdr (the file's first
// bytes) and reads the summary and index map it points at. It returns nil
// for files that are not Micro-Manager's. A lying count or offset leaves
// that part out with a warning (the IFD walk then finds the pages); only
// a failing store is an error.
func (r *reader) readMicroManager(ctx context.Context, hdr []byte) (*mmInfo, error) {
	if r.big || len(hdr) < mmHeaderSize || r.bo.Uint32(hdr[8:]) != mmIndexMagic {
		return nil, nil
	}
	mm := &mmInfo{}
	if r.bo.Uint32(hdr[32:]) == mmSummaryMagic {
		n := int64(r.bo.Uint32(hdr[36:]))
		switch {
		case n > maxMetaValue:
			mm.warnings = append(mm.warnings, fmt.Sprintf("Micro-Manager summary of %d bytes not read", n))
		case n > r.size-mmHeaderSize:
			mm.warnings = append(mm.warnings, fmt.Sprintf("Micro-Manager summary of %d bytes runs past the end of the file", n))
		default:
			b, err := r.readAt(ctx, mmHeaderSize, n)
			if err != nil {
				return nil, err
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			if err := json.Unmarshal(b, &mm.summary); err != nil {
				mm.summary = nil
				mm.warnings = append(mm.warnings, fmt.Sprintf("Micro-Manager summary: %v", err))
			}
		}
	}
	if err := mm.readIndex(ctx, r, int64(r.bo.Uint32(hdr[12:]))); err != nil {
		if fatal(err) {
			return nil, err
		}
		mm.ifds = nil
		mm.warnings = append(mm.warnings, fmt.Sprintf("Micro-Manager index map not used: %v", err))
	}
	return mm, nil
}

// readIndex reads the index map at off. Every count and offset is checked
// against the file size before anything is allocated.
func (mm *mmInfo) readIndex(ctx context.Context, r *reader, off int64) error {
	if off < 0 || off > r.size-8 {
		// Only a hint for the IFD walk: a cut file fails there, not here.
		return fmt.Errorf("index map at %d outside the %d-byte file: %w", off, r.size, errCorrupt)
	}
	h, err := r.readAt(ctx, off, 8)
	if err != nil {
		return err
	}
	if m := r.bo.Uint32(h); m != mmIndexEntriesMagic {
		return fmt.Errorf("header %d at %d: %w", m, off, errCorrupt)
	}
	n := int64(r.bo.Uint32(h[4:]))
	if n > maxIFDs || n*mmEntrySize > r.size-off-8 {
		return fmt.Errorf("%d entries at %d do not fit the %d-byte file: %w", n, off, r.size, errCorrupt)
	}
	b, err := r.readAt(ctx, off+8, n*mmEntrySize)
	if err != nil {
		return err
	}
	countSize, _, _ := r.ifdSizes()
	seen := make(map[int64]bool, n)
	for i := int64(0); i < n; i++ {
		e := b[i*mmEntrySize:]
		for k := range mm.dims {
			mm.dims[k] = max(mm.dims[k], int64(r.bo.Uint32(e[4*k:]))+1)
		}
		o := int64(r.bo.Uint32(e[16:]))
		if o < 8 || o > r.size-countSize {
			return fmt.Errorf("entry %d: IFD offset %d outside the file: %w", i, o, errCorrupt)
		}
		if !seen[o] {
			seen[o] = true
			mm.ifds = append(mm.ifds, o)
		}
	}
	sort.Slice(mm.ifds, func(a, b int) bool { return mm.ifds[a] < mm.ifds[b] })
	mm.entries = int(n)
	return nil
}

// addTo records the Micro-Manager header data in md.
func (mm *mmInfo) addTo(md map[string]any) {
	if mm == nil {
		return
	}
	if mm.summary != nil {
		md["micromanager_summary"] = mm.summary
	}
	if mm.entries > 0 {
		md["micromanager_index"] = map[string]any{
			"entries": mm.entries, "channels": mm.dims[0], "slices": mm.dims[1],
			"frames": mm.dims[2], "positions": mm.dims[3],
		}
	}
	if len(mm.warnings) > 0 {
		md["micromanager_warnings"] = mm.warnings
	}
}
