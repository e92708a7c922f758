package registry

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Each cache of caches (cache.go) states what invalidates it; a test per
// invariant breaks when that invalidation is taken away:
//
//   - record cache, commit: TestCachedAnswersFollowWrites,
//     TestKeptIteratorsUnderConcurrentWrites;
//   - record cache, restore: TestRestoreDropsCachedRecords;
//   - kept iterators, commit: TestKeptIteratorsSeeCommits;
//   - list cache, keyed by version: TestListCacheKeyedByVersion; past
//     versions kept apart: TestPastVersionsLeaveCurrentListsCached;
//   - key cache, keyed by encoding: TestKeyCacheKeyedByEncoding;
//   - placer memory, restore: TestRestoreDropsRememberedPlacers,
//     TestPlacerCacheRefusesAnAddAcrossAClear,
//     TestCheckDuringRestoreLeavesNoOldPlacer; committed batches only:
//     TestPlacersOnlyFromCommittedBatches;
//   - received indexes' marks (tir_marks.go), commit, restore and a view
//     of another state: TestTIRAttributesTotalFollowsWrites;
//   - the gateway's answer cache, by applied index: gateway's
//     TestAnswerCache and TestReadsReportTheirSnapshotIndex.

// TestRestoreDropsCachedRecords: a restore replaces the whole state, so
// the records cached from the state before it must not answer after it.
// The restored state is a twin that applied another operation at the index
// where this one suspended the college: the cached record's suspension is
// within the restored index, and only dropping it answers right.
func TestRestoreDropsCachedRecords(t *testing.T) {
	f := mustChain(t)
	f.now = date(2026, 4, 1)
	twin := &harness{t: t, dir: t.TempDir(), now: f.now, gov: f.gov, raw: f.raw, index: f.index}
	twin.open()
	if err := twin.s.Restore(bytes.NewReader(snapshotBytes(t, f.s))); err != nil {
		t.Fatal(err)
	}
	twin.mustAccept(twin.govSign(record.OpCreateFramework, map[string]any{"id": "https://example.org/other", "name": "Other"}))
	f.mustAccept(f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc}))
	at := date(2026, 6, 1)
	for range 2 { // the second answer is the cache's
		if d := f.ask(at, 0); d.Reason != record.ReasonSuspended {
			t.Fatalf("before the restore: %s", d.Reason)
		}
	}
	if err := f.s.Restore(bytes.NewReader(snapshotBytes(t, twin.s))); err != nil {
		t.Fatal(err)
	}
	if d := f.ask(at, 0); d.Reason != record.ReasonActive || d.Index != twin.index {
		t.Fatalf("after restoring a state where the college was never suspended: %s at index %d, want active at %d", d.Reason, d.Index, twin.index)
	}
}

// TestListCacheKeyedByVersion: decoded bitstrings are kept by the CID of
// the version they were decoded from, so a new version of the same list is
// never answered with the bits of the one before.
func TestListCacheKeyedByVersion(t *testing.T) {
	f := &listFixture{mustChain(t)}
	f.now = date(2026, 4, 1)
	bits := make([]byte, record.MinStatusListEntries/8)
	first := f.publish(f.college, "l", "", []string{record.PurposeRevocation}, 1, nil, bits)
	if !first.Accepted {
		t.Fatalf("first version: %s", first.Reason)
	}
	e, err := f.s.CheckStatus(f.college.DID, "l", 7, time.Time{})
	if err != nil || e.Status != 0 {
		t.Fatalf("entry 7 of the first version: %+v %v", e, err)
	}
	revoked := bytes.Clone(bits)
	record.SetStatus(revoked, 7, 1, 1)
	if r := f.publish(f.college, "l", e.Version, []string{record.PurposeRevocation}, 1, nil, revoked); !r.Accepted {
		t.Fatalf("second version: %s", r.Reason)
	}
	if e, err := f.s.CheckStatus(f.college.DID, "l", 7, time.Time{}); err != nil || e.Status != 1 {
		t.Fatalf("entry 7 of the second version: %+v %v, want 1", e, err)
	}
	// The first version, asked about at a time it was current, still
	// answers with its own bits.
	if e, err := f.s.CheckStatus(f.college.DID, "l", 7, date(2026, 4, 1).Add(1500*time.Millisecond)); err != nil || e.Status != 0 {
		t.Fatalf("entry 7 of the first version, asked later: %+v %v, want 0", e, err)
	}
}

// TestKeyCacheKeyedByEncoding: parsed keys are kept by the exact JWK (or
// did:key) they were parsed from, and which key a kid names is read from
// the state each time: after a rotation to a new key under the same kid,
// the old key signs nothing, however warm the key cache.
func TestKeyCacheKeyedByEncoding(t *testing.T) {
	f := mustChain(t)
	const web = "did:web:samekid.example"
	old, _ := mustKey(t, record.KeyEd25519).WithKID(web + "#key-1")
	oldJWK, _ := old.PublicJWK()
	f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Same kid", "keys": []any{oldJWK}}))
	f.mustAccept(f.sign(old, record.OpUpdateEntity, map[string]any{"id": web, "name": "signed by the old key"})) // the key cache holds it
	next, _ := mustKey(t, record.KeyEd25519).WithKID(web + "#key-1")
	nextJWK, _ := next.PublicJWK()
	f.mustAccept(f.sign(old, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{nextJWK}}))
	if r := f.apply(f.sign(old, record.OpUpdateEntity, map[string]any{"id": web, "name": "old key, same kid"})); r.Accepted || r.Code != record.CodeBadSignature {
		t.Fatalf("the old key signed under the rotated kid: %+v", r)
	}
	f.mustAccept(f.sign(next, record.OpUpdateEntity, map[string]any{"id": web, "name": "signed by the new key"}))
}

// A check's reader made while a commit is being published (store.seq odd)
// must not fill the record cache: it reads the live database, which may
// still hold the record the batch is about to replace, and its epoch (the
// odd seq) still matches the cache's after caches.committed dropped the
// key. The interleaving is forced here: pubMu holds the apply between
// seq going odd and Pebble's commit, and a read lock on the listings
// (what listings.shared takes) holds it after caches.committed, inside
// the window, where committedListings waits for the write lock.
func TestCheckInTheCommitWindowLeavesNoStaleRecord(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	f.mustAccept(f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": "did:web:other.example", "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z",
	}))
	l := f.s.apply.checkListings.Load()
	if l == nil {
		t.Fatal("no listings published")
	}
	k := decide.AccreditationKey(f.collegeAcc)
	rc := f.s.caches.records
	// The record is cached, as any read of it leaves it.
	r0 := &storeReader{r: f.s.db, cache: rc, epoch: f.s.seq.Load()}
	raw0, err := r0.Record(k)
	if err != nil {
		t.Fatal(err)
	}
	var cur record.Accreditation
	if err := decide.DecodeRecord(raw0, &cur); err != nil {
		t.Fatal(err)
	}
	r0.Remember(k, &cur)
	cached := func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.lru.Contains(k) }
	if !cached() {
		t.Fatal("not primed")
	}

	f.tick()
	revoke := f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2025-01-01T00:00:00Z"})
	f.index++
	e := Entry{Index: f.index, Time: f.now, Data: EncodeOperation(revoke)}
	f.entries = append(f.entries, e)

	// The locks the test holds are let go, and the apply waited for, even
	// when it fails half way.
	var pubHeld, listHeld, applied bool
	done := make(chan *record.Result, 1)
	t.Cleanup(func() {
		if listHeld {
			l.mu.RUnlock()
		}
		if pubHeld {
			f.s.pubMu.Unlock()
		}
		if !applied {
			select {
			case <-done:
			case <-time.After(waitForMax):
			}
		}
	})
	f.s.pubMu.Lock() // the apply stops after seq goes odd, before Pebble's commit
	pubHeld = true
	go func() { done <- f.s.ApplyBatch([]Entry{e})[0] }()
	waitFor(t, "the apply to start publishing", func() bool { return f.s.seq.Load()%2 == 1 })
	// A check starts now: the reader applyCtx.evaluator makes for a check,
	// its epoch the sequence as it is made.
	r := &storeReader{r: f.s.db, cache: rc, epoch: f.s.seq.Load(), dirty: map[decide.RecordKey]struct{}{}}
	raw, err := r.Record(k) // the record before the batch's commit
	if err != nil {
		t.Fatal(err)
	}
	var old record.Accreditation
	if err := decide.DecodeRecord(raw, &old); err != nil {
		t.Fatal(err)
	}
	l.mu.RLock() // a check in listings.shared
	listHeld = true
	f.s.pubMu.Unlock()
	pubHeld = false
	waitFor(t, "the commit to drop the record from the cache", func() bool { return !cached() }) // Pebble's commit, then caches.committed
	// The apply now waits in listings.commit, seq still odd; the check
	// remembers what it decoded (decide.loadRecord).
	r.Remember(k, &old)
	if cached() {
		t.Fatal("a reader made while the commit was published filled the record cache")
	}
	l.mu.RUnlock()
	listHeld = false
	res := <-done
	applied = true
	if !res.Accepted {
		t.Fatalf("the revocation: %+v", res)
	}

	f.tick()
	if r := f.apply(f.regrant("2024-12-01T00:00:00Z")); r.Accepted {
		t.Fatalf("the apply took a re-grant into the revoked past: the record cache holds the accreditation as it was before its revocation: %+v", r)
	}
}

// The record cache serves and takes records only for a reader whose epoch
// is an even (published, stable) sequence that is still current.
func TestRecordCacheRefusesAnOddEpoch(t *testing.T) {
	k := decide.EntityKey("did:web:college.example")
	for _, c := range []struct {
		name         string
		seq, epoch   uint64 // the store's sequence, and the reader's
		takes, serve bool   // put keeps the value; get serves it back
	}{
		{"a reader of the published state", 4, 4, true, true},
		{"a reader made while a commit is published", 3, 3, false, false},
		{"a reader of a state no longer current", 6, 4, false, false},
		{"a reader of a state being replaced", 5, 4, false, false},
	} {
		var seq atomic.Uint64
		cache := newRecordCache(16, &seq)
		seq.Store(c.seq)
		cache.put(k, c.name, c.epoch)
		cache.mu.Lock()
		took := cache.lru.Contains(k)
		cache.mu.Unlock()
		if took != c.takes {
			t.Errorf("%s: put kept the value %v, want %v", c.name, took, c.takes)
		}
		cache.mu.Lock()
		cache.lru.Add(k, c.name) // whatever put did, there is a value to serve
		cache.mu.Unlock()
		if _, served := cache.get(k, c.epoch); served != c.serve {
			t.Errorf("%s: get served %v, want %v", c.name, served, c.serve)
		}
	}
}

// revokedInTwoHistories makes two states of one log up to a revocation of
// the college's accreditation from 2026-01-01, signed once, which f
// applies at early and twin two minutes later: the same operation, in two
// histories.
func revokedInTwoHistories(t *testing.T) (f *chainFixture, twin *harness, revoke []byte, early time.Time) {
	t.Helper()
	f = mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	twin = &harness{t: t, dir: t.TempDir(), now: f.now, gov: f.gov, raw: f.raw, index: f.index}
	twin.open()
	if err := twin.s.Restore(bytes.NewReader(snapshotBytes(t, f.s))); err != nil {
		t.Fatal(err)
	}
	f.tick()
	revoke = f.sign(f.qa, record.OpRevoke, map[string]any{"accreditation": f.collegeAcc, "effectiveAt": "2026-01-01T00:00:00Z"})
	early = f.now
	f.mustAccept(revoke)
	twin.now = early.Add(2 * time.Minute)
	twin.mustAccept(revoke)
	return f, twin, revoke, early
}

// TestRestoreDropsRememberedPlacers: what the rules remember of the
// operation that recorded a status event (its signers and commit time,
// placerCache) comes from the history that applied it. Two histories apply
// the same revocation at different times; a grant judged after restoring
// the later one is judged by its time, not by the time the node had
// remembered from the other.
func TestRestoreDropsRememberedPlacers(t *testing.T) {
	f, twin, revoke, early := revokedInTwoHistories(t)

	grant := func(h *harness, until string) *record.Result {
		h.now = early.Add(3 * time.Minute)
		return h.apply(h.sign(f.qa, record.OpAccredit, map[string]any{
			"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
			"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
			"validFrom": early.Add(time.Minute).Format(time.RFC3339), "validUntil": until,
		}))
	}
	// A grant from a minute after the revocation was recorded: taken here,
	// refused in the twin's history, where it reaches into the revoked past.
	if r := grant(f.harness, "2028-01-01T00:00:00Z"); !r.Accepted {
		t.Fatalf("in the first history: %s: %s", r.Code, r.Reason)
	}
	if _, ok := f.s.caches.placers.get(record.CIDOf(revoke)); !ok {
		t.Fatal("the revocation's operation is not remembered: the test shows nothing")
	}
	if r := grant(twin, "2028-02-01T00:00:00Z"); r.Accepted {
		t.Fatal("in the twin's history the grant reaching into the revoked past was taken")
	}
	if err := f.s.Restore(bytes.NewReader(snapshotBytes(t, twin.s))); err != nil {
		t.Fatal(err)
	}
	f.index = twin.index
	if r := grant(f.harness, "2028-03-01T00:00:00Z"); r.Accepted {
		t.Fatal("after restoring the twin's history the grant was judged by the revocation's time in the history before")
	}
}

// TestPlacersOnlyFromCommittedBatches: a status event recorded earlier in
// the batch being applied is read from the batch, which may yet be
// discarded, and not remembered; once committed, the next grant's read
// remembers it.
func TestPlacersOnlyFromCommittedBatches(t *testing.T) {
	f := mustChain(t)
	f.mustRaiseLevel(FeatureLevelStanding)
	f.tick()
	suspend := f.sign(f.qa, record.OpSuspend, map[string]any{"accreditation": f.collegeAcc, "reason": "audit"})
	var batch []Entry
	for _, op := range [][]byte{suspend, f.regrant("2028-01-01T00:00:00Z")} {
		f.index++
		batch = append(batch, Entry{Index: f.index, Time: f.now, Data: EncodeOperation(op)})
	}
	f.entries = append(f.entries, batch...)
	for i, r := range f.s.ApplyBatch(batch) {
		if !r.Accepted {
			t.Fatalf("entry %d: %s: %s", i, r.Code, r.Reason)
		}
	}
	if _, ok := f.s.caches.placers.get(record.CIDOf(suspend)); ok {
		t.Fatal("a suspension read from the batch that recorded it was remembered before the batch committed")
	}
	f.tick()
	f.mustAccept(f.regrant("2028-06-01T00:00:00Z"))
	if op, ok := f.s.caches.placers.get(record.CIDOf(suspend)); !ok || len(op.signers) != 1 || op.signers[0] != f.qa.DID || !op.recorded.Equal(f.now.Add(-time.Minute)) {
		t.Fatalf("after the commit the next grant remembered %+v (%t), want the agency's suspension at %s", op, ok, f.now.Add(-time.Minute))
	}
}

// TestCheckDuringRestoreLeavesNoOldPlacer: a leader's check that read an
// operation record of the history a restore then replaced adds nothing to
// the placer memory: it took the memory's generation before its read, and
// the restore's clear moved it on. Checks run beside restores that
// alternate two histories (the same revocation recorded two minutes
// apart); after each restore the memory holds, if anything, the restored
// history's time. Bounded: 1,500 restores or 5 s. Without the generation
// the memory held the other history's time after 279–1,603 restores in
// three runs of a 20-s version, and in one run of three of this one: a
// smoke test; TestPlacerCacheRefusesAnAddAcrossAClear forces the order.
func TestCheckDuringRestoreLeavesNoOldPlacer(t *testing.T) {
	f, twin, revoke, early := revokedInTwoHistories(t)
	cid := record.CIDOf(revoke)
	snaps := [2][]byte{snapshotBytes(t, f.s), snapshotBytes(t, twin.s)}
	times := [2]time.Time{early, early.Add(2 * time.Minute)}
	f.now = early.Add(3 * time.Minute)
	grant := f.sign(f.qa, record.OpAccredit, map[string]any{
		"framework": fwID, "accreditor": f.qa.DID, "subject": f.college.DID, "action": record.ActionIssue,
		"resources": []string{nursing}, "jurisdictions": []string{"US"}, "parent": f.qaAcc,
		"validFrom": early.Add(time.Minute).Format(time.RFC3339), "validUntil": "2028-01-01T00:00:00Z",
	})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				f.s.Check(grant, f.now)
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 1500 && time.Now().Before(deadline); i++ {
		h := i % 2
		if err := f.s.Restore(bytes.NewReader(snaps[h])); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond) // checks in flight at the restore finish their reads
		if op, ok := f.s.caches.placers.get(cid); ok && !op.recorded.Equal(times[h]) {
			t.Fatalf("restore %d: the placer memory holds the revocation recorded at %s; the restored history recorded it at %s", i, op.recorded, times[h])
		}
	}
}

// TestPlacerCacheRefusesAnAddAcrossAClear: what a reader read before a
// clear (a restore) is not added after it; what it read after is.
func TestPlacerCacheRefusesAnAddAcrossAClear(t *testing.T) {
	c := newPlacerCache(8)
	op := statusOp{signers: []string{"did:web:a.example"}, recorded: date(2026, 1, 1)}
	gen := c.generation()
	c.clear()
	c.add("cid", op, gen)
	if _, ok := c.get("cid"); ok {
		t.Fatal("a read from before the clear was added after it")
	}
	c.add("cid", op, c.generation())
	if got, ok := c.get("cid"); !ok || !got.recorded.Equal(op.recorded) {
		t.Fatalf("a read from after the clear: %+v %t", got, ok)
	}
	c.clear()
	if _, ok := c.get("cid"); ok {
		t.Fatal("kept across a clear")
	}
}
