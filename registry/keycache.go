package registry

import (
	"crypto"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// keyCache remembers public keys parsed from their encodings: a did:key
// identifier, or the JSON of a registered JWK. Parsing is a pure function
// of those bytes and costs about 10 µs for a P-256 key (the point is
// decompressed or checked to be on the curve) and as much for any JWK's
// JSON, against 50–150 µs for the signature check it serves; the same few
// signers sign most operations. Which key a kid names is still looked up
// in the state every time: a rotated key is simply no longer asked for.
//
// The two encodings cannot collide: a did:key starts with "did:key:", a
// JWK with "{". Parse errors are not remembered.
type keyCache struct {
	lru *lru.Cache[string, parsedKey]
}

type parsedKey struct {
	kid  string // the JWK's kid; empty for a did:key
	pub  crypto.PublicKey
	jose any // what go-jose verifies with: joseKey(pub)
}

func newParsedKey(kid string, pub crypto.PublicKey) parsedKey {
	return parsedKey{kid: kid, pub: pub, jose: record.JoseKey(pub)}
}

// keyCacheSize bounds the signers remembered: up to about 2 KiB each (an
// Ed25519 key is kept expanded for verification, edVerifier).
const keyCacheSize = 4096

func newKeyCache() *keyCache {
	c, _ := lru.New[string, parsedKey](keyCacheSize)
	return &keyCache{lru: c}
}

// didKey returns the key a did:key carries (ParseDIDKey, remembered).
func (c *keyCache) didKey(did string) (parsedKey, error) {
	if k, ok := c.lru.Get(did); ok {
		return k, nil
	}
	pub, err := record.ParseDIDKey(did)
	if err != nil {
		return parsedKey{}, err
	}
	k := newParsedKey("", pub)
	c.lru.Add(did, k)
	return k, nil
}

// jwk returns the kid and key of a registered public JWK (ParsePublicJWK,
// remembered).
func (c *keyCache) jwk(raw []byte) (parsedKey, error) {
	if k, ok := c.lru.Get(string(raw)); ok {
		return k, nil
	}
	j, err := record.ParsePublicJWK(raw)
	if err != nil {
		return parsedKey{}, err
	}
	k := newParsedKey(j.KeyID, j.Key)
	c.lru.Add(string(raw), k)
	return k, nil
}
