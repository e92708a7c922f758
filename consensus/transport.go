package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// streamLayer is a raft.StreamLayer on libp2p streams: raft server
// addresses are peer ids, and each raft connection is one libp2p stream.
type streamLayer struct {
	h     host.Host
	l     net.Listener
	peers *peering
	conns chan net.Conn
	// answered records the answers read from the streams this layer
	// dialed (raftMetrics.answered).
	answered *lastContacts
	// life ends at Close: the accept loop and the checks of accepted
	// streams end with it and Close waits for them; dials in progress end
	// with it too.
	life *lifetime

	mu       sync.Mutex
	accepted map[*acceptedConn]struct{} // handed to raft and open; closed at Close
	// route, when set, takes each verified stream with the peer that
	// opened it instead of Accept (boundTransport); false: refused.
	route func(peer.ID, net.Conn) bool
}

// acceptedConn is a stream handed to raft; it leaves its layer's set when
// closed.
type acceptedConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
}

func (c *acceptedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.accepted, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer listens for raft streams; route, when not nil, takes
// each verified one (streamLayer.route).
func newStreamLayer(h host.Host, peers *peering, answered *lastContacts, route func(peer.ID, net.Conn) bool) (*streamLayer, error) {
	l, err := gostream.Listen(h, RaftProtocol)
	if err != nil {
		return nil, fmt.Errorf("listen for raft streams: %w", err)
	}
	s := &streamLayer{h: h, l: l, peers: peers, answered: answered, conns: make(chan net.Conn), life: newLifetime(), accepted: map[*acceptedConn]struct{}{}, route: route}
	s.life.spawn(s.acceptLoop)
	return s, nil
}

// acceptLoop hands raft only streams from peers of the same cluster.
func (s *streamLayer) acceptLoop(context.Context) {
	for {
		conn, err := s.l.Accept()
		if err != nil {
			return
		}
		started := s.life.spawn(func(ctx context.Context) {
			id, err := peer.Decode(conn.RemoteAddr().String())
			if err == nil {
				vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = s.peers.verify(vctx, id)
				cancel()
			}
			if err != nil {
				_ = conn.Close() // refused before raft saw it; no one to tell
				return
			}
			ac := &acceptedConn{Conn: conn, s: s}
			s.mu.Lock()
			s.accepted[ac] = struct{}{}
			s.mu.Unlock()
			if s.route != nil {
				if !s.route(id, ac) {
					_ = ac.Close() // refused; the peer's raft retries or gives up
				}
				return
			}
			select {
			case s.conns <- ac:
			case <-ctx.Done():
				_ = ac.Close() // shutting down; raft never received it
			}
		})
		if !started {
			_ = conn.Close() // shutting down; raft never received it
		}
	}
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.life.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, ends the checks and dials in progress and waits
// for them, and closes the streams it handed to raft, so raft's handlers
// of them return.
func (s *streamLayer) Close() error {
	s.life.stop()
	err := s.l.Close()
	s.life.wait(shutdownWait)
	s.mu.Lock()
	open := make([]*acceptedConn, 0, len(s.accepted))
	for c := range s.accepted {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		_ = c.Close() // the listener's error is the one reported
	}
	return err
}

func (s *streamLayer) Addr() net.Addr { return s.l.Addr() }

// Dial opens a raft stream to the peer the address names.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	pid, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft address %q is not a peer id: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(s.life.ctx, timeout)
	defer cancel()
	// Raft retries with its own backoff; libp2p's dial backoff (5 s and
	// growing after a failed dial) would keep a member that just started
	// or restarted unreachable long after it is up.
	ctx = memberDial(ctx, s.h, pid, "raft retries with its own backoff")
	if err := s.peers.verify(ctx, pid); err != nil {
		return nil, err
	}
	conn, err := gostream.Dial(ctx, s.h, pid, RaftProtocol)
	if err != nil {
		return nil, err
	}
	return &contactConn{Conn: conn, id: pid, seen: s.answered}, nil
}

// newTransport wraps the stream layer in raft's network transports: one
// that dials, which pools connections so heartbeats reuse streams, and one
// per peer for the streams it opens (boundTransport); check is asked about
// every request a peer sends before raft sees it.
func newTransport(h host.Host, peers *peering, logger *slog.Logger, answered *lastContacts, check func(peer.ID, any) error) (*boundTransport, error) {
	b := &boundTransport{check: check, logger: newRaftLogger(logger, "raft-net"), rpcs: make(chan raft.RPC),
		stop: make(chan struct{}), inbound: map[peer.ID]*peerStreams{}}
	sl, err := newStreamLayer(h, peers, answered, b.route)
	if err != nil {
		return nil, err
	}
	b.sl = sl
	b.NetworkTransport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  sl,
		MaxPool: 4,
		Timeout: raftTimeout,
		Logger:  b.logger,
	})
	return b, nil
}

// Bounds of the raft streams a peer opens to this node: how many raft
// reads requests from at once (within the resource manager's
// raftStreamsPerPeer, which counts the streams not yet checked too). A
// leader holds up to MaxPool (4) streams to each follower and a pipeline,
// and opens more for votes, snapshots and leadership transfers. A stream
// is not closed for being idle: raft takes a pooled stream without
// looking at it and does not retry a request that fails on it (a vote
// lost for an election round), and libp2p's keep-alives end the streams
// of a peer that is gone.
const (
	raftStreamsHandled = 32
	raftTimeout        = 10 * time.Second
)

// boundTransport is raft's network transport with every incoming request
// known to come from the peer whose stream carried it. Raft takes the
// sender of a request from the request itself (its header's id and
// address), which any peer could fill with another's: a member could
// speak for the leader, or a peer that is no member send a leader's
// requests at a higher term and depose it. So each peer's streams go to a
// network transport of its own, and a request from it reaches raft only
// if it names that peer as its sender and check passes it; any other is
// answered with the error. Outgoing requests go through the embedded
// transport, which dials.
type boundTransport struct {
	*raft.NetworkTransport
	sl     *streamLayer
	check  func(from peer.ID, cmd any) error
	logger hclogLogger
	rpcs   chan raft.RPC
	stop   chan struct{}

	mu        sync.Mutex
	closed    bool
	heartbeat func(raft.RPC)
	inbound   map[peer.ID]*peerStreams
}

// hclogLogger is the logger raft's network transport takes.
type hclogLogger = hclog.Logger

// peerStreams is the raft.StreamLayer of the streams one peer opened, and
// the network transport that reads requests from them.
type peerStreams struct {
	id    peer.ID
	idStr string // id.String(), which every request is held to
	b     *boundTransport
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	open  atomic.Int32 // streams handed to the transport and not closed
	trans *raft.NetworkTransport
}

// route hands a verified stream of peer id to that peer's transport,
// making it on the first; false if the peer has too many open or the
// transport is closed.
func (b *boundTransport) route(id peer.ID, c net.Conn) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	ps := b.inbound[id]
	if ps == nil {
		ps = &peerStreams{id: id, idStr: id.String(), b: b, conns: make(chan net.Conn), done: make(chan struct{})}
		ps.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: ps, MaxPool: 1, Timeout: raftTimeout, Logger: b.logger})
		if b.heartbeat != nil {
			ps.trans.SetHeartbeatHandler(ps.heartbeat)
		}
		b.inbound[id] = ps
		go ps.relay()
	}
	b.mu.Unlock()
	if ps.open.Add(1) > raftStreamsHandled {
		ps.open.Add(-1)
		b.logger.Warn("refusing a raft stream: the peer has too many open", "peer", id.String(), "limit", raftStreamsHandled)
		return false
	}
	ic := &countedConn{Conn: c, ps: ps}
	select {
	case ps.conns <- ic:
		return true
	case <-ps.done:
		ps.open.Add(-1)
		return false
	}
}

// relay passes the peer's requests on to raft, each only if it names the
// peer as its sender and check passes it.
func (ps *peerStreams) relay() {
	in := ps.trans.Consumer()
	for {
		select {
		case rpc := <-in:
			if err := ps.admit(rpc.Command); err != nil {
				rpc.Respond(nil, err)
				continue
			}
			select {
			case ps.b.rpcs <- rpc:
			case <-ps.b.stop:
				return
			}
		case <-ps.done:
			return
		}
	}
}

// heartbeat is the peer's transport's fast path for heartbeats: the same
// check, then raft's handler.
func (ps *peerStreams) heartbeat(rpc raft.RPC) {
	if err := ps.admit(rpc.Command); err != nil {
		rpc.Respond(nil, err)
		return
	}
	ps.b.mu.Lock()
	fn := ps.b.heartbeat
	ps.b.mu.Unlock()
	if fn == nil {
		rpc.Respond(nil, errors.New("raft is not taking requests"))
		return
	}
	fn(rpc)
}

// admit returns why raft must not see cmd from this peer, or nil.
func (ps *peerStreams) admit(cmd any) error {
	if err := sentBy(ps.idStr, cmd); err != nil {
		return err
	}
	if ps.b.check != nil {
		return ps.b.check(ps.id, cmd)
	}
	return nil
}

// sentBy returns an error unless raft request cmd names peer id as its
// sender: its header's id and address, which raft takes the sender from
// (the older fields that also name one, deprecated, are read by raft only
// when the header has no address).
func sentBy(id string, cmd any) error {
	h, ok := cmd.(raft.WithRPCHeader)
	if !ok {
		return fmt.Errorf("raft request %T without a header", cmd)
	}
	hdr := h.GetRPCHeader()
	for _, n := range [][]byte{hdr.ID, hdr.Addr} {
		if string(n) != id {
			return fmt.Errorf("raft request from %s names %q as its sender", id, n)
		}
	}
	return nil
}

// Accept implements raft.StreamLayer: the streams of this peer.
func (ps *peerStreams) Accept() (net.Conn, error) {
	select {
	case c := <-ps.conns:
		return c, nil
	case <-ps.done:
		return nil, net.ErrClosed
	}
}

// Close implements raft.StreamLayer; the transport calls it at its close.
func (ps *peerStreams) Close() error {
	ps.once.Do(func() { close(ps.done) })
	return nil
}

// Addr implements raft.StreamLayer.
func (ps *peerStreams) Addr() net.Addr { return ps.b.sl.Addr() }

// Dial implements raft.StreamLayer: this layer only takes streams.
func (ps *peerStreams) Dial(raft.ServerAddress, time.Duration) (net.Conn, error) {
	return nil, errors.New("a peer's inbound raft transport does not dial")
}

// countedConn is a peer's raft stream, which leaves its peer's count when
// closed.
type countedConn struct {
	net.Conn
	ps   *peerStreams
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.ps.open.Add(-1) })
	return c.Conn.Close()
}

// forget closes the transport of peer id's streams, which is no longer
// admitted; its next stream, if it is ever admitted again, makes another.
func (b *boundTransport) forget(id peer.ID) {
	b.mu.Lock()
	ps := b.inbound[id]
	delete(b.inbound, id)
	b.mu.Unlock()
	if ps != nil {
		_ = ps.trans.Close() // its streams are closed with the peer's connections
	}
}

// Consumer implements raft.Transport: the requests the peers' transports
// passed on.
func (b *boundTransport) Consumer() <-chan raft.RPC { return b.rpcs }

// SetHeartbeatHandler implements raft.Transport, for every peer's
// transport.
func (b *boundTransport) SetHeartbeatHandler(fn func(raft.RPC)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heartbeat = fn
	for _, ps := range b.inbound {
		if fn == nil {
			ps.trans.SetHeartbeatHandler(nil)
		} else {
			ps.trans.SetHeartbeatHandler(ps.heartbeat)
		}
	}
}

// CloseStreams closes the pooled streams this node dialled.
func (b *boundTransport) CloseStreams() { b.NetworkTransport.CloseStreams() }

// Close closes the dialling transport and every peer's, and stops passing
// requests on.
func (b *boundTransport) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.stop)
	inbound := make([]*peerStreams, 0, len(b.inbound))
	for _, ps := range b.inbound {
		inbound = append(inbound, ps)
	}
	b.mu.Unlock()
	err := b.NetworkTransport.Close()
	for _, ps := range inbound {
		_ = ps.trans.Close() // closes ps too; the dialling transport's error is the one reported
	}
	return err
}

// raftRequestFrom returns why raft must not see request cmd from peer
// from (its sender named already checked), or nil: what only a voter
// sends (entries, a snapshot, a call to stand for election, a vote or
// pre-vote request) is refused from a peer that is not a voter as the
// gater (Gater.Voter: any admitted peer while this node joins) and raft's
// latest configuration (votesNow) know it, unless another peer vouched
// for it (Gater.Vouched, askVouchers). Raft lets any peer that claims a higher
// term depose its leader, and takes entries from whoever claims to lead:
// a read replica or a listed peer could otherwise stop raft on every
// node with one forged append (the fork guard), or keep the cluster
// without a leader.
func (c *Cluster) raftRequestFrom(from peer.ID, cmd any) error {
	switch cmd.(type) {
	case *raft.AppendEntriesRequest, *raft.InstallSnapshotRequest, *raft.TimeoutNowRequest,
		*raft.RequestVoteRequest, *raft.RequestPreVoteRequest:
		if c.gater != nil && !c.gater.Voter(from) && !c.votesNow(from) {
			if c.gater.Vouched(from) {
				return nil
			}
			if leaderRequest(cmd) {
				switch {
				case c.gater.LoneVoterWith(from):
					c.askVouchers(from, c.gater.ConfiguredNonMembers(), 0)
				case c.gater.Member(from):
					c.askVouchers(from, c.gater.Voters(), c.gater.Newest())
				}
			}
			return fmt.Errorf("%s is not a voter of this cluster: it cannot lead it or stand for election", from)
		}
	}
	return nil
}

// leaderRequest reports whether cmd is a request only a leader sends
// (entries, a snapshot): one refused from a peer no one vouched for yet
// makes this node ask about it (askVouchers).
func leaderRequest(cmd any) bool {
	switch cmd.(type) {
	case *raft.AppendEntriesRequest, *raft.InstallSnapshotRequest:
		return true
	}
	return false
}

// votesNow reports whether raft's latest configuration holds from as a
// voter, for a peer the gater says is not one: raft's configuration can
// move back (an entry not committed, overwritten by a new leader's), which
// the gater, taking the newer index, does not follow. A read is a load of
// raft's latest (hashicorp/raft v1.8), so it is read each time: a
// demotion is refused as soon as raft stores it.
func (c *Cluster) votesNow(from peer.ID) bool {
	r := c.raftNow.Load()
	return r != nil && inConfiguration(r, raft.ServerID(from.String()), raft.Voter)
}

// How long a configured peer that another configured peer follows as its
// leader may lead a lone voter, and how often a lone voter asks about one.
const (
	vouchFor   = 30 * time.Second
	vouchEvery = 5 * time.Second
)

// askVouchers asks, in the background and at most every vouchEvery for
// each leader asked about, the peers of others (this node's voters, or
// its configured peers that are no members when it is its
// configuration's only voter) whom they follow; if one vouches for leader
// (vouches: it follows it and knows the configurations up to known),
// leader may lead this node for vouchFor (Gater.Vouch). A follower that
// missed the promotion of the member that now leads takes its entries
// then (only the leader would send it the one that says so), and a member
// restored from a backup and started alone
// meets its old cluster's leader and its fork guard stops it; a replica
// or a listed peer alone cannot make a node take its entries. A peer
// names as its leader only a voter of its own configuration (rpcStatus),
// so a leader that demoted itself is not vouched for on the strength of
// a follower that has not yet noticed.
func (c *Cluster) askVouchers(leader peer.ID, others []peer.ID, known uint64) {
	c.vouchMu.Lock()
	if time.Since(c.vouchAsked[leader]) < vouchEvery {
		c.vouchMu.Unlock()
		return
	}
	if c.vouchAsked == nil || len(c.vouchAsked) > maxVouchAsked {
		c.vouchAsked = map[peer.ID]time.Time{} // bounded: the asked-about are admitted peers
	}
	c.vouchAsked[leader] = time.Now()
	c.vouchMu.Unlock()
	c.life.spawn(func(ctx context.Context) {
		for _, q := range others {
			if q == leader || q == c.host.ID() {
				continue
			}
			ps, err := c.peerStatus(q, 3*time.Second)
			if err == nil && vouches(ps, leader, known) {
				c.gater.Vouch(leader, time.Now().Add(vouchFor))
				c.log.Warn("a peer this node does not hold a voter leads, as another it knows says; taking its entries", "leader", leader.String(), "vouched_by", q.String())
				return
			}
		}
	})
}

// vouches reports whether a peer's status vouches for leader to a node
// that knows the configurations up to index known: it follows leader (a
// voter of its own latest configuration, votingLeader) and knows at least
// as much of the membership. One that missed a demotion this node knows
// of would still follow a leader that demoted itself and withheld the
// entry from it. A lone voter asks with known 0: its own configuration,
// a restored node's, may be newer than its old cluster's.
func vouches(ps PeerStatus, leader peer.ID, known uint64) bool {
	return ps.Leader == leader.String() && ps.ConfigIndex >= known
}

// maxVouchAsked bounds askVouchers' memory of whom it asked about.
const maxVouchAsked = 1024
