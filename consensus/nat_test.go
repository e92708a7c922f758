package consensus

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// mustNewNATHost starts a host on loopback with nat and gater g (nil:
// admits everyone).
func mustNewNATHost(t *testing.T, g func(self peer.ID) *Gater, nat NATConfig) (host.Host, *Gater) {
	t.Helper()
	id, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := peer.IDFromPrivateKey(id)
	var gater *Gater
	if g != nil {
		gater = g(self)
	}
	nat.Enabled = true
	h, err := NewHost(HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: gater, NAT: nat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, gater
}

// circuitAddrs are h's addresses through a relay.
func circuitAddrs(h host.Host) []ma.Multiaddr {
	return slices.DeleteFunc(h.Addrs(), func(a ma.Multiaddr) bool { return !isCircuit(a) })
}

// TestRelayServesMembersOnly: a member behind NAT (reachability private)
// reserves a slot with another member that relays, and a third member
// reaches it through the relay, over a relayed connection without limits
// (raft traffic passes). A peer that is not a member gets no reservation
// and cannot reach the member through the relay.
func TestRelayServesMembersOnly(t *testing.T) {
	// Peer ids are known only once the hosts exist: the gaters admit the
	// members added to them below.
	relay, relayGater := mustNewNATHost(t, func(self peer.ID) *Gater { return NewGater(self) },
		NATConfig{Reachability: ReachabilityPublic, RelayService: true})
	relayInfo := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	natd, natdGater := mustNewNATHost(t, func(self peer.ID) *Gater { return NewGater(self, relay.ID()) },
		NATConfig{Reachability: ReachabilityPrivate, Relays: []peer.AddrInfo{relayInfo}, HolePunching: true})
	other, otherGater := mustNewNATHost(t, func(self peer.ID) *Gater { return NewGater(self, relay.ID(), natd.ID()) },
		NATConfig{Reachability: ReachabilityPublic, RelayService: true})
	stranger, _ := mustNewNATHost(t, nil, NATConfig{Reachability: ReachabilityPrivate})
	relayGater.Allow(natd.ID())
	relayGater.Allow(other.ID())
	natdGater.Allow(other.ID())
	_ = otherGater

	deadline := time.Now().Add(30 * time.Second)
	for len(circuitAddrs(natd)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the member behind NAT has no relay address 30 s after start: %v", natd.Addrs())
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	circuit := circuitAddrs(natd)[0]

	// A member reaches it through the relay only (no direct address).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other.Peerstore().AddAddrs(natd.ID(), []ma.Multiaddr{circuit}, peerstore.TempAddrTTL)
	if err := other.Connect(ctx, peer.AddrInfo{ID: natd.ID()}); err != nil {
		t.Fatalf("member through the relay: %v", err)
	}
	if got := connectionKind(other, natd.ID()); got != ConnRelayed {
		t.Errorf("connection to the member behind NAT: %q, want %q", got, ConnRelayed)
	}
	if got := connectionKind(other, relay.ID()); got != ConnDirect {
		t.Errorf("connection to the relay: %q, want %q", got, ConnDirect)
	}
	for _, c := range other.Network().ConnsToPeer(natd.ID()) {
		if c.Stat().Limited {
			t.Errorf("relayed connection %s is limited: raft streams could not use it", c.RemoteMultiaddr())
		}
	}

	// A stranger: no reservation, no circuit to the member.
	if _, err := client.Reserve(ctx, stranger, relayInfo); err == nil {
		t.Error("a peer that is not a member got a reservation")
	}
	stranger.Peerstore().AddAddrs(natd.ID(), []ma.Multiaddr{circuit}, peerstore.TempAddrTTL)
	if err := stranger.Connect(ctx, peer.AddrInfo{ID: natd.ID()}); err == nil {
		t.Error("a peer that is not a member reached the member behind NAT through the relay")
	}
	if got := connectionKind(stranger, natd.ID()); got != "" {
		t.Errorf("stranger's connection to the member: %q", got)
	}

	// The member behind NAT dials the one that came through the relay
	// back (here it can: loopback has no NAT), and they are connected
	// directly.
	deadline = time.Now().Add(30 * time.Second)
	for connectionKind(other, natd.ID()) != ConnDirect {
		if time.Now().After(deadline) {
			t.Fatalf("not connected directly 30 s after the relayed connection: %q", connectionKind(other, natd.ID()))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// TestRelayACL: reservations for members only, circuits between members
// only (a member cannot use the relay to reach a peer that is not one).
func TestRelayACL(t *testing.T) {
	ids := make([]peer.ID, 3)
	for i := range ids {
		k, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "k"))
		if err != nil {
			t.Fatal(err)
		}
		ids[i], _ = peer.IDFromPrivateKey(k)
	}
	self, member, stranger := ids[0], ids[1], ids[2]
	acl := relayACL{NewGater(self, member)}
	for _, tc := range []struct {
		name     string
		got, out bool
	}{
		{"reserve: member", acl.AllowReserve(member, nil), true},
		{"reserve: stranger", acl.AllowReserve(stranger, nil), false},
		{"connect: member to member", acl.AllowConnect(member, nil, self), true},
		{"connect: member to stranger", acl.AllowConnect(member, nil, stranger), false},
		{"connect: stranger to member", acl.AllowConnect(stranger, nil, member), false},
		{"no gater", relayACL{}.AllowReserve(member, nil), false},
	} {
		if tc.got != tc.out {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.out)
		}
	}
}

// TestNATConfigRefusesAnUnknownReachability.
func TestNATConfigRefusesAnUnknownReachability(t *testing.T) {
	if _, err := natOptions(NATConfig{Enabled: true, Reachability: "sometimes"}, nil, nil); !errors.Is(err, ErrReachability) {
		t.Fatalf("reachability sometimes: %v, want ErrReachability", err)
	}
}

// TestMemberByDNSName: a member's address may be a DNS name
// (/dns4/<name>/tcp/<port>), resolved when it is dialled.
func TestMemberByDNSName(t *testing.T) {
	a, _ := mustNewNATHost(t, nil, NATConfig{Reachability: ReachabilityPublic})
	b, _ := mustNewNATHost(t, nil, NATConfig{Reachability: ReachabilityPublic})
	var port string
	for _, addr := range b.Addrs() {
		if p, err := addr.ValueForProtocol(ma.P_TCP); err == nil {
			port = p
		}
	}
	byName := ma.StringCast("/dns4/localhost/tcp/" + port)
	a.Peerstore().AddAddrs(b.ID(), []ma.Multiaddr{byName}, peerstore.PermanentAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.NewStream(memberDial(ctx, a, b.ID(), "test"), b.ID(), "/trustreg/none"); err == nil {
		t.Fatal("a stream of a protocol b does not speak")
	}
	if got := connectionKind(a, b.ID()); got != ConnDirect {
		t.Fatalf("after dialling %s: connection %q, want direct", byName, got)
	}
}
