package registry

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/trustreg/trustreg/registry/record"
)

// Bounds of the parsed-operation memory (parsedCache).
const (
	maxParsedOps   = 1 << 12  // operations
	maxParsedBytes = 16 << 20 // bytes of their encodings and payloads
)

// parsedCache remembers operations PreVerify parsed, by the SHA-256 of
// their bytes, so that the apply (and the leader's check) take them
// instead of parsing again.
//
// What fills it: PreVerify, on the node that receives a write, on the
// leader that checks it, and on every node for the entries of a batch.
// What empties it: the apply takes each operation it applies (parse); the
// leader's check drops an operation it refuses, which is never applied
// (forget); and past maxParsedOps operations or maxParsedBytes bytes, the
// least recently used go first. An entry is never stale: parsing is a
// pure function of the bytes its key names. The bounds are for memory
// alone: refused operations cost their sender nothing, and were they
// kept until pushed out, 4,096 of them at MaxOperationSize would hold
// gigabytes.
type parsedCache struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[[32]byte, *record.ParsedOperation]
	bytes int
}

func newParsedCache() *parsedCache {
	c := &parsedCache{}
	c.lru, _ = simplelru.NewLRU(maxParsedOps, func(_ [32]byte, op *record.ParsedOperation) { c.bytes -= parsedSize(op) })
	return c
}

// parsedSize is what an operation is counted as: its bytes and its
// decoded payload (the decoded body is of the payload's order).
func parsedSize(op *record.ParsedOperation) int { return len(op.Raw) + len(op.Payload) }

func (c *parsedCache) get(digest [32]byte) (*record.ParsedOperation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(digest)
}

// take returns the operation and forgets it.
func (c *parsedCache) take(digest [32]byte) (*record.ParsedOperation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	op, ok := c.lru.Peek(digest)
	if ok {
		c.lru.Remove(digest)
	}
	return op, ok
}

func (c *parsedCache) add(digest [32]byte, op *record.ParsedOperation) {
	size := parsedSize(op)
	if size > maxParsedBytes/16 {
		return // parsing it again costs less than keeping it
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(digest) {
		return
	}
	c.lru.Add(digest, op)
	c.bytes += size
	for c.bytes > maxParsedBytes && c.lru.Len() > 1 {
		c.lru.RemoveOldest()
	}
}

func (c *parsedCache) forget(digest [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(digest)
}

// Len is the number of operations remembered.
func (c *parsedCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
