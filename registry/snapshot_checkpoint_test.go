package registry

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A checkpoint taken with map records still in the overlay streams, byte
// for byte, the snapshot the live state streams at the same index, and
// restores into a fresh state with the same roots; the live state goes on
// applying after it, its map equal to one rebuilt from its records.
func TestCheckpointStreamsTheSnapshot(t *testing.T) {
	f := chainWithOverlay(t, 3, 20)
	want := snapshotBytes(t, f.s)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := f.s.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	applyColleges(t, f, 1, 2, 20) // the live state moves on; the checkpoint does not
	checkRebuild(t, f.s, "after a checkpoint")

	sn, err := OpenCheckpoint(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, err = sn.WriteTo(&got)
	sn.Release()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("the checkpoint streams %d bytes, the live snapshot at its index %d, and they differ", got.Len(), len(want))
	}
	fresh, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Restore(bytes.NewReader(got.Bytes())); err != nil {
		t.Fatal(err)
	}
	checkRebuild(t, fresh, "restored from a checkpoint's stream")
}

// A directory that is not a checkpoint Checkpoint wrote is an error.
func TestOpenCheckpointRefusesAnEmptyDirectory(t *testing.T) {
	if sn, err := OpenCheckpoint(t.TempDir(), slog.New(slog.DiscardHandler)); err == nil {
		sn.Release()
		t.Fatal("an empty directory opened as a checkpoint")
	}
}

// A state whose map overlay cannot be written for want of disk space
// refuses a checkpoint (raft's snapshot is then streamed) and keeps the
// overlay, which the next flush writes.
func TestCheckpointRefusedWhileTheOverlayCannotBeFlushed(t *testing.T) {
	f := chainWithOverlay(t, 2, 10)
	free := f.s.disk.free
	f.s.disk.free = func(string) (uint64, error) { return 0, nil }
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := f.s.Checkpoint(dir); !errors.Is(err, errOverlayUnflushed) {
		t.Fatalf("checkpoint on a full disk: %v, want errOverlayUnflushed", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused checkpoint left %s: %v", dir, err)
	}
	f.s.disk.free = free
	f.s.disk.full.Store(false)
	if err := f.s.Checkpoint(dir); err != nil {
		t.Fatalf("checkpoint once there is room: %v", err)
	}
	sn, err := OpenCheckpoint(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Release()
	if got, want := sn.AppliedIndex(), f.s.AppliedIndex(); got != want {
		t.Fatalf("the checkpoint holds index %d, the state %d", got, want)
	}
}

// chainWithOverlay returns the chain fixture at the commitment's level
// with batches × n colleges applied and their map records still in the
// overlay (fewer entries than a flush takes), which the checkpoint tests
// need to cover the overlay's flush.
func chainWithOverlay(t *testing.T, batches, n int) *chainFixture {
	t.Helper()
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	applyColleges(t, f, 0, batches, n)
	if ov := f.s.mapOverlay.Load(); ov == nil || ov.empty() {
		t.Fatal("the map overlay is empty: the test would not cover its flush")
	}
	return f
}
