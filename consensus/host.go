package consensus

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/fx"
)

// LoadOrCreateIdentity reads the node's libp2p private key from path, or
// creates an Ed25519 key there (mode 0600) on first start.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("node identity %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	raw, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, fmt.Errorf("write node identity: %w", err)
	}
	return k, nil
}

// HostConfig configures the node's libp2p host.
type HostConfig struct {
	Identity crypto.PrivKey
	Listen   []string // multiaddrs
	// PSK, if set, closes the network to peers without the same 32-byte
	// pre-shared key. libp2p private networks work over TCP only, so QUIC
	// listen addresses are refused with a PSK.
	PSK   []byte
	Gater *Gater
	// NAT says how the node is reached when it cannot be dialled
	// (nat.go); its zero value has no relays and no hole punching.
	NAT NATConfig
}

// NewHost starts a libp2p host with TCP and QUIC transports, Noise and TLS
// security, and the gater that admits cluster peers only.
func NewHost(cfg HostConfig) (host.Host, error) {
	// Inbound TCP connections get handshakeTimeout to finish their
	// security handshake (handshake.go); the gater is told when they do.
	hs := newHandshakes()
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Transport(newTCPTransport(hs)),
		libp2p.ConnectionGater(hostGater{admit: cfg.Gater, hs: hs}),
		// libp2p registers its metrics with Prometheus's global registry,
		// which the node does not serve (its /metrics has a registry of its
		// own): collecting them was CPU for nothing, about 1.5 % of a
		// leader's at 64 writing clients, most of it the resource manager
		// formatting a timestamp for every stream and memory event.
		// (go-libp2p v0.51 still gives its event bus a metrics tracer: a few
		// counters, moved when a subscription changes, not per stream.)
		libp2p.DisableMetrics(),
	}
	rs := newReserver(cfg.NAT)
	nat, err := natOptions(cfg.NAT, cfg.Gater, rs)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nat...)
	if len(cfg.PSK) > 0 {
		if len(cfg.PSK) != 32 {
			return nil, fmt.Errorf("pre-shared key must be 32 bytes, got %d", len(cfg.PSK))
		}
		for _, a := range cfg.Listen {
			if m, err := ma.NewMultiaddr(a); err == nil {
				if _, err := m.ValueForProtocol(ma.P_QUIC_V1); err == nil {
					return nil, fmt.Errorf("listen address %s: QUIC cannot carry a pre-shared-key network; listen on TCP only", a)
				}
			}
		}
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(cfg.PSK)))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	// The gater admits cluster peers only; the resource manager bounds
	// what each of them may hold (hostLimits).
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(hostLimits()), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, err
	}
	// The peerstore, the connection manager (libp2p's own defaults, made
	// here) and the swarm are held so that a host that fails to start
	// (its listen address taken, say) can be taken apart: libp2p v0.51
	// closes none of them then, and their goroutines would outlive the
	// call — in a node that retries, or a test that goes on.
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		_ = rm.Close() // nothing was admitted through it
		return nil, err
	}
	cm, err := connmgr.NewConnManager(160, 192)
	if err != nil {
		_ = ps.Close() // empty
		_ = rm.Close()
		return nil, err
	}
	var sw *swarm.Swarm
	opts = append(opts, libp2p.ResourceManager(rm), libp2p.Peerstore(ps), libp2p.ConnectionManager(cm),
		libp2p.WithFxOption(fx.Populate(&sw)))
	h, err := libp2p.New(opts...)
	if err != nil {
		if sw != nil {
			_ = sw.Close() // it listens nowhere and has no connections
		}
		_ = cm.Close()
		_ = ps.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return withNAT(h, cfg.NAT, rs), nil
}

// Gater admits connections only from and to the cluster's peers: the
// current raft configuration plus the configured peers (Allow: p2p.peers
// and raft.join) and a peer an add in progress admits (Admit). A member
// that leaves the configuration is no longer admitted unless it is
// configured, and one that is stays refused what only members may ask
// (Member) and what only voters send (Voter).
type Gater struct {
	mu      sync.RWMutex
	self    peer.ID
	allowed map[peer.ID]bool // configured
	blocked map[peer.ID]bool
	// members holds the peers of the raft configuration, each with the
	// index of the newest configuration known to hold it; voters those of
	// them that vote.
	members map[peer.ID]uint64
	voters  map[peer.ID]bool
	// configured says whether a configuration was given yet, joining
	// whether the last one given was empty (this node joins a cluster);
	// newest is the highest index of one given.
	configured, joining bool
	newest              uint64
	// removedAt holds the index at which this node, leading, removed a
	// peer (Remove): a configuration read before it does not make the
	// peer a member again.
	removedAt map[peer.ID]uint64
	// adding counts the adds in progress that admit a peer.
	adding map[peer.ID]int
	// vouched holds, for a peer another this node knows follows as
	// leader, until when it may lead this node (Vouch).
	vouched map[peer.ID]time.Time
	// OnRefused, if set, is told about every refused peer.
	OnRefused func(peer.ID, network.Direction)
}

// NewGater returns a gater that admits the given peers.
func NewGater(self peer.ID, peers ...peer.ID) *Gater {
	g := &Gater{self: self, allowed: map[peer.ID]bool{}, blocked: map[peer.ID]bool{},
		members: map[peer.ID]uint64{}, voters: map[peer.ID]bool{}, removedAt: map[peer.ID]uint64{}, adding: map[peer.ID]int{}, vouched: map[peer.ID]time.Time{}}
	for _, p := range peers {
		g.allowed[p] = true
	}
	return g
}

// Allow admits a peer: a configured one.
func (g *Gater) Allow(p peer.ID) {
	g.mu.Lock()
	g.allowed[p] = true
	g.mu.Unlock()
}

// Disallow stops admitting a configured peer (a member is still admitted).
func (g *Gater) Disallow(p peer.ID) {
	g.mu.Lock()
	delete(g.allowed, p)
	g.mu.Unlock()
}

// Admit admits p while an add of it is in progress, and returns the call
// that ends it: done(index, voter) with the index of the configuration
// that holds p once the add succeeded (p is a member from then on, a voter
// if voter), done(0, false) when it failed; done reports whether p is
// still admitted.
func (g *Gater) Admit(p peer.ID) (done func(index uint64, voter bool) bool) {
	g.mu.Lock()
	g.adding[p]++
	g.mu.Unlock()
	var once sync.Once
	admitted := true
	return func(index uint64, voter bool) bool {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.adding[p]--; g.adding[p] <= 0 {
				delete(g.adding, p)
			}
			if index > 0 && index >= g.members[p] {
				g.members[p] = index
				g.voters[p] = voter
				delete(g.removedAt, p)
			}
			admitted = g.admittedLocked(p)
		})
		return admitted
	}
}

// GaterMember is a server of a raft configuration as the gater takes it.
type GaterMember struct {
	ID    peer.ID
	Voter bool
}

// SetMembers takes the raft configuration of log index index, whose
// servers are servers, as raft reports it latest (it may be older than one
// taken before: an entry not committed and then overwritten), and returns
// the peers that left the membership with it and are no longer admitted
// (their connections are the caller's to close). A member that an add made
// known at a newer index stays, and a peer this node removed at a newer
// index (Remove) does not come back.
func (g *Gater) SetMembers(servers []GaterMember, index uint64) (gone []peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	in := make(map[peer.ID]bool, len(servers))
	g.configured, g.joining = true, len(servers) == 0
	if index > g.newest {
		// A newer configuration says who votes: what a vouch stood in
		// for (a promotion not yet seen) is known now, and a peer vouched
		// for and since demoted or removed must not keep it.
		clear(g.vouched)
	}
	g.newest = max(g.newest, index)
	for _, m := range servers {
		if m.ID == g.self {
			continue
		}
		if at, ok := g.removedAt[m.ID]; ok && at > index {
			continue // read before this node removed it
		}
		delete(g.removedAt, m.ID)
		in[m.ID] = true
		if index >= g.members[m.ID] {
			g.voters[m.ID] = m.Voter
		}
		g.members[m.ID] = max(g.members[m.ID], index)
	}
	for id, at := range g.members {
		if in[id] || at > index {
			continue
		}
		delete(g.members, id)
		delete(g.voters, id)
		if !g.admittedLocked(id) {
			gone = append(gone, id)
		}
	}
	return gone
}

// Remove takes a member out at once, as the configuration of index index
// (a removal this node, leading, just committed) holds it no longer, and
// reports whether it is no longer admitted.
func (g *Gater) Remove(p peer.ID, index uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removedAt[p] = max(g.removedAt[p], index)
	if at, ok := g.members[p]; ok && at <= index {
		delete(g.members, p)
		delete(g.voters, p)
	}
	return !g.admittedLocked(p)
}

// Member reports whether p is in the raft configuration as this node
// last saw it.
func (g *Gater) Member(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.members[p]
	return ok
}

// Voter reports whether p may send what only a voter sends (entries, a
// snapshot, a call to stand for election, a vote request): it is a voter
// of the raft configuration as this node last saw it, or this node has
// no configuration at all (it is joining, and whoever leads the cluster
// that adds it sends them). Before the first configuration is given, no
// one is.
func (g *Gater) Voter(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.voters[p] || (g.configured && g.joining)
}

// Vouched reports whether p may lead this node though it is no voter of
// its configuration: another peer this node knows said that it follows p
// (Vouch), not long ago, no newer configuration came since, and p is a
// member (one this node holds a non-voter) or this node's only voter's
// configured peer (LoneVoterWith).
func (g *Gater) Vouched(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !time.Now().Before(g.vouched[p]) {
		return false
	}
	_, member := g.members[p]
	return member || g.loneVoterWithLocked(p)
}

// LoneVoterWith reports whether this node is the only voter of its
// configuration and p a configured peer that is no member: what a member
// restored from a backup and started alone sees of its old cluster's
// leader, whose entries its fork guard must see to stop it.
func (g *Gater) LoneVoterWith(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.loneVoterWithLocked(p)
}

func (g *Gater) loneVoterWithLocked(p peer.ID) bool {
	if _, member := g.members[p]; member || !g.allowed[p] || !g.configured || g.joining {
		return false
	}
	for _, v := range g.voters {
		if v {
			return false
		}
	}
	return true
}

// Vouch lets p, a member or while LoneVoterWith(p) holds, lead this node
// until until (Vouched): a voter this node knows (another configured peer,
// for a lone voter) follows p as its leader. A member this node holds as
// a non-voter leads when this node missed its promotion: only the leader
// would send it the entry that says so.
func (g *Gater) Vouch(p peer.ID, until time.Time) {
	g.mu.Lock()
	g.vouched[p] = until
	g.mu.Unlock()
}

// Voters returns the voters of the configuration as this node knows it,
// but for itself.
func (g *Gater) Voters() []peer.ID {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ids := make([]peer.ID, 0, len(g.voters))
	for id, v := range g.voters {
		if v {
			ids = append(ids, id)
		}
	}
	return ids
}

// ConfiguredNonMembers returns the configured peers that are not members
// (this node's replicas are left out: they could vouch for one another).
func (g *Gater) ConfiguredNonMembers() []peer.ID {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ids := make([]peer.ID, 0, len(g.allowed))
	for id := range g.allowed {
		if _, member := g.members[id]; !member {
			ids = append(ids, id)
		}
	}
	return ids
}

// Newest returns the highest index of a configuration given to the gater.
func (g *Gater) Newest() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.newest
}

// Block refuses a peer whatever else admits it, until Unblock: an
// operator fencing a node off, or a test cutting a link.
func (g *Gater) Block(p peer.ID) {
	g.mu.Lock()
	g.blocked[p] = true
	g.mu.Unlock()
}

// Unblock lifts Block.
func (g *Gater) Unblock(p peer.ID) {
	g.mu.Lock()
	delete(g.blocked, p)
	g.mu.Unlock()
}

// Allowed reports whether a peer is admitted.
func (g *Gater) Allowed(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return p == g.self || (g.admittedLocked(p) && !g.blocked[p])
}

// admittedLocked reports whether p is configured, a member or being added.
func (g *Gater) admittedLocked(p peer.ID) bool {
	_, member := g.members[p]
	return g.allowed[p] || member || g.adding[p] > 0
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Allowed(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.Allowed(p) }

// InterceptAccept implements connmgr.ConnectionGater; the peer is not known
// before the security handshake, so it is checked in InterceptSecured.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *Gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	ok := g.Allowed(p)
	if !ok && g.OnRefused != nil {
		g.OnRefused(p, dir)
	}
	return ok
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
