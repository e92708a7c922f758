package record

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
)

// GenesisKeyOf names a keyless member's did:key, else the first of the
// member's genesis JWKs whose kid matches, skipping keys it cannot read;
// genesisKey (GovernanceSignatures) gives the key that rule names.
func TestGenesisKeyOf(t *testing.T) {
	const did = "did:web:gov.example"
	jwkWithKID := func(kid string) (json.RawMessage, ed25519.PublicKey) {
		t.Helper()
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSigner(priv, kid)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.PublicJWK()
		if err != nil {
			t.Fatal(err)
		}
		return raw, pub
	}
	k1, pub1 := jwkWithKID(did + "#k1")
	k2, pub2 := jwkWithKID(did + "#k2")
	k1again, _ := jwkWithKID(did + "#k1")
	bad := json.RawMessage(`{"kty":"nonsense"}`)
	withKeys := Member{ID: did, Keys: []json.RawMessage{bad, k1, k2, k1again}}

	didKeySigner := mustKey(t, KeyEd25519)
	for _, tc := range []struct {
		name         string
		m            Member
		did, frag    string
		wantJWK      json.RawMessage
		wantDIDKey   bool
		wantKey      crypto.PublicKey
		wantNoKeyFor bool
	}{
		{name: "keyless member signs with its did:key", m: Member{ID: didKeySigner.DID}, did: didKeySigner.DID, frag: "x", wantDIDKey: true, wantKey: didKeySigner.key.Public()},
		{name: "first matching kid, past an unreadable key", m: withKeys, did: did, frag: "k1", wantJWK: k1, wantKey: pub1},
		{name: "another fragment", m: withKeys, did: did, frag: "k2", wantJWK: k2, wantKey: pub2},
		{name: "no such fragment", m: withKeys, did: did, frag: "k3", wantNoKeyFor: true},
		{name: "a did:key member with genesis keys uses them only", m: Member{ID: didKeySigner.DID, Keys: []json.RawMessage{k1}}, did: didKeySigner.DID, frag: "k1", wantNoKeyFor: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwk, didKey := GenesisKeyOf(tc.m, tc.did, tc.frag, nil)
			if didKey != tc.wantDIDKey || !bytes.Equal(jwk, tc.wantJWK) {
				t.Fatalf("GenesisKeyOf = %s, %v; want %s, %v", jwk, didKey, tc.wantJWK, tc.wantDIDKey)
			}
			got := genesisKey(tc.m, tc.did, tc.frag)
			if tc.wantNoKeyFor {
				if got != nil {
					t.Fatalf("genesisKey = %v, want none", got)
				}
				return
			}
			if eq, ok := got.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tc.wantKey) {
				t.Fatalf("genesisKey = %v, want %v", got, tc.wantKey)
			}
		})
	}

	// A caller's kid reader is the one used, for every key up to the match.
	var read int
	jwk, _ := GenesisKeyOf(withKeys, did, "k2", func(raw []byte) (string, error) {
		read++
		return publicJWKKID(raw)
	})
	if !bytes.Equal(jwk, k2) || read != 3 {
		t.Fatalf("with a kid reader: %s after %d reads, want %s after 3", jwk, read, k2)
	}
}
