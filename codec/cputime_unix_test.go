//go:build unix

package codec

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system, all threads) the test
// process has used, for benchmarks that report throughput per CPU-second,
// a figure that a busy shared machine disturbs less than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
