package record

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// EdVerifier checks EdDSA JWS signatures for go-jose (as its
// OpaqueVerifier) with curve25519-voi instead of crypto/ed25519: on the
// nodes' write path every node verifies every signature, and voi verifies
// in about 60 % of the time (BenchmarkEd25519Verify), about 9 % of
// trustd's CPU per write (registry/DESIGN.md). go-jose still parses the
// JWS and builds the signing input; only the curve arithmetic changes.
//
// The acceptance rules are crypto/ed25519's exactly (voi's
// VerifyOptionsStdLib: cofactorless, canonical S, small-order and
// non-canonical A and R allowed), so a signature trustreg accepts is one
// any standard verifier accepts, and every node decides alike.
// FuzzEd25519MatchesStdlib checks the two agree.
//
// The key is held expanded: decompressed, checked and with its
// multiples precomputed (about 1.5 KiB), which takes a fifth off each
// verification. It is made once per signer and kept in the key cache
// (JoseKey). A key that does not decompress is kept as nil: nothing
// verifies against it, as crypto/ed25519 verifies nothing against it.
type EdVerifier struct {
	key *voied.ExpandedPublicKey
}

func newEdVerifier(pub ed25519.PublicKey) EdVerifier {
	if len(pub) != ed25519.PublicKeySize {
		return EdVerifier{}
	}
	k, err := voied.NewExpandedPublicKey(voied.PublicKey(pub))
	if err != nil {
		return EdVerifier{}
	}
	return EdVerifier{key: k}
}

var edOptions = &voied.Options{Verify: voied.VerifyOptionsStdLib}

var errEdSignature = errors.New("ed25519 signature does not verify")

// VerifyPayload implements jose.OpaqueVerifier.
func (v EdVerifier) VerifyPayload(payload, signature []byte, alg jose.SignatureAlgorithm) error {
	if alg != jose.EdDSA {
		return fmt.Errorf("algorithm %s cannot be used with an Ed25519 key", alg)
	}
	if v.key == nil || !voied.VerifyExpandedWithOptions(v.key, payload, signature, edOptions) {
		return errEdSignature
	}
	return nil
}

// JoseKey is the verification key to hand go-jose for pub. Callers keep
// it with the key (keyCache): for Ed25519 making it costs about a quarter
// of a verification.
func JoseKey(pub crypto.PublicKey) any {
	if k, ok := pub.(ed25519.PublicKey); ok {
		return newEdVerifier(k)
	}
	return pub
}
