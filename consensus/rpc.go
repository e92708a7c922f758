package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// rpcErrors are the errors the statuses stand for, in the order answerOf
// tries them: an unknown outcome first, so an error that wraps it is never
// answered as one that says the request was not carried out.
var rpcErrors = []struct {
	status answerStatus
	err    error
}{
	{rpcErrUnknown, ErrUnknownOutcome},
	{rpcErrUnknownRequest, ErrUnknownRequest},
	{rpcErrBadMembership, ErrBadMembership},
	{rpcErrNoLeader, ErrNoLeader},
	{rpcErrNotLeader, ErrNotLeader},
	{rpcErrTimeout, ErrTimeout},
	{rpcErrShutdown, ErrShutdown},
	{rpcErrForeign, ErrForeignCluster},
}

// answerOf is the status and body that answer err.
func answerOf(err error) (answerStatus, []byte) {
	for _, e := range rpcErrors {
		if !errors.Is(err, e.err) {
			continue
		}
		var me *MembershipError
		if e.status == rpcErrBadMembership && errors.As(err, &me) {
			return e.status, []byte(me.Reason)
		}
		return e.status, []byte(err.Error())
	}
	return rpcErrOther, []byte(err.Error())
}

// answerError is the error an answer with a status other than rpcOK
// stands for; from names the peer that answered.
func answerError(status answerStatus, body []byte, from string) error {
	if status == rpcErrBadMembership {
		return &MembershipError{Reason: string(body)}
	}
	for _, e := range rpcErrors {
		if e.status == status {
			return fmt.Errorf("%w (from %s: %s)", e.err, from, body)
		}
	}
	return fmt.Errorf("%s: %s", from, body)
}

// ErrUnknownRequest is the answer to a request of a type the peer does not
// serve: rpcErrUnknownRequest from a peer, or, before anything is sent, a
// peer whose hello says its build is older than the request
// (helloVersion.knows). Nothing was carried out.
var ErrUnknownRequest = errors.New("consensus: unknown request type")

// ResponseCodec encodes state machine responses for forwarded writes.
type ResponseCodec interface {
	Encode(any) ([]byte, error)
	Decode([]byte) (any, error)
}

func (c *Cluster) serveRPC(s network.Stream) {
	// Shutdown waits for the requests being served; one arriving after it
	// began is refused.
	if !c.life.enter() {
		_ = writeAnswer(s, rpcErrShutdown, []byte(ErrShutdown.Error()))
		_ = s.Close()
		return
	}
	defer c.life.leave()
	// The answer is written (or the stream reset) before this close; a
	// failed close leaves nothing to tell the caller.
	defer func() { _ = s.Close() }()
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	from := s.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(c.life.ctx, 25*time.Second)
	defer cancel()
	if err := c.peers.verify(ctx, from); err != nil {
		_ = writeAnswer(s, rpcErrForeign, []byte(err.Error()))
		return
	}
	kind, body, err := readMessage(s)
	if err != nil {
		_ = s.Reset() // the request is unreadable: abandon the stream
		return
	}
	out, err := c.handleRPC(ctx, from, rpcType(kind), body)
	if err != nil {
		status, body := answerOf(err)
		_ = writeAnswer(s, status, body)
		return
	}
	_ = writeAnswer(s, rpcOK, out)
}

func (c *Cluster) handleRPC(ctx context.Context, from peer.ID, kind rpcType, body []byte) ([]byte, error) {
	if !c.mayAsk(from, kind) {
		return nil, fmt.Errorf("%s is not a member of this cluster: request type %d is served to members only", from, kind)
	}
	switch kind {
	case rpcJoin:
		return nil, c.handleJoin(ctx, from, body)
	case rpcConfirm:
		return nil, c.answerConfirm(from, body)
	case rpcPropose:
		if !c.IsLeader() {
			return nil, ErrNotLeader
		}
		resp, err := c.proposeLocal(ctx, body)
		if err != nil {
			return nil, err
		}
		return c.codec.Encode(resp)
	case rpcProposeBatch:
		return c.proposeBatch(ctx, body)
	case rpcReadIndex:
		idx, err := c.readIndexLocal(ctx)
		if err != nil {
			return nil, err
		}
		return readIndexAnswer{Index: idx}.encode(), nil
	case rpcMembership:
		if !c.IsLeader() {
			return nil, ErrNotLeader
		}
		m, err := decodeJSON[MembershipChange](body)
		if err != nil {
			return nil, badMembership("membership request: %v", err)
		}
		return nil, c.changeLocal(m)
	case rpcAddrs:
		req, err := decodeAddrsRequest(body)
		if err != nil {
			return nil, err
		}
		id := req.Peer
		var addrs []string
		for _, a := range c.host.Peerstore().Addrs(id) {
			addrs = append(addrs, a.String())
		}
		if id == c.host.ID() {
			for _, a := range c.host.Addrs() {
				addrs = append(addrs, a.String())
			}
		}
		return json.Marshal(addrs)
	case rpcStatus:
		var confIndex uint64
		if c.gater != nil {
			confIndex = c.gater.Newest()
		}
		return json.Marshal(PeerStatus{AppliedIndex: c.raft.AppliedIndex(), LastLogIndex: c.raft.LastIndex(), State: c.raft.State().String(), FeatureLevel: c.featureLevel, Leader: c.votingLeader(), ConfigIndex: confIndex})
	}
	// The words wireV1 builds answered with (rpcErrOther): an older peer
	// still shows them to its operator.
	return nil, fmt.Errorf("%w %d", ErrUnknownRequest, kind)
}

// votingLeader is the leader this node follows, as its status reports it:
// only one that is a voter of its latest configuration (raft keeps naming
// a leader that just demoted itself until its heartbeat timeout).
func (c *Cluster) votingLeader() string {
	leader := c.LeaderID()
	if leader == "" || leader == c.host.ID().String() {
		return leader
	}
	if !c.isMember(raft.ServerID(leader), raft.Voter) {
		return ""
	}
	return leader
}

// configLog gives the gater each raft configuration as raft stores it:
// raft takes a configuration as the one in force once it is appended, not
// committed, and so must the gater, or a voter just demoted would still
// be taken for one (entries, votes) until the next syncPeers pass.
type configLog struct {
	raft.LogStore
	gater *Gater
	// drop is given the peers a configuration takes out (dropPeer); it
	// must not block raft's goroutine.
	drop func(peer.ID)
}

// StoreLog implements raft.LogStore.
func (l configLog) StoreLog(e *raft.Log) error { return l.StoreLogs([]*raft.Log{e}) }

// StoreLogs implements raft.LogStore.
func (l configLog) StoreLogs(logs []*raft.Log) error {
	if err := l.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	for _, e := range logs {
		if e.Type == raft.LogConfiguration {
			for _, id := range l.gater.SetMembers(gaterMembers(raft.DecodeConfiguration(e.Data)), e.Index) {
				l.drop(id)
			}
		}
	}
	return nil
}

// maxSeedScan bounds how many raft log entries seedGater reads back for
// the newest configuration before it takes the newest snapshot's.
const maxSeedScan = 100000

// seedGater gives the gater, before raft starts, the newest configuration
// the raft log or else the newest snapshot holds, with its log index:
// raft's GetConfiguration reports none (hashicorp/raft v1.8 leaves the
// future's index 0), and until a configuration is given the gater takes
// no leader's requests from anyone.
func (c *Cluster) seedGater(logs raft.LogStore, snaps raft.SnapshotStore) {
	if c.gater == nil {
		return
	}
	first, err := logs.FirstIndex()
	last, err2 := logs.LastIndex()
	if err == nil && err2 == nil {
		for i, n := last, 0; i >= first && i > 0 && n < maxSeedScan; i, n = i-1, n+1 {
			var l raft.Log
			if logs.GetLog(i, &l) != nil || l.Type != raft.LogConfiguration {
				continue
			}
			c.gater.SetMembers(gaterMembers(raft.DecodeConfiguration(l.Data)), i)
			return
		}
	}
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		c.gater.SetMembers(gaterMembers(metas[0].Configuration), metas[0].ConfigurationIndex)
	}
}

// gaterMembers is a raft configuration's servers as the gater takes them
// (a server whose id is not a peer id is left out).
func gaterMembers(conf raft.Configuration) []GaterMember {
	servers := make([]GaterMember, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		if id, err := peer.Decode(string(s.ID)); err == nil {
			servers = append(servers, GaterMember{ID: id, Voter: s.Suffrage == raft.Voter})
		}
	}
	return servers
}

// mayAsk reports whether peer from may send a request of type kind:
// writes, reads, membership changes and members' addresses only a member
// of the raft configuration as this node last saw it; a join, a status
// (the leader's question to a node it adds) and a confirmation any peer
// the gater admits.
func (c *Cluster) mayAsk(from peer.ID, kind rpcType) bool {
	if c.gater == nil || from == c.host.ID() {
		return true
	}
	switch kind {
	case rpcJoin, rpcStatus, rpcConfirm:
		return true
	}
	return c.gater.Member(from)
}

// dropPeer closes the connections of a peer that is no longer admitted
// (it left the cluster, or an add of it failed), closes the raft transport
// of its streams and forgets what its hello said.
func (c *Cluster) dropPeer(id peer.ID) {
	c.peers.forget(id)
	if c.trans != nil {
		c.trans.forget(id)
	}
	_ = c.host.Network().ClosePeer(id) // best effort: the gater refuses it from now on
	c.log.Info("peer no longer admitted; its connections are closed", "peer", id.String())
}

func writeAnswer(s network.Stream, status answerStatus, body []byte) error {
	return writeMessage(s, byte(status), body)
}

// call sends one request to a peer and returns the answer body.
// A peer whose hello says it does not serve kind is not asked: the call
// fails with ErrUnknownRequest. At most rpcCallsPerPeer calls to a peer
// are open at once; one more waits for a slot, hello included.
func (c *Cluster) call(ctx context.Context, to peer.ID, kind rpcType, body []byte) ([]byte, error) {
	// Calls go to cluster members and their callers retry on their own
	// terms: libp2p's dial backoff after a failed dial (a member down for a
	// while) would refuse them for seconds after the member is back.
	ctx = memberDial(ctx, c.host, to, "cluster member")
	release, err := c.calls.take(ctx, to)
	if err != nil {
		// Nothing was sent.
		return nil, fmt.Errorf("%w: reach %s: %d calls to it open: %w", ErrNoLeader, to, rpcCallsPerPeer, err)
	}
	defer release()
	if err := c.peers.verify(ctx, to); err != nil {
		if errors.Is(err, ErrForeignCluster) {
			return nil, err
		}
		// Nothing was sent: the peer was not reached.
		return nil, fmt.Errorf("%w: reach %s: %w", ErrNoLeader, to, err)
	}
	if v := c.peers.version(to); !v.knows(kind) {
		return nil, fmt.Errorf("%w %d: %s speaks wire protocol %d, which serves request types up to %d", ErrUnknownRequest, kind, to, v.Protocol, v.MaxRPC)
	}
	s, err := c.host.NewStream(ctx, to, RPCProtocol)
	if err != nil {
		return nil, fmt.Errorf("%w: reach %s: %w", ErrNoLeader, to, err)
	}
	// By the time this runs the answer is read (or the stream reset): a
	// failed close changes nothing about the call's outcome.
	defer func() { _ = s.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	// A cancelled call (callLeader's leader changed) stops waiting at once.
	defer context.AfterFunc(ctx, func() { _ = s.Reset() })()
	if err := writeMessage(s, byte(kind), body); err != nil {
		// The request is one length-prefixed frame: a failed write never
		// delivered all of it, and a peer never acts on part of a frame.
		_ = s.Reset() // the send error is the one reported
		return nil, fmt.Errorf("%w: send to %s: %w", ErrNoLeader, to, err)
	}
	// The request is out: from here on a failure leaves its fate unknown.
	status, out, err := readMessage(s)
	if err != nil {
		_ = s.Reset() // the read error is the one reported
		return nil, &noAnswerError{peer: to, err: err}
	}
	c.contacted.saw(to, time.Now())
	if answerStatus(status) != rpcOK {
		return nil, answerError(answerStatus(status), out, to.String())
	}
	return out, nil
}

// noAnswerError is a call whose request went out and whose answer did not
// come back (a reset stream, no answer in time, the call ended because
// raft named another leader): it is ErrUnknownOutcome, and err says what
// happened to the stream.
type noAnswerError struct {
	peer peer.ID
	err  error
}

func (e *noAnswerError) Error() string {
	return fmt.Sprintf("%v: no answer from %s: %v", ErrUnknownOutcome, e.peer, e.err)
}

func (e *noAnswerError) Unwrap() []error { return []error{ErrUnknownOutcome, e.err} }

// leaderPeer returns the current leader, waiting (bounded by ctx) for one.
func (c *Cluster) leaderPeer(ctx context.Context) (peer.ID, error) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		if c.life.ctx.Err() != nil {
			return "", ErrShutdown
		}
		if id := c.LeaderID(); id != "" {
			return c.decodeLeader(id)
		}
		select {
		case <-ctx.Done():
			return "", ErrNoLeader
		case <-c.life.ctx.Done():
		case <-t.C:
		}
	}
}

// decodeLeader returns the peer.ID of the leader raft names id, decoding
// it only when the leader changed since the last call.
func (c *Cluster) decodeLeader(id string) (peer.ID, error) {
	if d := c.leaderDecoded.Load(); d != nil && d.id == id {
		return d.peer, nil
	}
	p, err := peer.Decode(id)
	if err != nil {
		return "", err
	}
	c.leaderDecoded.Store(&decodedLeader{id: id, peer: p})
	return p, nil
}

// toLeader runs a request on the leader: locally when this node leads,
// otherwise forwarded over libp2p. While no leader can be reached and the
// request has certainly not been carried out, it retries for up to the
// leader wait, so a leader change does not surface as an error. An
// idempotent request is retried too when its outcome is unknown (the
// leader changed while it was being carried out).
//
// Once an attempt may have reached a leader, the request's fate is unknown
// until an attempt succeeds: a later attempt that finds no leader, or a
// leader that refuses it before proposing, or the caller giving up, says
// nothing of the earlier one. Its error is then ErrUnknownOutcome, never
// one that says the request was not carried out (DESIGN.md, "A write is
// answered as not submitted only when it certainly was not").
func (c *Cluster) toLeader(ctx context.Context, idempotent bool, local func() ([]byte, error), remote func(leader peer.ID) ([]byte, error)) ([]byte, error) {
	deadline := time.Now().Add(c.leaderWait)
	var maybe error // the first attempt that may have reached a leader
	done := func(out []byte, err error) ([]byte, error) {
		if err == nil || maybe == nil || errors.Is(err, ErrUnknownOutcome) {
			return out, err
		}
		// %v: what the retries met is context, not a cause; in the chain
		// it would make the error also one that says the request was
		// not carried out.
		return nil, fmt.Errorf("%w (retried: %v)", maybe, err)
	}
	for {
		waitCtx, cancel := context.WithDeadline(ctx, deadline)
		leader, err := c.leaderPeer(waitCtx)
		cancel()
		if err != nil {
			return done(nil, err)
		}
		var out []byte
		if leader == c.host.ID() {
			out, err = local()
		} else {
			out, err = remote(leader)
		}
		if maybe == nil && errors.Is(err, ErrUnknownOutcome) {
			maybe = err
		}
		retry := errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || (idempotent && errors.Is(err, ErrUnknownOutcome))
		if err == nil || !retry || ctx.Err() != nil || time.Now().After(deadline) {
			return done(out, err)
		}
		select {
		case <-ctx.Done():
			return done(nil, err)
		case <-c.life.ctx.Done():
			return done(nil, err)
		case <-time.After(50 * time.Millisecond): // back-off while the leader changes
		}
	}
}

// syncPeers keeps the gater and the peerstore in step with the raft
// configuration: every member is admitted, and a member whose addresses
// this node does not know is looked up at the leader. While this node
// hears from no leader it reaches out to the members and contacts it can
// dial (reachOut).
func (c *Cluster) syncPeers(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		f := c.raft.GetConfiguration()
		if f.Error() != nil {
			continue
		}
		servers := gaterMembers(f.Configuration())
		members := make([]peer.ID, 0, len(servers))
		for _, s := range servers {
			if s.ID != c.host.ID() {
				members = append(members, s.ID)
			}
		}
		if c.gater != nil {
			// Members are admitted; one that left is not, unless
			// configured, and its connections close.
			for _, id := range c.gater.SetMembers(servers, f.Index()) {
				c.dropPeer(id)
			}
		}
		if c.LeaderID() == "" {
			c.reachOut(ctx, append(members, c.contacts...))
		}
		for _, id := range members {
			if len(c.host.Peerstore().Addrs(id)) > 0 {
				continue
			}
			leader := c.LeaderID()
			if leader == "" || leader == c.host.ID().String() {
				continue
			}
			lid, err := peer.Decode(leader)
			if err != nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			out, err := c.call(cctx, lid, rpcAddrs, addrsRequest{Peer: id}.encode())
			cancel()
			if err != nil {
				continue
			}
			addrs, err := decodeJSON[[]string](out)
			if err != nil {
				continue
			}
			c.addAddrs(id, addrs)
		}
	}
}

// reachOut connects to each of ids that this node has addresses for and
// is not connected to. A leader knows the addresses of the peers in its
// own configuration file and those it learned while running; after a
// restart it cannot dial a member added by address alone (a read replica,
// which never stands for election and so never dials out itself). The
// connection tells it where this node is, and raft's traffic then flows
// over it.
func (c *Cluster) reachOut(ctx context.Context, ids []peer.ID) {
	var wg sync.WaitGroup
	seen := make(map[peer.ID]bool, len(ids))
	for _, id := range ids {
		if seen[id] || id == c.host.ID() || c.host.Network().Connectedness(id) == network.Connected ||
			len(c.host.Peerstore().Addrs(id)) == 0 {
			continue
		}
		seen[id] = true
		wg.Go(func() {
			// Direct: libp2p's backoff after failed dials would otherwise
			// hold this node away from a member for minutes after it is back.
			cctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "reaching out to a cluster member"), 2*time.Second)
			defer cancel()
			// A member that refuses this node lets the connection through
			// its handshake and closes it then, so this may succeed every
			// second: logged once a minute at most.
			if err := c.host.Connect(cctx, peer.AddrInfo{ID: id}); err == nil {
				c.peers.logPeer("no leader heard from: connected to a cluster member", id)
			}
		})
	}
	wg.Wait()
}

func (c *Cluster) addAddrs(id peer.ID, addrs []string) {
	for _, a := range addrs {
		if m, err := ma.NewMultiaddr(a); err == nil {
			c.host.Peerstore().AddAddr(id, m, peerstore.PermanentAddrTTL)
		}
	}
}

// PeerStatus is what a peer reports about itself.
type PeerStatus struct {
	State string `json:"state"`
	// AppliedIndex is raft's: the last log entry applied, commands and
	// raft's own entries alike.
	AppliedIndex uint64 `json:"applied_index"`
	LastLogIndex uint64 `json:"last_log_index"`
	// FeatureLevel is the highest feature level of the state machine's
	// operations that the peer's build applies (Config.FeatureLevel).
	FeatureLevel int `json:"feature_level,omitempty"`
	// Leader is the peer id of the leader the peer follows (itself when
	// it leads; empty when it knows none, or from a build before it was
	// reported).
	Leader string `json:"leader,omitempty"`
	// ConfigIndex is the log index of the newest raft configuration the
	// peer knows (its gater's: Gater.Newest; 0 from a build before it was
	// reported): a follower takes a peer's word on its leader only from
	// one that knows at least the configurations it knows (askVouchers).
	ConfigIndex uint64 `json:"config_index,omitempty"`
}

// featureLevel is the level a peer applies: a build from before levels
// were reported applies the first, 1.
func (ps PeerStatus) featureLevel() int { return max(ps.FeatureLevel, 1) }
