package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// FuzzSigners: reading the signers of any body neither panics nor
// returns a DID with a fragment, and a signed operation names its signer.
func FuzzSigners(f *testing.F) {
	s, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		f.Fatal(err)
	}
	jws, err := s.SignCompact([]byte(`{"op":"registerEntity","iat":1,"id":"` + s.DID + `","name":"x"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jws)
	f.Add([]byte("eyJraWQiOiJkaWQ6a2V5OnojeiJ9.e30.e30"))
	f.Add([]byte(`{"payload":"e30","signatures":[{"protected":"eyJraWQiOiJkaWQ6a2V5OnojeiJ9","signature":"AA"}]}`))
	f.Add([]byte("..."))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, did := range signers(body) {
			if strings.Contains(did, "#") {
				t.Fatalf("signer %q of %q has a fragment", did, body)
			}
		}
	})
	if got := signers(jws); len(got) != 1 || got[0] != s.DID {
		f.Fatalf("signers of a signed operation: %v, want [%s]", got, s.DID)
	}
}

// TestBucketsGiveBack: a write given back is available again, up to the
// burst, and an empty bucket says how long until the next write.
func TestBucketsGiveBack(t *testing.T) {
	b := newBuckets(0.5, 2, 4, "signer")
	now := time.Unix(1000, 0)
	for i := range 2 {
		if _, err := b.take("a", now); err != nil {
			t.Fatalf("take %d: %v", i, err)
		}
	}
	if retry, err := b.take("a", now); err == nil || retry != 2 {
		t.Fatalf("empty bucket: retry %d, %v; want 2 s and an error", retry, err)
	}
	b.giveBack("a", now)
	if _, err := b.take("a", now); err != nil {
		t.Fatalf("after a give-back: %v", err)
	}
	for range 5 {
		b.giveBack("a", now)
	}
	for i := range 3 {
		_, err := b.take("a", now)
		if (err == nil) != (i < 2) {
			t.Fatalf("take %d after give-backs beyond the burst: %v", i, err)
		}
	}
	if _, err := b.take("a", now.Add(2*time.Second)); err != nil {
		t.Fatalf("after 2 s at 0.5 writes a second: %v", err)
	}
}

// TestSignersOwn: which outcomes keep what a write took from its signers'
// buckets. A call that only waited for the same bytes another call sent,
// and gave up, keeps nothing whatever else its error says: the other call
// was charged.
func TestSignersOwn(t *testing.T) {
	unknown := record.Errorf(ErrOutcomeUnknown, "raft: %w", context.DeadlineExceeded)
	waited := record.Errorf(ErrOutcomeUnknown, "%w: %w", ErrSentByAnother, context.Canceled)
	for _, c := range []struct {
		name string
		res  *record.Result
		err  error
		want bool
	}{
		{"accepted", &record.Result{Index: 3, Accepted: true}, nil, true},
		{"duplicate", &record.Result{Index: 3, Accepted: true, Duplicate: true}, nil, false},
		{"refused, not authorized", &record.Result{Code: string(record.CodeNotAuthorized), Reason: "no"}, nil, true},
		{"bad signature", nil, record.Errorf(record.ErrBadSignature, "signature 0"), false},
		{"malformed", nil, record.Errorf(record.ErrMalformed, "not a JWS"), false},
		{"outcome unknown", nil, unknown, true},
		{"waited for another call's send, gave up", nil, waited, false},
	} {
		if got := signersOwn(c.res, c.err); got != c.want {
			t.Errorf("%s: signersOwn = %v, want %v", c.name, got, c.want)
		}
	}
}
