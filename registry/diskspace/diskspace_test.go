package diskspace

import (
	"errors"
	"os"
	"testing"
	"time"
)

// fakeDisk is a disk whose free space a test sets, counting the reads.
type fakeDisk struct {
	free  uint64
	err   error
	reads int
}

func (d *fakeDisk) read() (uint64, error) {
	d.reads++
	return d.free, d.err
}

// newTestRecent returns a Recent over d with a clock the test moves.
func newTestRecent(d *fakeDisk, maxAge time.Duration, headroom uint64) (*Recent, *time.Time) {
	clock := time.Unix(1_000_000, 0)
	r := NewRecent(d.read, maxAge, headroom)
	r.now = func() time.Time { return clock }
	return r, &clock
}

func mustFree(t *testing.T, r *Recent, need, reserve uint64) uint64 {
	t.Helper()
	free, err := r.Free(need, reserve)
	if err != nil {
		t.Fatal(err)
	}
	return free
}

// TestRecentReusesAFarReading: far from the reserve, one reading serves
// the writes of the maximum age, each counted against it; past the age,
// the disk is read again.
func TestRecentReusesAFarReading(t *testing.T) {
	d := &fakeDisk{free: 10_000}
	r, clock := newTestRecent(d, 100*time.Millisecond, 1_000)
	if got := mustFree(t, r, 100, 500); got != 10_000 || d.reads != 1 {
		t.Fatalf("first look: %d free after %d reads, want 10000 after 1", got, d.reads)
	}
	d.free = 1 // the disk changes; the reading is reused
	*clock = clock.Add(50 * time.Millisecond)
	if got := mustFree(t, r, 100, 500); got != 9_900 || d.reads != 1 {
		t.Fatalf("second look: %d free after %d reads, want 9900 (the reading less the first write) after 1", got, d.reads)
	}
	*clock = clock.Add(50 * time.Millisecond) // the reading's age reaches the maximum
	if got := mustFree(t, r, 100, 500); got != 1 || d.reads != 2 {
		t.Fatalf("look at the maximum age: %d free after %d reads, want 1 after 2", got, d.reads)
	}
}

// TestRecentReadsNearTheReserve: a reading is reused only while, less the
// writes since, it shows the headroom beyond the reserve and the write.
func TestRecentReadsNearTheReserve(t *testing.T) {
	d := &fakeDisk{free: 2_000}
	r, _ := newTestRecent(d, time.Hour, 1_000)
	mustFree(t, r, 300, 500) // a reading of 2,000; 1,700 left
	if got := mustFree(t, r, 200, 500); got != 1_700 || d.reads != 1 {
		t.Fatalf("look with room for the headroom: %d free after %d reads, want 1700 after 1", got, d.reads)
	}
	// 1,500 left: 500 reserve + 1 need + 1,000 headroom do not fit.
	if got := mustFree(t, r, 1, 500); got != 2_000 || d.reads != 2 {
		t.Fatalf("look past the headroom: %d free after %d reads, want a new reading (2000) after 2", got, d.reads)
	}
	// A reading that never shows the headroom is never reused.
	d.free = 1_400
	for i := range 3 {
		if got := mustFree(t, r, 600, 500); got != 1_400 || d.reads != 3+i {
			t.Fatalf("look %d near the reserve: %d free after %d reads", i, got, d.reads)
		}
	}
}

// TestRecentForgetAndErrors: Forget and a failed read drop the reading; a
// clock that went backwards does not extend it.
func TestRecentForgetAndErrors(t *testing.T) {
	d := &fakeDisk{free: 1 << 40}
	r, clock := newTestRecent(d, time.Hour, 1<<30)
	mustFree(t, r, 0, 0)
	r.Forget()
	mustFree(t, r, 0, 0)
	if d.reads != 2 {
		t.Fatalf("%d reads after Forget, want 2", d.reads)
	}
	d.err = errors.New("statfs failed")
	r.Forget()
	if _, err := r.Free(0, 0); err == nil {
		t.Fatal("the read's error was not returned")
	}
	// Nothing is reused after a failed read, nor read ahead of the clock.
	d.err = nil
	mustFree(t, r, 0, 0)
	*clock = clock.Add(-time.Minute)
	mustFree(t, r, 0, 0)
	if d.reads != 5 {
		t.Fatalf("%d reads, want 5: after a failed read, and with the clock run backwards, the disk is read again", d.reads)
	}
}

// TestEnoughDoesNotOverflow: sums past 2^64 are not enough.
func TestEnoughDoesNotOverflow(t *testing.T) {
	const maxU = ^uint64(0)
	if enough(maxU, maxU, 2, 0) || enough(10, 5, 5, 1) || !enough(11, 5, 5, 1) || !enough(maxU, maxU, 0, 0) {
		t.Fatal("enough does not compare free with reserve+need+headroom")
	}
}

// TestFreeReadsTheDisk: Free returns some space under a real directory
// and an error for a missing one.
func TestFreeReadsTheDisk(t *testing.T) {
	free, err := Free(t.TempDir())
	if err != nil || free == 0 {
		t.Fatalf("Free of a temporary directory: %d, %v", free, err)
	}
	if _, err := Free(t.TempDir() + "/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Free of a missing directory: %v, want a not-exist error", err)
	}
}

// BenchmarkFree is the statfs a guard saves per look.
func BenchmarkFree(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, err := Free(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecentFree is a reused reading's cost.
func BenchmarkRecentFree(b *testing.B) {
	dir := b.TempDir()
	r := NewRecent(func() (uint64, error) { return Free(dir) }, DefaultMaxAge, 0)
	for b.Loop() {
		if _, err := r.Free(0, 0); err != nil {
			b.Fatal(err)
		}
	}
}
