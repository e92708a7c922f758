package consensus

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// Bounds of the relay reservations a node behind NAT keeps.
const (
	// reserveTimeout bounds one reservation request to a relay.
	reserveTimeout = 15 * time.Second
	// reserveRetry is the wait before asking a relay again after it
	// refused or could not be reached.
	reserveRetry = 5 * time.Second
	// reserveRenewBefore is how long before a reservation expires it is
	// renewed (relays grant an hour, relayResources).
	reserveRenewBefore = 10 * time.Minute
	// dialBackEvery is how often a node with relay slots tries to dial
	// directly the members connected to it only through a relay, and
	// dialBackTimeout bounds one such dial.
	dialBackEvery   = 5 * time.Second
	dialBackTimeout = 5 * time.Second
)

// reserver keeps a relay slot with each of a node's static relays (all
// members) while the node is not reachable, and gives the host the
// circuit addresses they make: <relay's address>/p2p/<relay>/p2p-circuit.
// libp2p's autorelay does the same for relays at public addresses only;
// members of a consortium often talk over private ones (a VPC, a
// leased line), so the node keeps its reservations itself.
type reserver struct {
	relays []peer.AddrInfo
	log    *slog.Logger

	mu      sync.Mutex
	byRelay map[peer.ID]reservation
}

type reservation struct {
	expires time.Time
	addrs   []ma.Multiaddr // circuit addresses through this relay
}

// withCircuits is the host's AddrsFactory: its addresses and, while it
// holds reservations, the circuit addresses through its relays.
func (r *reserver) withCircuits(addrs []ma.Multiaddr) []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, res := range r.byRelay {
		if now.Before(res.expires) {
			addrs = append(addrs, res.addrs...)
		}
	}
	return addrs
}

// start keeps the reservations on h until the returned function is called:
// from the start when reachability is private, and while AutoNAT finds h
// private when it is auto; never when it is public.
func (r *reserver) start(h host.Host, reachability string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if reachability == ReachabilityPublic {
		return cancel
	}
	private := make(chan bool, 1)
	if reachability == ReachabilityPrivate {
		private <- true
	} else if sub, err := h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged)); err == nil {
		wg.Go(func() {
			// Closing a subscription only unregisters it; nothing to report.
			defer closeRead(sub)
			for {
				select {
				case <-ctx.Done():
					return
				case e, ok := <-sub.Out():
					if !ok {
						return
					}
					p := e.(event.EvtLocalReachabilityChanged).Reachability == network.ReachabilityPrivate
					select {
					case <-private:
					default:
					}
					private <- p
				}
			}
		})
	}
	wg.Go(func() { r.run(ctx, h, private) })
	wg.Go(func() { r.dialBack(ctx, h) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// run reserves and renews while the last value from private is true.
func (r *reserver) run(ctx context.Context, h host.Host, private <-chan bool) {
	on := false
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case on = <-private:
			if !on {
				r.mu.Lock()
				clear(r.byRelay)
				r.mu.Unlock()
				t.Stop()
				continue
			}
		case <-t.C:
		}
		if !on {
			continue
		}
		t.Reset(r.reserveAll(ctx, h))
	}
}

// reserveAll asks every relay whose reservation is missing or about to
// expire for one, and returns when to look again.
func (r *reserver) reserveAll(ctx context.Context, h host.Host) time.Duration {
	next := time.Hour
	for _, ai := range r.relays {
		r.mu.Lock()
		res, ok := r.byRelay[ai.ID]
		r.mu.Unlock()
		if ok && time.Until(res.expires) > reserveRenewBefore {
			next = min(next, time.Until(res.expires)-reserveRenewBefore)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
		got, err := client.Reserve(rctx, h, ai)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("could not reserve a relay slot with a member; trying again", "relay", ai.ID.String(), "err", err)
			}
			next = min(next, reserveRetry)
			continue
		}
		circuit := ma.StringCast("/p2p/" + ai.ID.String() + "/p2p-circuit")
		var addrs []ma.Multiaddr
		for _, a := range ai.Addrs {
			addrs = append(addrs, a.Encapsulate(circuit))
		}
		r.mu.Lock()
		r.byRelay[ai.ID] = reservation{expires: got.Expiration, addrs: addrs}
		r.mu.Unlock()
		if !ok {
			r.log.Info("reserved a relay slot: members reach this node through the relay", "relay", ai.ID.String(),
				"addrs", joinAddrs(slices.Clone(addrs)), "expires", got.Expiration)
		}
		next = min(next, max(time.Until(got.Expiration)-reserveRenewBefore, reserveRetry))
	}
	return next
}

// dialBack dials directly, every dialBackEvery, each peer connected to h
// only through a relay: the connection reversal that begins DCUtR, which
// libp2p makes only towards public addresses (so never between members
// on private networks). A node behind NAT can usually dial out; once it
// has, the members use the direct connection. It logs when a member
// becomes reachable directly and, once per reason, why it is not.
func (r *reserver) dialBack(ctx context.Context, h host.Host) {
	t := time.NewTicker(dialBackEvery)
	defer t.Stop()
	said := map[peer.ID]string{} // the last outcome logged per peer
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range h.Network().Peers() {
			if connectionKind(h, p) != ConnRelayed || len(h.Peerstore().Addrs(p)) == 0 {
				continue
			}
			dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "dial back a member reached through a relay"), dialBackTimeout)
			err := h.Connect(dctx, peer.AddrInfo{ID: p})
			cancel()
			if ctx.Err() != nil {
				return
			}
			outcome := "direct"
			if err != nil {
				outcome = err.Error()
			} else if connectionKind(h, p) != ConnDirect {
				outcome = "still relayed"
			}
			if said[p] == outcome {
				continue
			}
			said[p] = outcome
			if outcome == "direct" {
				r.log.Info("connected directly to a member that reached this node through a relay (dialled it back)", "peer", p.String())
			} else {
				r.log.Warn("cannot dial a member directly: it reaches this node through the relay; check that this node's NAT or firewall lets it dial the member's p2p addresses", "peer", p.String(), "err", outcome)
			}
		}
	}
}
