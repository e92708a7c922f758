package registry

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/trustreg/trustreg/registry/record"
)

// Cosigner changes (issue #32 item 3), from FeatureLevelCosignerSet on.
// The genesis names the first cosigners; a setCosigners replaces them. It
// is a governance operation whose member signatures are checked against
// the members' genesis keys (verifier.keyFor; record.GovernanceSigners
// counts them), not against keys bound in the state later: a verifier
// follows the changes from the genesis alone. The accepted change is appended to the state's
// record.CosignerSet (tableCosigners), with the raft index of its entry;
// the map commits to that record, so a proof of it shows every change up
// to a checkpoint, and none can be left out.

// cosignerSetKey is the store key of the record.CosignerSet.
var cosignerSetKey = []byte{tableCosigners}

// CosignerSetStoreKey is the store key of the state's cosigner-set record,
// which the state map holds under smt.KeyOf of it (proof bundles prove it
// by this key).
func CosignerSetStoreKey() []byte { return append([]byte(nil), cosignerSetKey...) }

func (c *applyCtx) setCosigners(op *record.SetCosigners) (string, error) {
	if err := c.requireGovernance(); err != nil {
		return "", err
	}
	g := &c.s.genesis
	if len(g.Cosigners) == 0 {
		return "", record.Reject(record.CodeInvalid, "the genesis names no cosigners, so this consortium serves no proofs and has no cosigner set to change")
	}
	if n := len(record.GovernanceSigners(g, c.op)); n < g.Threshold {
		return "", record.Reject(record.CodeNotAuthorized, "setCosigners needs signatures of %d of the %d governance members made with their genesis keys (a verifier checks the change against the genesis alone), it has %d",
			g.Threshold, len(g.Members), n)
	}
	if _, err := record.ParseCosigners(op.Cosigners, op.Quorum); err != nil {
		return "", record.Invalid(err)
	}
	set, err := readCosignerSet(c.b)
	if err != nil {
		return "", err
	}
	cur, q := g.Cosigners, g.CosignerQuorum
	if set != nil {
		cur, q = set.Cosigners, set.Quorum
	} else {
		set = &record.CosignerSet{}
	}
	if len(set.Changes) >= record.MaxCosignerChanges {
		// A bundle carries every change since the genesis, at most this
		// many (proof.MaxCosignerChanges): one more and no answer could be
		// proven again. A consortium past it starts a new genesis.
		return "", record.Reject(record.CodeConflict, "the cosigner set has been changed %d times, the most a proof can follow; a further change needs a new genesis", len(set.Changes))
	}
	if record.SameCosigners(cur, q, op.Cosigners, op.Quorum) {
		return "", record.Reject(record.CodeConflict, "these cosigners, with quorum %d, are the set in force already", record.CosignerQuorum(len(cur), q))
	}
	set.Cosigners, set.Quorum = op.Cosigners, op.Quorum
	set.Changes = append(set.Changes, record.CosignerChange{Operation: c.op.CID, Index: c.index})
	mustSetJSON(c.b, cosignerSetKey, set)
	return fmt.Sprintf("cosigners/%d", len(set.Changes)), nil
}

// readCosignerSet reads the state's cosigner-set record (nil when no
// change has been applied: the genesis's set is in force).
func readCosignerSet(r pebble.Reader) (*record.CosignerSet, error) {
	var set record.CosignerSet
	ok, err := getJSON(r, cosignerSetKey, &set)
	if err != nil || !ok {
		return nil, err
	}
	return &set, nil
}

// ErrNoCosigners is returned for the cosigners of a consortium whose
// genesis names none.
var ErrNoCosigners = errors.New("registry: the genesis names no cosigners")

// Cosigners is a cosigner set: the vkeys, the quorum asked (0: the
// default) and how many changes led to it (0: the genesis's set).
type Cosigners struct {
	Keys    []string
	Quorum  int
	Changes int
}

// QuorumOf is the number of cosignatures a checkpoint needs.
func (c Cosigners) QuorumOf() int { return record.CosignerQuorum(len(c.Keys), c.Quorum) }

// CosignerSet returns the view's cosigner-set record and its stored bytes
// (nil, nil when no change has been applied).
func (v *View) CosignerSet() (*record.CosignerSet, []byte, error) {
	raw, closer, err := v.snap.Get(cosignerSetKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	b := append([]byte(nil), raw...)
	_ = closer.Close() // releases the read value; nothing to report
	var set record.CosignerSet
	if err := decodeRecord(b, &set); err != nil {
		return nil, nil, fmt.Errorf("%w: cosigner set: %w", ErrStateCorrupt, err)
	}
	return &set, b, nil
}

// cosignersThrough returns the cosigner set in force once the log holds
// the entries up to raft index raftIndex: the set the last change applied
// at or below it named, else the genesis g's. Changes only append, so the
// latest state answers for every index it has applied.
func (v *View) cosignersThrough(g *record.Genesis, raftIndex uint64) (Cosigners, error) {
	set, _, err := v.CosignerSet()
	if err != nil {
		return Cosigners{}, err
	}
	n := 0
	if set != nil {
		for n < len(set.Changes) && set.Changes[n].Index <= raftIndex {
			n++
		}
	}
	if n == 0 {
		if len(g.Cosigners) == 0 {
			return Cosigners{}, ErrNoCosigners
		}
		return Cosigners{Keys: g.Cosigners, Quorum: g.CosignerQuorum}, nil
	}
	if n == len(set.Changes) {
		return Cosigners{Keys: set.Cosigners, Quorum: set.Quorum, Changes: n}, nil
	}
	body, err := v.setCosignersOp(set.Changes[n-1].Operation)
	if err != nil {
		return Cosigners{}, err
	}
	return Cosigners{Keys: body.Cosigners, Quorum: body.Quorum, Changes: n}, nil
}

// setCosignersOp reads an accepted setCosigners by CID.
func (v *View) setCosignersOp(cid string) (*record.SetCosigners, error) {
	var rec opRecord
	ok, err := getJSON(v.snap, key(tableOps, cid), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: setCosigners %s named by the cosigner set is not stored", ErrStateCorrupt, cid)
	}
	op, err := record.ParseStoredOperation(rec.JWS)
	if err != nil {
		return nil, fmt.Errorf("%w: setCosigners %s: %w", ErrStateCorrupt, cid, err)
	}
	body, ok := op.Body.(*record.SetCosigners)
	if !ok {
		return nil, fmt.Errorf("%w: operation %s named by the cosigner set is a %s", ErrStateCorrupt, cid, op.Op)
	}
	return body, nil
}

// OperationJWS returns the exact bytes of an accepted operation by CID.
func (v *View) OperationJWS(cid string) ([]byte, error) {
	var rec opRecord
	ok, err := getJSON(v.snap, key(tableOps, cid), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, record.Errorf(record.ErrNotFound, "operation %q", cid)
	}
	return rec.JWS, nil
}

// CosignersAt returns the cosigner set in force for a checkpoint of log
// size size (at most the log's size now), read from the latest state: the
// set named by the last setCosigners among the first size leaves' entries,
// else the genesis's (ErrNoCosigners when it names none).
func (s *State) CosignersAt(size uint64) (Cosigners, error) {
	v := s.View()
	defer v.Close()
	through := uint64(0)
	if size > 0 {
		enc, err := v.Leaf(size - 1)
		if err != nil && !errors.Is(err, ErrNoCommitment) {
			return Cosigners{}, err
		}
		if err == nil {
			if through, err = leafRaftIndex(enc); err != nil {
				return Cosigners{}, err
			}
		}
	}
	return v.cosignersThrough(&s.rules.genesis, through)
}

// CosignersThrough returns the cosigner set in force once the log holds
// the entries up to raft index raftIndex (at most the applied index), read
// from the latest state (CosignersAt by raft index; trustd audit maps the
// audited log's sizes to its own replay's with it).
func (s *State) CosignersThrough(raftIndex uint64) (Cosigners, error) {
	v := s.View()
	defer v.Close()
	return v.cosignersThrough(&s.rules.genesis, raftIndex)
}
