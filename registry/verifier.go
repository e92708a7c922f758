package registry

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"golang.org/x/sync/singleflight"
)

// verifier parses operations and checks their signatures against the keys
// recorded in the state (PreVerify), remembering both for the apply: the
// parsed operations (parsedCache), the signatures it checked (verified)
// and the public keys it parsed (keyCache). It reads the committed state
// through a view, and the state being applied through the applier's
// evaluator; it writes nothing.
type verifier struct {
	*consortium
	read     *readModel
	keys     *keyCache                      // public keys parsed from did:keys and registered JWKs
	parsed   *parsedCache                   // operations PreVerify parsed, by SHA-256 of their bytes
	verified *lru.Cache[[32]byte, struct{}] // signatures PreVerify checked
	flight   singleflight.Group             // PreVerify's checks running, by SHA-256 of the bytes

	// Signature checks made (SignatureChecks): ahead by PreVerify, and
	// while judging, by the check or the apply, for a signature the
	// memory did not hold.
	checkedAhead, checkedJudging atomic.Uint64
}

// verifiedEntries bounds the signatures PreVerify remembers having checked.
const verifiedEntries = 1 << 16

func newVerifier(c *consortium, read *readModel, keys *keyCache) *verifier {
	v := &verifier{consortium: c, read: read, keys: keys, parsed: newParsedCache()}
	v.verified, _ = lru.New[[32]byte, struct{}](verifiedEntries)
	return v
}

// resolveKey finds the public key a kid names, as recorded in the registry
// now: a did:key carries its own key; any other DID uses the keys of its
// registered entity, or of its genesis membership (signingKeys: a
// member's record counts only when governance or the member bound its
// keys). The entity is read
// through e: the committed state for PreVerify, the batch being applied
// for the apply (an entity this batch rotated is read from the batch).
func (s *verifier) resolveKey(e *decide.Evaluator, kid string) (parsedKey, string, error) {
	did, fragment, _ := strings.Cut(kid, "#")
	if strings.HasPrefix(did, "did:key:") {
		k, err := s.keys.didKey(did)
		if err != nil {
			return parsedKey{}, did, record.Reject(record.CodeUnknownKey, "kid %q: %v", kid, err)
		}
		return k, did, nil
	}
	ent, err := decide.ReadRecord[record.Entity](e, decide.EntityKey(did))
	if err != nil {
		return parsedKey{}, did, err
	}
	keys := s.signingKeys(did, ent)
	for _, raw := range keys {
		k, err := s.keys.jwk(raw)
		if err != nil {
			continue
		}
		if record.KIDMatches(k.kid, did, fragment) {
			return k, did, nil
		}
	}
	if ent == nil && keys == nil {
		return parsedKey{}, did, record.Reject(record.CodeUnknownKey, "%s is not registered, so no key of it is known: governance or an active accreditor registers it with its keys (an accreditor only while it holds no authority yet), signing with their own key", did)
	}
	return parsedKey{}, did, record.Reject(record.CodeUnknownKey, "no key %q is registered for %s: sign with one of its current keys (rotateKeys replaces them)", kid, did)
}

// keyFor is the key a signature of op by kid is checked against: for a
// setCosigners, the key the genesis gives the member (genesisKey), which is
// all a verifier following cosigner changes holds; for any other
// operation, the key recorded now (resolveKey).
func (s *verifier) keyFor(e *decide.Evaluator, op *record.ParsedOperation, kid string) (parsedKey, string, error) {
	if _, ok := op.Body.(*record.SetCosigners); ok {
		return s.genesisKey(kid)
	}
	return s.resolveKey(e, kid)
}

// genesisKey finds the key a kid names among the genesis's: a did:key
// member's own key, or one of a member's genesis keys.
func (s *verifier) genesisKey(kid string) (parsedKey, string, error) {
	did, fragment, _ := strings.Cut(kid, "#")
	m, member := s.members[did]
	if !member {
		return parsedKey{}, did, record.Reject(record.CodeNotAuthorized, "setCosigners is signed by governance members only, with the keys the genesis gives them; %s is not a member", did)
	}
	raw, didKey := record.GenesisKeyOf(m, did, fragment, func(raw []byte) (string, error) {
		k, err := s.keys.jwk(raw)
		return k.kid, err
	})
	if didKey {
		k, err := s.keys.didKey(did)
		if err != nil {
			return parsedKey{}, did, record.Reject(record.CodeUnknownKey, "kid %q: %v", kid, err)
		}
		return k, did, nil
	}
	if raw != nil {
		// GenesisKeyOf read raw through the cache just now: this finds it
		// there unless evicted meanwhile, and parses it again then.
		if k, err := s.keys.jwk(raw); err == nil {
			return k, did, nil
		}
	}
	return parsedKey{}, did, record.Reject(record.CodeUnknownKey, "the genesis gives member %s no key %q: setCosigners is signed with the keys the genesis gives the members, which a verifier checks it against", did, kid)
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
func (s *verifier) PreVerify(raw []byte) error {
	_, err := s.preVerify(raw)
	return err
}

// PreVerifyLevel is PreVerify that also returns the feature level the
// operation needs (features.go).
func (s *verifier) PreVerifyLevel(raw []byte) (int, error) {
	op, err := s.preVerify(raw)
	if err != nil {
		return 0, err
	}
	return featureLevelOf(op), nil
}

func (s *verifier) preVerify(raw []byte) (*record.ParsedOperation, error) {
	if err := record.CheckSize(raw); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(raw)
	if op, ok := s.parsed.get(digest); ok {
		return op, op.CheckErr() // done already (by the receiving node, or the leader)
	}
	// The same bytes checked at once by several callers (the receiving
	// node's gateway, the leader's check, Prefetch as the log stores them,
	// the apply's preVerifyBatch) are checked once, the others waiting for
	// it: the parse is remembered only once the signatures are checked, so
	// a caller that found it would otherwise have checked them again.
	v, err, _ := s.flight.Do(string(digest[:]), func() (any, error) {
		if op, ok := s.parsed.get(digest); ok {
			return op, nil // done by a flight that ended just now
		}
		op, err := record.ParseOperationDigest(raw, digest)
		if err != nil {
			// A check stores nothing: it answers in the clear words at
			// any level (record.RewordedError).
			return nil, record.ClearWords(err)
		}
		if op.StrictErr() == nil {
			s.checkSignatures(op)
		}
		s.parsed.add(digest, op)
		return op, nil
	})
	if err != nil {
		return nil, err
	}
	op := v.(*record.ParsedOperation)
	// A strict refusal or a number beyond range: refused before the log at
	// any feature level (refusing to propose changes no state; the apply
	// decides by the level). The signatures of an operation with only a
	// number beyond range were checked: an apply below the level takes it.
	return op, op.CheckErr()
}

// checkSignatures checks op's signatures against the keys recorded now and
// remembers those that verify; it stops at the first that does not (the
// apply rejects the operation with the reason).
func (s *verifier) checkSignatures(op *record.ParsedOperation) {
	view := s.read.View()
	defer view.Close()
	r := view.evaluator(view.index)
	for i, sig := range op.Signatures() {
		k, _, err := s.keyFor(r, op, sig.Protected.KeyID)
		if err != nil {
			return
		}
		s.checkedAhead.Add(1)
		if err := op.CheckSignature(i, k.jose); err != nil {
			return
		}
		s.verified.Add(verifiedKey(k.pub, i, op.Raw), struct{}{})
	}
}

// verifySignatures checks every signature of op against the key its kid
// names. It returns the signer DIDs in signature order. consume says
// whether a signature PreVerify checked is forgotten once used: the
// apply's, the memory's last reader, does; a check leaves it for the apply.
func (s *verifier) verifySignatures(e *decide.Evaluator, op *record.ParsedOperation, consume bool) ([]string, error) {
	signers := make([]string, 0, len(op.Signatures()))
	seen := map[string]bool{}
	for i, sig := range op.Signatures() {
		k, did, err := s.keyFor(e, op, sig.Protected.KeyID)
		if err != nil {
			return nil, err
		}
		// A signature PreVerify checked is not checked again; like parse,
		// the apply drops the memory of it.
		vk := verifiedKey(k.pub, i, op.Raw)
		checked := consume && s.verified.Remove(vk) || !consume && s.verified.Contains(vk)
		if !checked {
			s.checkedJudging.Add(1)
			if err := op.CheckSignature(i, k.jose); err != nil {
				return nil, record.Reject(record.CodeBadSignature, "signature %d (kid %q) does not verify against the registered key", i, sig.Protected.KeyID)
			}
		}
		if seen[did] {
			return nil, record.Reject(record.CodeMalformed, "%s signed more than once", did)
		}
		seen[did] = true
		signers = append(signers, did)
	}
	return signers, nil
}
