package registry

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/diskspace"
	"github.com/trustreg/trustreg/registry/record"
)

// TestCommitsReuseAFarReading: far from the reserve the apply's commits
// share one reading of the free space; near it each commit reads the disk,
// and a write that met a full disk drops the reading.
func TestCommitsReuseAFarReading(t *testing.T) {
	h := mustNewState(t, 1, 1)
	var free atomic.Uint64
	var reads atomic.Int64
	h.s.disk.free = func(string) (uint64, error) { reads.Add(1); return free.Load(), nil }
	// An hour's reuse, so the count does not depend on this machine's speed.
	h.s.disk.recent = diskspace.NewRecent(func() (uint64, error) { return h.s.disk.free(h.s.disk.dir) }, time.Hour, diskspace.DefaultHeadroom)
	n := 0
	commits := func(k int) int64 {
		t.Helper()
		before := reads.Load()
		for range k {
			n++
			h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fmt.Sprintf("https://fw%d.example", n), "name": "F", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
		}
		return reads.Load() - before
	}
	free.Store(1 << 40)
	if got := commits(10); got != 1 {
		t.Fatalf("10 commits far from the reserve read the disk %d times, want 1", got)
	}
	// Less than the headroom beyond the reserve: every commit reads.
	free.Store(h.s.disk.reserve + diskspace.DefaultHeadroom/2)
	h.s.disk.recent.Forget()
	if got := commits(10); got != 10 {
		t.Fatalf("10 commits near the reserve read the disk %d times, want 10", got)
	}
	// Far again: a write that meets ENOSPC drops the reading.
	free.Store(1 << 40)
	if got := commits(5); got != 1 {
		t.Fatalf("5 commits far from the reserve read the disk %d times, want 1", got)
	}
	if _, full := h.s.disk.failed(syscall.ENOSPC); !full {
		t.Fatal("ENOSPC is not a full disk")
	}
	// The commit after it reads the disk (the disk is known full), and so
	// does the next: the reading from before ENOSPC was dropped.
	if got := commits(2); got != 2 {
		t.Fatalf("the two commits after ENOSPC read the disk %d times, want 2", got)
	}
}
