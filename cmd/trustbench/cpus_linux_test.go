package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// allowedCPUs reads the Cpus_allowed_list line of a /proc status file.
func allowedCPUs(t *testing.T, statusPath string) string {
	t.Helper()
	raw, err := os.ReadFile(statusPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no Cpus_allowed_list", statusPath)
	return ""
}

func listOf(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// sameCPUs compares a kernel CPU list ("0-3" or "0,2") with cpus.
func sameCPUs(kernel string, cpus []int) bool {
	var got []int
	for _, part := range strings.Split(kernel, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return false
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return false
			}
		}
		for c := a; c <= b; c++ {
			got = append(got, c)
		}
	}
	return fmt.Sprint(got) == fmt.Sprint(cpus)
}

func TestSplitCPUsPlacesServersAndGeneratorApart(t *testing.T) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Count() < 2 {
		t.Skipf("this process may use %d CPU; the split needs two", orig.Count())
	}
	gen, servers, err := splitCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) == 0 || len(servers) == 0 || len(gen)+len(servers) != orig.Count() {
		t.Fatalf("split of %d CPUs: generator %v, servers %v", orig.Count(), gen, servers)
	}
	for _, c := range gen {
		for _, s := range servers {
			if c == s {
				t.Fatalf("CPU %d is on both sides: generator %v, servers %v", c, gen, servers)
			}
		}
	}

	// A server started while serverCPUs is set runs on those CPUs only.
	serverCPUs = servers
	defer func() { serverCPUs = nil }()
	p, err := start(t.TempDir(), "sleeper", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	// taskset sets the CPUs, then execs the program in the same process.
	waitExec(t, p, "sleep")
	if got := allowedCPUs(t, fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)); !sameCPUs(got, servers) {
		t.Errorf("server runs on CPUs %s, want %s", got, listOf(servers))
	}

	// The generator's threads, those running now and those started after,
	// run on its own half.
	procs := runtime.GOMAXPROCS(0)
	defer func() {
		runtime.GOMAXPROCS(procs)
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if tid, err := strconv.Atoi(task.Name()); err == nil {
				unix.SchedSetaffinity(tid, &orig)
			}
		}
	}()
	if err := pinSelf(gen); err != nil {
		t.Fatal(err)
	}
	if runtime.GOMAXPROCS(0) != len(gen) {
		t.Errorf("GOMAXPROCS %d after pinning to %v", runtime.GOMAXPROCS(0), gen)
	}
	done := make(chan string)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		done <- allowedCPUs(t, fmt.Sprintf("/proc/self/task/%d/status", unix.Gettid()))
	}()
	if got := <-done; !sameCPUs(got, gen) {
		t.Errorf("a generator thread runs on CPUs %s, want %s", got, listOf(gen))
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got := allowedCPUs(t, "/proc/self/task/"+task.Name()+"/status")
		if !sameCPUs(got, gen) {
			t.Errorf("thread %s runs on CPUs %s, want %s", task.Name(), got, listOf(gen))
		}
	}
}

func TestOnCPUsWrapsWithTaskset(t *testing.T) {
	bin, args := onCPUs(nil, "trustd", []string{"--config", "a.yaml"})
	if bin != "trustd" || strings.Join(args, " ") != "--config a.yaml" {
		t.Errorf("without CPUs: %s %v", bin, args)
	}
	bin, args = onCPUs([]int{2, 3}, "trustd", []string{"--config", "a.yaml"})
	if bin != "taskset" || strings.Join(args, " ") != "-c 2,3 trustd --config a.yaml" {
		t.Errorf("with CPUs 2,3: %s %v", bin, args)
	}
}

// waitExec waits up to 5 s for p to have exec'd the program comm (a
// wrapper such as taskset or nice execs it in the same process).
func waitExec(t *testing.T, p *process, comm string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.cmd.Process.Pid))
		if strings.TrimSpace(string(got)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server process is still %q after 5 s", got)
		}
	}
}

// niceOf reads a process's niceness from /proc (field 19 of stat).
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(statFields(string(raw))[16]) // stat's field 19; statFields start at its third
	if err != nil {
		t.Fatalf("niceness in %q: %v", raw, err)
	}
	return n
}

func TestServerNiceRunsServersAtIt(t *testing.T) {
	own := niceOf(t, os.Getpid())
	if own+7 > 19 {
		t.Skipf("this process runs at niceness %d", own)
	}
	for _, c := range []struct{ nice, want int }{{0, own}, {7, own + 7}} {
		serverNice = c.nice
		p, err := start(t.TempDir(), "sleeper", "sleep", "30")
		serverNice = 0
		if err != nil {
			t.Fatal(err)
		}
		// nice sets the niceness, then execs the program in the same process.
		t.Cleanup(p.stop)
		waitExec(t, p, "sleep")
		got := niceOf(t, p.cmd.Process.Pid)
		p.stop()
		if got != c.want {
			t.Errorf("--server-nice %d: the server runs at niceness %d, want %d", c.nice, got, c.want)
		}
	}
	if got := niceOf(t, os.Getpid()); got != own {
		t.Errorf("the generator's niceness moved from %d to %d", own, got)
	}
}

// TestSelfUsageCountsTheGeneratorsCPU: the generator's own CPU, from which
// a run's generator_cpu_us_per_request is taken, grows as it computes.
func TestSelfUsageCountsTheGeneratorsCPU(t *testing.T) {
	cpu0, _ := selfUsage()
	if cpu0 <= 0 {
		t.Fatalf("selfUsage = %v s for a process that has run", cpu0)
	}
	x := uint64(1)
	for deadline := time.Now().Add(10 * time.Second); ; {
		for range 100_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if cpu, _ := selfUsage(); cpu-cpu0 >= 0.05 {
			break
		}
		if time.Now().After(deadline) {
			cpu, _ := selfUsage()
			t.Fatalf("after 10 s of computing, selfUsage moved from %.2f to %.2f s (state %d)", cpu0, cpu, x)
		}
	}
}
