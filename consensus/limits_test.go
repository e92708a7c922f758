package consensus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// mustNewUnlimitedHost is a libp2p host on loopback with no resource
// manager of its own: a peer that opens as many streams as it likes.
func mustNewUnlimitedHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// inboundStreams counts h's inbound streams of protocol id from p.
func inboundStreams(h host.Host, p peer.ID, id string) int {
	n := 0
	for _, c := range h.Network().ConnsToPeer(p) {
		for _, s := range c.GetStreams() {
			if string(s.Protocol()) == id && s.Stat().Direction == network.DirInbound {
				n++
			}
		}
	}
	return n
}

// TestPeerStreamsAreLimited: an admitted peer that opens far more request
// streams to the leader than rpcStreamsPerPeer, and holds each with a
// request type and nothing more (the request's read waits for its
// deadline), has rpcStreamsPerPeer of them served and the rest refused,
// while a follower's writes and more linearizable reads at once than
// rpcCallsPerPeer still go through the leader. With the resource
// manager's limits off, every one of the peer's streams was held.
func TestPeerStreamsAreLimited(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	l := leaderOf(g.cs)
	f := (l + 1) % 3
	leader := g.hosts[l]
	pollUntil(t, "the follower to know the leader", 10*time.Second, func() bool { return g.cs[f].LeaderID() == leader.ID().String() })

	// The peer is admitted and of the cluster: it says hello first, so
	// the leader serves its requests without asking it.
	att := mustNewUnlimitedHost(t)
	for _, gt := range g.gaters {
		gt.Allow(att.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := att.Connect(ctx, peer.AddrInfo{ID: leader.ID(), Addrs: leader.Addrs()}); err != nil {
		t.Fatal(err)
	}
	hello, err := att.NewStream(ctx, leader.ID(), HelloVersionProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hello.Write(helloMessage("test", true)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readHello(hello, true); err != nil {
		t.Fatal(err)
	}
	_ = hello.Close()

	const opened = 2*rpcStreamsPerPeer + 100
	var sent atomic.Int32
	for range opened {
		s, err := att.NewStream(ctx, leader.ID(), RPCProtocol)
		if err != nil {
			continue // refused during negotiation
		}
		t.Cleanup(func() { _ = s.Reset() })
		if _, err := s.Write([]byte{byte(rpcPropose)}); err == nil {
			sent.Add(1)
		}
	}
	t.Logf("%d of %d streams took their request type", sent.Load(), opened)
	held := func() int { return inboundStreams(leader, att.ID(), string(RPCProtocol)) }
	pollUntil(t, fmt.Sprintf("the leader to serve %d of the peer's streams", rpcStreamsPerPeer), 15*time.Second,
		func() bool { return held() >= rpcStreamsPerPeer })
	if n := held(); n != rpcStreamsPerPeer {
		t.Fatalf("the leader holds %d of the peer's %d request streams, want %d", n, opened, rpcStreamsPerPeer)
	}

	// The cluster works on: a follower forwards writes and asks for read
	// indexes, more at once than it opens calls to the leader.
	const reads = rpcCallsPerPeer + 200
	var wg sync.WaitGroup
	errs := make(chan error, reads+1)
	for i := range reads {
		wg.Go(func() {
			if i%8 == 0 {
				if _, err := g.cs[f].Apply(ctx, fmt.Appendf(nil, "write %d beside the flood", i)); err != nil {
					errs <- fmt.Errorf("write: %w", err)
				}
				return
			}
			if _, err := g.cs[f].ReadIndex(ctx); err != nil {
				errs <- fmt.Errorf("read index: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := held(); n > rpcStreamsPerPeer {
		t.Fatalf("the leader holds %d of the peer's request streams, above %d", n, rpcStreamsPerPeer)
	}
}
