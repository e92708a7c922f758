package record

import (
	"crypto/ed25519"
	"math/big"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// edCase is one (key, message, signature) triple, packed for the fuzzer.
func edCase(pub, msg, sig []byte) []byte {
	return append(append(append([]byte{}, pub...), sig...), msg...)
}

// nonCanonicalS adds the group order to S: the same point arithmetic, but
// crypto/ed25519 refuses S ≥ L.
func nonCanonicalS(sig []byte) []byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) *big.Int {
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(r)
	}
	s := new(big.Int).Add(le(sig[32:]), l)
	be := s.FillBytes(make([]byte, 32))
	out := append([]byte{}, sig[:32]...)
	for i := range 32 {
		out = append(out, be[31-i])
	}
	return out
}

// FuzzEd25519MatchesStdlib checks that the signature check nodes use
// accepts exactly what crypto/ed25519 accepts.
func FuzzEd25519MatchesStdlib(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := seed.Public().(ed25519.PublicKey)
	msg := []byte("eyJhbGciOiJFZERTQSJ9.eyJvcCI6ImFjY3JlZGl0In0")
	sig := ed25519.Sign(seed, msg)
	identity := make([]byte, 32)
	identity[0] = 1 // the neutral point: a small-order key
	f.Add(edCase(pub, msg, sig))
	f.Add(edCase(pub, msg[1:], sig))
	f.Add(edCase(pub, msg, nonCanonicalS(sig)))
	f.Add(edCase(identity, msg, append(append([]byte{}, identity...), make([]byte, 32)...)))
	f.Add(edCase(make([]byte, 32), msg, sig))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 96 {
			return
		}
		pub, sig, msg := ed25519.PublicKey(data[:32]), data[32:96], data[96:]
		want := ed25519.Verify(pub, msg, sig)
		got := newEdVerifier(pub).VerifyPayload(msg, sig, jose.EdDSA) == nil
		if got != want {
			t.Fatalf("key %x sig %x msg %q: crypto/ed25519 %v, trustreg %v", pub, sig, msg, want, got)
		}
	})
}

func TestEdVerifier(t *testing.T) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	msg := []byte("a.b")
	sig := ed25519.Sign(k, msg)
	v := newEdVerifier(k.Public().(ed25519.PublicKey))
	if err := v.VerifyPayload(msg, sig, jose.EdDSA); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	if err := v.VerifyPayload(msg, nonCanonicalS(sig), jose.EdDSA); err == nil {
		t.Fatal("a signature with S ≥ L verified (crypto/ed25519 refuses it)")
	}
	// crypto/ed25519 accepts the neutral point as key with R neutral, S 0.
	identity := make([]byte, 32)
	identity[0] = 1
	if err := newEdVerifier(identity).VerifyPayload(msg, append(append([]byte{}, identity...), make([]byte, 32)...), jose.EdDSA); err != nil {
		t.Fatalf("small-order key and R, as crypto/ed25519 accepts: %v", err)
	}
	if err := v.VerifyPayload(msg, sig, jose.ES256); err == nil {
		t.Fatal("an Ed25519 key verified an ES256 signature")
	}
	if err := newEdVerifier(k.Public().(ed25519.PublicKey)[:31]).VerifyPayload(msg, sig, jose.EdDSA); err == nil {
		t.Fatal("a short key verified a signature")
	}
}

// TestEdVerifierKeyOffTheCurve: a key that is no curve point verifies
// nothing, as with crypto/ed25519.
func TestEdVerifierKeyOffTheCurve(t *testing.T) {
	msg := []byte("a.b")
	for y := range 256 {
		pub := make([]byte, 32)
		pub[0] = byte(y)
		if _, err := voied.NewExpandedPublicKey(pub); err == nil {
			continue
		}
		sig := append(append([]byte{}, pub...), make([]byte, 32)...)
		if ed25519.Verify(pub, msg, sig) {
			t.Fatalf("crypto/ed25519 accepted key %x off the curve", pub)
		}
		if newEdVerifier(pub).key != nil || newEdVerifier(pub).VerifyPayload(msg, sig, jose.EdDSA) == nil {
			t.Fatalf("key %x off the curve was kept or verified a signature", pub)
		}
		return
	}
	t.Fatal("no y in 0..255 is off the curve: the test needs another candidate")
}

// BenchmarkEd25519Verify compares the verifier nodes use with
// crypto/ed25519 and with voi's verification from the 32-byte key, on a
// signature of an operation's size. "trustreg" is a signer the key cache
// holds; "trustreg-new-key" also expands the key, as for a signer's first
// operation.
func BenchmarkEd25519Verify(b *testing.B) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := k.Public().(ed25519.PublicKey)
	msg := make([]byte, 600)
	sig := ed25519.Sign(k, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("voi-unexpanded", func(b *testing.B) {
		for b.Loop() {
			if !voied.VerifyWithOptions(voied.PublicKey(pub), msg, sig, edOptions) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("trustreg", func(b *testing.B) {
		v := newEdVerifier(pub)
		for b.Loop() {
			if v.VerifyPayload(msg, sig, jose.EdDSA) != nil {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("trustreg-new-key", func(b *testing.B) {
		for b.Loop() {
			if newEdVerifier(pub).VerifyPayload(msg, sig, jose.EdDSA) != nil {
				b.Fatal("does not verify")
			}
		}
	})
}
