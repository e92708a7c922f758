package registry

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/trustreg/trustreg/registry/decide"
)

// receivedMarkEvery is how many keys of an issuer's received index lie
// between two marks: a page of attributes of an issuer already walked
// reads at most this many keys more than it shows. An issuer with no
// more keys than this is counted on every page (about 65 ns a key).
const receivedMarkEvery = 1024

// receivedMarksEntries bounds the issuers receivedMarksCache keeps. An
// entry is about a 1,024th of its issuer's received keys (each mark about
// 150 bytes), so all of them together are at most a 1,024th of the
// received index, whatever this bound.
const receivedMarksEntries = 1024

// receivedMarks is what a walk of one issuer's received index learned:
// how many keys it holds, and the part after the issuer's prefix of every
// every-th key (the first included).
type receivedMarks struct {
	n, every int
	parts    [][]byte
}

// receivedMarksCache keeps receivedMarks by issuer DID, so that the TIR
// binding's pages of a large issuer's attributes do not count every key
// of its received index for EBSI's total on every page.
//
// Fills: a page of attributes read through a view that may use the
// caches (View.receivedMarksCache), after walking the whole received
// index of an issuer that holds more than receivedMarkEvery keys.
//
// Invalidation: a commit drops the issuers whose received index the batch
// may have written: the apply marks decide.ReceivedKey(subject, framework)
// dirty with every key it adds to the index (it also marks it for a status
// change, which drops an entry still right: harmless); a restore drops
// every entry.
//
// Invariant, the record cache's: every entry holds the marks of its
// issuer's index in the committed state whose sequence (store.seq) is
// current. An entry is added only under mu and only if the sequence of
// the view that walked is even and still current, and served only to a
// view of that same sequence. committed and clear run while the sequence
// is odd, before it is even again, so an entry added before them is
// dropped by them when its issuer's index changed, one walked in a state
// before them cannot be added after them, and no view of an older state
// (a view kept open across a commit, one taken while a batch commits, a
// kept view of an older log size) is served one: it walks.
// (TestTIRAttributesTotalFollowsWrites breaks without the invalidation.)
type receivedMarksCache struct {
	seq *atomic.Uint64
	// every, when set (by tests), replaces receivedMarkEvery.
	every int
	mu    sync.Mutex
	lru   *simplelru.LRU[string, *receivedMarks]
}

func newReceivedMarksCache(size int, seq *atomic.Uint64) *receivedMarksCache {
	c, _ := simplelru.NewLRU[string, *receivedMarks](size, nil)
	return &receivedMarksCache{seq: seq, lru: c}
}

// markEvery is how many keys lie between two marks of a walk.
func (c *receivedMarksCache) markEvery() int {
	if c == nil || c.every <= 0 {
		return receivedMarkEvery
	}
	return c.every
}

// get returns did's marks for a view of state epoch, or nil.
func (c *receivedMarksCache) get(did string, epoch uint64) *receivedMarks {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch%2 == 1 || c.seq.Load() != epoch {
		return nil
	}
	m, _ := c.lru.Get(did)
	return m
}

// put keeps m, walked in state epoch, as did's marks if that state is
// still the current one.
func (c *receivedMarksCache) put(did string, m *receivedMarks, epoch uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch%2 == 0 && c.seq.Load() == epoch {
		c.lru.Add(did, m)
	}
}

// committed drops the marks of the subjects of the received listings in
// dirty.
func (c *receivedMarksCache) committed(dirty []decide.RecordKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range dirty {
		if k.Kind == decide.KindReceived {
			c.lru.Remove(k.A)
		}
	}
}

// clear drops every entry (after a snapshot restore).
func (c *receivedMarksCache) clear() {
	c.mu.Lock()
	c.lru.Purge()
	c.mu.Unlock()
}
