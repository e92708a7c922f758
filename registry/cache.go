package registry

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/trustreg/trustreg/registry/decide"
)

// caches are the node's caches of what its store holds, behind the one
// seam through which the store tells them that the state changed:
// committed, after each batch the apply commits, and replaced, after a
// snapshot restore. Nothing else changes the state, so nothing else
// invalidates them. Each cache says below what fills it and why an entry
// can never be served stale.
//
// The gateway's answer cache (gateway/trust.go) sits outside this package:
// it files each answer under the index of the view that computed it
// (View.Index) and serves it only while that index is the applied one, so
// the same commit that invalidates these retires it.
type caches struct {
	records *recordCache
	lists   *listCache
	keys    *keyCache
	placers *placerCache
	// issuers keeps the marks of the TIR binding's issuers at the last
	// state walked (tir.go).
	issuers *issuerMarksCache
	// received keeps the count and marks of large issuers' received
	// indexes, for the TIR binding's attribute pages (tir.go).
	received *receivedMarksCache
}

func newCaches(seq *atomic.Uint64) *caches {
	return &caches{
		records:  newRecordCache(recordCacheEntries, seq),
		lists:    newListCache(listCacheBytes),
		keys:     newKeyCache(),
		placers:  newPlacerCache(placerCacheEntries),
		issuers:  newIssuerMarksCache(seq),
		received: newReceivedMarksCache(receivedMarksEntries, seq),
	}
}

// committed is called after a batch that wrote the records in dirty was
// committed, while the store's sequence is odd (store.commit): no view
// taken from then until it is even again uses the caches.
//
//   - records: the keys the batch wrote are dropped, and every kept
//     iterator is closed (it sees the state before the commit).
//   - lists: nothing; an entry is keyed by the CID of the version it
//     decodes, which names the exact credential bytes.
//   - keys: nothing; an entry is keyed by the exact encoding it parses
//     (a did:key or a JWK's JSON). Which key a kid names is read from the
//     state every time.
//   - placers: nothing; an entry is taken only from an operation record a
//     committed batch wrote, which nothing rewrites.
//   - issuers: the subjects whose received index the batch may have
//     written join its pending set, which a listing reads to bring the
//     marks up to date; a root's change drops them.
//   - received: the issuers whose received index the batch may have
//     written (a decide.ReceivedKey among the keys it wrote).
func (c *caches) committed(dirty []decide.RecordKey) {
	c.records.committed(dirty)
	c.received.committed(dirty)
	c.issuers.committed(dirty)
}

// replaced is called after a snapshot restore replaced the whole state,
// while the store's sequence is odd: every record and kept iterator goes,
// and every placer (the restored history may have applied an operation
// at another time), the issuers' marks and the received indexes' marks.
// The list and key caches stay, for the reasons above.
func (c *caches) replaced() {
	c.records.clear()
	c.placers.clear()
	c.issuers.clear()
	c.received.clear()
}

// close closes what holds the database open (kept iterators).
func (c *caches) close() { c.records.close() }

// recordCacheEntries bounds the record cache. Most entries are a
// college's accreditations with its received listing (about 550 bytes
// decoded); 120,000 of them take about the memory 200,000 single records
// took.
const recordCacheEntries = 120_000

// listCacheBytes bounds the decoded bitstrings of current versions kept
// (listCache).
const listCacheBytes = 256 << 20

// recordCache keeps decoded records for the read side and the apply, so a
// trust question does not read and decode the same accreditations every
// time, and keeps read-side Pebble iterators between questions.
//
// Fills: an evaluator remembers what it decoded (Memo), from a view, from
// the batch being applied (keys that batch has not written) or in the
// leader's check (keys the check has not written, read from the live
// database).
//
// Invariant: every entry holds the value of its key in the committed state
// whose sequence number (store.seq) is current. An entry is added only
// under mu and only if the sequence the reader began at is even and still
// current (a view's snapshot, or the live database between two commits, is
// that state); it is read only under mu and only by a reader of that same
// even sequence. A commit makes the sequence odd before Pebble's commit
// and even again after committed has dropped the keys the batch wrote, so
// an entry that survives a commit still holds the committed value, and no
// reader of another state sees one. A reader begun at an odd sequence (a
// check made while a commit is published) may have read a key before the
// commit and remember it after committed dropped it, the sequence still
// odd and equal to its epoch: it is neither served nor taken
// (TestCheckInTheCommitWindowLeavesNoStaleRecord).
//
// Kept iterators: opening an iterator positions a reader in every memtable
// and level, about a fifth of a trust decision about a college whose
// records are not cached (BenchmarkDecideUncached). An iterator sees the
// state it was opened on, so one is kept only with the sequence of its
// view's snapshot, handed out only to a view of the same sequence, and
// every commit closes all of them. Kept ones are also closed after
// maxIterAge, so that none pins flushed memtables or compacted sstables
// for long while no writes come.
type recordCache struct {
	seq    *atomic.Uint64
	mu     sync.Mutex
	lru    *simplelru.LRU[decide.RecordKey, any]
	iters  []keptIter
	closed bool
}

// keptIter is a read-side iterator with the sequence of the state it
// sees and the time it was opened.
type keptIter struct {
	it     *pebble.Iterator
	epoch  uint64
	opened time.Time
}

const (
	maxKeptIters = 16 // about the readers running at once
	maxIterAge   = time.Second
)

func newRecordCache(size int, seq *atomic.Uint64) *recordCache {
	c, _ := simplelru.NewLRU[decide.RecordKey, any](size, nil)
	return &recordCache{lru: c, seq: seq}
}

// get returns the value cached under k for a reader of state epoch. A
// reader made while a commit was being published (an odd epoch: only the
// leader's checks, which read the live database, take one) is not served.
func (c *recordCache) get(k decide.RecordKey, epoch uint64) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch%2 == 1 || c.seq.Load() != epoch {
		return nil, false
	}
	return c.lru.Get(k)
}

// put caches v, read from state epoch, if that state is still current and
// was published when the reader was made: a check made in the middle of a
// commit may have read a record before the commit replaced it, and the
// sequence stays odd, so equal to its epoch, after the commit dropped the
// record from the cache (TestCheckInTheCommitWindowLeavesNoStaleRecord).
func (c *recordCache) put(k decide.RecordKey, v any, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch%2 == 0 && c.seq.Load() == epoch {
		c.lru.Add(k, v)
	}
}

// committed drops the written keys and closes the kept iterators.
func (c *recordCache) committed(keys []decide.RecordKey) {
	c.mu.Lock()
	for _, k := range keys {
		c.lru.Remove(k)
	}
	stale := c.takeIters()
	c.mu.Unlock()
	closeIters(stale)
}

// clear drops everything (after a snapshot restore).
func (c *recordCache) clear() {
	c.mu.Lock()
	c.lru.Purge()
	stale := c.takeIters()
	c.mu.Unlock()
	closeIters(stale)
}

// close closes the kept iterators and keeps no more: the database is
// about to close, and Pebble refuses to close with iterators open.
func (c *recordCache) close() {
	c.mu.Lock()
	c.closed = true
	stale := c.takeIters()
	c.mu.Unlock()
	closeIters(stale)
}

func (c *recordCache) takeIters() []keptIter {
	its := c.iters
	c.iters = nil
	return its
}

func closeIters(its []keptIter) {
	for _, k := range its {
		_ = k.it.Close() // it had no error when kept
	}
}

// iter returns an iterator bounded to [lo, hi) over snap, whose state has
// sequence epoch: a kept one of the same state, or a new one; hand it
// back with release. lo and hi must not change until then.
func (c *recordCache) iter(snap *pebble.Snapshot, epoch uint64, lo, hi []byte) (keptIter, error) {
	c.mu.Lock()
	for c.seq.Load() == epoch && len(c.iters) > 0 {
		k := c.iters[len(c.iters)-1]
		c.iters = c.iters[:len(c.iters)-1]
		if time.Since(k.opened) > maxIterAge {
			c.mu.Unlock()
			_ = k.it.Close()
			c.mu.Lock()
			continue
		}
		c.mu.Unlock()
		k.it.SetBounds(lo, hi)
		return k, nil
	}
	c.mu.Unlock()
	opened := time.Now()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	return keptIter{it: it, epoch: epoch, opened: opened}, err
}

// release keeps k for another reader if its state is still the committed
// one and it had no error; otherwise it closes it.
func (c *recordCache) release(k keptIter) error {
	if err := k.it.Error(); err != nil {
		return errors.Join(err, k.it.Close())
	}
	c.mu.Lock()
	if c.seq.Load() == k.epoch && !c.closed && len(c.iters) < maxKeptIters {
		c.iters = append(c.iters, k)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return k.it.Close()
}

// listCache keeps the decoded bitstrings of current list versions by
// version CID, within a byte budget, so a large list is not decompressed
// again on every read.
//
// Fills: decodedVersion, after decoding a stored version's credential,
// for a read of a version that is its list's current one in the state
// read and for the apply's check of a new version against the current
// one; and the apply, with each version it publishes. Nothing else: an
// entry of a past version is read from its stored credential,
// decompressed only up to the entry (View.CheckStatus,
// record.EncodedStatus), and adds nothing, since anyone may ask for an
// entry at any past time and each past version is a bitstring of up to
// 16 MiB: reads of past versions never push out the current lists every
// verifier reads (TestPastVersionsLeaveCurrentListsCached). A read of a
// past version the cache still holds (it was current when cached) is
// answered from it without making it any more recent (Peek).
//
// Invariant: the key is the CID of the version, which names the exact
// credential bytes the bitstring is decoded from, and a stored version
// never changes; so an entry is right for as long as it is kept, across
// commits and restores. Bounded by bytes, least recently used first.
type listCache struct {
	mu     sync.Mutex
	lru    *lru.Cache[string, []byte]
	bytes  int
	budget int
}

func newListCache(budget int) *listCache {
	c := &listCache{budget: budget}
	c.lru, _ = lru.NewWithEvict[string, []byte](1<<16, func(_ string, v []byte) { c.bytes -= len(v) })
	return c
}

// get returns the bitstring of version cid; for a read of a version that
// is not current, recent says false, and the entry is not made more
// recent.
func (c *listCache) get(cid string, recent bool) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if recent {
		return c.lru.Get(cid)
	}
	return c.lru.Peek(cid)
}

// add keeps the bitstring of version cid, a current one.
func (c *listCache) add(cid string, bits []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(cid) {
		return
	}
	c.lru.Add(cid, bits)
	c.bytes += len(bits)
	for c.bytes > c.budget && c.lru.Len() > 1 {
		c.lru.RemoveOldest()
	}
}

// placerCacheEntries bounds the placer memory: at about 200 bytes an
// entry (a CID, one or a few signer DIDs, a time), some 6 MiB.
const placerCacheEntries = 1 << 15

// placerCache remembers, by operation CID, what the apply's rules read of
// the operation that recorded a status event (statusOp: its signers and
// commit time), which grantStanding asks of every suspension and
// revocation on every accreditation the subject holds in the framework,
// for every grant to that subject (and the leader's check for every one
// submitted). Reading each from its operation record decoded 1–2 KB of
// JSON (the record holds the signed operation): about 2.5 µs an event,
// 10 ms a grant beside 16 accreditations of 255 events
// (BenchmarkGrantBesideManyEvents, registry/DESIGN.md). An operation
// record is written once, when its operation is applied, so what a
// committed one says never changes; loadStatusOp adds entries only from
// those (an event at or below the applied index), and only a restore,
// which may bring another history, drops them. Safe for concurrent use
// (the apply and the leader's checks); the signers slices it holds are
// never changed.
type placerCache struct {
	lru *lru.Cache[string, statusOp]
	// mu orders add against clear; gen counts the clears. A reader takes
	// the generation before it reads an operation record and adds what it
	// read only in the same one: a leader's check that read the record of
	// the history a restore replaced meanwhile adds nothing
	// (TestCheckDuringRestoreLeavesNoOldPlacer).
	mu  sync.Mutex
	gen uint64
}

func newPlacerCache(entries int) *placerCache {
	c, _ := lru.New[string, statusOp](entries)
	return &placerCache{lru: c}
}

func (c *placerCache) get(cid string) (statusOp, bool) { return c.lru.Get(cid) }

// generation is the count of clears, taken before a read whose result
// is added.
func (c *placerCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add remembers op under cid if no clear came since generation gen.
func (c *placerCache) add(cid string, op statusOp, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.lru.Add(cid, op)
	}
}

func (c *placerCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Purge()
}
