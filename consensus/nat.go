package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability values of NATConfig.Reachability.
const (
	// ReachabilityAuto lets AutoNAT (v1 and v2, answered by members for
	// members) find out whether other members can dial this node.
	ReachabilityAuto = "auto"
	// ReachabilityPublic declares the node dialable: it relays for
	// members (with RelayService) and seeks no relay.
	ReachabilityPublic = "public"
	// ReachabilityPrivate declares the node undialable (behind NAT or a
	// firewall): it reserves a slot with its relays at once.
	ReachabilityPrivate = "private"
)

// ErrReachability is returned for a reachability other than the three.
var ErrReachability = errors.New("consensus: reachability must be auto, public or private")

// NATConfig says how a node is reached when it cannot be dialled. Its
// zero value is a node that neither relays, nor uses relays, nor punches
// holes: members that dial each other directly.
type NATConfig struct {
	// Enabled turns the rest on; off, the host has no relay transport.
	Enabled bool
	// Reachability is ReachabilityAuto ("" too), ReachabilityPublic or
	// ReachabilityPrivate.
	Reachability string
	// RelayService makes this node a circuit relay v2 for members only,
	// with relayResources, once it is reachable (public, declared or
	// found by AutoNAT).
	RelayService bool
	// Relays are the members this node reserves a relay slot with when it
	// is not reachable; it then advertises /p2p/<relay>/p2p-circuit
	// addresses, through which members dial it.
	Relays []peer.AddrInfo
	// HolePunching runs DCUtR: a member connected through a relay is
	// dialled back directly, or a hole is punched between the two.
	HolePunching bool
	// Logger receives the hole-punching outcomes and why hole punching
	// cannot start; nil discards them.
	Logger *slog.Logger
}

// relayResources bounds what a member gives the members it relays for.
// Circuits carry raft traffic until a direct connection replaces them, so
// a circuit has no time or data limit (libp2p's default, 2 minutes and
// 128 KiB, would cut replication off); the number of reservations and
// circuits is what is limited, and only members get either (relayACL).
//
// MaxReservationsPerPeer is not set: it is deprecated, and the relay
// (go-libp2p v0.51) reads it nowhere, holding one reservation per peer.
func relayResources() relayv2.Resources {
	return relayv2.Resources{
		Limit:                 nil,
		ReservationTTL:        time.Hour,
		MaxReservations:       64,
		MaxCircuits:           8,
		BufferSize:            64 << 10,
		MaxReservationsPerIP:  16,
		MaxReservationsPerASN: 64,
	}
}

// relayACL admits reservations from members only and circuits only
// between members. The gater already refuses non-members' connections;
// the ACL holds even for a member asking to reach a non-member.
type relayACL struct{ g *Gater }

var _ relayv2.ACLFilter = relayACL{}

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	return a.g != nil && a.g.Allowed(p)
}

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.g != nil && a.g.Allowed(src) && a.g.Allowed(dst)
}

// natOptions are the libp2p options for cfg; gater admits the members.
// The relay reservations are natHost's (reserver): natOptions makes it,
// and its addresses join the host's through libp2p.AddrsFactory.
func natOptions(cfg NATConfig, gater *Gater, rs *reserver) ([]libp2p.Option, error) {
	if !cfg.Enabled {
		return []libp2p.Option{libp2p.DisableRelay()}, nil
	}
	log := natLog(cfg)
	opts := []libp2p.Option{libp2p.EnableRelay()}
	switch cfg.Reachability {
	case "", ReachabilityAuto:
		// Members answer each other's AutoNAT probes (the gater keeps
		// everyone else out).
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableAutoNATv2())
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	default:
		return nil, fmt.Errorf("%w: %q", ErrReachability, cfg.Reachability)
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayResources()), relayv2.WithACL(relayACL{gater})))
	}
	if rs != nil {
		opts = append(opts, libp2p.AddrsFactory(rs.withCircuits))
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(holePunchLog{log})))
	}
	return opts, nil
}

// holePunchLog logs DCUtR's outcomes: an operator learns from them
// whether a member behind NAT ends up connected directly, and if not, why.
type holePunchLog struct{ log *slog.Logger }

func (l holePunchLog) Trace(e *holepunch.Event) {
	switch ev := e.Evt.(type) {
	case *holepunch.DirectDialEvt:
		if ev.Success {
			l.log.Info("connected directly to a member that came through a relay", "peer", e.Remote.String())
		} else {
			l.log.Info("could not dial back a member that came through a relay; punching a hole", "peer", e.Remote.String(), "err", ev.Error)
		}
	case *holepunch.EndHolePunchEvt:
		if ev.Success {
			l.log.Info("hole punched: connected directly to a member", "peer", e.Remote.String())
		} else {
			l.log.Warn("hole punching failed: the member stays reached through its relay", "peer", e.Remote.String(), "err", ev.Error)
		}
	case *holepunch.ProtocolErrorEvt:
		l.log.Warn("hole punching could not start with a member: it stays reached through its relay", "peer", e.Remote.String(), "err", ev.Error)
	}
}

// Connection kinds of MemberStatus.Connection.
const (
	ConnDirect  = "direct"
	ConnRelayed = "relayed"
)

// connectionKind says how this node is connected to p: ConnDirect if any
// of its connections is direct, ConnRelayed if all go through a relay,
// "" if there is none.
func connectionKind(h host.Host, p peer.ID) string {
	kind := ""
	for _, c := range h.Network().ConnsToPeer(p) {
		if isCircuit(c.RemoteMultiaddr()) {
			kind = ConnRelayed
			continue
		}
		return ConnDirect
	}
	return kind
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// memberDial marks ctx for dials to the member p as a forced direct dial
// (past libp2p's dial backoff; the callers retry on their own terms)
// unless this node knows an address of p through a relay: a forced
// direct dial leaves relayed addresses out, and a member behind NAT may
// have no other.
func memberDial(ctx context.Context, h host.Host, p peer.ID, reason string) context.Context {
	if slices.ContainsFunc(h.Peerstore().Addrs(p), isCircuit) {
		return ctx
	}
	return network.WithForceDirectDial(ctx, reason)
}

// ErrNoPublicAddr is why hole punching cannot start: libp2p punches
// holes only from addresses it counts as public (manet.IsPublicAddr),
// and a node that has none (every address it listens on and every
// address members observe it at is private, loopback or unroutable) is
// reached only through its relay.
var ErrNoPublicAddr = errors.New("hole punching cannot start: this node has no public address (libp2p punches holes only from public addresses), so members that cannot dial it reach it through its relay")

// watchHolePunching logs, once after wait and then whenever it changes,
// whether hole punching can start on h: it cannot while h knows no public
// address of its own. It returns a function that stops the watch.
func watchHolePunching(h host.Host, log *slog.Logger, wait time.Duration) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		const every = 30 * time.Second // re-check interval after the first
		last := ""
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			addrs := ownAddrs(h)
			public := false
			for _, a := range addrs {
				public = public || (!isCircuit(a) && manet.IsPublicAddr(a))
			}
			state := "public"
			if !public {
				state = "none"
			}
			if state != last {
				if public {
					log.Info("hole punching can start: this node has a public address", "addrs", joinAddrs(addrs))
				} else {
					log.Warn(ErrNoPublicAddr.Error(), "addrs", joinAddrs(addrs))
				}
				last = state
			}
			t.Reset(every)
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

// ownAddrs are h's listen addresses and the addresses peers observe it
// at (identify), the ones hole punching chooses from.
func ownAddrs(h host.Host) []ma.Multiaddr {
	addrs := h.Addrs()
	if o, ok := h.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		addrs = append(addrs, o.AllAddrs()...)
	}
	return ma.Unique(addrs)
}

func joinAddrs(addrs []ma.Multiaddr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// natHost is the host with its relay reservations and hole-punching
// watch, which Close stops.
type natHost struct {
	host.Host
	stops []func()
}

func (h natHost) Close() error {
	for _, stop := range h.stops {
		stop()
	}
	return h.Host.Close()
}

// newReserver returns the reserver for cfg, nil when cfg has no relays.
func newReserver(cfg NATConfig) *reserver {
	if !cfg.Enabled || len(cfg.Relays) == 0 {
		return nil
	}
	return &reserver{relays: cfg.Relays, log: natLog(cfg), byRelay: map[peer.ID]reservation{}}
}

func natLog(cfg NATConfig) *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// withNAT starts what cfg asks for beyond libp2p's options on h: the
// relay reservations (rs, nil for none) and the hole-punching watch.
func withNAT(h host.Host, cfg NATConfig, rs *reserver) host.Host {
	var stops []func()
	if rs != nil {
		stops = append(stops, rs.start(h, cfg.Reachability))
	}
	if cfg.Enabled && cfg.HolePunching && cfg.Reachability != ReachabilityPublic {
		stops = append(stops, watchHolePunching(h, natLog(cfg), natHoleWatchDelay))
	}
	if len(stops) == 0 {
		return h
	}
	return natHost{Host: h, stops: stops}
}

// natHoleWatchDelay is how long after start the hole-punching watch first
// looks: time for identify to learn the addresses members observe.
const natHoleWatchDelay = 10 * time.Second
