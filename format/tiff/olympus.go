package tiff

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
)

// Private tags of Olympus Soft Imaging Solutions cameras.
const (
	tagOlympusSIS    = 33560 // offset of a binary block
	tagOlympusSISINI = 33471 // INI text
)

// readOlympus reads the INI text and the binary SIS block of Olympus SIS
// files; the pixel size is the SIS block's calibration, in metres.
func (r *reader) readOlympus(ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale {
	if s, ok := r.vendorText(ctx, d, tagOlympusSISINI, vm); ok {
		vm.fields["olympus_sis_ini"] = parseINI(s)
	}
	e := d.find(tagOlympusSIS)
	if e == nil || !isInteger(e.typ) {
		return nil
	}
	off, err := r.uint1(ctx, d, tagOlympusSIS, 0)
	var sis map[string]any
	if err == nil {
		sis, err = r.readSIS(ctx, off)
	}
	if err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (Olympus SIS): %v", tagOlympusSIS, err))
		return nil
	}
	vm.fields["olympus_sis"] = sis
	if m, ok := sis["magnification"].(float64); ok && m > 0 {
		vm.acq.Magnification = m
	}
	x, okX := positive(sis["pixel_size_x_m"])
	y, okY := positive(sis["pixel_size_y_m"])
	if !okX || !okY {
		return nil
	}
	return metres(y, x, fmt.Sprintf("Olympus SIS tag %d pixel size", tagOlympusSIS))
}

// readSIS parses the Olympus SIS block at off as tifffile's read_sis does:
// a 60-byte header ("SIS0", acquisition minute/hour/day/month/year, name,
// sub-block count) and 8-byte sub-block entries, of which type 1 holds the
// calibration. Everything is little-endian whatever the file's byte order.
func (r *reader) readSIS(ctx context.Context, off uint64) (map[string]any, error) {
	const headSize, maxBlocks, calSize = 60, 256, 112
	if off > uint64(r.size) {
		return nil, fmt.Errorf("offset %d outside the file: %w", off, errCorrupt)
	}
	h, err := r.readAt(ctx, int64(off), headSize)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != "SIS0" {
		return nil, fmt.Errorf("no SIS0 magic at %d: %w", off, errCorrupt)
	}
	le := binary.LittleEndian
	i16 := func(b []byte) int { return int(int16(le.Uint16(b))) }
	minute, hour, day, month, year := i16(h[10:]), i16(h[12:]), i16(h[14:]), i16(h[16:]), i16(h[18:])
	out := map[string]any{"offset": off}
	if name := cString(h[26:58]); name != "" {
		out["name"] = name
	}
	t := time.Date(1900+year, time.Month(month+1), day, hour, minute, 0, 0, time.UTC)
	if month >= 0 && month < 12 && day >= 1 && day <= 31 && hour >= 0 && hour < 24 && minute >= 0 && minute < 60 && t.Day() == day {
		out["datetime"] = t.Format("2006-01-02T15:04")
	}
	n := i16(h[58:])
	if n < 0 || n > maxBlocks {
		return nil, fmt.Errorf("%d sub-blocks: %w", n, errCorrupt)
	}
	tab, err := r.readAt(ctx, int64(off)+headSize, int64(n)*8)
	if err != nil {
		return nil, err
	}
	for i := range n {
		e := tab[i*8:]
		if i16(e) != 1 {
			continue
		}
		b, err := r.readAt(ctx, int64(le.Uint32(e[4:])), calSize)
		if err != nil {
			return nil, err
		}
		m := math.Pow(10, float64(i16(b[10:])))
		for k, f := range map[string]float64{
			"pixel_size_x_m": math.Float64frombits(le.Uint64(b[12:])) * m,
			"pixel_size_y_m": math.Float64frombits(le.Uint64(b[20:])) * m,
			"magnification":  math.Float64frombits(le.Uint64(b[36:])),
		} {
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				out[k] = f
			}
		}
		if s := cString(b[46:80]); s != "" {
			out["camera_name"] = s
		}
		if s := cString(b[80:112]); s != "" {
			out["picture_type"] = s
		}
		break
	}
	return out, nil
}

// cString returns the Latin-1 text of b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(latin1(string(b)))
}
