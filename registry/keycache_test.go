package registry

import (
	"crypto/ecdsa"
	"testing"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// The cache gives the key the parsers give, parses each encoding once, and
// remembers no failures.
func TestKeyCacheParsesOnceAndRemembersNoErrors(t *testing.T) {
	c := newKeyCache()
	s := mustKey(t, record.KeyP256)
	web, err := s.WithKID("did:web:college.example#key-1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := web.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	want, err := record.ParseDIDKey(s.DID)
	if err != nil {
		t.Fatal(err)
	}

	first, err := c.didKey(s.DID)
	if err != nil || !want.(*ecdsa.PublicKey).Equal(first.pub) || first.jose != first.pub {
		t.Fatalf("didKey = %+v, %v; want %v", first, err, want)
	}
	again, _ := c.didKey(s.DID)
	if again.pub != first.pub {
		t.Fatal("the did:key was parsed again")
	}

	k, err := c.jwk(raw)
	if err != nil || k.kid != "did:web:college.example#key-1" || !want.(*ecdsa.PublicKey).Equal(k.pub) {
		t.Fatalf("jwk = %+v, %v", k, err)
	}
	k2, _ := c.jwk(raw)
	if k2.pub != k.pub {
		t.Fatal("the JWK was parsed again")
	}

	// An Ed25519 signer is kept with its expanded key, made once.
	ed := mustKey(t, record.KeyEd25519)
	e1, err := c.didKey(ed.DID)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := e1.jose.(record.EdVerifier)
	if !ok || v == (record.EdVerifier{}) {
		t.Fatalf("Ed25519 did:key kept with verifier %T %+v", e1.jose, e1.jose)
	}
	if e2, _ := c.didKey(ed.DID); e2.jose.(record.EdVerifier) != v {
		t.Fatal("the Ed25519 key was expanded again")
	}

	before := c.lru.Len()
	for range 2 {
		if _, err := c.didKey("did:key:z6MkNotAKey"); err == nil {
			t.Fatal("a malformed did:key was accepted")
		}
		if _, err := c.jwk([]byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"k"}`)); err == nil {
			t.Fatal("a point off the curve was accepted")
		}
	}
	if c.lru.Len() != before {
		t.Fatalf("failures were remembered: %d entries, want %d", c.lru.Len(), before)
	}
}

// Signature checks read entities through the read-side cache: once a
// rotation commits, or earlier in the same batch, the old key signs
// nothing, however warm the cache was.
func TestRotatedKeyRefusedWithWarmCache(t *testing.T) {
	f := mustChain(t)
	const web = "did:web:rotating.example"
	old, _ := mustKey(t, record.KeyEd25519).WithKID(web + "#key-1")
	oldJWK, _ := old.PublicJWK()
	f.mustAccept(f.sign(f.qa, record.OpRegisterEntity, map[string]any{"id": web, "name": "Rotating", "keys": []any{oldJWK}}))
	next, _ := mustKey(t, record.KeyP256).WithKID(web + "#key-2")
	nextJWK, _ := next.PublicJWK()

	// Warm the cache with the entity and PreVerify's memory with the old
	// key's signature, then rotate and use the old key in the same batch.
	byOld := f.sign(old, record.OpUpdateEntity, map[string]any{"id": web, "name": "signed by the old key"})
	if err := f.s.PreVerify(byOld); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.s.caches.records.get(decide.EntityKey(web), f.s.seq.Load()); !ok {
		t.Fatal("PreVerify did not read the entity through the cache; this test would prove nothing")
	}
	rotate := f.sign(old, record.OpRotateKeys, map[string]any{"id": web, "keys": []any{nextJWK}})
	f.index += 2
	res := f.s.ApplyBatch([]Entry{
		{Index: f.index - 1, Time: f.now, Data: EncodeOperation(rotate)},
		{Index: f.index, Time: f.now, Data: EncodeOperation(byOld)},
	})
	if !res[0].Accepted {
		t.Fatalf("rotation: %s", res[0].Reason)
	}
	if res[1].Accepted || res[1].Code != record.CodeUnknownKey {
		t.Fatalf("the old key signed in the rotation's batch: %+v", res[1])
	}

	// In later batches too, after PreVerify read the entity again.
	later := f.sign(old, record.OpUpdateEntity, map[string]any{"id": web, "name": "later, old key"})
	if err := f.s.PreVerify(later); err != nil {
		t.Fatal(err)
	}
	if r := f.apply(later); r.Accepted || r.Code != record.CodeUnknownKey {
		t.Fatalf("the old key signed after the rotation: %+v", r)
	}
	f.mustAccept(f.sign(next, record.OpUpdateEntity, map[string]any{"id": web, "name": "signed by the new key"}))
}
