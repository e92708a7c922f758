package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// splitCPUs divides the CPUs this process may run on in two: the lower
// half for the load generator, the upper half for the servers measured.
// On a machine whose cores the generator and the servers share, the
// latency measured at a paced rate includes the time each waited for the
// other's work (the generator nearly fills one core at 14,000
// requests/s); with the halves apart it is the servers' latency, as with
// a generator on another machine, at the cost of each side having fewer
// cores, which on a 2-core machine costs as much as it saves
// (BENCHMARKS.md, fifth pass). Every server of a run is placed the same
// way, baselines included.
func splitCPUs() (generator, servers []int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, nil, fmt.Errorf("read this process's CPUs: %w", err)
	}
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		return nil, nil, fmt.Errorf("--split-cpus needs at least two CPUs, this process may use %d", len(cpus))
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, nil, fmt.Errorf("--split-cpus starts the servers with taskset (util-linux): %w", err)
	}
	half := len(cpus) / 2
	return cpus[:half], cpus[half:], nil
}

// pinSelf confines every thread of this process to cpus (threads started
// later inherit it from the thread that starts them) and sizes the Go
// scheduler to match.
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d: %w", tid, err)
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// onCPUs returns the command line that runs bin with args on cpus
// (taskset execs the program, so the process id stays the program's).
func onCPUs(cpus []int, bin string, args []string) (string, []string) {
	if len(cpus) == 0 {
		return bin, args
	}
	list := make([]string, len(cpus))
	for i, c := range cpus {
		list[i] = strconv.Itoa(c)
	}
	return "taskset", append([]string{"-c", strings.Join(list, ","), bin}, args...)
}
