package registry

import (
	"errors"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	lru "github.com/hashicorp/golang-lru/v2"
)

// recordCache keeps decoded records for the read side, so a trust query
// does not read and decode the same accreditations from Pebble every time.
//
// Entries are immutable once cached. The apply path never reads through
// the cache (it reads its own uncommitted batch). After each commit the
// keys the batch wrote are dropped and the epoch advances; a reader may
// cache what it read only if no commit happened since it began reading, so
// a value read just before a commit can never outlive it.
//
// It also keeps read-side Pebble iterators between questions (iter,
// release). Opening an iterator positions a reader in every memtable and
// level: about a fifth of a trust decision about a college whose records
// are not cached (BenchmarkDecideUncached). A kept iterator sees the database as it was when it
// was opened, so it is kept only while nothing is committed: each one was
// opened in the current epoch, and a commit closes them all. Kept ones
// are also closed after maxIterAge, so that none pins a flushed memtable
// or compacted sstables for long while no writes come.
type recordCache struct {
	mu     sync.Mutex
	epoch  uint64
	lru    *lru.Cache[string, any]
	iters  []keptIter
	closed bool
}

// keptIter is a read-side iterator with the epoch it was handed out in
// and the time it was opened.
type keptIter struct {
	it     *pebble.Iterator
	epoch  uint64
	opened time.Time
}

const (
	maxKeptIters = 16 // about the readers running at once
	maxIterAge   = time.Second
)

func newRecordCache(size int) *recordCache {
	c, _ := lru.New[string, any](size)
	return &recordCache{lru: c}
}

// begin returns the epoch a read starts in.
func (c *recordCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

func (c *recordCache) get(k string) (any, bool) { return c.lru.Get(k) }

// put caches v if no commit happened since epoch.
func (c *recordCache) put(k string, v any, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		c.lru.Add(k, v)
	}
}

// committed drops the written keys and starts a new epoch.
func (c *recordCache) committed(keys []string) {
	c.mu.Lock()
	for _, k := range keys {
		c.lru.Remove(k)
	}
	c.epoch++
	stale := c.takeIters()
	c.mu.Unlock()
	closeIters(stale)
}

// clear drops everything (after a snapshot restore).
func (c *recordCache) clear() {
	c.mu.Lock()
	c.lru.Purge()
	c.epoch++
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

// iter returns an iterator over db bounded to [lo, hi) that sees every
// commit made before the call; hand it back with release. lo and hi must
// not change until then.
func (c *recordCache) iter(db *pebble.DB, lo, hi []byte) (keptIter, error) {
	c.mu.Lock()
	epoch := c.epoch
	for len(c.iters) > 0 {
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
		k.epoch = epoch
		return k, nil
	}
	c.mu.Unlock()
	opened := time.Now()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	return keptIter{it: it, epoch: epoch, opened: opened}, err
}

// release keeps k for another reader if nothing was committed since iter
// handed it out and it had no error; otherwise it closes it.
func (c *recordCache) release(k keptIter) error {
	if err := k.it.Error(); err != nil {
		return errors.Join(err, k.it.Close())
	}
	c.mu.Lock()
	if c.epoch == k.epoch && !c.closed && len(c.iters) < maxKeptIters {
		c.iters = append(c.iters, k)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return k.it.Close()
}
