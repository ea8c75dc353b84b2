package tiff

import (
	"context"
	"encoding/json"
	"fmt"
)

// tagMicroManager is Micro-Manager's per-plane JSON; the file-level header
// and index map are read in mm.go.
const tagMicroManager = 51123

// readMMPlane reads a plane's Micro-Manager JSON, which states no
// calibration the reader uses.
func (r *reader) readMMPlane(ctx context.Context, d *ifd, vm *vendorMeta) *vendorScale {
	s, ok := r.vendorText(ctx, d, tagMicroManager, vm)
	if !ok {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		vm.warnings = append(vm.warnings, fmt.Sprintf("vendor tag %d (Micro-Manager JSON): %v", tagMicroManager, err))
		return nil
	}
	vm.fields["micromanager"] = v
	return nil
}
