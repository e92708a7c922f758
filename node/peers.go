package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/consensus"
)

func peerInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("peer address %q: %w", a, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("peer address %q must end in /p2p/<peer id>: %w", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

func peerIDs(addrs []string) ([]peer.ID, error) {
	infos, err := peerInfos(addrs)
	if err != nil {
		return nil, err
	}
	ids := make([]peer.ID, len(infos))
	for i, ai := range infos {
		ids[i] = ai.ID
	}
	return ids, nil
}

// readPSK reads a pre-shared network key: 64 hex digits.
func readPSK(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pre-shared key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("pre-shared key %s must hold 64 hex digits (32 bytes)", path)
	}
	return key, nil
}

// refusalLog logs the peers the gater refuses, each at most once per
// interval, with the count of refusals it did not log: a peer that keeps
// dialing (a node whose configuration lists this one but which this one
// does not admit, reaching out for a leader every second) would otherwise
// write a line a second.
type refusalLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[peer.ID]refusal
}

type refusal struct {
	at     time.Time
	unsaid int
}

// maxRefusalsTracked bounds the memory of refused peers (peer ids cost an
// outsider nothing to make); past it the memory starts over.
const maxRefusalsTracked = 1024

func newRefusalLog(log *slog.Logger, every time.Duration) *refusalLog {
	return &refusalLog{log: log, every: every, now: time.Now, last: map[peer.ID]refusal{}}
}

func (r *refusalLog) refused(p peer.ID, dir network.Direction) {
	r.mu.Lock()
	now := r.now()
	prev, seen := r.last[p]
	if seen && now.Sub(prev.at) < r.every {
		prev.unsaid++
		r.last[p] = prev
		r.mu.Unlock()
		return
	}
	if !seen && len(r.last) >= maxRefusalsTracked {
		clear(r.last)
	}
	r.last[p] = refusal{at: now}
	r.mu.Unlock()
	r.log.Warn("refused a connection from a peer outside the cluster", "peer", p.String(), "direction", dir.String(),
		"refused_since_last_logged", prev.unsaid)
}

// errRelayNotMember is returned for a p2p.static_relays entry that is not
// a member: the allowlist admits members only, so no other peer can be a
// relay.
var errRelayNotMember = errors.New("p2p.static_relays entry is not a member: list it in p2p.peers or raft.join as well")

// natConfig is the host's NAT configuration from cfg: the static relays
// are p2p.static_relays, or the members of p2p.peers when it is empty,
// and every one of them must be a member (in p2p.peers or raft.join).
func natConfig(cfg configs.P2PConfig, join []string, log *slog.Logger) (consensus.NATConfig, error) {
	members, err := peerIDs(append(slices.Clone(cfg.Peers), join...))
	if err != nil {
		return consensus.NATConfig{}, err
	}
	relays := cfg.StaticRelays
	if len(relays) == 0 {
		relays = cfg.Peers
	}
	infos, err := peerInfos(relays)
	if err != nil {
		return consensus.NATConfig{}, fmt.Errorf("p2p.static_relays: %w", err)
	}
	for _, ai := range infos {
		if !slices.Contains(members, ai.ID) {
			return consensus.NATConfig{}, fmt.Errorf("%w: %s", errRelayNotMember, ai.ID)
		}
	}
	return consensus.NATConfig{Enabled: true, Reachability: cfg.Reachability, RelayService: cfg.RelayService,
		Relays: infos, HolePunching: cfg.HolePunching, Logger: log}, nil
}
