package node

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLagWatch: a follower is not ready once an index the cluster had
// committed is still not applied lagLimit after it was first seen; one
// that catches up (applies it) is ready again, and one that keeps up,
// however far behind for less than lagLimit, never stops being ready.
func TestLagWatch(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var w lagWatch
	// Keeping up: each index seen committed is applied by the next check.
	for i := range 30 {
		w.observe(uint64(100+10*i), uint64(90+10*i), t0.Add(time.Duration(i)*lagCheckEvery))
		if err := w.failure(); err != nil {
			t.Fatalf("a follower 10 behind that keeps up, check %d: %v", i, err)
		}
	}
	// Stuck at 489 while the cluster commits on.
	w = lagWatch{}
	w.observe(500, 489, t0)
	w.observe(509, 489, t0.Add(lagLimit-time.Second))
	if err := w.failure(); err != nil {
		t.Fatalf("stuck for less than lagLimit: %v", err)
	}
	w.observe(520, 489, t0.Add(lagLimit))
	err := w.failure()
	if !errors.Is(err, ErrNotFollowing) || !strings.Contains(err.Error(), "index 500") || !strings.Contains(err.Error(), "applied 489") {
		t.Fatalf("stuck for lagLimit: %v", err)
	}
	// It catches up: ready again, and the next lag is timed afresh.
	w.observe(530, 520, t0.Add(lagLimit+lagCheckEvery))
	if err := w.failure(); err != nil {
		t.Fatalf("after applying the index it was stuck at: %v", err)
	}
	w.observe(540, 520, t0.Add(lagLimit+2*lagCheckEvery))
	if err := w.failure(); err != nil {
		t.Fatalf("a new lag, just seen: %v", err)
	}
	// A catch-up from a snapshot, far behind but shorter than lagLimit.
	w = lagWatch{}
	w.observe(1_000_000, 10, t0)
	w.observe(1_000_050, 999_000, t0.Add(30*time.Second))
	w.observe(1_000_100, 1_000_060, t0.Add(35*time.Second))
	if err := w.failure(); err != nil {
		t.Fatalf("a catch-up of 35 s: %v", err)
	}
	w.clear()
	if w.target != 0 || w.failure() != nil {
		t.Fatal("clear kept what was observed")
	}
}
