package gateway

import (
	"bytes"
	"net/url"
	"sync"
	"time"
)

// Bounds of the proven answers kept; when either is reached the cache
// starts over (the next checkpoint would drop them anyway).
const (
	proofCacheMax = 8192
	// proofCacheMaxBytes bounds the bytes of the keys and bodies kept.
	proofCacheMaxBytes = 32 << 20
	// provenOverheadBytes is what an entry holds besides its key and body.
	provenOverheadBytes = 128
)

// proofCache keeps the bodies of GET /v1/trust?proof=true answers for the
// latest cosigned checkpoint. A proven answer is a function of the
// checkpoint (its note names the state, and the view at that state is
// fixed), the question and, for a question about now, the instant asked
// at: so a body is filed under the note, the question's query and the
// second it was made in, and served again only while the same note is
// the latest and the clock is in that second. The bundle then says the
// instant it was made for ("at"), which the verifier checks the decision
// against: a repeat within the second gets the same, still verifiable,
// answer — as plain answers are re-served within their second
// (answerCache). Reads that ask for a consistency level or index are not
// cached (localRead).
//
// The query a body is filed under is the parsed query, encoded again
// (provenKey): parameters sorted by name, escaped one way, no empty ones,
// so the spellings of one question share one entry. One longer than
// maxCachedKeyBytes is not kept, and the bodies and keys kept are
// bounded in bytes as well as in number.
type proofCache struct {
	mu sync.Mutex
	// note is the checkpoint the kept bodies were proven against; a new
	// checkpoint drops them all.
	note    []byte
	entries map[proofKey]provenBody
	bytes   int // the size of entries' keys and bodies, with provenOverheadBytes each
}

type proofKey struct {
	query  string
	second int64 // the Unix second a question about now was asked in; 0 when "at" is pinned
}

type provenBody struct {
	body    []byte
	applied uint64
}

// get returns the body kept for query under the checkpoint note, asked at
// now (pinned: the question names its time).
func (c *proofCache) get(note []byte, query string, now time.Time, pinned bool) (provenBody, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.note == nil || !bytes.Equal(note, c.note) {
		return provenBody{}, false
	}
	b, ok := c.entries[keyOf(query, now, pinned)]
	return b, ok
}

// put keeps body, proven against the checkpoint note.
func (c *proofCache) put(note []byte, query string, now time.Time, pinned bool, b provenBody) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(query) > maxCachedKeyBytes {
		return
	}
	k := keyOf(query, now, pinned)
	size := len(query) + len(b.body) + provenOverheadBytes
	if old, ok := c.entries[k]; ok && bytes.Equal(note, c.note) {
		c.bytes -= len(query) + len(old.body) + provenOverheadBytes
	} else if c.note == nil || !bytes.Equal(note, c.note) || c.entries == nil || len(c.entries) >= proofCacheMax || c.bytes+size > proofCacheMaxBytes {
		c.note, c.entries, c.bytes = bytes.Clone(note), make(map[proofKey]provenBody), 0
	}
	c.entries[k] = b
	c.bytes += size
}

// provenKey is the key a proven answer to the question q is kept under:
// its parameters encoded again, sorted by name and escaped one way.
func provenKey(q url.Values) string { return q.Encode() }

func keyOf(query string, now time.Time, pinned bool) proofKey {
	k := proofKey{query: query}
	if !pinned {
		k.second = now.Unix()
	}
	return k
}
