package registry

import (
	"crypto/ecdsa"
	"testing"
)

// The cache gives the key the parsers give, parses each encoding once, and
// remembers no failures.
func TestKeyCacheParsesOnceAndRemembersNoErrors(t *testing.T) {
	c := newKeyCache()
	s := mustKey(t, KeyP256)
	web, err := s.WithKID("did:web:college.example#key-1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := web.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseDIDKey(s.DID)
	if err != nil {
		t.Fatal(err)
	}

	first, err := c.didKey(s.DID)
	if err != nil || !want.(*ecdsa.PublicKey).Equal(first) {
		t.Fatalf("didKey = %v, %v; want %v", first, err, want)
	}
	again, _ := c.didKey(s.DID)
	if again != first {
		t.Fatal("the did:key was parsed again")
	}

	kid, pub, err := c.jwk(raw)
	if err != nil || kid != "did:web:college.example#key-1" || !want.(*ecdsa.PublicKey).Equal(pub) {
		t.Fatalf("jwk = %q %v, %v", kid, pub, err)
	}
	_, pub2, _ := c.jwk(raw)
	if pub2 != pub {
		t.Fatal("the JWK was parsed again")
	}

	before := c.lru.Len()
	for range 2 {
		if _, err := c.didKey("did:key:z6MkNotAKey"); err == nil {
			t.Fatal("a malformed did:key was accepted")
		}
		if _, _, err := c.jwk([]byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"k"}`)); err == nil {
			t.Fatal("a point off the curve was accepted")
		}
	}
	if c.lru.Len() != before {
		t.Fatalf("failures were remembered: %d entries, want %d", c.lru.Len(), before)
	}
}
