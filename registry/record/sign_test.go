package record

import (
	"bytes"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Operations and status-list credentials are both compact JWSs; what tells
// them apart is the protected header's typ, and kid names the signing key.
// Each form must verify under the signer's public key and say which it is.
func TestCompactSignaturesNameKeyAndType(t *testing.T) {
	for _, kind := range []string{KeyEd25519, KeyP256} {
		s := mustKey(t, kind)
		payload := []byte(`{"op":"x"}`)
		for _, tc := range []struct {
			sign func([]byte) ([]byte, error)
			typ  string
		}{
			{s.SignCompact, "trustreg-op+jws"},
			{s.SignVCJWT, "vc+jwt"},
		} {
			raw, err := tc.sign(payload)
			if err != nil {
				t.Fatalf("%s %s: %v", kind, tc.typ, err)
			}
			obj, err := jose.ParseSignedCompact(string(raw), []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
			if err != nil {
				t.Fatalf("%s %s: %v", kind, tc.typ, err)
			}
			h := obj.Signatures[0].Protected
			if h.KeyID != s.KID || h.ExtraHeaders[jose.HeaderType] != tc.typ {
				t.Fatalf("%s: header kid %q typ %v, want %q %q", kind, h.KeyID, h.ExtraHeaders[jose.HeaderType], s.KID, tc.typ)
			}
			got, err := obj.Verify(s.key.Public())
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("%s %s: verify %q, %v", kind, tc.typ, got, err)
			}
		}
	}
}

func mustKey(t testing.TB, kind string) *Signer {
	t.Helper()
	s, err := GenerateKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSignRaw(t testing.TB, s *Signer, payload []byte) []byte {
	t.Helper()
	jws, err := s.SignCompact(payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}
func mustVC(t *testing.T, issuer string, bits []byte) []byte {
	t.Helper()
	vc, err := StatusListCredential(issuer, "z", []string{PurposeRevocation}, 1, nil, 0, bits)
	if err != nil {
		t.Fatal(err)
	}
	return vc
}
