package registry

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Algorithms accepted in an operation's protected header.
var acceptedAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}

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
	Raw     []byte
	CID     string
	JWS     *jose.JSONWebSignature
	Payload []byte
	Op      string
	IAT     int64
	Body    any
}

// ParseOperation decodes a compact or JSON-serialized JWS and its operation
// payload. It checks structure only; signatures and authority are checked
// when the operation is applied. Errors wrap ErrMalformed or ErrTooLarge.
func ParseOperation(raw []byte) (*ParsedOperation, error) {
	if err := checkSize(raw); err != nil {
		return nil, err
	}
	return parseOperation(raw, sha256.Sum256(raw))
}

// checkSize refuses an operation longer than MaxOperationSize.
func checkSize(raw []byte) error {
	if len(raw) > MaxOperationSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxOperationSize)
	}
	return nil
}

// parseOperation is ParseOperation for raw, already within the size limit,
// whose SHA-256 is digest.
func parseOperation(raw []byte, digest [32]byte) (*ParsedOperation, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty body: send a compact JWS or a JWS JSON serialization", ErrMalformed)
	}
	var obj *jose.JSONWebSignature
	var err error
	if trimmed[0] == '{' {
		obj, err = jose.ParseSignedJSON(string(trimmed), acceptedAlgs)
	} else {
		obj, err = jose.ParseSignedCompact(string(trimmed), acceptedAlgs)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: JWS: %v (algorithms EdDSA and ES256 are accepted)", ErrMalformed, err)
	}
	if len(obj.Signatures) == 0 || len(obj.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: JWS carries %d signatures, want 1 to %d", ErrMalformed, len(obj.Signatures), MaxSignatures)
	}
	for i, sig := range obj.Signatures {
		if sig.Protected.KeyID == "" {
			return nil, fmt.Errorf("%w: signature %d has no kid in its protected header", ErrMalformed, i)
		}
		if !strings.Contains(sig.Protected.KeyID, "#") {
			return nil, fmt.Errorf("%w: signature %d: kid %q is not a DID URL (did#fragment)", ErrMalformed, i, sig.Protected.KeyID)
		}
	}
	payload := obj.UnsafePayloadWithoutVerification()
	op, iat, body, err := decodePayload(payload)
	if err != nil {
		return nil, err
	}
	return &ParsedOperation{Raw: raw, CID: cidOfDigest(digest), JWS: obj, Payload: payload, Op: op, IAT: iat, Body: body}, nil
}

// signatureKey identifies one signature for replay detection: a JWS
// re-serialized (compact to JSON, reordered) keeps its signature bytes.
func signatureKey(sig []byte) []byte {
	h := sha256.Sum256(sig)
	return key(tableSigs, string(h[:]))
}

// signatureDigest is the part of a signature key the signature filter
// holds.
func signatureDigest(k []byte) []byte { return k[1:] }

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

// kidMatches reports whether a registered JWK kid names the key that the
// DID URL kid refers to. Registered kids may be absolute ("did:web:x#k1"),
// relative ("#k1") or bare ("k1").
func kidMatches(registered, did, fragment string) bool {
	return registered == did+"#"+fragment || registered == "#"+fragment || registered == fragment
}

// resolveKey finds the public key a kid names, as recorded in the registry
// now: a did:key carries its own key; any other DID uses the keys of its
// registered entity, or of its genesis membership (signingKeys: a
// member's record counts only when governance or the member bound its
// keys). The entity is read
// through e: the committed state for PreVerify, the batch being applied
// for the apply (an entity this batch rotated is read from the batch).
func (s *State) resolveKey(e *evaluator, kid string) (parsedKey, string, error) {
	did, fragment, _ := strings.Cut(kid, "#")
	if strings.HasPrefix(did, "did:key:") {
		k, err := s.keys.didKey(did)
		if err != nil {
			return parsedKey{}, did, reject(CodeUnknownKey, "kid %q: %v", kid, err)
		}
		return k, did, nil
	}
	ent, err := readRecord[Entity](e, key(tableEntities, did))
	if err != nil {
		return parsedKey{}, did, err
	}
	keys := s.signingKeys(did, ent)
	for _, raw := range keys {
		k, err := s.keys.jwk(raw)
		if err != nil {
			continue
		}
		if kidMatches(k.kid, did, fragment) {
			return k, did, nil
		}
	}
	if ent == nil && keys == nil {
		return parsedKey{}, did, reject(CodeUnknownKey, "%s is not registered, so no key of it is known: governance or an active accreditor registers it with its keys (an accreditor only while it holds no authority yet), signing with their own key", did)
	}
	return parsedKey{}, did, reject(CodeUnknownKey, "no key %q is registered for %s: sign with one of its current keys (rotateKeys replaces them)", kid, did)
}

// verifiedKey names one signature of one exact operation checked against
// one exact public key: the raw bytes fix the signed content.
func verifiedKey(pub crypto.PublicKey, i int, raw []byte) [32]byte {
	h := sha256.New()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		h.Write(k)
	case *ecdsa.PublicKey:
		b, _ := k.Bytes()
		h.Write(b)
	}
	h.Write([]byte{byte(i >> 8), byte(i)})
	h.Write(raw)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// PreVerify parses an operation and checks its signatures against the keys
// recorded now, and remembers both, so applying it (single-threaded,
// later) need not do either again. It is run concurrently by the nodes
// that receive writes; applying stays the judge: a key rotated in between
// misses the memory and is verified then. It returns the parse error, the
// one a malformed operation is refused with before it reaches the log.
func (s *State) PreVerify(raw []byte) error {
	_, err := s.preVerify(raw)
	return err
}

// PreVerifyLevel is PreVerify that also returns the feature level the
// operation needs (features.go).
func (s *State) PreVerifyLevel(raw []byte) (int, error) {
	op, err := s.preVerify(raw)
	if err != nil {
		return 0, err
	}
	return featureLevelOf(op), nil
}

func (s *State) preVerify(raw []byte) (*ParsedOperation, error) {
	if err := checkSize(raw); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(raw)
	if op, ok := s.parsed.Get(digest); ok {
		return op, nil // done already (by the receiving node, or the leader)
	}
	op, err := parseOperation(raw, digest)
	if err != nil {
		return nil, err
	}
	s.parsed.Add(digest, op)
	r := s.reader(0)
	for i, sig := range op.JWS.Signatures {
		k, _, err := s.resolveKey(r, sig.Protected.KeyID)
		if err != nil {
			return op, nil // apply will reject it with the reason
		}
		one := *op.JWS
		one.Signatures = []jose.Signature{sig}
		if _, err := one.Verify(k.jose); err != nil {
			return op, nil
		}
		s.verified.Add(verifiedKey(k.pub, i, op.Raw), struct{}{})
	}
	return op, nil
}

// CheckCommand is Check for a log command (EncodeOperation); any other
// command passes.
func (s *State) CheckCommand(cmd []byte, now time.Time) *Result {
	if len(cmd) > 2 && cmd[0] == commandVersion1 && cmd[1] == commandTypeSubmitOp {
		return s.Check(cmd[2:], now)
	}
	return nil
}

// verifySignatures checks every signature of op against the key its kid
// names. It returns the signer DIDs in signature order. consume says
// whether a signature PreVerify checked is forgotten once used: the
// apply's, the memory's last reader, does; a check leaves it for the apply.
func (s *State) verifySignatures(e *evaluator, op *ParsedOperation, consume bool) ([]string, error) {
	signers := make([]string, 0, len(op.JWS.Signatures))
	seen := map[string]bool{}
	for i, sig := range op.JWS.Signatures {
		k, did, err := s.resolveKey(e, sig.Protected.KeyID)
		if err != nil {
			return nil, err
		}
		// A signature PreVerify checked is not checked again; like parse,
		// the apply drops the memory of it.
		vk := verifiedKey(k.pub, i, op.Raw)
		if !(consume && s.verified.Remove(vk) || !consume && s.verified.Contains(vk)) {
			one := *op.JWS
			one.Signatures = []jose.Signature{sig}
			if _, err := one.Verify(k.jose); err != nil {
				return nil, reject(CodeBadSignature, "signature %d (kid %q) does not verify against the registered key", i, sig.Protected.KeyID)
			}
		}
		if seen[did] {
			return nil, reject(CodeMalformed, "%s signed more than once", did)
		}
		seen[did] = true
		signers = append(signers, did)
	}
	return signers, nil
}

func getJSON(r pebble.Reader, k []byte, v any) (bool, error) {
	val, closer, err := r.Get(k)
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %x: %w", k[:1], err)
	}
	defer closer.Close()
	if err := decodeRecord(val, v); err != nil {
		return false, fmt.Errorf("decode record %x: %w", k[:1], err)
	}
	return true, nil
}
