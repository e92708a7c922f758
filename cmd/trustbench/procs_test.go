package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWaitReadySaysWhyAServerNeverCameUp(t *testing.T) {
	dir := t.TempDir()
	url := "http://127.0.0.1:1/readyz" // nothing listens there
	p, err := start(dir, "failing", "/bin/sh", "-c", "echo 'listen tcp 127.0.0.1:4001: address already in use' >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	t0 := time.Now()
	err = p.waitReady(url, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "failing exited (exit status 3)") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("waiting for a process that exited: %v; want its exit and the end of its log", err)
	}
	if time.Since(t0) > 30*time.Second {
		t.Fatalf("the wait went on for %s after the process had exited", time.Since(t0))
	}

	q, err := start(dir, "silent", "/bin/sh", "-c", "echo starting; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	err = q.waitReady(url, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "silent: "+url+" did not answer 200 within 300ms") || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("waiting for a process that never answers: %v", err)
	}
	q.stop()
	select {
	case <-q.exited:
	default:
		t.Fatal("stop returned with the process still running")
	}
}

func TestAPortTakenBeforeTheListenIsRecognized(t *testing.T) {
	p, err := start(t.TempDir(), "trustd0", "/bin/sh", "-c", "echo 'gateway listen on 127.0.0.1:41234: listen tcp 127.0.0.1:41234: bind: address already in use' >&2; exit 1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	if err := p.waitReady("http://127.0.0.1:1/readyz", time.Minute); !errors.Is(err, errPortTaken) {
		t.Fatalf("a server that could not listen: %v, want errPortTaken", err)
	}
	q, err := start(t.TempDir(), "trustd1", "/bin/sh", "-c", "echo 'genesis: no such file' >&2; exit 1")
	if err != nil {
		t.Fatal(err)
	}
	defer q.stop()
	if err := q.waitReady("http://127.0.0.1:1/readyz", time.Minute); err == nil || errors.Is(err, errPortTaken) {
		t.Fatalf("a server that failed for another reason: %v, want an error that is not errPortTaken", err)
	}
}

func TestClustersStartAgainOnlyWhenAPortWasTaken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "writes")
	os.MkdirAll(dir, 0o700)
	var attempts, stops int
	err := retryOnPortTaken(dir, func() error {
		attempts++
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("attempt %d found %d entries left by the one before", attempts, len(entries))
		}
		os.WriteFile(filepath.Join(dir, "genesis.json"), []byte("{}"), 0o644)
		if attempts < 3 {
			return fmt.Errorf("writes: %w: trustd1 exited", errPortTaken)
		}
		return nil
	}, func() { stops++ })
	if err != nil || attempts != 3 || stops != 2 {
		t.Fatalf("err %v after %d attempts and %d stops; want success on the third, each failed one stopped", err, attempts, stops)
	}

	attempts, stops = 0, 0
	err = retryOnPortTaken(dir, func() error { attempts++; return fmt.Errorf("%w again", errPortTaken) }, func() { stops++ })
	if !errors.Is(err, errPortTaken) || attempts != portAttempts {
		t.Fatalf("always taken: %v after %d attempts; want errPortTaken after %d", err, attempts, portAttempts)
	}

	attempts = 0
	other := errors.New("trustd identity: exit status 1")
	if err := retryOnPortTaken(dir, func() error { attempts++; return other }, func() {}); err != other || attempts != 1 {
		t.Fatalf("another failure: %v after %d attempts; want it returned at once", err, attempts)
	}
}

func TestParseStatReadsCPUAndMinorFaults(t *testing.T) {
	// proc(5): minflt is field 10, utime 14, stime 15; a command name may
	// hold spaces and parentheses.
	line := "4242 (trust d (x)) S 1 4242 4242 0 -1 4194560 1234 0 7 0 250 50 0 0 20 0 12 0 100 0 0"
	cpu, faults := parseStat(line)
	if cpu != 3 || faults != 1234 {
		t.Fatalf("parseStat = %v s, %v faults; want 3 s (300 ticks) and 1234", cpu, faults)
	}
	if cpu, faults := parseStat("4242 (short) S 1 2"); cpu != 0 || faults != 0 {
		t.Fatalf("a truncated stat line read as %v s, %v faults; want zeros", cpu, faults)
	}
}

func TestWritePageFaultsArePrinted(t *testing.T) {
	rep := &report{Mode: "full", Machine: "test", Writes: []writeResult{{
		Clients: 64, Trustd: stats{PerSecond: 1600}, EtcdGRPC: stats{PerSecond: 2500}, RatioGRPC: 0.64,
		TrustdFaults: 4.25, EtcdGRPCFaults: 0.5, EtcdFaults: 0.75,
	}}}
	var out bytes.Buffer
	if err := printReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	if want := "64 clients, minor page faults per write (kept runs): trustd 4.2, etcd via gRPC 0.5, via JSON 0.8"; !strings.Contains(out.String(), want) {
		t.Fatalf("the report does not give the page faults per write (%q):\n%s", want, out.String())
	}
}

// What a process uses at its floor while the settle after a run waits is
// not charged to the run: a run that asked nothing of a process that ticks
// steadily (here a shell counting to 2,000 between sleeps of 50 ms, as a
// raft leader's heartbeats keep it busy) costs about nothing, not its
// floor over the wait.
func TestSettleDoesNotChargeTheFloor(t *testing.T) {
	p, err := start(t.TempDir(), "ticking", "/bin/sh", "-c", "while :; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 0.05; done")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	ps := []*process{p}
	ctx := context.Background()
	measureFloor(ctx, ps, 10*time.Second)
	if p.floor <= 0 {
		t.Skipf("the ticking process used no CPU (%.3f of a core): nothing to tell apart", p.floor)
	}
	const requests = 1000
	cpu0 := p.cpuSeconds()
	s, cpuMs, _ := measured(ctx, config{short: true}, ps, func() stats { return stats{Requests: requests} })
	used := p.cpuSeconds() - cpu0
	if s.Requests != requests {
		t.Fatalf("stats not passed through: %+v", s)
	}
	charged := cpuMs * requests / 1000 // CPU seconds charged to the run
	if charged < 0 || charged > 0.9*used {
		t.Fatalf("charged %.3f s of CPU to a run that asked nothing; the process used %.3f s at its floor of %.1f %% while the settle waited", charged, used, p.floor*100)
	}
}
