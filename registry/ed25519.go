package registry

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// edVerifier checks EdDSA JWS signatures for go-jose (as its
// OpaqueVerifier) with curve25519-voi instead of crypto/ed25519: on the
// nodes' write path every node verifies every signature, and voi verifies
// in about half the time (BenchmarkEd25519Verify). go-jose still parses the
// JWS and builds the signing input; only the curve arithmetic changes.
//
// The acceptance rules are crypto/ed25519's exactly (voi's
// VerifyOptionsStdLib: cofactorless, canonical S, small-order and
// non-canonical A and R allowed), so a signature trustreg accepts is one
// any standard verifier accepts, and every node decides alike.
// FuzzEd25519MatchesStdlib checks the two agree.
type edVerifier ed25519.PublicKey

var edOptions = &voied.Options{Verify: voied.VerifyOptionsStdLib}

var errEdSignature = errors.New("ed25519 signature does not verify")

func (k edVerifier) VerifyPayload(payload, signature []byte, alg jose.SignatureAlgorithm) error {
	if alg != jose.EdDSA {
		return fmt.Errorf("algorithm %s cannot be used with an Ed25519 key", alg)
	}
	if len(k) != ed25519.PublicKeySize || !voied.VerifyWithOptions(voied.PublicKey(k), payload, signature, edOptions) {
		return errEdSignature
	}
	return nil
}

// joseKey is the verification key to hand go-jose for pub.
func joseKey(pub crypto.PublicKey) any {
	if k, ok := pub.(ed25519.PublicKey); ok {
		return edVerifier(k)
	}
	return pub
}
