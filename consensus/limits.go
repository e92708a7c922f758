package consensus

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Limits of the host's resource manager (hostLimits) on what one admitted
// peer may hold of this node, and what this node opens to a peer. The
// gater keeps everyone else out; these keep a member or configured peer
// that misbehaves (or is taken over) from exhausting the node's streams
// and memory. DESIGN.md says why each is what it is.
const (
	// rpcCallsPerPeer is the most requests this node has open to one peer
	// at once (callSlots): forwarded batches (forwardSenders), a read
	// index for each linearizable read served, confirmations, status and
	// address calls. One more waits for a slot until its deadline.
	rpcCallsPerPeer = 128
	// rpcStreamsPerPeer bounds a peer's RPCProtocol streams to this node,
	// and this node's to a peer: twice rpcCallsPerPeer, so that a peer of
	// this build never meets it (a stream past it is reset after its
	// request went out: an unknown outcome), with room for the streams
	// whose answer has gone and whose close has not reached this node yet.
	rpcStreamsPerPeer = 2 * rpcCallsPerPeer
	// helloStreamsPerPeer bounds a peer's hello streams (both versions)
	// to this node, and this node's to a peer. A hello goes out for each
	// call to a peer not yet verified and for each request from one, so a
	// burst right after a restart can be as many as the calls.
	helloStreamsPerPeer = rpcStreamsPerPeer
	// raftStreamsPerPeer bounds a peer's raft streams: raft's pool keeps
	// 4 to each peer and opens more while all are busy (an append, a
	// heartbeat, a vote, a snapshot, the pipeline at once).
	raftStreamsPerPeer = 64
	// peerStreamsInbound bounds all of one peer's streams to this node
	// (and peerStreamsOutbound this node's to it): the protocols above and
	// libp2p's own (identify, ping, AutoNAT, relay circuits, hole
	// punching), each of which has libp2p's default limit.
	peerStreamsInbound  = 512
	peerStreamsOutbound = 512
	// peerMemoryBytes bounds the memory the resource manager counts for one
	// peer: its connections' stream buffers (yamux sets aside 256 KiB for
	// each stream, and grows a busy stream's window to 16 MiB while the
	// peer's total is under half this) and relay buffers. It does not
	// count what the handlers read: a frame's body is allocated as it
	// arrives (frame.Read), up to maxFrame per RPC stream.
	peerMemoryBytes = 256 << 20
	// systemStreams bounds the streams of all peers together, each way;
	// the memory of all peers together is libp2p's default for this
	// machine (an eighth of its memory, and 128 MiB).
	systemStreams = 4096
	// transientStreams bounds the streams, of all peers together, whose
	// protocol is not negotiated yet: a burst of requests and hellos
	// passes through there first.
	transientStreams = 1024
)

// ourProtocolLimits are the per-peer stream limits of the cluster's own
// protocols; other protocols get libp2p's defaults.
var ourProtocolLimits = map[protocol.ID]int{
	RPCProtocol:          rpcStreamsPerPeer,
	HelloProtocol:        helloStreamsPerPeer,
	HelloVersionProtocol: helloStreamsPerPeer,
	RaftProtocol:         raftStreamsPerPeer,
}

// hostLimits is the host's resource manager's configuration: libp2p's
// defaults scaled to this machine (with those of its own services), and
// the limits above for each peer and for the cluster's protocols.
// Connections stay unlimited in number but not per peer (libp2p's 8):
// those not yet admitted are the gater's and handshakeTimeout's to end, and
// a limit on them would let anyone who reaches the port keep members out.
func hostLimits() rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	manyConns := rcmgr.ResourceLimits{
		Conns: rcmgr.Unlimited, ConnsInbound: rcmgr.Unlimited, ConnsOutbound: rcmgr.Unlimited, FD: rcmgr.Unlimited,
	}
	system, transient := manyConns, manyConns
	system.Streams, system.StreamsInbound, system.StreamsOutbound = 2*systemStreams, systemStreams, systemStreams
	transient.Streams, transient.StreamsInbound, transient.StreamsOutbound = 2*transientStreams, transientStreams, transientStreams
	cfg := rcmgr.PartialLimitConfig{
		System:    system,
		Transient: transient,
		PeerDefault: rcmgr.ResourceLimits{
			Streams:         peerStreamsInbound + peerStreamsOutbound,
			StreamsInbound:  peerStreamsInbound,
			StreamsOutbound: peerStreamsOutbound,
			Memory:          peerMemoryBytes,
		},
		// A peer's streams normally share one connection, so its
		// connection may set aside what the peer may.
		Conn:         rcmgr.ResourceLimits{Memory: peerMemoryBytes},
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{},
	}
	for id, n := range ourProtocolLimits {
		cfg.Protocol[id] = rcmgr.ResourceLimits{Streams: 2 * systemStreams, StreamsInbound: systemStreams, StreamsOutbound: systemStreams}
		cfg.ProtocolPeer[id] = rcmgr.ResourceLimits{Streams: rcmgr.LimitVal(2 * n), StreamsInbound: rcmgr.LimitVal(n), StreamsOutbound: rcmgr.LimitVal(n)}
	}
	return cfg.Build(scaling.AutoScale())
}

// callSlots holds each peer's rpcCallsPerPeer slots for this node's
// requests to it (call). Its zero value is ready; an entry, a small
// channel, is made for each peer called and kept (the peers called are
// the cluster's, which the gater bounds).
type callSlots struct {
	mu    sync.Mutex
	slots map[peer.ID]chan struct{}
}

// take waits for one of p's slots until ctx ends; release gives it back.
func (s *callSlots) take(ctx context.Context, p peer.ID) (release func(), err error) {
	s.mu.Lock()
	if s.slots == nil {
		s.slots = map[peer.ID]chan struct{}{}
	}
	ch, ok := s.slots[p]
	if !ok {
		ch = make(chan struct{}, rpcCallsPerPeer)
		s.slots[p] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
