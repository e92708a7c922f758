package registry

import (
	"fmt"
	"sync"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// TestViewsOfOneStateShareASnapshot: views of one state read one Pebble
// snapshot; a commit gives the next view a new one while the older views
// still read the state they began with; the old snapshot closes with the
// last view that reads it, and the slot's with the next commit.
func TestViewsOfOneStateShareASnapshot(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.s.closeKeep.Do(h.s.stopKeeping) // the kept views hold snapshots of their own
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Health", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	open := func() int { return h.s.db.Metrics().Snapshots.Count }

	a, b := h.s.View(), h.s.View()
	if a.snap != b.snap {
		t.Fatal("two views of one state took two snapshots")
	}
	sh := h.s.caches.current.p.Load()
	if sh == nil || sh.snap != a.snap || sh.refs.Load() != 3 {
		t.Fatalf("the shared snapshot: %+v, want a's with 3 references (the slot, a and b)", sh)
	}
	if n := open(); n != 1 {
		t.Fatalf("%d snapshots open, want 1", n)
	}

	const other = "https://other.example/fw"
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": other, "name": "Other", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	c := h.s.View()
	if c.snap == a.snap || c.Index() != a.Index()+1 {
		t.Fatalf("the view after a commit: index %d and the old snapshot %t; want index %d and a new snapshot", c.Index(), c.snap == a.snap, a.Index()+1)
	}
	for _, x := range []struct {
		name string
		v    *View
		want bool
	}{{"a", a, false}, {"b", b, false}, {"c", c, true}} {
		rec, err := x.v.rd.Record(decide.FrameworkKey(other))
		if err != nil || (rec != nil) != x.want {
			t.Fatalf("view %s reads the framework created after it: %t, %v; want %t", x.name, rec != nil, err, x.want)
		}
	}
	if n := open(); n != 2 {
		t.Fatalf("%d snapshots open with views of two states, want 2", n)
	}
	a.Close()
	b.Close()
	b.Close() // twice is harmless
	if n := open(); n != 1 || sh.refs.Load() != 0 {
		t.Fatalf("after the old state's views closed: %d snapshots open and %d references left, want 1 and 0", n, sh.refs.Load())
	}
	c.Close()
	if n := open(); n != 1 {
		t.Fatalf("%d snapshots open after the last view closed, want the slot's 1", n)
	}
	h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": "https://third.example/fw", "name": "Third", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	if n := open(); n != 0 {
		t.Fatalf("%d snapshots open after a commit with no view open, want 0", n)
	}
}

// TestSharedViewsFollowCommits takes views from many goroutines while
// frameworks are created one commit at a time: every view sees exactly the
// frameworks applied up to its index, and no snapshot is left open.
func TestSharedViewsFollowCommits(t *testing.T) {
	h := mustNewState(t, 1, 1)
	h.s.closeKeep.Do(h.s.stopKeeping)
	const writes = 40
	id := func(i int) string { return fmt.Sprintf("https://fw%d.example", i) }
	base := h.s.AppliedIndex() // the framework of write i is applied at base+1+i
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				v := h.s.View()
				applied := int(v.Index() - base) // frameworks the view must see
				for i := range writes {
					rec, err := v.rd.Record(decide.FrameworkKey(id(i)))
					if err != nil || (rec != nil) != (i < applied) {
						errs <- fmt.Errorf("a view at index %d reads framework %d: %t, %v", v.Index(), i, rec != nil, err)
						v.Close()
						return
					}
				}
				v.Close()
			}
		})
	}
	for i := range writes {
		h.mustAccept(h.govSign(record.OpCreateFramework, map[string]any{"id": id(i), "name": "F", "roots": []string{mustKey(t, record.KeyEd25519).DID}}))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h.s.caches.current.drop()
	if n := h.s.db.Metrics().Snapshots.Count; n != 0 {
		t.Fatalf("%d snapshots left open", n)
	}
}

// TestClosedSlotTakesNothing: after close the slot refuses an offer, and
// an offer racing the close leaves it empty, the snapshot the caller's.
func TestClosedSlotTakesNothing(t *testing.T) {
	h := mustNewState(t, 1, 1)
	var c currentSnapshot
	snap := h.s.db.NewSnapshot()
	sh := c.offer(snap, nil, 1, 0, 2, func() uint64 { return 2 })
	if sh == nil || c.p.Load() != sh {
		t.Fatal("an open slot refused an offer")
	}
	c.close()
	if sh.refs.Load() != 1 || c.p.Load() != nil {
		t.Fatalf("after close: %d references and slot %v; want the caller's 1 and an empty slot", sh.refs.Load(), c.p.Load())
	}
	sh.release()
	snap2 := h.s.db.NewSnapshot()
	defer func() { _ = snap2.Close() }()
	if c.offer(snap2, nil, 1, 0, 4, func() uint64 { return 4 }) != nil || c.p.Load() != nil {
		t.Fatal("a closed slot took an offer")
	}
}
