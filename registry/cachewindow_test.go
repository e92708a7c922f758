package registry

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// A check's reader made while a commit is being published (store.seq odd)
// must not fill the record cache: it reads the live database, which may
// still hold the record the batch is about to replace, and its epoch (the
// odd seq) still matches the cache's after caches.committed dropped the
// key. The interleaving is forced here: pubMu holds the apply between
// seq going odd and Pebble's commit, and a read lock on the listings
// (what listings.shared takes) holds it after caches.committed, inside
// the window, where committedListings now waits for the write lock.
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

	f.s.pubMu.Lock() // the apply stops after seq goes odd, before Pebble's commit
	done := make(chan *record.Result)
	go func() { done <- f.s.ApplyBatch([]Entry{e})[0] }()
	waitFor(t, "the apply to start publishing", func() bool { return f.s.seq.Load()%2 == 1 })
	// A check starts now: applyCtx.evaluator's reader for a check.
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
	f.s.pubMu.Unlock()
	waitFor(t, "the commit to drop the record from the cache", func() bool { return !cached() }) // Pebble's commit, then caches.committed
	// The apply now waits in listings.commit, seq still odd; the check
	// remembers what it decoded (decide.loadRecord).
	r.Remember(k, &old)
	l.mu.RUnlock()
	if res := <-done; !res.Accepted {
		t.Fatalf("the revocation: %+v", res)
	}

	f.tick()
	if r := f.apply(f.regrant("2024-12-01T00:00:00Z")); r.Accepted {
		t.Fatalf("the apply took a re-grant into the revoked past: the record cache holds the accreditation as it was before its revocation: %+v", r)
	}
}

// waitFor waits up to 10 s for cond, yielding between tries.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// The record cache serves and takes records only for a reader whose epoch
// is an even (published, stable) sequence that is still current.
func TestRecordCacheRefusesAnOddEpoch(t *testing.T) {
	var seq atomic.Uint64
	c := newRecordCache(16, &seq)
	k := decide.EntityKey("did:web:college.example")
	seq.Store(3) // a commit being published
	c.put(k, "during", 3)
	if _, ok := c.get(k, 3); ok {
		t.Fatal("a reader made while a commit was published was served, or its read was taken")
	}
	seq.Store(4)
	c.put(k, "after", 4)
	if v, ok := c.get(k, 4); !ok || v != "after" {
		t.Fatalf("a reader of the published state: %v, %v", v, ok)
	}
	seq.Store(5)
	if _, ok := c.get(k, 5); ok {
		t.Fatal("served while the next commit is published")
	}
	if _, ok := c.get(k, 4); ok {
		t.Fatal("served a reader of a state no longer current")
	}
}
