package record

import (
	"bytes"

	jose "github.com/go-jose/go-jose/v4"
)

// CheckSignature checks signature i of p against key (as JoseKey returns
// it) and returns nil exactly when go-jose's Verify of p's JWS holding
// that signature alone does (the errors may differ).
//
// go-jose verifies the signing input it builds anew from the decoded
// header and payload (computeAuthData: the header's JSON parsed again, the
// payload encoded again): about 6 µs of the 48 µs a node's check of a
// signature took in a profile of a 64-client write run, and 25 of its 26
// allocations (BenchmarkVerifySignature). For the form every write of the
// benchmark takes (a compact JWS, one Ed25519 signature, no "crit" or
// "b64" header, the header and payload in their one canonical base64url
// encoding) that input is the serialization's own first two parts, and
// the signature is checked over them in place. Anything else goes through
// go-jose. FuzzVerifySignatureMatchesGoJose holds the two to the same
// answer. The fast path rests on go-jose building the signing input from
// the protected header's and payload's encodings, with "b64" the only
// member that changes it and "crit" the only one checked: an upgrade of
// go-jose that reads another member there needs this looked at again.
//
// An operation read in the plain compact form (parseCompact) holds no
// go-jose object that go-jose can verify. With an EdVerifier key the fast
// path always applies to that form (one signature, no "crit" or "b64",
// canonical parts); with any other key it is parsed again by go-jose
// first. Either way p.Raw is read again, so it must not change after the
// parse.
func (p *ParsedOperation) CheckSignature(i int, key any) error {
	trimmed := bytes.TrimSpace(p.Raw)
	obj := p.jws
	if _, ed := key.(EdVerifier); p.plain && !ed {
		var err error
		if obj, err = parseJWS(trimmed); err != nil {
			return Errorf(ErrMalformed, "JWS: %v", err) // cannot be: it parsed before
		}
	}
	return verifySignature(trimmed, obj, i, key)
}

// verifySignature is CheckSignature over trimmed, the JWS obj was
// parsed from.
func verifySignature(trimmed []byte, obj *jose.JSONWebSignature, i int, key any) error {
	sig := obj.Signatures[i]
	if input, ok := compactSigningInput(trimmed, obj, key); ok {
		return key.(EdVerifier).VerifyPayload(input, sig.Signature, jose.SignatureAlgorithm(sig.Protected.Algorithm))
	}
	one := *obj
	one.Signatures = []jose.Signature{sig}
	_, err := one.Verify(key)
	return err
}

// compactSigningInput returns the JWS signing input go-jose would verify
// obj's one signature over, read in place from trimmed, when the fast path
// applies: trimmed is a compact JWS, key an Ed25519 EdVerifier, the
// protected header names no "crit" or "b64" (go-jose reads both: the
// extensions it supports, and the payload unencoded), and the header's
// and payload's parts are canonical base64url (then encoding their
// decoded bytes anew, as go-jose does, gives the same text).
func compactSigningInput(trimmed []byte, obj *jose.JSONWebSignature, key any) ([]byte, bool) {
	if _, ok := key.(EdVerifier); !ok || len(obj.Signatures) != 1 || len(trimmed) == 0 || trimmed[0] == '{' {
		return nil, false
	}
	h := obj.Signatures[0].Protected
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, false
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, false
	}
	first := bytes.IndexByte(trimmed, '.')
	last := bytes.LastIndexByte(trimmed, '.')
	if first < 0 || first == last || bytes.IndexByte(trimmed[first+1:last], '.') >= 0 {
		return nil, false
	}
	if !canonicalBase64URL(trimmed[:first]) || !canonicalBase64URL(trimmed[first+1:last]) {
		return nil, false
	}
	return trimmed[:last], true
}

// canonicalBase64URL reports whether s is base64url without padding in
// the one encoding Go's RawURLEncoding writes for its decoded bytes: only
// the alphabet's characters, no length that leaves a lone character, and
// the unused low bits of the last character zero.
func canonicalBase64URL(s []byte) bool {
	var last byte
	for _, c := range s {
		v, ok := base64URLValue(c)
		if !ok {
			return false
		}
		last = v
	}
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return last&0x0f == 0 // 12 bits carry one byte
	case 3:
		return last&0x03 == 0 // 18 bits carry two bytes
	}
	return true
}

// base64URLValue returns the 6-bit value of a base64url character.
func base64URLValue(c byte) (byte, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A', true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26, true
	case c >= '0' && c <= '9':
		return c - '0' + 52, true
	case c == '-':
		return 62, true
	case c == '_':
		return 63, true
	}
	return 0, false
}
