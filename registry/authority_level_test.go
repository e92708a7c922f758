package registry

import (
	"encoding/json"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
)

// Below FeatureLevelKeyAuthority the first release's rules hold, so a node
// of this build and one of an older build reach the same state from the
// same log. Reaching the level records who bound each governance member's
// keys: keys governance bound stay the member's, keys a third party bound
// no longer sign for it.
func TestKeyAuthorityStartsAtItsFeatureLevel(t *testing.T) {
	raise := func(t *testing.T, f *authorityFixture) {
		t.Helper()
		if r := f.applyCommand(EncodeFeatureLevel(FeatureLevelKeyAuthority)); !r.Accepted || r.Duplicate {
			t.Fatalf("raise to %d: %+v", FeatureLevelKeyAuthority, r)
		}
	}
	entity := func(t *testing.T, f *authorityFixture, did string) *record.Entity {
		t.Helper()
		ent, err := f.s.Entity(did)
		if err != nil {
			t.Fatal(err)
		}
		return ent
	}
	createFramework := func(f *authorityFixture, s *record.Signer, id string) *record.Result {
		f.now = f.now.Add(1)
		return f.apply(f.sign(s, record.OpCreateFramework, map[string]any{"id": "https://example.org/frameworks/" + id, "name": id}))
	}

	t.Run("a member taken over by a third party", func(t *testing.T) {
		f := mustAuthorityAt(t, 1, FeatureLevelEntityLocation)
		squatter := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-1")
		f.mustAccept(f.register(f.root1, squatter)) // the first release's rule
		if r := createFramework(f, squatter, "before"); !r.Accepted {
			t.Fatalf("the squatter before the level: %+v", r)
		}
		if ent := entity(t, f, boardDID); ent.KeysBoundBy != "" {
			t.Fatalf("keysBoundBy written below the level: %q", ent.KeysBoundBy)
		}
		raise(t, f)
		if ent := entity(t, f, boardDID); ent.KeysBoundBy != f.root1.DID {
			t.Fatalf("keysBoundBy after the raise = %q, want the registrar %s", ent.KeysBoundBy, f.root1.DID)
		}
		if r := createFramework(f, squatter, "after"); r.Accepted || r.Code != record.CodeBadSignature {
			t.Fatalf("the squatter after the level: %+v", r)
		}
		if r := createFramework(f, f.board, "member"); !r.Accepted {
			t.Fatalf("the member's genesis key after the level: %+v", r)
		}
	})

	t.Run("a member whose keys governance replaced", func(t *testing.T) {
		f := mustAuthorityAt(t, 1, FeatureLevelEntityLocation)
		next := mustAs(t, mustKey(t, record.KeyEd25519), boardDID+"#gov-2")
		f.mustAccept(f.govSign(record.OpRegisterEntity, map[string]any{"id": boardDID, "name": "Nursing board", "keys": []json.RawMessage{mustJWK(t, next)}}))
		raise(t, f)
		if ent := entity(t, f, boardDID); ent.KeysBoundBy != KeysByGovernance {
			t.Fatalf("keysBoundBy after the raise = %q, want %q", ent.KeysBoundBy, KeysByGovernance)
		}
		if r := createFramework(f, next, "rotated"); !r.Accepted {
			t.Fatalf("the rotated key after the level: %+v", r)
		}
		if r := createFramework(f, f.board, "genesis"); r.Accepted || r.Code != record.CodeUnknownKey {
			t.Fatalf("the replaced genesis key after the level: %+v", r)
		}
	})
}

// An entity's record says who bound its keys.
func TestKeysBoundByIsRecorded(t *testing.T) {
	f := mustAuthority(t, 1)
	fresh := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:new.example#k1")
	f.mustAccept(f.register(f.root1, fresh))
	check := func(want string) {
		t.Helper()
		ent, err := f.s.Entity(fresh.DID)
		if err != nil || ent.KeysBoundBy != want {
			t.Fatalf("keysBoundBy = %+v %v, want %q", ent, err, want)
		}
	}
	check(f.root1.DID)
	next := mustAs(t, mustKey(t, record.KeyEd25519), "did:web:new.example#k2")
	// Rotated by the entity, with the key the registrar bound: the keys
	// still descend from the registrar's binding.
	f.mustAccept(f.sign(fresh, record.OpRotateKeys, map[string]any{"id": fresh.DID, "keys": []json.RawMessage{mustJWK(t, next)}}))
	check(f.root1.DID)
	f.mustAccept(f.govSign(record.OpRotateKeys, map[string]any{"id": fresh.DID, "keys": []json.RawMessage{mustJWK(t, fresh)}}))
	check(KeysByGovernance)
}
