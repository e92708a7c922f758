package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper waits for short, exact durations. Go's timers are checked
// whenever a thread schedules a goroutine, which under load is often; but
// when every thread of the process is idle they wait in epoll_wait, whose
// timeout is in whole milliseconds: a wait of 300 µs takes 1 ms. A paced
// load generator counts latency from each request's due time, so that
// rounding showed up as the servers' latency (at 1,000 requests/s the
// median 0.76 ms instead of 0.33 ms). For waits of 100 µs and more the
// sleeper also arms a timerfd, which the runtime's poller watches, for the
// same moment: an idle poller wakes then and runs the timer. Shorter waits
// come at rates where the process is rarely idle, and there the two extra
// system calls per request cost more than they save (at 15,000
// requests/s, p99 8–13 ms with them, 4–9 ms without). A timerfd alone is
// worse under load: a busy runtime polls the network only when it runs
// out of work.
type sleeper struct {
	fd int
	f  *os.File // keeps fd registered with the runtime's poller
}

func newSleeper() *sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &sleeper{fd: -1}
	}
	return &sleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

func (s *sleeper) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	armed := s.fd >= 0 && d >= 100*time.Microsecond
	if armed {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
		_ = unix.TimerfdSettime(s.fd, 0, &spec, nil)
	}
	time.Sleep(d)
	if armed {
		var buf [8]byte
		_, _ = unix.Read(s.fd, buf[:]) // reset its count; EAGAIN if not yet fired
	}
}

func (s *sleeper) close() {
	if s.f != nil {
		_ = s.f.Close() // a timerfd, only read
	}
}

// cpuSteal reads the machine's CPU time so far and the part of it the
// hypervisor gave to other guests (steal), in clock ticks.
func cpuSteal() (steal, total uint64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	return parseCPUSteal(raw)
}
