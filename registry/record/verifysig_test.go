package record

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// fuzzSigKey is the Ed25519 key the fuzzer's signatures are made with.
var fuzzSigKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// Flags of a signature case (FuzzVerifySignatureMatchesGoJose).
const (
	sigHeaderBits  = 1 << iota // set an unused low bit of the header part's last character
	sigPayloadBits             // the same in the payload part
	sigOverText                // sign the parts as sent, not their canonical encoding
	sigRawPayload              // sign the payload itself, as an unencoded ("b64": false) JWS
	sigFlip                    // flip a bit of the signature
	sigOtherKey                // verify against another Ed25519 key
	sigLineBreak               // put a line break in the payload part (Go's decoder skips it)
)

// setLowBit sets the lowest unused bit of the last character of s, a
// base64url part with no padding, if it has one.
func setLowBit(s string) string {
	if len(s)%4 == 0 || len(s) == 0 {
		return s
	}
	v, _ := base64URLValue(s[len(s)-1])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return s[:len(s)-1] + string(alphabet[v|1])
}

// spoilParts returns the header and payload parts of a compact JWS with
// an unused low bit of each set and a line break in the payload part, as
// asked: other encodings of the same bytes.
func spoilParts(h, p string, headerBits, payloadBits, lineBreak bool) (string, string) {
	if headerBits {
		h = setLowBit(h)
	}
	if payloadBits {
		p = setLowBit(p)
	}
	if lineBreak && len(p) > 2 {
		p = p[:2] + "\n" + p[2:]
	}
	return h, p
}

// signatureCase builds a compact JWS of header and payload with an
// Ed25519 signature made as flags say, and the key to verify it with.
func signatureCase(header, payload []byte, flags byte) (string, any) {
	enc := base64.RawURLEncoding
	h, p := enc.EncodeToString(header), enc.EncodeToString(payload)
	input := h + "." + p
	if flags&sigRawPayload != 0 {
		input = h + "." + string(payload)
	}
	h, p = spoilParts(h, p, flags&sigHeaderBits != 0, flags&sigPayloadBits != 0, flags&sigLineBreak != 0)
	if flags&sigOverText != 0 {
		input = h + "." + p
	}
	sig := ed25519.Sign(fuzzSigKey, []byte(input))
	if flags&sigFlip != 0 {
		sig[len(payload)%len(sig)] ^= 0x10
	}
	key := JoseKey(fuzzSigKey.Public())
	if flags&sigOtherKey != 0 {
		key = JoseKey(ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 1)).Public())
	}
	return h + "." + p + "." + enc.EncodeToString(sig), key
}

// agreesWithGoJose parses compact and checks that verifySignature and
// go-jose's Verify give the same answer; it reports whether go-jose
// parsed it and whether the signature verified.
func agreesWithGoJose(t *testing.T, compact string, key any) (parsed, verified bool) {
	t.Helper()
	obj, err := jose.ParseSignedCompact(compact, AcceptedAlgs)
	if err != nil {
		return false, false
	}
	_, want := obj.Verify(key)
	got := verifySignature([]byte(compact), obj, 0, key)
	if (got == nil) != (want == nil) {
		t.Fatalf("%q: verifySignature says %v, go-jose %v", compact, got, want)
	}
	return true, want == nil
}

// sigHeaders are protected headers the seeds sign under: plain, with
// another member, with the extensions go-jose reads (in the clear and as
// escaped names), with them null, and with an unsupported critical one.
var sigHeaders = []string{
	`{"alg":"EdDSA","kid":"did:key:z6Mk#z6Mk"}`,
	`{"alg":"EdDSA","kid":"did:key:z6Mk#z6Mk","typ":"JWT"}`,
	`{"alg":"EdDSA","kid":"k","b64":false,"crit":["b64"]}`,
	`{"alg":"EdDSA","kid":"k","b64":true,"crit":["b64"]}`,
	`{"alg":"EdDSA","kid":"k","b64":false}`,
	`{"alg":"EdDSA","kid":"k","\u0062\u0036\u0034":false,"\u0063rit":["b64"]}`,
	`{"alg":"EdDSA","kid":"k","b64":null,"crit":null}`,
	`{"alg":"EdDSA","kid":"k","crit":["exp"],"exp":1}`,
	`{"alg":"EdDSA","kid":"k","b64":"no"}`,
	`{"alg":"ES256","kid":"k"}`,
	`{"alg":"EdDSA","kid":"k","b64":false,"b64":true}`,
}

// FuzzVerifySignatureMatchesGoJose checks that VerifySignature's fast
// path gives go-jose's answer for every compact JWS: canonical and other
// encodings of the same bytes, signatures over either, unencoded payloads
// and the headers that ask for them, and bad signatures and keys.
func FuzzVerifySignatureMatchesGoJose(f *testing.F) {
	for _, h := range sigHeaders {
		for _, payload := range []string{`{"op":"accredit"}`, `{"a":1}x`, `ab`, ``} {
			for flags := range byte(1 << 7) {
				f.Add([]byte(h), []byte(payload), flags)
			}
		}
	}
	f.Fuzz(func(t *testing.T, header, payload []byte, flags byte) {
		compact, key := signatureCase(header, payload, flags)
		agreesWithGoJose(t, compact, key)
	})
}

// TestVerifySignatureCases: the seeds' answers are the ones a JWS reader
// expects, so the fuzzer's reference is not vacuous: a plain signature over
// the canonical parts verifies, by either path; one over other encodings
// of the same bytes does not (go-jose signs and checks the canonical
// ones); an unencoded payload verifies under "b64": false; a flipped bit,
// another key or an ECDSA key does not.
func TestVerifySignatureCases(t *testing.T) {
	plain := []byte(sigHeaders[0])
	payload := []byte(`{"op":"accredit","n":1}`)
	for _, c := range []struct {
		name   string
		header []byte
		flags  byte
		want   bool
		fast   bool // the fast path reads it
	}{
		{"canonical", plain, 0, true, true},
		{"canonical with typ", []byte(sigHeaders[1]), 0, true, true},
		{"header bits set, signed as canonical", plain, sigHeaderBits, true, false},
		{"payload bits set, signed as canonical", plain, sigPayloadBits, true, false},
		{"payload bits set, signed as sent", plain, sigPayloadBits | sigOverText, false, false},
		{"line break in the payload, signed as sent", plain, sigLineBreak | sigOverText, false, false},
		{"unencoded payload under b64 false and crit", []byte(sigHeaders[2]), sigRawPayload, true, false},
		// go-jose honours "b64" without "crit" too (RFC 7797 asks for both).
		{"unencoded payload, b64 false without crit", []byte(sigHeaders[4]), sigRawPayload, true, false},
		{"escaped b64 and crit names", []byte(sigHeaders[5]), sigRawPayload, true, false},
		{"null b64 and crit", []byte(sigHeaders[6]), 0, true, true},
		{"flipped bit", plain, sigFlip, false, true},
		{"another key", plain, sigOtherKey, false, true},
	} {
		compact, key := signatureCase(c.header, payload, c.flags)
		parsed, verified := agreesWithGoJose(t, compact, key)
		if !parsed || verified != c.want {
			t.Errorf("%s: parsed %t, verified %t; want verified %t", c.name, parsed, verified, c.want)
		}
		obj, err := jose.ParseSignedCompact(compact, AcceptedAlgs)
		if err != nil {
			continue
		}
		if _, fast := compactSigningInput([]byte(compact), obj, key); fast != c.fast {
			t.Errorf("%s: the fast path reads it: %t, want %t", c.name, fast, c.fast)
		}
	}
	// An ECDSA key is go-jose's to check, whatever the header.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := signatureCase(plain, payload, 0)
	obj, err := jose.ParseSignedCompact(compact, AcceptedAlgs)
	if err != nil {
		t.Fatal(err)
	}
	if _, fast := compactSigningInput([]byte(compact), obj, JoseKey(&ec.PublicKey)); fast {
		t.Error("the fast path took an ECDSA key")
	}
	if err := verifySignature([]byte(compact), obj, 0, JoseKey(&ec.PublicKey)); err == nil {
		t.Error("an Ed25519 signature verified against an ECDSA key")
	}
}

// TestCanonicalBase64URL checks the canonical test against encoding the
// decoded bytes anew, for every string of up to three characters of an
// alphabet with characters outside base64url.
func TestCanonicalBase64URL(t *testing.T) {
	const chars = "AQgw_-9z+/=\n. "
	enc := base64.RawURLEncoding
	var each func(prefix string, n int)
	each = func(prefix string, n int) {
		b, err := enc.DecodeString(prefix)
		want := err == nil && enc.EncodeToString(b) == prefix
		if got := canonicalBase64URL([]byte(prefix)); got != want {
			t.Errorf("canonicalBase64URL(%q) = %t, want %t", prefix, got, want)
		}
		if n == 0 {
			return
		}
		for i := range len(chars) {
			each(prefix+chars[i:i+1], n-1)
		}
	}
	each("", 4)
}

// BenchmarkVerifySignature is a signature check by each path.
func BenchmarkVerifySignature(b *testing.B) {
	payload := []byte(`{"op":"accredit","framework":"https://bench.example/frameworks/health","accreditor":"did:web:sub-agency-1.bench.example","subject":"did:web:college-1.bench.example","action":"issue","resources":["https://bench.example/credentials/Nursing"],"parent":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy","validFrom":"2022-01-01T00:00:00Z","iat":1764979200}`)
	compact, key := signatureCase([]byte(sigHeaders[0]), payload, 0)
	obj, err := jose.ParseSignedCompact(compact, AcceptedAlgs)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if err := verifySignature([]byte(compact), obj, 0, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-jose", func(b *testing.B) {
		for b.Loop() {
			if _, err := obj.Verify(key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
