package record

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"reflect"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// plainHeaders are protected headers in the plain form parseCompact reads
// and beside them ones it must leave to go-jose: white space, an escape,
// a repeated or unknown member, a non-string value, an unaccepted
// algorithm, a missing kid, bytes beyond printable ASCII, and no object.
var plainHeaders = []string{
	`{"alg":"EdDSA","kid":"did:key:z6Mk#z6Mk"}`,
	`{"alg":"EdDSA","kid":"did:key:z6Mk#z6Mk","typ":"trustreg-op+jws"}`,
	`{"typ":"JWT","kid":"k#1","alg":"ES256"}`,
	`{"kid":"","alg":"EdDSA"}`,
	`{"alg":"EdDSA", "kid":"k#1"}`,
	`{"alg":"EdDSA","kid":"k\u00231"}`,
	`{"alg":"EdDSA","kid":"k#1","kid":"k#2"}`,
	`{"alg":"EdDSA","kid":"k#1","cty":"x"}`,
	`{"alg":"EdDSA","kid":"k#1","typ":1}`,
	`{"alg":"RS256","kid":"k#1"}`,
	`{"alg":"EdDSA"}`,
	"{\"alg\":\"EdDSA\",\"kid\":\"k#\xc3\xa9\"}",
	`{"alg":"EdDSA","kid":"k#1",}`,
	`{"alg":"EdDSA","kid":"k#1"`,
	`["alg","EdDSA"]`,
	`{"alg":"EdDSA","kid":"k#1","b64":false,"crit":["b64"]}`,
}

// Flags of a compact case (FuzzParseCompactMatchesGoJose).
const (
	compactHeaderBits  = 1 << iota // an unused low bit set in the header part
	compactPayloadBits             // the same in the payload part
	compactSigBits                 // the same in the signature part
	compactLineBreak               // a line break in the payload part
	compactExtraDot                // a fourth part
	compactPadding                 // padding on the header part
)

// compactCase encodes header, payload and sig as a compact JWS, spoilt as
// flags say.
func compactCase(header, payload, sig []byte, flags byte) string {
	enc := base64.RawURLEncoding
	h, p, s := enc.EncodeToString(header), enc.EncodeToString(payload), enc.EncodeToString(sig)
	h, p = spoilParts(h, p, flags&compactHeaderBits != 0, flags&compactPayloadBits != 0, flags&compactLineBreak != 0)
	if flags&compactSigBits != 0 {
		s = setLowBit(s)
	}
	if flags&compactPadding != 0 {
		h += "="
	}
	c := h + "." + p + "." + s
	if flags&compactExtraDot != 0 {
		c += ".x"
	}
	return c
}

// sameSignatures reports how got, parseCompact's signatures, differ from
// go-jose's in what go-jose exports; "" when they do not.
func sameSignatures(got, want []jose.Signature) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d signatures, go-jose %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		for _, h := range []struct {
			name      string
			got, want jose.Header
		}{{"header", g.Header, w.Header}, {"protected", g.Protected, w.Protected}, {"unprotected", g.Unprotected, w.Unprotected}} {
			if !reflect.DeepEqual(h.got, h.want) {
				return fmt.Sprintf("signature %d %s %+v, go-jose %+v", i, h.name, h.got, h.want)
			}
		}
		if !bytes.Equal(g.Signature, w.Signature) {
			return fmt.Sprintf("signature %d bytes differ", i)
		}
	}
	return ""
}

// FuzzParseCompactMatchesGoJose: whatever parseCompact reads, go-jose
// reads too, to the same exported headers and signature bytes and the
// same payload, and its signing input is the one go-jose's bytes give
// (signedContent). It reads only what go-jose reads.
func FuzzParseCompactMatchesGoJose(f *testing.F) {
	for _, h := range plainHeaders {
		for _, payload := range []string{`{"op":"accredit"}`, `ab`, ``} {
			for flags := range byte(1 << 6) {
				f.Add([]byte(h), []byte(payload), []byte("sig-bytes"), flags)
			}
		}
	}
	f.Fuzz(func(t *testing.T, header, payload, sig []byte, flags byte) {
		compact := compactCase(header, payload, sig, flags)
		sigs, gotPayload, input, ok := parseCompact([]byte(compact))
		obj, err := jose.ParseSignedCompact(compact, AcceptedAlgs)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("%q: parseCompact read it, go-jose: %v", compact, err)
		}
		if d := sameSignatures(sigs, obj.Signatures); d != "" {
			t.Fatalf("%q: %s", compact, d)
		}
		if !bytes.Equal(gotPayload, obj.UnsafePayloadWithoutVerification()) {
			t.Fatalf("%q: payload %q, go-jose %q", compact, gotPayload, obj.UnsafePayloadWithoutVerification())
		}
		want, _, err := signedContent([]byte(compact), obj, obj.UnsafePayloadWithoutVerification())
		if err != nil || len(want) != 1 || sha256.Sum256([]byte(compact[:input])) != want[0] {
			t.Fatalf("%q: signing input %q is not what go-jose signs (%v)", compact, compact[:input], err)
		}
	})
}

// sameParse reports how two parses of one operation differ; "" when they
// do not.
func sameParse(got, want *ParsedOperation, gotErr, wantErr error) string {
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		return fmt.Sprintf("error %v, go-jose's parse %v", gotErr, wantErr)
	}
	if gotErr != nil {
		return ""
	}
	if d := sameSignatures(got.Signatures(), want.Signatures()); d != "" {
		return d
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"raw", got.Raw, want.Raw}, {"cid", got.CID, want.CID}, {"payload", got.Payload, want.Payload},
		{"op", got.Op, want.Op}, {"iat", got.IAT, want.IAT}, {"body", got.Body, want.Body},
		{"signed content", got.signed, want.signed},
		{"strict error", fmt.Sprint(got.strictErr), fmt.Sprint(want.strictErr)},
		{"number error", fmt.Sprint(got.numberErr), fmt.Sprint(want.numberErr)},
		{"exact number error", fmt.Sprint(got.exactNumberErr), fmt.Sprint(want.exactNumberErr)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			return fmt.Sprintf("%s %v, go-jose's parse %v", c.name, c.got, c.want)
		}
	}
	return ""
}

// agreeOnOperation parses raw with and without the plain form and checks
// that the two agree, and that CheckSignature against key agrees too; it
// reports whether the plain form was read.
func agreeOnOperation(t *testing.T, raw []byte, key any) (plain bool) {
	t.Helper()
	d := sha256.Sum256(raw)
	got, gotErr := parseOperation(raw, d, true)
	want, wantErr := parseOperation(raw, d, false)
	if diff := sameParse(got, want, gotErr, wantErr); diff != "" {
		t.Fatalf("%q: %s", raw, diff)
	}
	if gotErr != nil {
		return false
	}
	g, w := got.CheckSignature(0, key), want.CheckSignature(0, key)
	if (g == nil) != (w == nil) {
		t.Fatalf("%q: CheckSignature %v, over go-jose's parse %v", raw, g, w)
	}
	return got.plain
}

// FuzzParseOperationPlainMatchesGoJose: an operation parses to the same
// ParsedOperation, errors and signature answers with the plain form read
// as without it, whatever its payload, header and encoding.
func FuzzParseOperationPlainMatchesGoJose(f *testing.F) {
	payloads := []string{
		`{"op":"accredit","iat":1700000000,"framework":"https://f.example","accreditor":"did:web:a.example","subject":"did:web:s.example","action":"issue","resources":["https://f.example/Degree"],"validFrom":"2022-01-01T00:00:00Z"}`,
		`{"op":"accredit","iat":1e400}`,
		`{"op":"nothing"}`,
		`{"iss":"did:key:z","sub":"did:web:a","iat":1,"vc":{"type":["VerifiableCredential","VerifiableAccreditationToAttest"],"issuer":"did:key:z","credentialSubject":{"id":"did:web:a","accreditedFor":[{"schemaId":"https://s","types":["VerifiableCredential","https://t"]}]},"termsOfUse":[{"id":"bafkreictz47figfblkneikbfs4jqqkiv5a6ug2dh6bkrbafy4tonzsey4q","type":"IssuanceCertificate"}]}}`,
		`{"a":1}x`,
		``,
	}
	for _, h := range append(plainHeaders[:4:4], sigHeaders...) {
		for _, p := range payloads {
			for _, flags := range []byte{0, sigHeaderBits, sigPayloadBits, sigFlip, sigOtherKey, sigLineBreak} {
				f.Add([]byte(h), []byte(p), flags)
			}
		}
	}
	for _, p := range payloads[:2] {
		for _, flags := range []byte{sigES256, sigES256 | sigFlip, sigES256 | sigOtherKey, sigES256 | sigPayloadBits} {
			f.Add([]byte(`{"alg":"ES256","kid":"did:key:zDn#zDn","typ":"trustreg-op+jws"}`), []byte(p), flags)
		}
	}
	f.Fuzz(func(t *testing.T, header, payload []byte, flags byte) {
		compact, key := signatureCase(header, payload, flags)
		if flags&sigES256 != 0 {
			compact, key = es256Case(t, header, payload, flags)
		}
		agreeOnOperation(t, []byte(compact), key)
	})
}

// sigES256 makes a signature case ES256 (es256Case).
const sigES256 = 1 << 7

// fuzzES256Key is a fixed P-256 key, so a failing input is one again.
var fuzzES256Key = func() *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	return k
}()

// es256Case builds a compact JWS of header and payload with an ES256
// signature over the canonical parts: its high-s twin under sigFlip; the
// payload part spoilt under sigPayloadBits; verified against the Ed25519
// key under sigOtherKey, else against the P-256 key.
func es256Case(t *testing.T, header, payload []byte, flags byte) (string, any) {
	enc := base64.RawURLEncoding
	h, p := enc.EncodeToString(header), enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(h + "." + p))
	r, s, err := ecdsa.Sign(rand.Reader, fuzzES256Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, es256Size)
	r.FillBytes(sig[:es256Size/2])
	s.FillBytes(sig[es256Size/2:])
	if HighS(sig) != (flags&sigFlip != 0) {
		sig = LowSTwin(sig)
	}
	_, p = spoilParts(h, p, false, flags&sigPayloadBits != 0, false)
	var key any = &fuzzES256Key.PublicKey
	if flags&sigOtherKey != 0 {
		key = JoseKey(fuzzSigKey.Public())
	}
	return h + "." + p + "." + enc.EncodeToString(sig), key
}

// TestPlainFormIsRead: operations as trustctl signs them, Ed25519 and
// ES256, are read in the plain form, verify through it, and a flipped
// signature bit does not; so the fuzz targets above compare the form
// every write takes, not only the inputs that fall back.
func TestPlainFormIsRead(t *testing.T) {
	payload := []byte(`{"op":"accredit","iat":1700000000,"framework":"https://f.example","accreditor":"did:web:a.example","subject":"did:web:s.example","action":"issue","resources":["https://f.example/Degree"],"validFrom":"2022-01-01T00:00:00Z"}`)
	for _, kind := range []string{KeyEd25519, KeyP256} {
		s := mustKey(t, kind)
		raw := mustSignRaw(t, s, payload)
		key := JoseKey(s.key.Public())
		if !agreeOnOperation(t, raw, key) {
			t.Fatalf("%s: trustctl's operation was not read in the plain form", kind)
		}
		op, err := ParseOperationDigest(raw, sha256.Sum256(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := op.CheckSignature(0, key); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		bad := bytes.Clone(raw)
		if c := &bad[len(bad)-3]; *c == 'A' { // another signature character
			*c = 'B'
		} else {
			*c = 'A'
		}
		if !agreeOnOperation(t, bad, key) {
			t.Fatalf("%s: the spoilt operation was not read in the plain form", kind)
		}
		op, _ = ParseOperationDigest(bad, sha256.Sum256(bad))
		if op.CheckSignature(0, key) == nil {
			t.Fatalf("%s: a changed signature verifies", kind)
		}
	}
	// The fuzz target's ES256 cases are what they say: one verifies, its
	// high-s twin breaks the strict rules, another key refuses it.
	header := []byte(`{"alg":"ES256","kid":"did:key:zDn#zDn"}`)
	for _, c := range []struct {
		flags            byte
		verifies, strict bool
	}{{0, true, false}, {sigFlip, true, true}, {sigOtherKey, false, false}} {
		compact, key := es256Case(t, header, payload, c.flags)
		if !agreeOnOperation(t, []byte(compact), key) {
			t.Fatalf("ES256 case %#x was not read in the plain form", c.flags)
		}
		op, err := ParseOperationDigest([]byte(compact), sha256.Sum256([]byte(compact)))
		if err != nil {
			t.Fatal(err)
		}
		if got := op.CheckSignature(0, key) == nil; got != c.verifies {
			t.Errorf("ES256 case %#x verifies %v, want %v", c.flags, got, c.verifies)
		}
		if got := op.StrictErr() != nil; got != c.strict {
			t.Errorf("ES256 case %#x breaks the strict rules %v, want %v", c.flags, got, c.strict)
		}
	}
	// The headers beyond the plain form are go-jose's to read.
	for i, h := range plainHeaders {
		compact := compactCase([]byte(h), payload, []byte("sig"), 0)
		_, _, _, ok := parseCompact([]byte(compact))
		if want := i < 4; ok != want {
			t.Errorf("header %s: read in the plain form %v, want %v", h, ok, want)
		}
	}
}
