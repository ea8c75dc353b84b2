//go:build !unix

package codec

import "time"

// processCPU is not measured here; benchmarks then omit their CPU-time
// figure.
func processCPU() time.Duration { return 0 }
