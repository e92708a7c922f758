package gateway

import "testing"

func TestAnswerCacheKeepsOneGeneration(t *testing.T) {
	var c answerCache
	a := newAnswer([]byte("a"), 5, cacheShort)
	if _, ok := c.get(5, 100, "q"); ok {
		t.Fatal("an empty cache answered")
	}
	c.put(5, 100, "q", a)
	if got, ok := c.get(5, 100, "q"); !ok || string(got.body) != "a" {
		t.Fatalf("same generation: %v %v", got, ok)
	}
	for _, g := range []struct {
		applied uint64
		second  int64
	}{{6, 100}, {5, 101}, {4, 100}} {
		if _, ok := c.get(g.applied, g.second, "q"); ok {
			t.Fatalf("answer of index 5, second 100 served for index %d, second %d", g.applied, g.second)
		}
	}
	// A request that began before a commit cannot file its answer over the
	// newer generation's.
	c.put(6, 100, "q", newAnswer([]byte("b"), 6, cacheShort))
	c.put(5, 100, "q", a)
	if got, ok := c.get(6, 100, "q"); !ok || string(got.body) != "b" {
		t.Fatalf("newer generation: %v %v", got, ok)
	}
	if _, ok := c.get(5, 100, "q"); ok {
		t.Fatal("older generation came back")
	}
	// One generation holds a bounded number of answers.
	for i := range maxCachedAnswers + 10 {
		c.put(7, 100, string(rune(i)), a)
	}
	if n := len(c.m); n != maxCachedAnswers {
		t.Fatalf("%d answers cached, limit %d", n, maxCachedAnswers)
	}
}
