package registry

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
)

// topKey returns the map's node key at depth d whose path starts with the
// d bits of p (smt's nodeKey, written out here so the test does not share
// the code it checks).
func topKey(d int, p uint32) []byte {
	n := (d + 7) / 8
	k := []byte{byte(d)}
	v := p << uint(8*n-d)
	for i := n - 1; i >= 0; i-- {
		k = append(k, byte(v>>(8*uint(i))))
	}
	return k
}

// Every node key down to mapTopDepth has a slot of its own, and the slots
// run in the keys' order; deeper keys and keys of the wrong length have
// none.
func TestTopSlot(t *testing.T) {
	var prev []byte
	want := 0
	for d := 0; d <= mapTopDepth; d++ {
		for p := uint32(0); p < 1<<d; p++ {
			k := topKey(d, p)
			i, ok := topSlot(k)
			if !ok || i != want {
				t.Fatalf("topSlot(%x) = %d, %v; want %d", k, i, ok, want)
			}
			if back := appendSlotKey(nil, i); !bytes.Equal(back, k) {
				t.Fatalf("appendSlotKey(%d) = %x, want %x", i, back, k)
			}
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				t.Fatalf("key %x after %x", k, prev)
			}
			prev, want = k, want+1
		}
	}
	if want != mapTopSlots {
		t.Fatalf("%d slots, mapTopSlots is %d", want, mapTopSlots)
	}
	for _, k := range [][]byte{nil, topKey(mapTopDepth+1, 0), {3}, {3, 0, 0}, {9, 0x80}} {
		if i, ok := topSlot(k); ok {
			t.Fatalf("topSlot(%x) = %d, want none", k, i)
		}
	}
}

// The top cache follows the apply's writes: batch after batch, every
// record it holds is the map's (the overlay over the database), and the
// map the apply leaves equals one rebuilt from the records. Without the
// layer's write-through the cache keeps a batch's old records and the
// next batch computes its roots from them.
func TestMapTopFollowsWrites(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	for round := range 4 {
		applyColleges(t, f, round, 3, 20)
		top := f.s.apply.mapTop.Load()
		held := 0
		for d := 0; d <= mapTopDepth; d++ {
			for p := uint32(0); p < 1<<d; p++ {
				k := topKey(d, p)
				got, ok := top.get(k)
				if !ok {
					continue
				}
				held++
				want, err := (overlayNodes{ov: f.s.mapOverlay.Load(), r: mapNodes{r: f.s.db}}).GetNode(k)
				if err != nil {
					want = nil
				}
				if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("round %d: the top cache holds %x at %x, the database %x", round, got, k, want)
				}
			}
		}
		if held == 0 {
			t.Fatalf("round %d: the top cache holds nothing", round)
		}
		checkRebuild(t, f.s, "a round of colleges")
	}
}

// A batch that wrote map nodes and never reached its flush (an apply that
// panicked; the node stops, a test may go on) leaves nothing the next
// batch reads: its writes at the top wait apart from the committed records
// and the next batch's node cache drops them.
func TestMapTopDropsAnUnflushedBatch(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelCommitment)
	applyColleges(t, f, 0, 1, 8)
	top := f.s.apply.mapTop.Load()
	c := newNodeCache(f.s.db, f.s.mapOverlay.Load(), top)
	root := topKey(0, 0)
	if err := c.DeleteNode(root); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetNode(root); !errors.Is(err, smt.ErrNodeNotFound) {
		t.Fatalf("the batch reads its own delete of the root: %v", err)
	}
	if v, ok := top.get(root); !ok || v == nil {
		t.Fatalf("the committed root record is gone from the top cache (%x, %v)", v, ok)
	}
	applyColleges(t, f, 1, 2, 8)
	checkRebuild(t, f.s, "after an unflushed batch")
}

// applyColleges accredits batches × n new colleges (named by round) under
// the fixture's QA agency, in batches of n.
func applyColleges(t *testing.T, f *chainFixture, round, batches, n int) {
	t.Helper()
	for b := range batches {
		entries := make([]Entry, 0, n)
		for i := range n {
			op := f.sign(f.qa, record.OpAccredit, map[string]any{
				"framework": fwID, "accreditor": f.qa.DID, "subject": fmt.Sprintf("did:web:college-%d-%d-%d.example", round, b, i),
				"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
				"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
			})
			f.index++
			entries = append(entries, Entry{Index: f.index, Time: f.now.Add(time.Duration(f.index) * time.Microsecond), Data: EncodeOperation(op)})
		}
		for _, r := range f.s.ApplyBatch(entries) {
			if !r.Accepted {
				t.Fatal(r.Reason)
			}
		}
	}
}

// The top cache's slots at every depth down to mapTopDepth hold what they
// were given, apart from the running batch's writes, and a level's slots
// are made only when the cache first reaches it.
func TestMapTopLevels(t *testing.T) {
	top := newMapTop()
	for d := 0; d <= mapTopDepth; d++ {
		if top.levels[d].recs != nil {
			t.Fatalf("level %d made before it was reached", d)
		}
	}
	last := topKey(mapTopDepth, 1<<mapTopDepth-1)
	deep, ok := topSlot(last)
	if !ok {
		t.Fatalf("no slot for %x", last)
	}
	if _, known := top.getSlot(deep); known {
		t.Fatal("an empty cache knows the last slot")
	}
	if top.levels[mapTopDepth].recs == nil || top.levels[mapTopDepth-1].recs != nil {
		t.Fatal("reading the deepest slot made other levels than its own")
	}
	rec := []byte{1, 2, 3}
	top.setKnown(deep, rec)
	if got, known := top.get(last); !known || !bytes.Equal(got, rec) {
		t.Fatalf("get(%x) = %x, %v; want %x", last, got, known, rec)
	}
	// A batch's write shadows the committed record until dropped.
	top.setPending(deep, nil)
	if got, known := top.getSlot(deep); !known || got != nil {
		t.Fatalf("the batch's delete reads as %x, %v", got, known)
	}
	if got, _ := top.get(last); !bytes.Equal(got, rec) {
		t.Fatalf("the batch's delete reached the committed record: %x", got)
	}
	top.discardPending()
	if got, known := top.getSlot(deep); !known || !bytes.Equal(got, rec) {
		t.Fatalf("after the drop the slot reads %x, %v; want %x", got, known, rec)
	}
	// Known absent is not unknown.
	root, _ := topSlot(topKey(0, 0))
	top.setKnown(root, nil)
	if got, known := top.getSlot(root); !known || got != nil {
		t.Fatalf("a known absent root reads %x, %v", got, known)
	}
	if _, known := top.get(topKey(mapTopDepth, 0)); known {
		t.Fatal("a slot never set is known")
	}
}
