package registry

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// mustCosignerVKey returns the vkey of a new cosigner key named name.
func mustCosignerVKey(t testing.TB, name string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tlog.NewCosignerKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return k.String()
}

// mustCosignerState opens a state of three did:key members, threshold 2,
// whose genesis names one cosigner.
func mustCosignerState(t *testing.T) (*harness, string) {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	first := mustCosignerVKey(t, "genesis.example")
	g := record.Genesis{Consortium: "test consortium", Threshold: 2, Cosigners: []string{first}}
	h.addMembers(&g, record.KeyEd25519, 3)
	h.openGenesis(g)
	return h, first
}

// setCosigners signs a setCosigners by the first n members.
func (h *harness) setCosigners(n int, fields map[string]any) []byte {
	h.t.Helper()
	jws, err := record.SignJSON(h.payload(record.OpSetCosigners, fields), h.gov[:n]...)
	if err != nil {
		h.t.Fatal(err)
	}
	return jws
}

// setCosigners is refused below its feature level, without the genesis
// threshold and with an invalid set; accepted, it is recorded with the leaf
// index of its entry, the map commits to the record, and CosignersAt gives the
// set in force at every log size.
func TestSetCosignersChangesTheSetInForce(t *testing.T) {
	h, first := mustCosignerState(t)
	a, b, c := mustCosignerVKey(t, "a.example"), mustCosignerVKey(t, "b.example"), mustCosignerVKey(t, "c.example")
	op := h.setCosigners(2, map[string]any{"cosigners": []string{a, b, c}})
	h.mustRaiseLevel(FeatureLevelCommitment)
	before := h.digest()
	if r := h.apply(op); r.Accepted || r.Code != record.CodeInvalid || !strings.Contains(r.Reason, "feature level 8 (checkpoint cosigners changed by governance") {
		t.Fatalf("setCosigners below its level: %+v", r)
	}
	h.mustRaiseLevel(FeatureLevelCosignerSet)
	for name, tc := range map[string]struct {
		jws  []byte
		code string
	}{
		"one of two signatures": {h.setCosigners(1, map[string]any{"cosigners": []string{a}}), record.CodeNotAuthorized},
		"no cosigners":          {h.setCosigners(2, map[string]any{"cosigners": []string{}}), record.CodeInvalid},
		"a bad vkey":            {h.setCosigners(2, map[string]any{"cosigners": []string{"a.example+00+AA"}}), record.CodeInvalid},
		"a name twice":          {h.setCosigners(2, map[string]any{"cosigners": []string{a, a}}), record.CodeInvalid},
		"a key under two names": {h.setCosigners(2, map[string]any{"cosigners": []string{a, sameKeyAs(t, a, "a2.example")}}), record.CodeInvalid},
		"quorum above n":        {h.setCosigners(2, map[string]any{"cosigners": []string{a, b}, "quorum": 3}), record.CodeInvalid},
		"the set in force":      {h.setCosigners(2, map[string]any{"cosigners": []string{first}}), record.CodeConflict},
	} {
		if r := h.apply(tc.jws); r.Accepted || r.Code != tc.code {
			t.Errorf("%s: %+v, want code %s", name, r, tc.code)
		}
	}
	if h.digest() != before {
		t.Fatal("a refused setCosigners changed the state")
	}
	c0 := mustCommitment(t, h.s)
	h.mustAccept(op)
	second := h.setCosigners(3, map[string]any{"cosigners": []string{a, b}, "quorum": 1})
	h.mustAccept(second)
	c2 := mustCommitment(t, h.s)

	v := h.s.View()
	defer v.Close()
	set, raw, err := v.CosignerSet()
	if err != nil || set == nil {
		t.Fatalf("cosigner set: %+v, %v", set, err)
	}
	want := []record.CosignerChange{
		{Operation: record.CIDOf(op), Index: h.index - 1},
		{Operation: record.CIDOf(second), Index: h.index},
	}
	if got, _ := json.Marshal(set.Changes); string(got) != string(mustJSON(t, want)) || set.Quorum != 1 || len(set.Cosigners) != 2 {
		t.Fatalf("cosigner set %+v, want changes %+v", set, want)
	}
	vals, proof, err := v.ProveStoreKeys([][]byte{CosignerSetStoreKey()})
	if err != nil || string(vals[0]) != string(raw) {
		t.Fatalf("prove the cosigner set: %v", err)
	}
	val := smt.Value(recordValue(raw))
	if err := smt.VerifyBatch(c2.MapRoot, []smt.Claim{{Key: smt.KeyOf(CosignerSetStoreKey()), Value: val, Present: true}}, proof); err != nil {
		t.Fatalf("the map does not commit to the cosigner set: %v", err)
	}
	for _, tc := range []struct {
		size    uint64
		keys    int
		quorum  int
		changes int
	}{{c0.LogSize, 1, 1, 0}, {c0.LogSize + 1, 3, 3, 1}, {c0.LogSize + 2, 2, 1, 2}} {
		got, err := h.s.CosignersAt(tc.size)
		if err != nil || len(got.Keys) != tc.keys || got.QuorumOf() != tc.quorum || got.Changes != tc.changes {
			t.Errorf("cosigners at size %d: %+v, %v; want %d keys, quorum %d, %d changes", tc.size, got, err, tc.keys, tc.quorum, tc.changes)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setCosigners is checked against the keys the genesis gives the members,
// which is all a verifier following the change holds: a member whose keys
// governance bound anew in the state signs it with its genesis key, not
// the new one.
func TestSetCosignersTakesGenesisKeys(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), now: t0}
	const member = "did:web:member.example"
	k1, err := mustKey(t, record.KeyEd25519).WithKID(member + "#k1")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := mustKey(t, record.KeyEd25519).WithKID(member + "#k2")
	if err != nil {
		t.Fatal(err)
	}
	jwk1, _ := k1.PublicJWK()
	jwk2, _ := k2.PublicJWK()
	g := record.Genesis{Consortium: "test consortium", Threshold: 1, Cosigners: []string{mustCosignerVKey(t, "genesis.example")},
		Members: []record.Member{{ID: member, Keys: []json.RawMessage{jwk1}}}}
	h.openGenesis(g)
	h.mustRaiseLevel(FeatureLevelCosignerSet)
	h.mustAccept(h.sign(k1, record.OpRegisterEntity, map[string]any{"id": member, "name": "Member", "keys": []any{jwk2}}))
	// The state now binds k2 to the member: other governance operations
	// take it, and no longer k1.
	if r := h.apply(h.sign(k1, record.OpCreateFramework, map[string]any{"id": fwID, "name": "FW"})); r.Accepted {
		t.Fatalf("createFramework with the member's genesis key after governance rebound it: %+v", r)
	}
	h.mustAccept(h.sign(k2, record.OpCreateFramework, map[string]any{"id": fwID, "name": "FW"}))

	set := map[string]any{"cosigners": []string{mustCosignerVKey(t, "a.example")}}
	if r := h.apply(h.sign(k2, record.OpSetCosigners, set)); r.Accepted || r.Code != record.CodeUnknownKey {
		t.Fatalf("setCosigners with the member's key bound in the state: %+v", r)
	}
	stranger := mustKey(t, record.KeyEd25519)
	if r := h.apply(h.sign(stranger, record.OpSetCosigners, set)); r.Accepted || r.Code != record.CodeNotAuthorized {
		t.Fatalf("setCosigners by a non-member: %+v", r)
	}
	h.mustAccept(h.sign(k1, record.OpSetCosigners, set))
}

// sameKeyAs returns vkey's public key under another name.
func sameKeyAs(t testing.TB, vkey, name string) string {
	t.Helper()
	k, err := tlog.ParseCosignerKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := tlog.NewCosignerKey(name, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	return k2.String()
}

// A state takes at most record.MaxCosignerChanges setCosigners, the most
// a proof bundle carries: the next is refused and leaves the state as it
// was, so every answer stays provable.
func TestSetCosignersStopsAtTheMostABundleCarries(t *testing.T) {
	h, _ := mustCosignerState(t)
	h.mustRaiseLevel(FeatureLevelCosignerSet)
	for i := range record.MaxCosignerChanges {
		if r := h.apply(h.setCosigners(2, map[string]any{"cosigners": []string{mustCosignerVKey(t, fmt.Sprintf("c%d.example", i))}})); !r.Accepted || r.Duplicate {
			t.Fatalf("change %d: %+v", i+1, r)
		}
	}
	before := h.digest()
	r := h.apply(h.setCosigners(2, map[string]any{"cosigners": []string{mustCosignerVKey(t, "last.example")}}))
	if r.Accepted || r.Code != record.CodeConflict || h.digest() != before {
		t.Fatalf("change %d: %+v (state changed: %v)", record.MaxCosignerChanges+1, r, h.digest() != before)
	}
}
