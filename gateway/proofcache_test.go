package gateway

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProofCacheKeepsAnswersPerCheckpointAndSecond(t *testing.T) {
	var c proofCache
	t0 := time.Unix(1_800_000_000, 100)
	noteA, noteB := []byte("checkpoint A\n\n— sig\n"), []byte("checkpoint B\n\n— sig\n")
	body := provenBody{body: []byte(`{"authorized":true}`), applied: 7}
	const q = "entity=did:x&framework=f&resource=r&proof=true"

	if _, ok := c.get(noteA, q, t0, false); ok {
		t.Fatal("an empty cache answered")
	}
	c.put(noteA, q, t0, false, body)
	if got, ok := c.get(noteA, q, t0.Add(500*time.Millisecond), false); !ok || got.applied != 7 || string(got.body) != string(body.body) {
		t.Fatalf("same checkpoint, same second: %+v, %v", got, ok)
	}
	if _, ok := c.get(noteA, q, t0.Add(time.Second), false); ok {
		t.Fatal("a question about now was answered from another second")
	}
	if _, ok := c.get(noteA, q+"&x=1", t0, false); ok {
		t.Fatal("another question was answered")
	}
	if _, ok := c.get(noteB, q, t0, false); ok {
		t.Fatal("an answer proven against another checkpoint was served")
	}

	// A question with its time pinned does not depend on the clock.
	c.put(noteA, q+"&at=2026-01-01T00:00:00Z", t0, true, body)
	if _, ok := c.get(noteA, q+"&at=2026-01-01T00:00:00Z", t0.Add(time.Hour), true); !ok {
		t.Fatal("a pinned question was not served again")
	}

	// A new checkpoint drops everything proven against the old one.
	c.put(noteB, q, t0, false, body)
	if _, ok := c.get(noteA, q, t0, false); ok {
		t.Fatal("the old checkpoint's answer survived a new checkpoint")
	}
	if _, ok := c.get(noteB, q, t0, false); !ok {
		t.Fatal("the new checkpoint's answer was not kept")
	}

	// Bounded: a full cache starts over.
	for i := range proofCacheMax + 1 {
		c.put(noteB, q+"&i="+time.Duration(i).String(), t0, false, body)
	}
	if n := len(c.entries); n > proofCacheMax {
		t.Fatalf("%d entries kept, at most %d", n, proofCacheMax)
	}
}

// TestProofCacheIsBoundedInBytes: proven answers are kept under their
// question's parsed query encoded again, so its spellings (parameters in
// another order, empty ones between them) share one entry; a key over
// maxCachedKeyBytes is not kept, and the bodies kept are bounded in
// bytes as well as in number.
func TestProofCacheIsBoundedInBytes(t *testing.T) {
	var c proofCache
	t0 := time.Unix(1_800_000_000, 100)
	note := []byte("checkpoint A\n\n— sig\n")
	small := provenBody{body: []byte(`{"authorized":true}`), applied: 7}
	var keys []string
	for _, raw := range []string{"entity=did:x&framework=f&proof=true", "proof=true&framework=f&entity=did:x", "&&entity=did%3Ax&&framework=f&proof=true&" + strings.Repeat("&", 60000)} {
		q, err := parseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, provenKey(q))
	}
	if keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("one question, keys %q", keys)
	}
	c.put(note, keys[0], t0, true, small)
	if _, ok := c.get(note, keys[0], t0, true); !ok || len(c.entries) != 1 {
		t.Fatal("the question's answer was not kept once")
	}
	long := keys[0] + "&resource=" + strings.Repeat("r", maxCachedKeyBytes)
	c.put(note, long, t0, true, small)
	if _, ok := c.get(note, long, t0, true); ok {
		t.Fatalf("a key of %d bytes kept", len(long))
	}
	big := provenBody{body: bytes.Repeat([]byte("x"), 64<<10)}
	for i := range proofCacheMax {
		c.put(note, keys[0]+"&i="+time.Duration(i).String(), t0, true, big)
		if c.bytes > proofCacheMaxBytes {
			t.Fatalf("after %d answers of 64 KiB, %d bytes kept, bound %d", i+1, c.bytes, proofCacheMaxBytes)
		}
	}
	held := 0
	for k, b := range c.entries {
		held += len(k.query) + len(b.body) + provenOverheadBytes
	}
	if held != c.bytes {
		t.Fatalf("%d bytes counted, %d held", c.bytes, held)
	}
}
