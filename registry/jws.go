package registry

import (
	"crypto/sha256"
	"encoding/base64"
)

// signatureKey is the key of one signature's bytes in the table of
// signatures (tableSigs), which operations applied below
// FeatureLevelSignedContent are found by.
func signatureKey(sig []byte) []byte {
	h := sha256.Sum256(sig)
	return key(tableSigs, string(h[:]))
}

// signedContentKey is the key of what one signature signed (a digest from
// ParsedOperation.signed) in tableSignedContent.
func signedContentKey(d [32]byte) []byte { return key(tableSignedContent, string(d[:])) }

// governancePayloadKey is the key, in tableSignedContent, of the payload
// of an operation accepted with governance signatures (M of N members):
// governance is the signer, whichever members signed. Its digest is the
// SHA-256 of BASE64URL(payload), which holds no "." and so is never a
// signing input's.
func governancePayloadKey(payload []byte) []byte {
	enc := make([]byte, base64.RawURLEncoding.EncodedLen(len(payload)))
	base64.RawURLEncoding.Encode(enc, payload)
	d := sha256.Sum256(enc)
	return key(tableSignedContent, string(d[:]))
}

// signatureDigest is the part of a signature or signed-content key the
// signature filter holds.
func signatureDigest(k []byte) []byte { return k[1:] }
