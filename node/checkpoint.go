package node

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/registry/tlog"
)

var _ gateway.Checkpoints = (*Node)(nil)

var _ cosign.Log = stateLog{}

// stateLog is the registry state's log as the cosigner reads it: below
// the commitment's feature level the log is empty, not an error to warn
// about every second until the cluster raises its level.
type stateLog struct{ *registry.State }

// LogHead implements cosign.Log.
func (l stateLog) LogHead() (uint64, []byte, error) {
	size, root, err := l.State.LogHead()
	if errors.Is(err, registry.ErrNoCommitment) {
		return 0, nil, nil
	}
	return size, root, err
}

// startCosign starts cosigning and collecting checkpoints when the genesis
// lists cosigners. A node whose own key is not among them still collects
// (as leader) and fetches (as follower) the checkpoint, so every node
// serves GET /v1/checkpoint.
func (n *Node) startCosign(testLog cosign.Log) error {
	g := n.State.Genesis()
	if len(g.Cosigners) == 0 {
		return nil
	}
	var log cosign.Log = stateLog{n.State}
	setAt := n.cosignersAt
	if testLog != nil {
		// A test's log stands in for the state's, whose changes it does
		// not hold: the genesis set cosigns it.
		log, setAt = testLog, nil
	}
	keys := make([]tlog.CosignerKey, 0, len(g.Cosigners))
	for _, v := range g.Cosigners {
		k, err := tlog.ParseCosignerKey(v)
		if err != nil {
			return fmt.Errorf("genesis cosigner %q: %w", v, err)
		}
		keys = append(keys, k)
	}
	origin, err := tlog.Origin(n.State.GenesisCID())
	if err != nil {
		return err
	}
	n.cosign, err = cosign.New(cosign.Config{
		Host: n.host, Identity: n.identity, Log: log, Origin: origin,
		Cosigners: keys, Quorum: g.CosignerQuorumOf(), SetAt: setAt,
		StatePath: filepath.Join(n.cfg.DataDir, cosign.StateFile),
		// Members only: a configured peer that is not one (a node to be
		// added, a removed one still listed) has nothing to ask of it.
		Allowed:  func(p peer.ID) bool { return p == n.host.ID() || n.gater.Member(p) },
		IsLeader: n.cluster.IsLeader,
		Leader: func() peer.ID {
			id, err := peer.Decode(n.cluster.LeaderID())
			if err != nil {
				return ""
			}
			return id
		},
		Interval: n.cfg.Proofs.CosignInterval,
		Audit:    n.audit.cosignGate,
		Logger:   n.log, Metrics: n.Metrics,
	})
	if err != nil {
		return fmt.Errorf("cosigning: %w", err)
	}
	n.cosign.Start()
	n.log.Info("checkpoints cosigned by the cosigners in force", "genesis_cosigners", len(keys), "genesis_quorum", g.CosignerQuorumOf(), "this_node_cosigns", n.cosign.IsCosigner())
	return nil
}

// cosignersAt is the cosigner set in force for a checkpoint of log size
// size (cosign.Config.SetAt): the genesis set as changed by the
// setCosigners the state applied below that size.
func (n *Node) cosignersAt(size uint64) (cosign.Roster, error) {
	set, err := n.State.CosignersAt(size)
	if err != nil {
		return cosign.Roster{}, err
	}
	keys := make([]tlog.CosignerKey, 0, len(set.Keys))
	for _, v := range set.Keys {
		k, err := tlog.ParseCosignerKey(v)
		if err != nil {
			return cosign.Roster{}, fmt.Errorf("cosigner %q: %w", v, err)
		}
		keys = append(keys, k)
	}
	return cosign.Roster{Cosigners: keys, Quorum: set.QuorumOf(), Changes: set.Changes}, nil
}

// LatestCheckpoint returns the latest checkpoint of the registry's log
// with a quorum of cosignatures, as a signed note (gateway.Checkpoints).
func (n *Node) LatestCheckpoint() ([]byte, error) {
	if len(n.State.Genesis().Cosigners) == 0 {
		return nil, gateway.ErrNoCosigners
	}
	if n.cosign == nil {
		return nil, record.Errorf(gateway.ErrNoCheckpoint, "cosigning has not started on this node")
	}
	note, _, err := n.cosign.Latest()
	if errors.Is(err, cosign.ErrNoCheckpoint) {
		return nil, gateway.ErrNoCheckpoint
	}
	return note, err
}
