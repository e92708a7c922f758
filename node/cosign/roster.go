package cosign

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/trustreg/trustreg/registry/tlog"
)

// Roster is a cosigner set and the quorum a checkpoint needs from it.
type Roster struct {
	Cosigners []tlog.CosignerKey
	Quorum    int
	// Changes is how many cosigner changes led to the set (0: the
	// genesis's): a member cosigns a checkpoint only while the set in
	// force at its size is the one in force at its own log's head.
	Changes int
}

// maxRosters bounds the cosigner sets a service keeps built; sets change
// only through governance, so a few cover every size it is asked about.
const maxRosters = 16

// roster is a Roster built for use: each member's peer and verifier, the
// verifier of a quorum of them, and this node's cosigner when its key is
// in the set (nil otherwise).
type roster struct {
	members  []member
	verifier *tlog.Verifier
	cosigner *tlog.Cosigner
}

// rosterAt returns the cosigner set in force for a checkpoint of size
// size (Config.SetAt; the genesis set without it).
func (s *Service) rosterAt(size uint64) (*roster, error) {
	r := Roster{Cosigners: s.cfg.Cosigners, Quorum: s.cfg.Quorum}
	if s.cfg.SetAt != nil {
		var err error
		if r, err = s.cfg.SetAt(size); err != nil {
			return nil, fmt.Errorf("%w: the cosigner set at size %d: %w", ErrUnavailable, size, err)
		}
	}
	return s.rosterOf(r)
}

// rosterOf returns r built, from the service's cache of built sets. The
// cache is keyed by the set's keys and quorum, so an entry is never stale:
// a changed set is another key. It holds at most maxRosters sets and is
// emptied when full.
func (s *Service) rosterOf(r Roster) (*roster, error) {
	var id strings.Builder
	for _, k := range r.Cosigners {
		id.WriteString(k.String() + "\n")
	}
	id.WriteString(strconv.Itoa(r.Quorum))
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if x, ok := s.rosters[id.String()]; ok {
		return x, nil
	}
	x, err := s.buildRoster(r)
	if err != nil {
		return nil, err
	}
	if len(s.rosters) >= maxRosters {
		clear(s.rosters)
	}
	s.rosters[id.String()] = x
	return x, nil
}

// buildRoster builds r; the caller holds rmu.
func (s *Service) buildRoster(r Roster) (*roster, error) {
	if len(r.Cosigners) == 0 {
		return nil, ErrNoCosigners
	}
	v, err := tlog.NewVerifier(s.cfg.Origin, r.Cosigners, r.Quorum)
	if err != nil {
		return nil, err
	}
	out := &roster{verifier: v}
	for _, k := range r.Cosigners {
		id, err := PeerOf(k)
		if err != nil {
			return nil, err
		}
		one, err := tlog.NewVerifier(s.cfg.Origin, []tlog.CosignerKey{k}, 1)
		if err != nil {
			return nil, err
		}
		out.members = append(out.members, member{key: k, peer: id, one: one})
		if id != s.self {
			continue
		}
		// This node's key under the set's name for it; one cosigner per
		// name, all over the one state file (signMu serializes them).
		if c, ok := s.cosigners[k.Name]; ok {
			out.cosigner = c
			continue
		}
		priv, err := ed25519Of(s.cfg.Identity)
		if err != nil {
			return nil, err
		}
		signer, err := tlog.NewCosignatureSigner(k.Name, priv)
		if err != nil {
			return nil, err
		}
		if out.cosigner, err = tlog.NewCosigner(signer, s.cfg.Origin, s.state, s.cfg.Now); err != nil {
			return nil, err
		}
		s.cosigners[k.Name] = out.cosigner
	}
	return out, nil
}
