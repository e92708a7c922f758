package consensus

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

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
	// The gater admits cluster peers only, and a busy follower forwards
	// hundreds of writes at once over streams to the leader: libp2p's
	// default per-peer stream limits would refuse them. Limits stay off
	// for the peers we admit.
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits), rcmgr.WithMetricsDisabled())
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
// current raft configuration plus the configured peers.
type Gater struct {
	mu      sync.RWMutex
	self    peer.ID
	allowed map[peer.ID]bool
	blocked map[peer.ID]bool
	// OnRefused, if set, is told about every refused peer.
	OnRefused func(peer.ID, network.Direction)
}

// NewGater returns a gater that admits the given peers.
func NewGater(self peer.ID, peers ...peer.ID) *Gater {
	g := &Gater{self: self, allowed: map[peer.ID]bool{}, blocked: map[peer.ID]bool{}}
	for _, p := range peers {
		g.allowed[p] = true
	}
	return g
}

// Allow admits a peer.
func (g *Gater) Allow(p peer.ID) {
	g.mu.Lock()
	g.allowed[p] = true
	g.mu.Unlock()
}

// Disallow stops admitting a peer.
func (g *Gater) Disallow(p peer.ID) {
	g.mu.Lock()
	delete(g.allowed, p)
	g.mu.Unlock()
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
	return p == g.self || (g.allowed[p] && !g.blocked[p])
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
