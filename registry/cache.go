package registry

import (
	"sync"

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
type recordCache struct {
	mu    sync.Mutex
	epoch uint64
	lru   *lru.Cache[string, any]
}

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
	defer c.mu.Unlock()
	for _, k := range keys {
		c.lru.Remove(k)
	}
	c.epoch++
}

// clear drops everything (after a snapshot restore).
func (c *recordCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Purge()
	c.epoch++
}
