//go:build unix

package layers

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time (user + system, all threads) the process has used: on a
// shared machine it measures the work done better than the wall clock.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
