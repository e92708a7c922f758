package record

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

// TestDIDKeyP256RoundTrip encodes P-256 keys of both parities of Y as
// did:key and parses them back to the same key.
func TestDIDKeyP256RoundTrip(t *testing.T) {
	seen := map[byte]bool{}
	for i := 0; i < 64 && len(seen) < 2; i++ {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		did, kid, err := DIDKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if kid != did+"#"+did[len("did:key:"):] {
			t.Fatalf("kid %q for %q", kid, did)
		}
		got, err := ParseDIDKey(did)
		if err != nil {
			t.Fatalf("ParseDIDKey(%q): %v", did, err)
		}
		pub, ok := got.(*ecdsa.PublicKey)
		if !ok || !pub.Equal(&priv.PublicKey) {
			t.Fatalf("ParseDIDKey(DIDKey(k)) = %v, want the key", got)
		}
		point, err := priv.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		seen[point[len(point)-1]&1] = true
	}
	if len(seen) < 2 {
		t.Fatal("64 keys without both parities of Y")
	}
}

// TestDIDKeyP256Vector parses the P-256 example of the did:key
// specification and encodes it back to the same identifier.
func TestDIDKeyP256Vector(t *testing.T) {
	const did = "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169"
	pub, err := ParseDIDKey(did)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		t.Fatalf("ParseDIDKey(%q) is a %T", did, pub)
	}
	again, _, err := DIDKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if again != did {
		t.Fatalf("DIDKey(ParseDIDKey(%q)) = %q", did, again)
	}
}
