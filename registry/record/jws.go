package record

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Algorithms accepted in an operation's protected header.
var AcceptedAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}

// MaxOperationSize bounds the bytes of one signed operation.
const MaxOperationSize = 256 << 10

// MaxSignatures bounds the signatures one operation may carry.
const MaxSignatures = 32

// CIDOf returns the CIDv1 (raw codec, sha2-256) naming the exact bytes.
func CIDOf(b []byte) string { return cidOfDigest(sha256.Sum256(b)) }

// cidOfDigest is CIDOf for bytes whose SHA-256 is already known.
func cidOfDigest(d [32]byte) string {
	mh, err := multihash.Encode(d[:], multihash.SHA2_256)
	if err != nil {
		panic(fmt.Sprintf("multihash sha2-256: %v", err)) // cannot fail for a registered hash
	}
	return cid.NewCidV1(cid.Raw, mh).String()
}

// ParsedOperation is a signed operation whose JWS structure and payload have
// been decoded, but whose signatures and authority are not yet checked.
type ParsedOperation struct {
	Raw []byte
	CID string
	// jws holds the signatures: go-jose's parse, or for the plain compact
	// form (plain) their headers and bytes alone, which go-jose cannot
	// verify (CheckSignature parses again when it must).
	jws     *jose.JSONWebSignature
	plain   bool
	Payload []byte
	Op      string
	IAT     int64
	Body    any
	// signed holds, for each signature, the digest of what it signed (its
	// JWS signing input: the protected header and the payload): the
	// operation's idempotency keys (signedContentKey).
	signed [][32]byte
	// strictErr says why the operation breaks a rule that the apply
	// enforces from FeatureLevelSignedContent on and PreVerify always (a
	// high-s ES256 signature; a payload or credential that reads two ways);
	// nil when it breaks none. It wraps ErrMalformed.
	strictErr error
	// numberErr says why the operation carries a JSON number beyond a
	// float64's range (in its payload, a status-list or root credential,
	// or its JWS JSON serialization's members), which the apply
	// refuses from FeatureLevelNumberRange on and PreVerify always; nil
	// when it carries none. It wraps ErrMalformed.
	numberErr error
	// exactNumberErr is numberErr by a number's true value (rangeErrs),
	// and for a JWS protected header too: the operation's own, or a
	// status-list or root credential's. The apply refuses it from
	// FeatureLevelHeaderNumbers on.
	exactNumberErr error
	// critErr says why a signature's headers (the operation's, or a
	// status-list or root credential's) carry a "crit" go-jose refuses
	// before it checks the signature (critErr). The apply refuses it as
	// malformed from FeatureLevelClearRefusals on; below it the signature
	// check refuses it, as older builds do.
	critErr error
}

// SignedContent returns, for each signature, the digest of what it signed
// (its JWS signing input): the operation's idempotency keys.
func (p *ParsedOperation) SignedContent() [][32]byte { return p.signed }

// Signatures returns the operation's signatures as go-jose parses them:
// their headers (merged, protected, unprotected) and bytes. They must not
// be changed.
func (p *ParsedOperation) Signatures() []jose.Signature { return p.jws.Signatures }

// StrictErr says why the operation breaks a rule that the apply enforces
// from FeatureLevelSignedContent on and PreVerify always; nil when it breaks
// none. It wraps ErrMalformed.
func (p *ParsedOperation) StrictErr() error { return p.strictErr }

// NumberErr says why the operation carries a JSON number beyond a
// float64's range (RFC 7493 §2.2), a rule the apply enforces from
// FeatureLevelNumberRange on and PreVerify always; nil when it carries
// none, or when StrictErr stopped the scan before such a number. It wraps
// ErrMalformed.
func (p *ParsedOperation) NumberErr() error { return p.numberErr }

// ExactNumberErr says why the operation carries a JSON number beyond a
// float64's range by the number's true value, where NumberErr looks and
// in a JWS protected header the operation carries (its signatures', or a
// status-list or root credential's), a rule the apply enforces from
// FeatureLevelHeaderNumbers on and PreVerify always; nil when none does,
// or when StrictErr stopped the scan before such a number. It differs
// from NumberErr for a header's number (go-jose refuses such a number in
// a header member it decodes into an any, but drops the members of a
// "jwk" header it does not know, which the stored operation keeps) and
// for the few numbers strconv.ParseFloat misjudges (rangeErrs). It wraps
// ErrMalformed.
func (p *ParsedOperation) ExactNumberErr() error { return p.exactNumberErr }

// CritErr says why the operation carries a "crit" header member that
// go-jose refuses before it checks a signature (in an unprotected header,
// not a list of names, or naming an extension other than b64), a refusal
// the apply words as malformed from FeatureLevelClearRefusals on and
// PreVerify always; nil when it carries none. It wraps ErrMalformed.
func (p *ParsedOperation) CritErr() error { return p.critErr }

// CheckErr is what every check before the log refuses, whatever the
// feature level: StrictErr, else NumberErr, else ExactNumberErr, else
// CritErr.
// Refusing to propose an operation changes no state; the apply decides
// each rule by the level.
func (p *ParsedOperation) CheckErr() error {
	if p.strictErr != nil {
		return p.strictErr
	}
	if p.numberErr != nil {
		return p.numberErr
	}
	if p.exactNumberErr != nil {
		return p.exactNumberErr
	}
	return p.critErr
}

// ParseOperation decodes a compact or JSON-serialized JWS and its operation
// payload. It checks structure only; signatures and authority are checked
// when the operation is applied. It refuses what PreVerify refuses: an
// ES256 signature with a high s, a payload that reads two ways
// (checkJSON), and a number beyond a float64's range (CheckErr). Errors
// wrap ErrMalformed or ErrTooLarge.
func ParseOperation(raw []byte) (*ParsedOperation, error) {
	return parseRefusing(raw, (*ParsedOperation).CheckErr)
}

// ParseStoredOperation is ParseOperation for an operation the registry
// accepted, read back from its state, a proof bundle or a mirror of its
// log: it refuses what the apply has refused since
// FeatureLevelSignedContent (StrictErr), but not a number beyond a
// float64's range (NumberErr, ExactNumberErr), which an operation
// accepted below FeatureLevelNumberRange or FeatureLevelHeaderNumbers may
// hold.
func ParseStoredOperation(raw []byte) (*ParsedOperation, error) {
	return parseRefusing(raw, (*ParsedOperation).StrictErr)
}

// parseRefusing parses raw within the size limit and refuses it for the
// error refused names, if any.
func parseRefusing(raw []byte, refused func(*ParsedOperation) error) (*ParsedOperation, error) {
	if err := CheckSize(raw); err != nil {
		return nil, err
	}
	op, err := ParseOperationDigest(raw, sha256.Sum256(raw))
	if err != nil {
		return nil, err
	}
	if err := refused(op); err != nil {
		return nil, err
	}
	return op, nil
}

// CheckSize refuses an operation longer than MaxOperationSize.
func CheckSize(raw []byte) error {
	if len(raw) > MaxOperationSize {
		return Errorf(ErrTooLarge, "%d bytes, limit %d", len(raw), MaxOperationSize)
	}
	return nil
}

// ParseOperationDigest is ParseOperation for raw, already within the size
// limit, whose SHA-256 is digest. An operation that breaks a strict rule is
// returned with its StrictErr set, not refused: the caller decides by the
// feature level.
func ParseOperationDigest(raw []byte, digest [32]byte) (*ParsedOperation, error) {
	return parseOperation(raw, digest, true)
}

// parseOperation is ParseOperationDigest; tryPlain says whether a compact
// JWS in the plain form may be read without go-jose (parseCompact).
func parseOperation(raw []byte, digest [32]byte, tryPlain bool) (*ParsedOperation, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, Errorf(ErrMalformed, "empty body: send a compact JWS or a JWS JSON serialization")
	}
	var (
		obj     *jose.JSONWebSignature
		payload []byte
		input   int  // the signing input's length, when plain
		plain   bool // read in the plain form
	)
	if tryPlain {
		var sigs []jose.Signature
		if sigs, payload, input, plain = parseCompact(trimmed); plain {
			obj = &jose.JSONWebSignature{Signatures: sigs}
		}
	}
	if !plain {
		var err error
		if obj, err = parseJWS(trimmed); err != nil {
			return nil, Errorf(ErrMalformed, "JWS: %v (algorithms EdDSA and ES256 are accepted)", err)
		}
		payload = obj.UnsafePayloadWithoutVerification()
	}
	if len(obj.Signatures) == 0 || len(obj.Signatures) > MaxSignatures {
		return nil, Errorf(ErrMalformed, "JWS carries %d signatures, want 1 to %d", len(obj.Signatures), MaxSignatures)
	}
	for i, sig := range obj.Signatures {
		if sig.Protected.KeyID == "" {
			return nil, Errorf(ErrMalformed, "signature %d has no kid in its protected header", i)
		}
		if !strings.Contains(sig.Protected.KeyID, "#") {
			return nil, Errorf(ErrMalformed, "signature %d: kid %q is not a DID URL (did#fragment)", i, sig.Protected.KeyID)
		}
	}
	op, iat, body, err := decodePayload(payload)
	if err != nil {
		var vcErr error
		if op, iat, body, vcErr = decodeCredentialForm(trimmed, obj, payload); vcErr != nil {
			return nil, vcErr
		} else if body == nil {
			return nil, err
		}
	}
	p := &ParsedOperation{Raw: raw, CID: cidOfDigest(digest), jws: obj, plain: plain, Payload: payload, Op: op, IAT: iat, Body: body}
	// What older builds accept and this one refuses is kept apart: the
	// apply refuses it only from FeatureLevelSignedContent on (features.go).
	p.strictErr = checkLowS(obj)
	p.critErr = firstCritErr(trimmed, obj)
	// numbers: where FeatureLevelNumberRange looks; headers: the JWS
	// protected headers, where only FeatureLevelHeaderNumbers does.
	var numbers, headers rangeErrs
	if p.strictErr == nil && plain {
		// The parts are canonical: the signing input is their text, and
		// the header holds no number.
		p.signed = [][32]byte{sha256.Sum256(trimmed[:input])}
	} else if p.strictErr == nil {
		p.signed, headers, p.strictErr = signedContent(trimmed, obj, payload)
	}
	if _, ok := body.(*AccreditationCredential); p.strictErr == nil && ok {
		numbers, p.strictErr = checkCredentialJSON(payload)
	} else if p.strictErr == nil {
		numbers, p.strictErr = checkPayload(payload, body)
	}
	if pub, ok := body.(*PublishStatusList); p.strictErr == nil && ok {
		// The credential is the issuer's outside JSON too; a credential
		// that is no JWS is the apply's to refuse.
		var number rangeErrs
		if IsDataIntegrity(pub.Credential) {
			number, p.strictErr = checkStatusListJSON([]byte(pub.Credential))
		} else if jwt, err := jose.ParseSignedCompact(pub.Credential, AcceptedAlgs); err == nil {
			number, p.strictErr = checkStatusListJSON(jwt.UnsafePayloadWithoutVerification())
			headers = headers.or(compactHeaderNumber("credential", pub.Credential))
			p.critErr = cmp.Or(p.critErr, critErr("credential", &jwt.Signatures[0]))
		}
		numbers = numbers.or(number)
	}
	// JSON stored as received that no schema walks: the JSON
	// serialization's envelope (go-jose and signedContent skip members
	// they do not know) and a root's credential claims (ParseRootCredential
	// reads four of them). Only their numbers are checked: the strict rules
	// never covered them, and adding those would be another level's change.
	if trimmed[0] == '{' && (numbers.level9 == nil || numbers.exact == nil) {
		numbers = numbers.or(numberBeyondRange("JWS JSON serialization", trimmed))
	}
	if rc, ok := body.(*RootChange); ok && rc.Credential != "" {
		if jwt, err := jose.ParseSignedCompact(rc.Credential, AcceptedAlgs); err == nil {
			numbers = numbers.or(numberBeyondRange("credential", jwt.UnsafePayloadWithoutVerification()))
			headers = headers.or(compactHeaderNumber("credential", rc.Credential))
			p.critErr = cmp.Or(p.critErr, critErr("credential", &jwt.Signatures[0]))
		}
	}
	p.numberErr = numbers.level9
	p.exactNumberErr = cmp.Or(numbers.exact, headers.exact)
	return p, nil
}

// compactHeaderNumber is the first numbers beyond a float64's range in the
// protected header of compact, a compact JWS go-jose has parsed (so its
// header decodes), as numberBeyondRange reports them.
func compactHeaderNumber(what, compact string) rangeErrs {
	header, _, _ := strings.Cut(compact, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return rangeErrs{} // go-jose read it; a header it could not read is refused there
	}
	return numberBeyondRange(what+" protected header", b)
}

// parseJWS parses trimmed, a JWS without surrounding space, in its JSON
// serialization or its compact form, as go-jose reads it.
func parseJWS(trimmed []byte) (*jose.JSONWebSignature, error) {
	if trimmed[0] == '{' {
		return jose.ParseSignedJSON(string(trimmed), AcceptedAlgs)
	}
	return jose.ParseSignedCompact(string(trimmed), AcceptedAlgs)
}

// signedContent returns, for each signature of obj (parsed from trimmed),
// the SHA-256 of its JWS signing input as go-jose verifies it:
// BASE64URL(protected header) "." BASE64URL(payload), both encoded anew
// from the decoded bytes (base64url with no padding, the unused low bits
// of the last character zero), so no other encoding of the same header or
// payload, and no other signature over them, gets another digest. go-jose
// keeps no protected header's bytes where they can be read, so they are
// read here from the serialization: the three compact parts, or the JSON
// members protected and signature (of signatures[i], or of the flattened
// form when signatures is absent or empty, as go-jose reads it); each
// signature read must be the one go-jose read. number is the first numbers
// beyond a float64's range in the protected headers (ExactNumberErr).
func signedContent(trimmed []byte, obj *jose.JSONWebSignature, payload []byte) (digests [][32]byte, number rangeErrs, err error) {
	// Each signature's protected header and signature, as serialized.
	var parts [][2][]byte
	if trimmed[0] == '{' {
		type part struct {
			Protected string `json:"protected"`
			Signature string `json:"signature"`
		}
		var env struct {
			Protected  string `json:"protected"`
			Signature  string `json:"signature"`
			Signatures []part `json:"signatures"`
		}
		// Case-sensitive and refusing duplicate members, as go-jose's
		// JSON reader is.
		if err := jsonv2.Unmarshal(trimmed, &env); err != nil {
			return nil, rangeErrs{}, Errorf(ErrMalformed, "JWS JSON serialization: %v", err)
		}
		if len(env.Signatures) == 0 {
			env.Signatures = []part{{Protected: env.Protected, Signature: env.Signature}}
		} else if h, err := base64.RawURLEncoding.DecodeString(env.Protected); err == nil {
			// A top-level protected header beside signatures, which
			// go-jose and this digest skip, is still a protected header
			// the stored operation carries.
			number = numberBeyondRange("JWS JSON serialization's top-level protected header", h)
		}
		for _, pt := range env.Signatures {
			parts = append(parts, [2][]byte{[]byte(pt.Protected), []byte(pt.Signature)})
		}
	} else {
		// Three parts: exactly two dots. The compact form is read in
		// place; nothing of it is copied.
		first := bytes.IndexByte(trimmed, '.')
		if first < 0 || bytes.Count(trimmed, dot) != 2 {
			return nil, rangeErrs{}, Errorf(ErrMalformed, "compact JWS must have three parts")
		}
		last := bytes.LastIndexByte(trimmed, '.')
		parts = [][2][]byte{{trimmed[:first], trimmed[last+1:]}}
	}
	if len(parts) != len(obj.Signatures) {
		return nil, rangeErrs{}, Errorf(ErrMalformed, "JWS: %d signatures read, %d parsed", len(parts), len(obj.Signatures))
	}
	// The digest is streamed: the payload's encoding, the same for every
	// signature, is made once, and each header is decoded and encoded
	// anew in one scratch buffer (a signing input built whole cost three
	// copies of the operation's size in allocations).
	enc := base64.RawURLEncoding
	body := enc.AppendEncode(make([]byte, 0, enc.EncodedLen(len(payload))), payload)
	var scratch []byte
	h := sha256.New()
	out := make([][32]byte, len(parts))
	for i, pt := range parts {
		var err1, err2 error
		scratch, err1 = enc.AppendDecode(scratch[:0], pt[0])
		header := len(scratch)
		scratch, err2 = enc.AppendDecode(scratch, pt[1])
		if err := errors.Join(err1, err2); err != nil || !bytes.Equal(scratch[header:], obj.Signatures[i].Signature) {
			return nil, rangeErrs{}, Errorf(ErrMalformed, "JWS signature %d: its protected header or signature does not read as go-jose read it: %v", i, err)
		}
		if number.exact == nil && holdsNumber(scratch[:header]) {
			number = numberBeyondRange(fmt.Sprintf("signature %d protected header", i), scratch[:header])
		}
		scratch = enc.AppendEncode(scratch, scratch[:header])
		h.Reset()
		h.Write(scratch[len(scratch)-enc.EncodedLen(header):])
		h.Write(dot)
		h.Write(body)
		h.Sum(out[i][:0])
	}
	return out, number, nil
}

var dot = []byte{'.'}

// p256HalfOrder is n/2 for P-256: an ES256 signature (r, s) verifies as
// (r, n − s) does, so only the one with s ≤ n/2 is accepted, and a
// signature has one encoding.
var p256HalfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// es256Size is the length of an ES256 signature: r and s, 32 bytes each.
const es256Size = 64

// HighS reports whether an ES256 signature's s exceeds n/2.
func HighS(sig []byte) bool {
	return len(sig) == es256Size && new(big.Int).SetBytes(sig[es256Size/2:]).Cmp(p256HalfOrder) > 0
}

// checkLowS refuses an ES256 signature whose s exceeds n/2.
func checkLowS(obj *jose.JSONWebSignature) error {
	for i, sig := range obj.Signatures {
		if sig.Header.Algorithm == string(jose.ES256) && HighS(sig.Signature) {
			return Errorf(ErrMalformed, "signature %d (ES256, kid %q) has a high s (s > n/2): the registry accepts only low-s ECDSA signatures, so each has one encoding; replace s with n - s, or sign again with a signer that emits low-s signatures (trustctl does)", i, sig.Header.KeyID)
		}
	}
	return nil
}

// LowSTwin returns the other encoding (r, n − s) of an ES256 signature,
// or nil for a signature of another length.
func LowSTwin(sig []byte) []byte {
	if len(sig) != es256Size {
		return nil
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[es256Size/2:])
	if s.Sign() == 0 || s.Cmp(n) >= 0 {
		return nil
	}
	out := make([]byte, es256Size)
	copy(out, sig[:es256Size/2])
	new(big.Int).Sub(n, s).FillBytes(out[es256Size/2:])
	return out
}

// ParsePublicJWK parses a public JWK of an Ed25519 or P-256 key with a kid.
func ParsePublicJWK(raw []byte) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("JWK: %v", err)
	}
	if !k.IsPublic() {
		return nil, fmt.Errorf("JWK %q holds private key material: register public keys only", k.KeyID)
	}
	if k.KeyID == "" {
		return nil, fmt.Errorf("JWK has no kid")
	}
	switch pub := k.Key.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("JWK %q: only the P-256 curve is supported", k.KeyID)
		}
	default:
		return nil, fmt.Errorf("JWK %q: unsupported key type %T (want OKP Ed25519 or EC P-256)", k.KeyID, k.Key)
	}
	return &k, nil
}

// KIDMatches reports whether a registered JWK kid names the key that the
// DID URL kid refers to. Registered kids may be absolute ("did:web:x#k1"),
// relative ("#k1") or bare ("k1").
func KIDMatches(registered, did, fragment string) bool {
	return registered == did+"#"+fragment || registered == "#"+fragment || registered == fragment
}
