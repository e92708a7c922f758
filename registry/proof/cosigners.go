package proof

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/smt"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Following cosigner changes (issue #32 item 3). The genesis names the
// first cosigners; governance replaces them with setCosigners operations
// in the log. A bundle whose checkpoint is cosigned by a changed set
// carries, in Cosigners, every change up to the checkpoint and the state's
// cosigner-set record; Verify starts from the genesis set, checks each
// change's governance signatures against the genesis members and
// threshold, verifies the checkpoint against the set the last change
// names, checks each change's entry is in that checkpoint's log, and
// checks that the record (proven in the bundle's map proof against the
// checkpoint's last leaf) lists exactly the changes carried, at the raft
// indexes of their leaves, and names the same set, so none can be left
// out.

// More reasons a bundle does not verify, for cosigner changes.
var (
	// ErrCosignerChangeUnauthorized: a carried setCosigners is not signed
	// by the genesis threshold of governance members with their genesis
	// keys.
	ErrCosignerChangeUnauthorized = errors.New("proof: a cosigner change lacks the governance threshold of genesis signatures")
	// ErrCosignerChangeNotLogged: a carried change's entry is not in the
	// checkpoint's log at the leaf it names, or the leaf is of another
	// operation.
	ErrCosignerChangeNotLogged = errors.New("proof: a cosigner change is not in the checkpoint's log")
	// ErrCosignerChangeOmitted: the state's cosigner-set record, proven
	// at the checkpoint, lists other changes than the bundle carries (a
	// change was left out), or a set other than the one they lead to.
	ErrCosignerChangeOmitted = errors.New("proof: the cosigner changes carried are not those the state records")
	// ErrCosignedByOldSet: the checkpoint is cosigned by the set a
	// carried change replaced, not by the set in force.
	ErrCosignedByOldSet = errors.New("proof: checkpoint cosigned by a cosigner set a change replaced")
	// ErrCosignerSetBehind: the bundle follows fewer cosigner changes than
	// the verifier has seen (Options.MinCosignerChanges).
	ErrCosignerSetBehind = errors.New("proof: the bundle follows fewer cosigner changes than this verifier has seen")
)

// MaxCosignerChanges bounds the cosigner changes one bundle carries.
const MaxCosignerChanges = record.MaxCosignerChanges

// CosignerStoreKey is the store key of the state's cosigner-set record
// (table 0x15, no further parts): the map holds it under
// SHA-256(CosignerStoreKey).
var CosignerStoreKey = []byte{decide.TableCosigners}

// Cosigners is the evidence of the cosigner changes a bundle's checkpoint
// follows: every setCosigners applied up to the checkpoint, in log order,
// and the state's cosigner-set record (record.CosignerSet) as stored,
// proven in the bundle's MapProof.
type Cosigners struct {
	Record  []byte           `json:"record"`
	Changes []CosignerChange `json:"changes"`
}

// CosignerChange is one setCosigners: its exact bytes, the log leaf of
// its entry, that leaf's index, and its inclusion proof in the
// checkpoint's log.
type CosignerChange struct {
	JWS       []byte `json:"jws"`
	Leaf      []byte `json:"leaf"`
	LeafIndex uint64 `json:"leafIndex"`
	Inclusion Hashes `json:"inclusion"`
}

// cosignerSet is a set the verifier follows: its keys and quorum.
type cosignerSet struct {
	keys   []string
	quorum int
}

// followed is what following the carried changes gave: the set in force
// (the genesis's without changes), the one before it, and the changes.
type followed struct {
	set, prev cosignerSet
	changes   []*record.ParsedOperation
	// sigs are each change's member signatures that can count toward the
	// threshold (memberSignatures), not yet verified (authorize).
	sigs [][]record.GovernanceSignature
}

// follow reads the carried changes and returns the sets they lead to. It
// checks everything that needs no signature verification: the count,
// order and kind of the changes, the sets they name, repeats, and each
// change's member signatures by kid (memberSignatures); authorize verifies
// the signatures later.
func (b *Bundle) follow(g *record.Genesis) (*followed, error) {
	f := &followed{set: cosignerSet{g.Cosigners, g.CosignerQuorum}}
	c := b.Cosigners
	if c == nil {
		return f, nil
	}
	if len(c.Changes) == 0 || len(c.Changes) > MaxCosignerChanges || len(c.Record) == 0 {
		return nil, fmt.Errorf("%w: cosigners carries %d changes (1 to %d) and a record of %d bytes", ErrMalformed, len(c.Changes), MaxCosignerChanges, len(c.Record))
	}
	// The registry applies a governance payload once (a resubmission,
	// however encoded, answers with the first result) and refuses a change
	// to the set already in force: a bundle carrying either does not show
	// the registry's history, and would pad the count of changes a
	// verifier pins (Options.MinCosignerChanges).
	payloads := make(map[[32]byte]int, len(c.Changes))
	for i, ch := range c.Changes {
		if i > 0 && ch.LeafIndex <= c.Changes[i-1].LeafIndex {
			return nil, fmt.Errorf("%w: cosigner change %d at leaf %d, not after leaf %d", ErrMalformed, i, ch.LeafIndex, c.Changes[i-1].LeafIndex)
		}
		op, err := record.ParseStoredOperation(ch.JWS)
		if err != nil {
			return nil, fmt.Errorf("%w: cosigner change %d: %w", ErrMalformed, i, err)
		}
		body, ok := op.Body.(*record.SetCosigners)
		if !ok {
			return nil, fmt.Errorf("%w: cosigner change %d is a %s", ErrMalformed, i, op.Op)
		}
		sigs, err := memberSignatures(g, i, op)
		if err != nil {
			return nil, err
		}
		if _, err := record.ParseCosigners(body.Cosigners, body.Quorum); err != nil {
			return nil, fmt.Errorf("%w: cosigner change %d: %w", ErrMalformed, i, err)
		}
		d := sha256.Sum256(op.Payload)
		if j, seen := payloads[d]; seen {
			return nil, fmt.Errorf("%w: cosigner change %d repeats the signed payload of change %d (the registry applies a payload once)", ErrMalformed, i, j)
		}
		payloads[d] = i
		if record.SameCosigners(f.set.keys, f.set.quorum, body.Cosigners, body.Quorum) {
			return nil, fmt.Errorf("%w: cosigner change %d names the set already in force (the registry refuses such a change)", ErrMalformed, i)
		}
		f.prev, f.set = f.set, cosignerSet{body.Cosigners, body.Quorum}
		f.changes = append(f.changes, op)
		f.sigs = append(f.sigs, sigs)
	}
	return f, nil
}

// memberSignatures returns the signatures of change i (op) that can count
// toward the genesis threshold: those by governance members under a kid
// the genesis gives a key for. It verifies none. A member signing twice is
// malformed (the registry refuses an operation one signer signs twice), and
// fewer such signatures than the threshold cannot authorize the change
// (ErrCosignerChangeUnauthorized), so neither costs a verification.
func memberSignatures(g *record.Genesis, i int, op *record.ParsedOperation) ([]record.GovernanceSignature, error) {
	var out []record.GovernanceSignature
	var seen []string
	for _, s := range record.GovernanceSignatures(g, op) {
		if slices.Contains(seen, s.Member) {
			return nil, fmt.Errorf("%w: cosigner change %d (%s): member %s signs it twice (the registry refuses an operation one signer signs twice)", ErrMalformed, i, op.CID, s.Member)
		}
		seen = append(seen, s.Member)
		if s.Key != nil {
			out = append(out, s)
		}
	}
	if len(out) < g.Threshold {
		return nil, fmt.Errorf("%w: change %d (%s) has %d signatures by genesis members under their genesis keys, it needs %d", ErrCosignerChangeUnauthorized, i, op.CID, len(out), g.Threshold)
	}
	return out, nil
}

// authorize verifies the carried changes' member signatures against the
// genesis keys, after everything that costs no signature verification has
// passed. Each change's candidates are distinct members (memberSignatures);
// they are verified in order until the threshold is met, and the change is
// refused as soon as the signatures left cannot meet it: at most one
// verification per member per change, and a bundle whose change is not
// authorized stops there. A bad signature by a member does not refuse a
// change that the others authorize, as the registry applies it so (the
// registry verifies each signature against the key bound in the state,
// which a rotation may have put under the genesis kid; record.GovernanceSigners
// counts only those that verify against the genesis).
func (f *followed) authorize(g *record.Genesis) error {
	for i, op := range f.changes {
		sigs, good := f.sigs[i], 0
		for j, s := range sigs {
			if good >= g.Threshold {
				break
			}
			if len(sigs)-j+good < g.Threshold {
				break
			}
			signatureChecks.Add(1)
			if op.VerifySignature(s.Index, s.Key) == nil {
				good++
			}
		}
		if good < g.Threshold {
			return fmt.Errorf("%w: change %d (%s): %d of the %d genesis member signatures it needs verify", ErrCosignerChangeUnauthorized, i, op.CID, good, g.Threshold)
		}
	}
	return nil
}

// signatureChecks counts the governance signature verifications authorize
// makes, so tests can show their bound (export_test.go).
var signatureChecks atomic.Int64

// verifier is the checkpoint verifier of set s for the log origin; the
// caller names the sentinel of its error.
func (s cosignerSet) verifier(origin string) (*tlog.Verifier, error) {
	keys := make([]tlog.CosignerKey, 0, len(s.keys))
	for _, v := range s.keys {
		k, err := tlog.ParseCosignerKey(v)
		if err != nil {
			return nil, fmt.Errorf("cosigner %q: %w", v, err)
		}
		keys = append(keys, k)
	}
	return tlog.NewVerifier(origin, keys, record.CosignerQuorum(len(keys), s.quorum))
}

// checkChangesLogged checks that each carried change's leaf is in the
// checkpoint's log at its index and records the change's entry, and that
// the bundle's answer is from the checkpoint's last leaf, where the
// cosigner-set record is proven.
func (b *Bundle) checkChangesLogged(f *followed, cp tlog.Checkpoint) error {
	if b.Cosigners == nil {
		return nil
	}
	if b.LeafIndex+1 != cp.Size || (b.LeafSize != 0 && b.LeafSize != cp.Size) {
		return fmt.Errorf("%w: a bundle with cosigner changes answers from the checkpoint's last leaf %d (its cosigner-set record is proven there), not leaf %d", ErrMalformed, cp.Size-1, b.LeafIndex)
	}
	for i, ch := range b.Cosigners.Changes {
		if ch.LeafIndex >= cp.Size {
			return fmt.Errorf("%w: change %d at leaf %d, the checkpoint has %d leaves", ErrCosignerChangeNotLogged, i, ch.LeafIndex, cp.Size)
		}
		if err := tlog.VerifyInclusion(ch.LeafIndex, cp.Size, tlog.LeafHash(ch.Leaf), ch.Inclusion, cp.Hash[:]); err != nil {
			return fmt.Errorf("%w: change %d: leaf %d is not in the checkpoint's log", ErrCosignerChangeNotLogged, i, ch.LeafIndex)
		}
		leaf, err := tlog.DecodeLeaf(ch.Leaf)
		if err != nil {
			return fmt.Errorf("%w: change %d: leaf: %w", ErrMalformed, i, err)
		}
		logged := false
		for _, op := range leaf.Ops {
			if c, err := cid.Cast(op.CID); err == nil && c.String() == f.changes[i].CID {
				logged = true
			}
		}
		if !logged {
			return fmt.Errorf("%w: change %d: leaf %d is the entry of another operation than %s", ErrCosignerChangeNotLogged, i, ch.LeafIndex, f.changes[i].CID)
		}
	}
	return nil
}

// cosignerClaim is the map claim of the cosigner-set record: the carried
// record, or its absence when the bundle carries no changes (nil when the
// bundle cannot say: it carries none and the map may predate the record).
func (b *Bundle) cosignerClaim() []smt.Claim {
	if b.Cosigners == nil {
		return nil
	}
	return []smt.Claim{{Key: smt.KeyOf(CosignerStoreKey), Value: MapValue(b.Cosigners.Record), Present: true}}
}

// checkCosignerRecord checks that the proven cosigner-set record lists
// exactly the carried changes, at the raft indexes of their leaves, and
// names the set they lead to.
func (b *Bundle) checkCosignerRecord(f *followed) error {
	if b.Cosigners == nil {
		return nil
	}
	var rec record.CosignerSet
	if err := decide.DecodeRecord(b.Cosigners.Record, &rec); err != nil {
		return fmt.Errorf("%w: cosigner-set record: %w", ErrMalformed, err)
	}
	if len(rec.Changes) != len(f.changes) {
		return fmt.Errorf("%w: the state records %d changes, the bundle carries %d", ErrCosignerChangeOmitted, len(rec.Changes), len(f.changes))
	}
	for i, ch := range rec.Changes {
		leaf, err := tlog.DecodeLeaf(b.Cosigners.Changes[i].Leaf)
		if err != nil {
			return fmt.Errorf("%w: change %d: leaf: %w", ErrMalformed, i, err)
		}
		if ch.Operation != f.changes[i].CID || ch.Index != leaf.Index {
			return fmt.Errorf("%w: change %d is %s at raft index %d in the state, the bundle carries %s at index %d",
				ErrCosignerChangeOmitted, i, ch.Operation, ch.Index, f.changes[i].CID, leaf.Index)
		}
	}
	if !record.SameCosigners(rec.Cosigners, rec.Quorum, f.set.keys, f.set.quorum) {
		return fmt.Errorf("%w: the state's cosigner set is not the one the changes lead to", ErrCosignerChangeOmitted)
	}
	return nil
}
