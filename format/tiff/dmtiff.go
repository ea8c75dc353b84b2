package tiff

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/imgdataset/imgdataset/volume"
)

// DigitalMicrograph's TIFF export writes its calibration in these private tags.
const (
	tagGatanFirst = 65003
	tagGatanLast  = 65100
	maxGatanText  = 256 // bytes of one Gatan ASCII tag
)

// readDMTIFF reads the private tags of DigitalMicrograph's TIFF export; the
// pixel size is 65009/65010 in the unit of 65003/65004 (which must agree),
// with the origin in 65006/65007.
func (r *reader) readDMTIFF(ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale {
	g := r.gatanTags(ctx, d, vm)
	if len(g) == 0 {
		return nil
	}
	vm.fields["gatan_tiff"] = g
	x, okX := positive(g["65009"])
	y, okY := positive(g["65010"])
	ux, _ := g["65003"].(string)
	uy, _ := g["65004"].(string)
	if _, known := volume.NanometresPer(ux); !okX || !okY || !known || ux != uy {
		return nil
	}
	s := &vendorScale{y: y, x: x, unit: ux, source: "DigitalMicrograph tags 65009/65010 (scale), 65003/65004 (unit), 65006/65007 (origin)"}
	s.xOff, _ = g["65006"].(float64)
	s.yOff, _ = g["65007"].(float64)
	return s
}

// gatanTags returns the scalar private tags DigitalMicrograph's TIFF export
// writes (units, origins, scales), keyed by tag number; tifffile has no names
// for them, so neither do we.
func (r *reader) gatanTags(ctx context.Context, d *ifd, vm *vendorMeta) map[string]any {
	out := map[string]any{}
	for i := range d.entries {
		e := &d.entries[i]
		if e.tag < tagGatanFirst || e.tag > tagGatanLast {
			continue
		}
		key := strconv.Itoa(int(e.tag))
		switch {
		case e.typ == typeASCII && e.count <= maxGatanText:
			s, err := r.ascii(ctx, d, e, maxGatanText)
			if err != nil {
				vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", e.tag, err))
				continue
			}
			out[key] = latin1(s)
		case e.count == 1 && (e.typ == typeDouble || e.typ == typeFloat):
			b, err := r.raw(ctx, d, e, 8)
			if err != nil {
				vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", e.tag, err))
				continue
			}
			var f float64
			if e.typ == typeDouble {
				f = math.Float64frombits(r.bo.Uint64(b))
			} else {
				f = float64(math.Float32frombits(r.bo.Uint32(b)))
			}
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				out[key] = f
			}
		case e.count == 1 && isInteger(e.typ) && e.typ != typeUndefined:
			v, err := r.raw(ctx, d, e, 8)
			if err != nil {
				vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d: %v", e.tag, err))
				continue
			}
			u, err := decodeUints(r.bo, e.typ, v)
			if err != nil || len(u) != 1 {
				continue
			}
			switch e.typ {
			case typeSLong:
				out[key] = int64(int32(u[0]))
			case typeSShort:
				out[key] = int64(int16(u[0]))
			case typeSByte:
				out[key] = int64(int8(u[0]))
			case typeSLong8:
				out[key] = int64(u[0])
			default:
				out[key] = u[0]
			}
		}
	}
	return out
}
