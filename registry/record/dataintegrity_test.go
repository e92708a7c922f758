package record

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"os"
	"strings"
	"testing"
)

// The test vectors of W3C's Data Integrity EdDSA Cryptosuites v1.0
// (github.com/w3c/vc-di-eddsa, TestVectors/, commit abb673eb of
// 2025-05-15): an alumni credential signed with eddsa-rdfc-2022
// (eddsa-rdfc-2022/signedDataInt.json) and with eddsa-jcs-2022
// (eddsa-jcs-2022/signedJCS.json) by the did:key of TestVectors/keyPair.json.
// They use the examples context, which the test adds to the bundled ones.

func vectorContexts(t *testing.T) loader {
	t.Helper()
	ex, err := os.ReadFile("testdata/vc-di-eddsa/examples-v2.jsonld")
	if err != nil {
		t.Fatal(err)
	}
	l := loader{"https://www.w3.org/ns/credentials/examples/v2": ex}
	for k, v := range bundledContexts {
		l[k] = v
	}
	return l
}

func didKeyResolver(vm string) (crypto.PublicKey, error) {
	did, _, _ := strings.Cut(vm, "#")
	return ParseDIDKey(did)
}

func TestDataIntegrityW3CVectors(t *testing.T) {
	ctx := vectorContexts(t)
	for _, tc := range []struct{ file, suite string }{
		{"signedDataInt.json", CryptosuiteEdDSARDFC},
		{"signedJCS.json", CryptosuiteEdDSAJCS},
	} {
		doc, err := os.ReadFile("testdata/vc-di-eddsa/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		p, err := verifyDataIntegrity(doc, didKeyResolver, ctx)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if p.Cryptosuite != tc.suite || !strings.HasPrefix(p.VerificationMethod, "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#") {
			t.Fatalf("%s: %+v", tc.file, p)
		}
		// A changed claim, a changed proof option and another key all fail.
		for name, bad := range map[string]string{
			"claim":   strings.Replace(string(doc), "The School of Examples", "The School of Forgeries", 1),
			"created": strings.Replace(string(doc), "2023-02-24T23:36:38Z", "2023-02-24T23:36:39Z", 1),
		} {
			if _, err := verifyDataIntegrity([]byte(bad), didKeyResolver, ctx); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("%s with a tampered %s: %v, want ErrBadSignature", tc.file, name, err)
			}
		}
		other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public()
		if _, err := verifyDataIntegrity(doc, func(string) (crypto.PublicKey, error) { return other, nil }, ctx); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s with another key: %v", tc.file, err)
		}
		// Without the examples context the RDF credential is not
		// verified: contexts come only from the build.
		if _, err := VerifyDataIntegrity(doc, didKeyResolver); tc.suite == CryptosuiteEdDSARDFC && (!errors.Is(err, ErrDataIntegrity) || errors.Is(err, ErrBadSignature)) {
			t.Fatalf("%s with the bundled contexts only: %v", tc.file, err)
		}
	}
}

// FuzzVerifyDataIntegrity: any bytes give a verified proof or an error
// wrapping ErrDataIntegrity (or the resolver's), never a panic; only the
// vectors' exact bytes verify.
func FuzzVerifyDataIntegrity(f *testing.F) {
	for _, name := range []string{"signedDataInt.json", "signedJCS.json"} {
		doc, err := os.ReadFile("testdata/vc-di-eddsa/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc)
	}
	f.Add([]byte(`{"proof":[]}`))
	f.Add([]byte(`{"@context":"https://www.w3.org/ns/credentials/v2","proof":{"type":"DataIntegrityProof","cryptosuite":"eddsa-rdfc-2022","proofPurpose":"assertionMethod","verificationMethod":"did:key:x#x","proofValue":"z1"}}`))
	ctx := loader{}
	for k, v := range bundledContexts {
		ctx[k] = v
	}
	ex, err := os.ReadFile("testdata/vc-di-eddsa/examples-v2.jsonld")
	if err != nil {
		f.Fatal(err)
	}
	ctx["https://www.w3.org/ns/credentials/examples/v2"] = ex
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := verifyDataIntegrity(doc, didKeyResolver, ctx)
		if err == nil && p == nil {
			t.Fatal("no proof and no error")
		}
	})
}

// RDFC-1.0's canonicalization is costly on cyclic blank nodes ("poison"
// datasets): blank node identifiers are refused and objects bounded
// before any canonicalization.
func TestDataIntegrityRDFBounded(t *testing.T) {
	doc, err := os.ReadFile("testdata/vc-di-eddsa/signedDataInt.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx := vectorContexts(t)
	cyclic := strings.Replace(string(doc), `"id": "did:example:abcdefgh"`, `"id": "_:b0", "knows": {"id": "_:b1", "knows": {"id": "_:b0"}}`, 1)
	many := strings.Replace(string(doc), `"alumniOf": "The School of Examples"`, `"alumniOf": [`+strings.TrimSuffix(strings.Repeat(`{"name": "x"},`, maxRDFObjects), ",")+`]`, 1)
	for name, bad := range map[string]string{"blank node ids": cyclic, "too many objects": many} {
		if _, err := verifyDataIntegrity([]byte(bad), didKeyResolver, ctx); !errors.Is(err, ErrDataIntegrity) || errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: %v, want refused before canonicalization", name, err)
		}
	}
}
