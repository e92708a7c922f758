package record

import (
	"bytes"
	"encoding/base64"

	jose "github.com/go-jose/go-jose/v4"
)

// The plain compact form of an operation (parseCompact).
//
// go-jose's ParseSignedCompact took 45 % of an operation's parse
// (BenchmarkParseOperation: about 8.5 of 18.8 µs and most of its 112
// allocations), nearly all of it reading the protected header through its
// JSON decoder twice (into a map of raw members, then each member into its
// field). Every node parses every write, so that cost is paid three or
// four times a write in a cluster. The headers trustctl's signer writes
// are one plain form: "alg", "kid" and an optional "typ", string values
// of printable ASCII with no escapes, no white space. parseCompact reads
// exactly that form itself and builds the headers go-jose would; anything
// else (another member, an escape, white space, a repeated member, a part
// that is not canonical base64url) is left to go-jose, as before.
// FuzzParseCompactMatchesGoJose and FuzzParseOperationPlainMatchesGoJose
// hold the two to the same result.

// The protected-header members plainHeader reads, as bits of a set;
// go-jose's sanitized header keeps "alg" and "kid" in their fields and
// "typ" among ExtraHeaders.
const (
	memberAlg = 1 << iota
	memberKid
	memberTyp
)

// parseCompact parses trimmed when it is a compact JWS in the plain form
// above, and returns the signatures go-jose's ParseSignedCompact would
// (exported fields only: the object is not go-jose's and cannot be
// verified by it), the decoded payload, and the length of the signing
// input (trimmed[:input]: the header and payload parts are canonical, so
// they are what go-jose signs and verifies over). ok is false for any
// other input, which the caller gives to go-jose.
func parseCompact(trimmed []byte) (sigs []jose.Signature, payload []byte, input int, ok bool) {
	if len(trimmed) == 0 || trimmed[0] == '{' {
		return nil, nil, 0, false
	}
	// Exactly two dots: the header, payload and signature parts.
	first := bytes.IndexByte(trimmed, '.')
	if first < 0 {
		return nil, nil, 0, false
	}
	second := bytes.IndexByte(trimmed[first+1:], '.')
	if second < 0 {
		return nil, nil, 0, false
	}
	last := first + 1 + second
	if bytes.IndexByte(trimmed[last+1:], '.') >= 0 {
		return nil, nil, 0, false
	}
	hpart, ppart, spart := trimmed[:first], trimmed[first+1:last], trimmed[last+1:]
	if len(ppart) == 0 || !canonicalBase64URL(hpart) || !canonicalBase64URL(ppart) {
		return nil, nil, 0, false
	}
	enc := base64.RawURLEncoding
	var scratch [512]byte
	if enc.DecodedLen(len(hpart)) > len(scratch) {
		return nil, nil, 0, false
	}
	n, err := enc.Decode(scratch[:], hpart)
	if err != nil {
		return nil, nil, 0, false
	}
	h, ok := plainHeader(scratch[:n])
	if !ok {
		return nil, nil, 0, false
	}
	// The payload and the signature as go-jose decodes them; the
	// signature's part need not be canonical, go-jose decodes it alone.
	payload, err = enc.DecodeString(string(ppart))
	if err != nil {
		return nil, nil, 0, false
	}
	sig, err := enc.DecodeString(string(spart))
	if err != nil {
		return nil, nil, 0, false
	}
	// go-jose sanitizes the merged and the protected header apart: two
	// headers equal in value, each with its own ExtraHeaders.
	merged, protected := h, h
	if h.ExtraHeaders != nil {
		protected.ExtraHeaders = map[jose.HeaderKey]any{"typ": h.ExtraHeaders["typ"]}
	}
	return []jose.Signature{{Header: merged, Protected: protected, Signature: sig}}, payload, last, true
}

// plainHeader reads a protected header in the plain form: an object of
// "alg" (an accepted algorithm), "kid" and optionally "typ", each once,
// in any order, each a string of printable ASCII other than '"' and '\',
// with no white space anywhere.
func plainHeader(b []byte) (h jose.Header, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return h, false
	}
	b = b[1 : len(b)-1]
	var seen int
	for len(b) > 0 {
		name, rest, ok := plainString(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return h, false
		}
		value, rest, ok := plainString(rest[1:])
		if !ok {
			return h, false
		}
		var m int
		switch string(name) {
		case "alg":
			m = memberAlg
			h.Algorithm = string(value)
		case "kid":
			m = memberKid
			h.KeyID = string(value)
		case "typ":
			m = memberTyp
			h.ExtraHeaders = map[jose.HeaderKey]any{"typ": string(value)}
		default:
			return h, false
		}
		if seen&m != 0 {
			return h, false
		}
		seen |= m
		if len(rest) > 0 {
			if rest[0] != ',' || len(rest) == 1 {
				return h, false
			}
			rest = rest[1:]
		}
		b = rest
	}
	if seen&memberAlg == 0 || seen&memberKid == 0 {
		return h, false
	}
	for _, alg := range AcceptedAlgs {
		if h.Algorithm == string(alg) {
			return h, true
		}
	}
	return h, false
}

// plainString reads a JSON string of printable ASCII with no escapes at
// the start of b and returns its contents and what follows it.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, nil, false
		}
	}
	return nil, nil, false
}
