//go:build !linux

package main

import "time"

// sleeper waits with the runtime's timers where there is no timerfd.
type sleeper struct{}

func newSleeper() *sleeper               { return &sleeper{} }
func (s *sleeper) sleep(d time.Duration) { time.Sleep(d) }
func (s *sleeper) close()                {}

func cpuSteal() (steal, total uint64) { return 0, 0 }
