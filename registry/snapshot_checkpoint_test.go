package registry

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
)

// A checkpoint taken with map records still in the overlay streams, byte
// for byte, the snapshot the live state streams at the same index, and
// restores into a fresh state with the same roots; the live state goes on
// applying after it, its map equal to one rebuilt from its records.
func TestCheckpointStreamsTheSnapshot(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	applyColleges(t, f, 0, 3, 20)
	if ov := f.s.mapOverlay.Load(); ov == nil || ov.empty() {
		t.Fatal("the overlay is empty before the checkpoint: the test would not cover its flush")
	}
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
