package registry

import (
	"bytes"
	"errors"
	"testing"
)

// TestViewAtLogSize: a view of the state at an earlier log size stays
// readable after more writes (the map is updated in place), a size not yet
// reached is ErrLogBehind, a restore drops every kept view, and the views
// read the same roots as the state had then.
func TestViewAtLogSize(t *testing.T) {
	f := mustCommitScenario(t)
	size, root, err := f.s.LogHead()
	if err != nil {
		t.Fatal(err)
	}
	before := mustCommitment(t, f.s)
	f.moreHistoryAfter(t)
	if after := mustCommitment(t, f.s); after.LogSize == size {
		t.Fatalf("the log did not grow: %d", size)
	}
	v, err := f.s.ViewAtLogSize(size)
	if err != nil {
		t.Fatalf("view at %d: %v", size, err)
	}
	c, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	if c.LogSize != size || !bytes.Equal(c.LogRoot, root) || c.MapRoot != before.MapRoot || v.Index() != before.Index {
		t.Fatalf("kept view reads %+v, want %+v", c, before)
	}
	v.Close()
	v.Close() // harmless
	head, _, _ := f.s.LogHead()
	if _, err := f.s.ViewAtLogSize(head + 1); !errors.Is(err, ErrLogBehind) {
		t.Fatalf("view ahead of the log: %v, want ErrLogBehind", err)
	}
	// A view handed out survives the restore's pause only until closed;
	// the restore must not wait for the kept ones.
	if err := f.s.Restore(bytes.NewReader(snapshotBytes(t, f.s))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ViewAtLogSize(size); !errors.Is(err, ErrNoKeptView) {
		t.Fatalf("view of a size before the restore: %v, want ErrNoKeptView", err)
	}
	if v, err := f.s.ViewAtLogSize(head); err != nil {
		t.Fatalf("view at the head after the restore: %v", err)
	} else {
		v.Close()
	}
}
