package main

import (
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
