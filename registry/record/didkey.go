package record

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/multiformats/go-multibase"
	"github.com/multiformats/go-varint"
)

// Multicodec codes of the public keys a did:key may carry.
const (
	codecEd25519Pub = 0xed
	codecP256Pub    = 0x1200
)

// ParseDIDKey returns the public key a did:key identifier carries. Ed25519
// and P-256 keys are supported; anything else is an error.
func ParseDIDKey(did string) (crypto.PublicKey, error) {
	id, ok := strings.CutPrefix(did, "did:key:")
	if !ok {
		return nil, fmt.Errorf("%q is not a did:key", did)
	}
	enc, data, err := multibase.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("did:key %q: %w", did, err)
	}
	if enc != multibase.Base58BTC {
		return nil, fmt.Errorf("did:key %q: multibase must be base58btc (z)", did)
	}
	code, n, err := varint.FromUvarint(data)
	if err != nil {
		return nil, fmt.Errorf("did:key %q: %w", did, err)
	}
	raw := data[n:]
	switch code {
	case codecEd25519Pub:
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("did:key %q: Ed25519 key is %d bytes, want %d", did, len(raw), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(append([]byte(nil), raw...)), nil
	case codecP256Pub:
		x, y := elliptic.UnmarshalCompressed(elliptic.P256(), raw)
		if x == nil {
			return nil, fmt.Errorf("did:key %q: not a compressed P-256 point", did)
		}
		// The point in its uncompressed encoding, 0x04 || X || Y.
		var point [1 + 2*p256CoordSize]byte
		point[0] = 4
		x.FillBytes(point[1 : 1+p256CoordSize])
		y.FillBytes(point[1+p256CoordSize:])
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
		if err != nil {
			return nil, fmt.Errorf("did:key %q: %w", did, err)
		}
		return pub, nil
	default:
		return nil, fmt.Errorf("did:key %q: unsupported key type 0x%x (want Ed25519 or P-256)", did, code)
	}
}

// DIDKey returns the did:key identifier of an Ed25519 or P-256 public key,
// and the key id (DID URL) that names its verification method.
func DIDKey(pub crypto.PublicKey) (did, kid string, err error) {
	var code uint64
	var raw []byte
	switch k := pub.(type) {
	case ed25519.PublicKey:
		code, raw = codecEd25519Pub, k
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", "", fmt.Errorf("did:key: only P-256 ECDSA keys are supported")
		}
		// did:key carries the compressed point: 0x02, or 0x03 when Y is
		// odd, then X.
		point, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			return "", "", fmt.Errorf("did:key: %w", err)
		}
		compressed := make([]byte, 1+p256CoordSize)
		compressed[0] = 2 | point[2*p256CoordSize]&1
		copy(compressed[1:], point[1:1+p256CoordSize])
		code, raw = codecP256Pub, compressed
	default:
		return "", "", fmt.Errorf("did:key: unsupported key type %T", pub)
	}
	data := append(varint.ToUvarint(code), raw...)
	id, err := multibase.Encode(multibase.Base58BTC, data)
	if err != nil {
		return "", "", err
	}
	return "did:key:" + id, "did:key:" + id + "#" + id, nil
}

// PublicJWK returns the JWK of a did:key's own key, named by its DID URL.
func PublicJWK(pub crypto.PublicKey, did string) (json.RawMessage, error) {
	_, kid, err := DIDKey(pub)
	if err != nil {
		return nil, err
	}
	alg := "EdDSA"
	if _, ok := pub.(*ecdsa.PublicKey); ok {
		alg = "ES256"
	}
	k := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
	return k.MarshalJSON()
}

// p256CoordSize is the size in bytes of a P-256 coordinate.
const p256CoordSize = 32
