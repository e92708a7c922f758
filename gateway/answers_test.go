package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry"
)

func TestAnswerCache(t *testing.T) {
	var c answerCache
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	d := &registry.Decision{Entity: "did:web:college.example", Authorized: true, Reason: registry.ReasonActive, At: t0, Index: 5, Chain: []registry.Link{}}
	if _, ok := c.get(5, t0, "q"); ok {
		t.Fatal("an empty cache answered")
	}
	// The decision holds until 10:00:03.5.
	first := c.put(5, "q", d, t0.Add(3500*time.Millisecond), false, cacheShort)
	if got, ok := c.get(5, t0.Add(900*time.Millisecond), "q"); !ok || string(got.body) != string(first.body) {
		t.Fatalf("same second: %v %v", got, ok)
	}
	// Two seconds later the same decision is served, re-rendered at that second.
	got, ok := c.get(5, t0.Add(2*time.Second+100*time.Millisecond), "q")
	if !ok || !strings.Contains(string(got.body), `"at":"2026-05-01T10:00:02Z"`) || got.etag == first.etag {
		t.Fatalf("a later second within until: %s %v", got.body, ok)
	}
	// Not for the second in which the decision may change, nor later, nor
	// at another applied index, nor in an earlier second.
	for _, g := range []struct {
		applied uint64
		at      time.Time
	}{{5, t0.Add(3 * time.Second)}, {5, t0.Add(time.Hour)}, {6, t0}, {4, t0}, {5, t0.Add(-time.Second)}} {
		if _, ok := c.get(g.applied, g.at, "q"); ok {
			t.Fatalf("answer served at index %d, %s", g.applied, g.at.Format(time.RFC3339Nano))
		}
	}
	// A question with "at" is served as it is, at any time.
	c.put(5, "pinned", d, registry.Forever, true, cacheImmutable)
	if got, ok := c.get(5, t0.Add(time.Hour), "pinned"); !ok || !strings.Contains(string(got.body), `"at":"2026-05-01T10:00:00Z"`) {
		t.Fatalf("pinned answer: %s %v", got.body, ok)
	}
	// A request that began before a commit cannot file its answer over the
	// newer index's.
	c.put(6, "q", d, registry.Forever, false, cacheShort)
	c.put(5, "q", d, registry.Forever, false, cacheShort)
	if _, ok := c.get(6, t0, "q"); !ok {
		t.Fatal("newer index's answer lost")
	}
	if _, ok := c.get(5, t0, "q"); ok {
		t.Fatal("older index came back")
	}
	// One index holds a bounded number of answers.
	for i := range maxCachedAnswers + 10 {
		c.put(7, string(rune(i)), d, registry.Forever, false, cacheShort)
	}
	if n := len(c.m); n != maxCachedAnswers {
		t.Fatalf("%d answers cached, limit %d", n, maxCachedAnswers)
	}
}
