package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// addColleges accredits n new colleges (named by tag) under the fixture's
// QA agency, one entry each, recorded in h.entries, applied in batches of
// up to 5.
func addColleges(t *testing.T, f *commitScenario, tag string, n int) []decide.RecordKey {
	t.Helper()
	var keys []decide.RecordKey
	var batch []Entry
	for i := range n {
		subject := fmt.Sprintf("did:web:college-%s-%d.example", tag, i)
		op := f.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": subject,
			"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
		})
		f.index++
		e := Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)}
		f.entries = append(f.entries, e)
		batch = append(batch, e)
		keys = append(keys, decide.ReceivedKey(subject, fwID))
		if len(batch) == 5 || i == n-1 {
			for _, r := range f.s.ApplyBatch(batch) {
				if !r.Accepted {
					t.Fatal(r.Reason)
				}
			}
			batch = nil
		}
	}
	return keys
}

// journalRecords counts the map journal's records in s's database.
func journalRecords(t *testing.T, s *State) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapJournal}, UpperBound: []byte{tableMapJournal + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// proveAll returns the view's commitment and one batch proof of keys,
// verified against the view's map root.
func proveAll(t *testing.T, v *View, keys []decide.RecordKey) (Commitment, []byte) {
	t.Helper()
	c, err := v.Commitment()
	if err != nil {
		t.Fatal(err)
	}
	recs, proof, err := v.ProveRecords(keys)
	if err != nil {
		t.Fatal(err)
	}
	claims := make([]smt.Claim, len(recs))
	for i, r := range recs {
		claims[i] = smt.Claim{Key: smt.KeyOf(decide.StoreKey(r.Key)), Present: r.Bytes != nil}
		if r.Bytes != nil {
			claims[i].Value = recordValue(r.Bytes)
		}
	}
	if err := smt.VerifyBatch(c.MapRoot, claims, proof); err != nil {
		t.Fatalf("the proof at index %d does not verify: %v", v.Index(), err)
	}
	return c, proof
}

// The same log replayed in the same random batches into a state that
// writes its map nodes in every batch (the layout before the journal), one
// that flushes every few entries, and one at the default bounds, which
// never flushes here: after every batch all three report the same
// commitment and the same proofs, and at the end their self-audits pass
// (the last with a journal) and their snapshot streams are the same bytes.
func TestJournalMatchesWrittenMap(t *testing.T) {
	f := mustCommitScenario(t)
	keys := addColleges(t, f, "a", 40)
	keys = append(keys, decide.AccreditationKey(f.collegeAcc), decide.AccreditationKey(f.qaAcc), decide.ReceivedKey("did:web:absent.example", fwID))
	open := func(flushEntries int) *State {
		s, err := Open(t.TempDir(), f.raw, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.apply.flushEntries = flushEntries
		return s
	}
	states := []*State{open(1), open(7), open(journalFlushEntries)}
	rng := rand.New(rand.NewPCG(32, 7))
	flushed := 0
	for i := 0; i < len(f.entries); {
		n := min(1+rng.IntN(6), len(f.entries)-i)
		var want []byte
		for j, s := range states {
			before := s.mapOverlay.Load()
			s.ApplyBatch(f.entries[i : i+n])
			if j == 1 && !before.empty() && s.mapOverlay.Load().empty() {
				flushed++
			}
			if f.entries[i+n-1].Index < f.raiseAt {
				continue
			}
			v := s.View()
			_, proof := proveAll(t, v, keys)
			v.Close()
			if j == 0 {
				want = proof
			} else if !bytes.Equal(proof, want) {
				t.Fatalf("index %d: the state flushing at %d entries proves otherwise", f.entries[i+n-1].Index, s.apply.flushEntries)
			}
			sameRootsAs(t, states[0], s, f.entries[i+n-1].Index)
		}
		i += n
	}
	if flushed == 0 {
		t.Fatal("the state flushing every 7 entries never flushed")
	}
	if journalRecords(t, states[0]) != 0 || journalRecords(t, states[2]) == 0 || states[2].mapOverlay.Load().empty() {
		t.Fatalf("journal records: %d and %d, want none and some", journalRecords(t, states[0]), journalRecords(t, states[2]))
	}
	want := snapshotBytes(t, states[0])
	for _, s := range states {
		if err := s.SelfAudit(context.Background()); err != nil {
			t.Fatalf("SelfAudit flushing at %d entries: %v", s.apply.flushEntries, err)
		}
		checkRebuild(t, s, fmt.Sprintf("flushing at %d entries", s.apply.flushEntries))
		if got := snapshotBytes(t, s); !bytes.Equal(got, want) {
			t.Fatalf("the snapshot of the state flushing at %d entries differs (%d bytes, want %d)", s.apply.flushEntries, len(got), len(want))
		}
	}
}

// A state stopped with journal records (a crash: no flush at Close)
// replays them at open: the same root and proofs, a passing self-audit,
// and later entries apply as on a state that never stopped. So does one
// stopped right after a flush, and one closed cleanly, which leaves no
// journal.
func TestJournalReplayAtOpen(t *testing.T) {
	for _, tc := range []struct {
		name         string
		flushEntries int
		crash        bool
	}{
		{"unflushed journal", journalFlushEntries, true},
		{"right after a flush", 5, true},
		{"clean close", journalFlushEntries, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustCommitScenario(t)
			f.s.apply.flushEntries = tc.flushEntries
			keys := addColleges(t, f, "a", 10) // two batches of 5: the second flushes at 5
			// A batch of one rejected operation: a journal record without
			// changes (after a flush, the only one).
			if r := f.apply(f.govSign(record.OpCreateFramework, map[string]any{"id": fwID, "name": "Again"})); r.Accepted {
				t.Fatal("a second framework of the same id was accepted")
			}
			wantJournal := journalRecords(t, f.s)
			if (wantJournal == 1) != (tc.flushEntries == 5) {
				t.Fatalf("%d journal records before the restart", wantJournal)
			}
			v := f.s.View()
			c, proof := proveAll(t, v, keys)
			v.Close()
			f.s.keepJournal = tc.crash
			f.s.Close()
			f.open()
			if got := journalRecords(t, f.s); tc.crash && got != wantJournal || !tc.crash && got != 0 {
				t.Fatalf("%d journal records after the restart, %d before", got, wantJournal)
			}
			if tc.crash && f.s.mapOverlay.Load().empty() {
				t.Fatal("the replay left the overlay empty")
			}
			v = f.s.View()
			c2, proof2 := proveAll(t, v, keys)
			v.Close()
			if c2.MapRoot != c.MapRoot || c2.LogSize != c.LogSize || !bytes.Equal(proof2, proof) {
				t.Fatalf("after the restart: %+v, proof equal %v; before %+v", c2, bytes.Equal(proof2, proof), c)
			}
			if err := f.s.SelfAudit(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.s.apply.flushEntries = tc.flushEntries
			more := addColleges(t, f, "b", 7)
			v = f.s.View()
			proveAll(t, v, append(keys, more...))
			v.Close()
			checkRebuild(t, f.s, "after the restart")
			if err := f.s.SelfAudit(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A journal record changed while the state was stopped makes the replay's
// root differ from the stored one: Open refuses the state.
func TestJournalReplayFindsTampering(t *testing.T) {
	f := mustCommitScenario(t)
	addColleges(t, f, "a", 5)
	f.s.keepJournal = true
	f.s.Close()
	opts := stateOptions(pebbleLogger{log: slog.New(slog.DiscardHandler)})
	db, err := pebble.Open(f.dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	it, _ := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMapJournal}, UpperBound: []byte{tableMapJournal + 1}})
	if !it.Last() {
		t.Fatal("no journal record")
	}
	k, v := bytes.Clone(it.Key()), bytes.Clone(it.Value())
	it.Close()
	v[len(v)-1] ^= 1
	if err := db.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Cache.Unref()
	s, err := Open(f.dir, f.raw, Options{})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, ErrStateCorrupt) {
		t.Fatalf("Open over a changed journal record: %v", err)
	}
}

// A batch that panics in its apply (the node stops; a test goes on) is
// discarded whole: the overlay and the journal are those of the last
// committed batch, and later batches apply as if it had never run.
func TestJournalDropsADiscardedBatch(t *testing.T) {
	f := mustCommitScenario(t)
	addColleges(t, f, "a", 6)
	ov, records := f.s.mapOverlay.Load(), journalRecords(t, f.s)
	op := f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:discarded.example",
		"action": record.ActionIssue, "resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
	})
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the batch with an undecodable entry did not panic")
			}
		}()
		f.s.ApplyBatch([]Entry{
			{Index: f.index + 1, Time: f.now, Data: EncodeOperation(op)},
			{Index: f.index + 2, Time: f.now, Data: []byte{9, 9}},
		})
	}()
	if f.s.mapOverlay.Load() != ov || journalRecords(t, f.s) != records {
		t.Fatal("the discarded batch changed the overlay or the journal")
	}
	addColleges(t, f, "b", 6)
	checkRebuild(t, f.s, "after a discarded batch")
	checkLogLeaves(t, f.s, "after a discarded batch")
	if err := f.s.SelfAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// checkLogLeaves checks that the log holds one leaf per applied entry in
// order, each proven included in the log's root, the last naming the
// map's root: a log the apply kept in memory (applier.logHead) that took
// an entry of a discarded batch would have a leaf too many in its hashes.
func checkLogLeaves(t *testing.T, s *State, at string) {
	t.Helper()
	v := s.View()
	defer v.Close()
	c := viewCommitment(t, v)
	var last tlog.Leaf
	for i := range c.LogSize {
		enc, err := v.Leaf(i)
		if err != nil {
			t.Fatalf("%s: leaf %d: %v", at, i, err)
		}
		p, err := v.InclusionProof(i, c.LogSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.VerifyInclusion(i, c.LogSize, tlog.LeafHash(enc), p, c.LogRoot); err != nil {
			t.Fatalf("%s: leaf %d of %d is not in the log's root: %v", at, i, c.LogSize, err)
		}
		l, err := tlog.DecodeLeaf(enc)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && l.Index <= last.Index {
			t.Fatalf("%s: leaf %d is of entry %d, after leaf %d of entry %d", at, i, l.Index, i-1, last.Index)
		}
		last = l
	}
	if last.Index != c.Index || smt.Hash(last.MapRoot) != c.MapRoot {
		t.Fatalf("%s: the last leaf is of entry %d with map root %x; the state is at %d with %x", at, last.Index, last.MapRoot, c.Index, c.MapRoot)
	}
}

// A view taken before a flush proves as it did after the flush and after
// later batches: it keeps the overlay that goes with its snapshot. So does
// a kept view (ViewAtLogSize).
func TestJournalViewAcrossFlush(t *testing.T) {
	f := mustCommitScenario(t)
	f.s.apply.flushEntries = 20
	keys := addColleges(t, f, "a", 5)
	keys = append(keys, decide.AccreditationKey(f.collegeAcc))
	if f.s.mapOverlay.Load().empty() {
		t.Fatal("nothing in the overlay before the flush")
	}
	v := f.s.View()
	defer v.Close()
	size, _, err := f.s.LogHead() // keeps the view at size
	if err != nil {
		t.Fatal(err)
	}
	c, proof := proveAll(t, v, keys)
	flushes := 0
	for round := range 4 {
		addColleges(t, f, fmt.Sprintf("b%d", round), 5)
		if journalRecords(t, f.s) == 0 {
			flushes++
		}
		c2, proof2 := proveAll(t, v, keys)
		if c2.MapRoot != c.MapRoot || !bytes.Equal(proof2, proof) {
			t.Fatalf("round %d: the view's proof changed", round)
		}
		kv, err := f.s.ViewAtLogSize(size)
		if err != nil {
			t.Fatal(err)
		}
		c3, proof3 := proveAll(t, kv, keys)
		kv.Close()
		if c3.MapRoot != c.MapRoot || !bytes.Equal(proof3, proof) {
			t.Fatalf("round %d: the kept view's proof changed", round)
		}
	}
	if flushes == 0 {
		t.Fatal("no flush happened")
	}
	now := f.s.View()
	defer now.Close()
	if c4, _ := proveAll(t, now, keys); c4.MapRoot == c.MapRoot {
		t.Fatal("the state did not move on")
	}
}

// A snapshot taken between flushes carries the overlay's records and no
// journal: restored over a state with a journal of its own (an earlier
// part of the log) it gives the same root and proofs,
// the restored state has no journal and passes its self-audit, and it
// applies later entries as the original does.
func TestJournalSnapshotBetweenFlushes(t *testing.T) {
	f := mustCommitScenario(t)
	keys := addColleges(t, f, "a", 12)
	if journalRecords(t, f.s) == 0 {
		t.Fatal("no journal records to snapshot over")
	}
	stream := snapshotBytes(t, f.s)
	if _, err := readSnapshot(bytes.NewReader(stream), func(k, v []byte) error {
		if k[0] == tableMapJournal {
			t.Fatalf("the snapshot holds journal record %x", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other, err := Open(t.TempDir(), f.raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// The state restored over has an overlay and a journal of its own,
	// from an earlier part of the log: the restore replaces both.
	raise := slices.IndexFunc(f.entries, func(e Entry) bool { return e.Index == f.raiseAt })
	other.ApplyBatch(f.entries[:raise+1])
	other.ApplyBatch(f.entries[raise+1 : len(f.entries)-3])
	if journalRecords(t, other) == 0 || other.mapOverlay.Load().empty() {
		t.Fatal("the state restored over has no journal")
	}
	if err := other.Restore(bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if journalRecords(t, other) != 0 || !other.mapOverlay.Load().empty() {
		t.Fatal("the restored state has a journal")
	}
	v, w := f.s.View(), other.View()
	c, proof := proveAll(t, v, keys)
	c2, proof2 := proveAll(t, w, keys)
	v.Close()
	w.Close()
	if c.MapRoot != c2.MapRoot || !bytes.Equal(c.LogRoot, c2.LogRoot) || !bytes.Equal(proof, proof2) {
		t.Fatal("the restored state proves otherwise")
	}
	if err := other.SelfAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRebuild(t, other, "the restored state")
	from := len(f.entries)
	addColleges(t, f, "b", 6)
	other.ApplyBatch(f.entries[from:])
	sameRootsAs(t, f.s, other, f.index)
}

// The overlay's layers merge as a base-4 counter carries: after n batches
// it has as many layers as the sum of n's base-4 digits, and a lookup
// finds each key's newest record.
func TestMapOverlayLayers(t *testing.T) {
	ov := emptyOverlay
	for n := 1; n <= 37; n++ {
		ov = ov.with(newOverlayLayer(map[string][]byte{
			"all": {byte(n)}, fmt.Sprint(n): {1}, "gone": nil,
		}), 1)
		bits := 0
		for x := n; x > 0; x /= overlayFanIn {
			bits += x % overlayFanIn
		}
		if len(ov.layers) != bits || ov.entries != n {
			t.Fatalf("after %d batches: %d layers, %d entries", n, len(ov.layers), ov.entries)
		}
		if v, ok := ov.get([]byte("all")); !ok || v[0] != byte(n) {
			t.Fatalf("after %d batches the newest record is %v", n, v)
		}
		if v, ok := ov.get([]byte("gone")); !ok || v != nil {
			t.Fatal("a deletion is not kept")
		}
		if _, ok := ov.get([]byte("1")); !ok {
			t.Fatal("the first batch's record is lost")
		}
		if len(ov.merged()) != n+2 {
			t.Fatalf("after %d batches %d records merged", n, len(ov.merged()))
		}
	}
}

// CommitTimes counts every Pebble commit the apply makes: one per applied
// batch, and one more for a batch after which the map's overlay is
// flushed.
func TestCommitTimesCountTheApplysCommits(t *testing.T) {
	f := mustCommitScenario(t)
	f.s.apply.flushEntries = 1 << 20
	before := f.s.CommitTimes()
	addColleges(t, f, "a", 3) // one batch
	mid := f.s.CommitTimes()
	if mid.Commits != before.Commits+1 || mid.Total <= before.Total {
		t.Fatalf("a batch: commits %d → %d, time %v → %v", before.Commits, mid.Commits, before.Total, mid.Total)
	}
	f.s.apply.flushEntries = 1
	addColleges(t, f, "b", 3) // its batch, then the flush
	if journalRecords(t, f.s) != 0 {
		t.Fatal("the overlay was not flushed")
	}
	after := f.s.CommitTimes()
	if after.Commits != mid.Commits+2 || after.Total <= mid.Total {
		t.Fatalf("a batch and a flush: commits %d → %d, time %v → %v", mid.Commits, after.Commits, mid.Total, after.Total)
	}
	if stalled := after.MemTableStall + after.L0Stall; stalled < 0 || stalled > after.Total {
		t.Fatalf("stalled %v of %v", stalled, after.Total)
	}
}
