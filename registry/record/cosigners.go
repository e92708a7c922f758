package record

import (
	"crypto"
	"encoding/json"
	"slices"
	"strings"

	"github.com/trustreg/trustreg/registry/tlog"
)

// OpSetCosigners replaces the set of checkpoint cosigners (governance).
const OpSetCosigners = "setCosigners"

// MaxCosigners bounds the cosigners a set names.
const MaxCosigners = 64

// MaxCosignerChanges bounds the setCosigners a state accepts: a proof
// bundle carries every change since the genesis, and at most this many.
const MaxCosignerChanges = 64

// SetCosigners replaces the cosigners of the registry log's checkpoints
// and their quorum (SPEC §7): a governance operation whose member
// signatures must verify against the members' genesis keys, so that a
// verifier holding only the genesis can check it (GovernanceSigners).
// Cosigners is the whole new set, as Genesis.Cosigners; Quorum as
// Genesis.CosignerQuorum (0: the default n − ⌊(n−1)/3⌋).
type SetCosigners struct {
	Header
	Cosigners []string `json:"cosigners"`
	Quorum    int      `json:"quorum,omitempty"`
}

// CosignerSet is the state's record of the cosigner set in force, which
// the state map commits to: the set and quorum the last setCosigners
// named, and every setCosigners accepted so far, in log order. Absent
// until the first change; the genesis's set is in force until then. The
// set that cosigns a checkpoint of log size s is the one named by the last
// change whose Index is at most the raft index of the log's leaf s − 1
// (the genesis's when there is none): a change takes effect with the
// checkpoints that include its entry.
type CosignerSet struct {
	Cosigners []string         `json:"cosigners"`
	Quorum    int              `json:"quorum,omitempty"`
	Changes   []CosignerChange `json:"changes"`
}

// CosignerChange is one accepted setCosigners: its CID and the raft index
// it was applied at. Its entry's leaf in the registry log is the leaf of
// that raft index (leaves are in raft index order, one per entry); the
// record names the raft index, not the leaf's position, so a replay that
// leaves rejected entries out of its log (trustd audit) writes the same
// record.
type CosignerChange struct {
	Operation string `json:"operation"`
	Index     uint64 `json:"index"`
}

// QuorumOf is how many of the set's cosigners a checkpoint needs: Quorum,
// or the default n − ⌊(n−1)/3⌋.
func (s *CosignerSet) QuorumOf() int { return CosignerQuorum(len(s.Cosigners), s.Quorum) }

// CosignerQuorum is the quorum of n cosigners when q is asked (0: the
// default n − ⌊(n−1)/3⌋).
func CosignerQuorum(n, q int) int {
	if q > 0 {
		return q
	}
	return tlog.DefaultQuorum(n)
}

// SameCosigners reports whether two sets name the same keys (in any
// order) with the same quorum.
func SameCosigners(a []string, qa int, b []string, qb int) bool {
	if len(a) != len(b) || CosignerQuorum(len(a), qa) != CosignerQuorum(len(b), qb) {
		return false
	}
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(x, y)
}

// ParseCosigners checks a cosigner set as the genesis's is checked: at
// least one and at most MaxCosigners vkeys that parse, no name twice, and a
// quorum from 1 to n (0: the default). It returns the parsed keys.
func ParseCosigners(vkeys []string, quorum int) ([]tlog.CosignerKey, error) {
	if len(vkeys) == 0 {
		return nil, Errorf(ErrInvalid, "no cosigners: a set names at least one (without cosigners no proofs are served)")
	}
	if len(vkeys) > MaxCosigners {
		return nil, Errorf(ErrInvalid, "%d cosigners, at most %d", len(vkeys), MaxCosigners)
	}
	if quorum < 0 || quorum > len(vkeys) {
		return nil, Errorf(ErrInvalid, "cosigner quorum %d must be between 1 and the %d cosigners (0: the default)", quorum, len(vkeys))
	}
	keys := make([]tlog.CosignerKey, 0, len(vkeys))
	names, pubs := map[string]bool{}, map[string]string{}
	for _, v := range vkeys {
		k, err := tlog.ParseCosignerKey(v)
		if err != nil {
			return nil, Errorf(ErrInvalid, "cosigner %q: %v", v, err)
		}
		if names[k.Name] {
			return nil, Errorf(ErrInvalid, "cosigner %s listed twice", k.Name)
		}
		// One key under two names would count twice toward the quorum;
		// a checkpoint verifier refuses such a set (tlog.NewVerifier), so
		// a state that took it could cosign nothing.
		if other, ok := pubs[string(k.Key)]; ok {
			return nil, Errorf(ErrInvalid, "cosigners %s and %s have the same public key", other, k.Name)
		}
		names[k.Name], pubs[string(k.Key)] = true, k.Name
		keys = append(keys, k)
	}
	return keys, nil
}

// GovernanceSigners returns the governance members of g whose signature
// on op verifies against the key the genesis gives them (a did:key
// member's own key), in signature order, each once. Signatures by anyone
// else, or by a member's key registered later, are not counted: the
// result depends on the genesis and the operation's bytes alone.
func GovernanceSigners(g *Genesis, op *ParsedOperation) []string {
	var out []string
	for _, s := range GovernanceSignatures(g, op) {
		if slices.Contains(out, s.Member) || s.Key == nil {
			continue
		}
		if op.VerifySignature(s.Index, s.Key) == nil {
			out = append(out, s.Member)
		}
	}
	return out
}

// GovernanceSignature is one signature of an operation whose kid names a
// governance member of the genesis.
type GovernanceSignature struct {
	// Member is the member's DID.
	Member string
	// Index is the signature's position in the operation's JWS.
	Index int
	// Key is the key the genesis gives the member under the kid's
	// fragment (a did:key member's own key); nil when it gives none.
	Key crypto.PublicKey
}

// GovernanceSignatures lists, in signature order, the signatures of op
// whose kid names a governance member of g, with the genesis key each
// would verify against. It reads the kids only: no signature is verified,
// so a caller can check their number and members before spending any
// signature verification.
func GovernanceSignatures(g *Genesis, op *ParsedOperation) []GovernanceSignature {
	var out []GovernanceSignature
	for i, sig := range op.Signatures() {
		did, fragment, _ := strings.Cut(sig.Protected.KeyID, "#")
		j := slices.IndexFunc(g.Members, func(m Member) bool { return m.ID == did })
		if j < 0 {
			continue
		}
		out = append(out, GovernanceSignature{Member: did, Index: i, Key: genesisKey(g.Members[j], did, fragment)})
	}
	return out
}

// VerifySignature verifies op's signature i (alone) against pub.
func (p *ParsedOperation) VerifySignature(i int, pub crypto.PublicKey) error {
	if i < 0 || i >= len(p.Signatures()) {
		return Errorf(ErrMalformed, "no signature %d (the JWS carries %d)", i, len(p.Signatures()))
	}
	if err := p.CheckSignature(i, JoseKey(pub)); err != nil {
		return Errorf(ErrBadSignature, "signature %d (kid %q): %v", i, p.Signatures()[i].Protected.KeyID, err)
	}
	return nil
}

// genesisKey is the public key the genesis gives member m under fragment
// (nil when none).
func genesisKey(m Member, did, fragment string) crypto.PublicKey {
	raw, didKey := GenesisKeyOf(m, did, fragment, nil)
	if didKey {
		pub, err := ParseDIDKey(did)
		if err != nil {
			return nil
		}
		return pub
	}
	if raw == nil {
		return nil
	}
	k, err := ParsePublicJWK(raw)
	if err != nil {
		return nil
	}
	return k.Key
}

// GenesisKeyOf is the rule that names the key the genesis gives member m
// for a kid did#fragment, which a setCosigners signature and a verifier
// holding only the genesis both check against. A member the genesis lists
// without keys signs with its own did:key: didKey is true and jwk nil.
// Otherwise jwk is the first of m.Keys whose kid, as kidOf reads it,
// matches did and fragment (KIDMatches); a key kidOf cannot read is
// skipped. When jwk is nil and didKey false, the genesis gives m no such
// key. kidOf nil reads kids with ParsePublicJWK; a caller that remembers
// parsed keys passes its own reader.
func GenesisKeyOf(m Member, did, fragment string, kidOf func(raw []byte) (string, error)) (jwk json.RawMessage, didKey bool) {
	if len(m.Keys) == 0 {
		return nil, true
	}
	if kidOf == nil {
		kidOf = publicJWKKID
	}
	for _, raw := range m.Keys {
		if kid, err := kidOf(raw); err == nil && KIDMatches(kid, did, fragment) {
			return raw, false
		}
	}
	return nil, false
}

// publicJWKKID is the kid of a registered public JWK (ParsePublicJWK).
func publicJWKKID(raw []byte) (string, error) {
	k, err := ParsePublicJWK(raw)
	if err != nil {
		return "", err
	}
	return k.KeyID, nil
}
