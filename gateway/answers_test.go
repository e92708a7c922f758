package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// TestAnswerCacheAtIndexZero: a node that has applied nothing answers at
// index 0, the cache's zero generation; caching that answer must work.
func TestAnswerCacheAtIndexZero(t *testing.T) {
	var c answerCache
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	d := &record.Decision{Entity: "did:web:college.example", Reason: record.ReasonUnknownFramework, At: t0, Chain: []record.Link{}}
	c.put(0, "q", d, decide.Forever, false, cacheShort)
	if got, ok := c.get(0, t0, "q"); !ok || string(got.appendBody(nil)) != string(appendDecision(nil, d)) {
		t.Fatalf("answer cached at index 0: %v %v", got, ok)
	}
}

func TestAnswerCache(t *testing.T) {
	var c answerCache
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	d := &record.Decision{Entity: "did:web:college.example", Authorized: true, Reason: record.ReasonActive, At: t0, Index: 5, Chain: []record.Link{}}
	if _, ok := c.get(5, t0, "q"); ok {
		t.Fatal("an empty cache answered")
	}
	// The decision holds until 10:00:04.5.
	first := c.put(5, "q", d, t0.Add(4500*time.Millisecond), false, cacheShort)
	if got, ok := c.get(5, t0.Add(900*time.Millisecond), "q"); !ok || string(got.appendBody(nil)) != string(appendDecision(nil, d)) || got.etag != etagOf(got.appendBody(nil)) {
		t.Fatalf("same second: %v %v", got, ok)
	}
	// In each later second the same decision is served, given at that
	// second: byte for byte the decision rendered afresh, and the ETag of
	// those bytes.
	for _, later := range []time.Duration{2*time.Second + 100*time.Millisecond, 2*time.Second + 900*time.Millisecond, 3 * time.Second} {
		got, ok := c.get(5, t0.Add(later), "q")
		at := *d
		at.At = t0.Add(later).Truncate(time.Second)
		want := appendDecision(nil, &at)
		body := got.appendBody(nil)
		if !ok || string(body) != string(want) || got.etag != etagOf(want) || got.etagHdr[0] != got.etag || got.etag == first.etag {
			t.Fatalf("%s later: got %s (ETag %s), want %s (ETag %s)", later, body, got.etag, want, etagOf(want))
		}
		if !strings.Contains(string(body), `"at":"`+at.At.Format(time.RFC3339)+`"`) {
			t.Fatalf("%s later: %s", later, body)
		}
	}
	// Not for the second in which the decision may change, nor later, nor
	// at another applied index, nor in an earlier second.
	for _, g := range []struct {
		applied uint64
		at      time.Time
	}{{5, t0.Add(4 * time.Second)}, {5, t0.Add(time.Hour)}, {6, t0}, {4, t0}, {5, t0.Add(-time.Second)}} {
		if _, ok := c.get(g.applied, g.at, "q"); ok {
			t.Fatalf("answer served at index %d, %s", g.applied, g.at.Format(time.RFC3339Nano))
		}
	}
	// A question with "at" is served as it is, at any time.
	c.put(5, "pinned", d, decide.Forever, true, cacheImmutable)
	if got, ok := c.get(5, t0.Add(time.Hour), "pinned"); !ok || !strings.Contains(string(got.appendBody(nil)), `"at":"2026-05-01T10:00:00Z"`) {
		t.Fatalf("pinned answer: %s %v", got.appendBody(nil), ok)
	}
	// A request that began before a commit cannot file its answer over the
	// newer index's.
	c.put(6, "q", d, decide.Forever, false, cacheShort)
	c.put(5, "q", d, decide.Forever, false, cacheShort)
	if _, ok := c.get(6, t0, "q"); !ok {
		t.Fatal("newer index's answer lost")
	}
	if _, ok := c.get(5, t0, "q"); ok {
		t.Fatal("older index came back")
	}
	// One index holds a bounded number of answers.
	for i := range maxCachedAnswers + 10 {
		c.put(7, string(rune(i)), d, decide.Forever, false, cacheShort)
	}
	if n := len(c.m); n != maxCachedAnswers {
		t.Fatalf("%d answers cached, limit %d", n, maxCachedAnswers)
	}
	// The gateway asks before encoding an answer to keep.
	for _, a := range []struct {
		applied uint64
		key     string
		want    bool
	}{{7, "not cached", false}, {7, string(rune(0)), true}, {8, "not cached", true}, {6, string(rune(0)), false}} {
		if got := c.admits(a.applied, a.key); got != a.want {
			t.Fatalf("admits(%d, %q) = %v with the cache full at index 7", a.applied, a.key, got)
		}
	}
}

// appendBody appends the body the answer sends.
func (a *answer) appendBody(b []byte) []byte {
	head, at, tail := a.pieces()
	return append(append(append(b, head...), at...), tail...)
}

// TestAnswerCacheIsBoundedInBytes: one applied index keeps at most
// maxCachedAnswerBytes of keys and answers, however long the keys, and
// never a key over maxCachedKeyBytes (a question padded with "&" was
// kept whole: 60 KB a key). A later second's answer, which replaces its
// entry, leaves the count as it was; a new index starts from zero.
func TestAnswerCacheIsBoundedInBytes(t *testing.T) {
	var c answerCache
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	// A long root makes a body of a few KiB: 16,384 of them would pass
	// the bound.
	d := &record.Decision{Entity: "did:web:college.example", Authorized: true, Reason: record.ReasonActive, At: t0, Index: 5, Chain: []record.Link{},
		Root: "did:web:" + strings.Repeat("root.example.", 200)}
	long := "entity=did:web:college.example&framework=f" + strings.Repeat("&", maxCachedKeyBytes)
	if c.admits(5, long) {
		t.Fatalf("a key of %d bytes admitted", len(long))
	}
	c.put(5, long, d, decide.Forever, false, cacheShort)
	if _, ok := c.get(5, t0, long); ok || c.bytes != 0 {
		t.Fatalf("a key of %d bytes kept (%d bytes counted)", len(long), c.bytes)
	}
	key := func(i int) string { // keys of maxCachedKeyBytes, each its own
		k := fmt.Sprintf("entity=did:web:college.example&i=%d", i)
		return k + strings.Repeat("&", maxCachedKeyBytes-len(k))
	}
	for i := range maxCachedAnswers {
		c.put(5, key(i), d, t0.Add(time.Hour), false, cacheShort)
	}
	one := answerSize(key(0), c.m[key(0)])
	if c.bytes >= maxCachedAnswerBytes+one || len(c.m) >= maxCachedAnswers {
		t.Fatalf("%d answers of %d bytes counted, bound %d bytes", len(c.m), c.bytes, maxCachedAnswerBytes)
	}
	held := 0
	for k, e := range c.m {
		held += answerSize(k, e)
	}
	if held != c.bytes {
		t.Fatalf("%d bytes counted, %d held", c.bytes, held)
	}
	if c.admits(5, key(maxCachedAnswers)) || !c.admits(5, key(0)) {
		t.Fatal("a full cache admits a new key, or refuses a key it holds")
	}
	before := c.bytes
	if _, ok := c.get(5, t0.Add(3*time.Second), key(0)); !ok || c.bytes != before {
		t.Fatalf("a later second: %d bytes counted, %d before", c.bytes, before)
	}
	c.put(6, "q", d, decide.Forever, false, cacheShort)
	if len(c.m) != 1 || c.bytes != answerSize("q", c.m["q"]) {
		t.Fatalf("a new index holds %d answers, %d bytes counted", len(c.m), c.bytes)
	}
}

// TestAnswerCacheAliases: an answer kept under a question's key is filed
// under the query string a client spelt it in too, so the fast path finds
// it there; not a query string over maxCachedKeyBytes, nor at another
// applied index, nor for a key the cache does not hold.
func TestAnswerCacheAliases(t *testing.T) {
	var c answerCache
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	d := &record.Decision{Entity: "did:web:college.example", Authorized: true, Reason: record.ReasonActive, At: t0, Index: 5, Chain: []record.Link{}}
	kept := c.put(5, "q", d, decide.Forever, false, cacheShort)
	long := "action=issue&q" + strings.Repeat("&", maxCachedKeyBytes)
	c.alias(5, "action=issue&q", "q")
	c.alias(5, long, "q")
	c.alias(4, "old", "q")
	c.alias(5, "other", "not kept")
	got, ok := c.get(5, t0, "action=issue&q")
	if !ok || string(got.appendBody(nil)) != string(kept.appendBody(nil)) || got.etag != kept.etag {
		t.Fatalf("alias: %v %v", got, ok)
	}
	for _, k := range []string{long, "old", "other"} {
		if _, ok := c.get(5, t0, k); ok {
			t.Fatalf("%.20q filed", k)
		}
	}
	if want := answerSize("q", c.m["q"]) + answerSize("action=issue&q", c.m["q"]); c.bytes != want {
		t.Fatalf("%d bytes counted, want %d", c.bytes, want)
	}
}
