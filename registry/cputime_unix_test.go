//go:build unix

package registry

import (
	"syscall"
	"time"
)

// cpuUsage returns the CPU time the process has used (user and system) and
// its minor page faults, which other processes on a shared machine inflate
// less than the wall clock.
func cpuUsage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Minflt)
}
