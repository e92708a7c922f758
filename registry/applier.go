package registry

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

// applier is the state machine: the pure apply of log entries over one
// Pebble batch per raft batch (apply*.go, authority.go, features.go), and
// the leader's Check of the same rules over a batch it throws away
// (check.go). It reads and writes through the store; it tells the caches
// what it wrote through the store's commit.
type applier struct {
	*store
	*consortium
	verify *verifier
	caches *caches

	sigs atomic.Pointer[sigFilter] // every stored signature (sigfilter.go); replaced by the apply and restore only
	// mapTop is the state map's top node records (commitment.go);
	// replaced at open and restore.
	mapTop atomic.Pointer[mapTop]
	// logHead is the transparency log as the last committed batch left
	// it (nil: not known, read it from the database); replaced by each
	// batch's commit, emptied at open and restore. A batch appends to a
	// clone, so one that never commits leaves it as it was.
	logHead atomic.Pointer[tlog.Log]
	// listings is every received listing of the committed state while
	// they are within their bounds (listings.go), loaded by the first batch
	// at the commitment's level that finds it nil; listingsOff: they were
	// past the bounds. The field is the apply goroutine's (the checks read
	// the same listings through checkListings); emptied at open and
	// restore.
	listings    *listings
	listingsOff bool
	// batchListings is listings while a batch that takes them is applied
	// (its commitRun's known), for the apply's reads of the received index
	// (storeReader.Received); nil otherwise.
	batchListings *listings
	// checkListings is listings for the checks beside the apply (Check):
	// stored as listings is loaded, dropped or emptied.
	checkListings atomic.Pointer[listings]
	// flushEntries and flushBytes are the map overlay's bounds
	// (journalFlushEntries, journalFlushBytes; a test sets others).
	flushEntries, flushBytes int
	// levelRaised is the apply's record that the batch being applied
	// raised the feature level (consortium.levelSeq).
	levelRaised bool
	dirty       []decide.RecordKey            // records written by the batch being applied
	dirtySet    map[decide.RecordKey]struct{} // the same keys, for lookups
	onApply     func([]*record.Result)        // Options.OnApply
}

// loadSigs builds the signature filter from the stored signatures; after
// opening and after a restore replaced the state.
func (s *applier) loadSigs() error {
	f, err := buildSigFilter(s.db)
	if err != nil {
		return err
	}
	s.sigs.Store(f)
	return nil
}

// ApplyBatch applies committed entries in order, in one Pebble batch, and
// returns one result per entry. Entries at or below the applied index were
// applied before (a replay after restart) and return their stored result.
// It panics on an entry it cannot decode or a storage failure: continuing
// would let this node diverge from its peers.
func (s *applier) ApplyBatch(entries []Entry) []*record.Result {
	results := make([]*record.Result, len(entries))
	applied := s.applied.Load()
	if n := len(entries); n > 0 && entries[n-1].Index > applied {
		s.applying.Store(entries[n-1].Index)
	}
	s.preVerifyBatch(entries, applied)
	b := s.db.NewIndexedBatch()
	defer func() { _ = b.Close() }() // after Commit, or discarding the batch: nothing to report
	last := time.Unix(0, s.commitTime.Load()).UTC()
	var fresh []*record.Result
	cr := commitRun{db: s.db, top: s.mapTop.Load(), ov: s.mapOverlay.Load(), head: s.logHead.Load(), flushEntries: s.flushEntries, flushBytes: s.flushBytes, batch: len(entries)}
	// The listings in memory serve only a batch that starts at the level:
	// the level never goes down, so every entry of it goes through
	// commitEntry, whose entryChanges sees every write to the received
	// index (the map's own invariant). A batch that raises the level
	// reads listings from Pebble.
	if s.ClusterFeatureLevel() >= FeatureLevelCommitment {
		cr.lists.known = s.knownListings()
	}
	s.batchListings = cr.lists.known
	defer func() { s.batchListings = nil }()
	for i, e := range entries {
		if e.Index <= applied {
			results[i] = s.storedResult(e.Index)
			continue
		}
		// Commit time never runs backwards, whatever a new leader's clock says.
		t := e.Time.UTC()
		if t.Before(last) {
			t = last
		}
		from, committing := b.Len(), s.ClusterFeatureLevel() >= FeatureLevelCommitment
		res := s.applyEntry(b, e.Index, t, e.Data)
		stored := mustMarshal(res)
		mustSet(b, indexKey(tableResults, e.Index), stored)
		if s.ClusterFeatureLevel() >= FeatureLevelCommitment {
			cr.commitEntry(b, from, !committing, e.Index, t, e.Data, res, stored)
		}
		results[i] = res
		fresh = append(fresh, res)
		applied, last = e.Index, t
	}
	if len(fresh) == 0 {
		return results
	}
	cr.flush(b)
	s.commit(b, applied, last, func() {
		if cr.next != nil {
			s.mapOverlay.Store(cr.next)
		}
		if cr.log != nil {
			s.logHead.Store(cr.log)
		}
		if s.levelRaised {
			s.levelRaised = false
			s.levelSeq.Add(1)
		}
		s.caches.committed(s.dirty)
		s.committedListings(&cr)
	})
	if cr.flushAfter {
		if err := s.writeMapOverlay(pebble.NoSync); err != nil {
			panic(fmt.Sprintf("registry: after entry %d: %v", applied, err))
		}
	}
	s.dirty = s.dirty[:0]
	clear(s.dirtySet)
	if s.onApply != nil {
		s.onApply(fresh)
	}
	return results
}

// knownListings returns every received listing of the committed state,
// loading them when the applier has none, or nil when they are past the
// bounds.
func (s *applier) knownListings() *listings {
	if s.listings == nil && !s.listingsOff {
		l, err := loadListings(s.db)
		if err != nil {
			panic(fmt.Sprintf("registry: read the received listings: %v", err))
		}
		s.listings, s.listingsOff = l, l == nil
		s.checkListings.Store(l)
	}
	return s.listings
}

// committedListings takes a committed batch's listings into the known
// ones, or drops them for good when they grew past the bounds. Called as
// the batch's commit is published, so that a check that read no new
// publishing sequence read listings and database of one state.
func (s *applier) committedListings(cr *commitRun) {
	if cr.lists.known != nil && !cr.lists.known.commit(cr.lists.pend) {
		s.listings, s.listingsOff = nil, true
		s.checkListings.Store(nil)
	}
}

// preVerifyBatch checks the signatures of a batch's operations on every
// core before the single-threaded apply, against the keys committed so far.
// Apply still decides: it looks each check up by key and exact bytes, and
// verifies whatever is missing (a key an earlier entry of the batch
// rotated, say). Most were checked before (by the node that received the
// write, the leader's check, or Prefetch as the entries were stored): those
// are a lookup each. The apply's goroutine takes operations too, and waits
// only for those another goroutine took: a helper still waiting for a core
// when the work is done is not waited for.
func (s *applier) preVerifyBatch(entries []Entry, applied uint64) {
	var todo [][]byte
	for _, e := range entries {
		if e.Index > applied {
			if raw, ok := submittedOperation(e.Data); ok {
				todo = append(todo, raw)
			}
		}
	}
	if len(todo) < 2 {
		return
	}
	var next, done atomic.Int64
	finished := make(chan struct{})
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(todo)); i = next.Add(1) - 1 {
			_ = s.verify.PreVerify(todo[i]) // failures are the apply's to report
			if done.Add(1) == int64(len(todo)) {
				close(finished)
			}
		}
	}
	for range min(runtime.GOMAXPROCS(0), len(todo)) - 1 {
		go work()
	}
	work()
	<-finished
}

// submittedOperation returns the signed operation a log command carries,
// if it is one (EncodeOperation).
func submittedOperation(cmd []byte) ([]byte, bool) {
	if len(cmd) > 2 && cmd[0] == commandVersion1 && cmd[1] == commandTypeSubmitOp {
		return cmd[2:], true
	}
	return nil, false
}

// Prefetch parses and checks the signatures of the operations among
// entries (log entries, EncodeOperation), as PreVerify does, so that
// applying them finds the work done; it changes no state. The cluster
// calls it with the entries a node has just stored in its raft log, before
// they are committed (consensus.Prefetcher). It skips entries already
// applied or in the batch being applied (a follower catching up, or a
// single node, may apply an entry as soon as it is stored: the apply has
// taken their parses, and checking them again would cost a signature
// check and leave a parse no apply takes) and entries more than
// prefetchAhead past the applied index, whose parse the memory's bound
// could push out before the apply reaches them. An entry never applied
// (replaced in the log by another leader's) stays in the memories until
// their bounds push it out.
func (s *State) Prefetch(entries []Entry) {
	for _, e := range entries {
		applied := s.applied.Load()
		if e.Index <= max(applied, s.applying.Load()) || e.Index > applied+prefetchAhead {
			continue
		}
		if raw, ok := submittedOperation(e.Data); ok {
			_ = s.verify.PreVerify(raw) // failures are the apply's to report
		}
	}
}

// prefetchAhead bounds how far past the applied index Prefetch checks
// entries: half the parsed-operation memory.
const prefetchAhead = maxParsedOps / 2

func (s *applier) storedResult(index uint64) *record.Result {
	var r record.Result
	if ok, err := getJSON(s.db, indexKey(tableResults, index), &r); err != nil || !ok {
		return &record.Result{Index: index, Accepted: false, Code: record.CodeInvalid, Reason: "entry applied before; its result is not stored"}
	}
	return &r
}

func (s *applier) applyEntry(b *pebble.Batch, index uint64, t time.Time, data []byte) *record.Result {
	if len(data) < 2 || data[0] != commandVersion1 {
		panic(fmt.Sprintf("registry: entry %d: unknown command envelope %x: this node cannot apply it; upgrade trustd", index, data[:min(len(data), 2)]))
	}
	switch data[1] {
	case commandTypeSubmitOp:
		return s.applyOperation(b, index, t, data[2:])
	case commandTypeFeatureLevel:
		return s.applyFeatureLevel(b, index, t, data[2:])
	default:
		panic(fmt.Sprintf("registry: entry %d: unknown command type %d: this node cannot apply it; upgrade trustd", index, data[1]))
	}
}
