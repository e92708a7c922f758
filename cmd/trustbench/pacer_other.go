//go:build !linux

package main

import (
	"fmt"
	"time"
)

// sleeper waits with the runtime's timers where there is no timerfd.
type sleeper struct{}

func newSleeper() *sleeper               { return &sleeper{} }
func (s *sleeper) sleep(d time.Duration) { time.Sleep(d) }
func (s *sleeper) close()                {}

func cpuSteal() (steal, total uint64) { return 0, 0 }

func splitCPUs() (generator, servers []int, err error) {
	return nil, nil, fmt.Errorf("--split-cpus is supported on Linux only")
}

func pinSelf([]int) error { return nil }

func onCPUs(_ []int, bin string, args []string) (string, []string) { return bin, args }
