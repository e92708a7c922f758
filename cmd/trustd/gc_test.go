package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneCollector(t *testing.T) {
	// Restore the test process's own settings afterwards.
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})

	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	percent, limit := tuneCollector(func(string) string { return "" })
	if percent != gcPercent || limit != goMemoryLimit {
		t.Fatalf("tuneCollector set GOGC %d and the limit %d, want %d and %d", percent, limit, gcPercent, goMemoryLimit)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC in force %d, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != goMemoryLimit {
		t.Errorf("memory limit in force %d, want %d", got, goMemoryLimit)
	}

	// The operator's settings stand: the runtime read them at start.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(2 << 30)
	percent, limit = tuneCollector(func(k string) string {
		return map[string]string{"GOGC": "150", "GOMEMLIMIT": "2GiB"}[k]
	})
	if percent != -1 || limit != -1 {
		t.Fatalf("tuneCollector set GOGC %d and the limit %d although both were given", percent, limit)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC in force %d, want the operator's 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 2<<30 {
		t.Errorf("memory limit in force %d, want the operator's %d", got, 2<<30)
	}
}
