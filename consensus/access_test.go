package consensus

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// startOutsider starts a node of the test cluster that no member lists, on
// a host without a gater of its own.
func startOutsider(t *testing.T) (*Cluster, host.Host) {
	t.Helper()
	h := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	c, err := Start(Config{Dir: filepath.Join(t.TempDir(), "raft"), Host: h, StateMachine: &countingMachine{},
		ClusterID: "test", Codec: indexCodec{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return c, h
}

func hostAddrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// addedAndRemoved adds node X (which no member lists in its configured
// peers) as a non-voter to three gated voters (addedNonvoter), removes it,
// and returns once no member holds it.
func addedAndRemoved(t *testing.T) (*gatedCluster, *Cluster, host.Host) {
	t.Helper()
	g, x, xh := addedNonvoter(t)
	l := leaderOf(g.cs)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionRemove, ID: xh.ID().String()}); err != nil {
		t.Fatal(err)
	}
	sid := raft.ServerID(xh.ID().String())
	pollUntil(t, "X out of every member's configuration and gater", 10*time.Second, func() bool {
		for i, c := range g.cs {
			if c.isMember(sid, raft.Nonvoter) || c.isMember(sid, raft.Voter) || g.gaters[i].Member(xh.ID()) {
				return false
			}
		}
		return true
	})
	return g, x, xh
}

// TestRemovedMemberIsShutOut: a member removed from the cluster is no
// longer admitted by any member (it is in none's configured peers), its
// connections are closed, and a write it forwards is never applied.
func TestRemovedMemberIsShutOut(t *testing.T) {
	g, x, xh := addedAndRemoved(t)
	pollUntil(t, "every member to refuse and disconnect X", 10*time.Second, func() bool {
		for i, gt := range g.gaters {
			if gt.Allowed(xh.ID()) || len(g.hosts[i].Network().ConnsToPeer(xh.ID())) > 0 {
				return false
			}
		}
		return true
	})
	l := leaderOf(g.cs)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := x.call(ctx, g.hosts[l].ID(), rpcProposeBatch, proposeBatchRequest{Cmds: [][]byte{[]byte("from-removed")}}.encode()); err == nil {
		t.Fatal("the removed member's forwarded write was answered")
	}
	time.Sleep(300 * time.Millisecond) // time for a write that got through to apply
	if g.machines[l].applied("from-removed") {
		t.Fatal("the leader applied a write the removed member forwarded")
	}
}

// TestConfiguredNonMemberMayOnlyAskToJoin: a removed member still listed
// in the leader's configured peers may connect (it may ask to join
// again), but what only members may ask is refused: a forwarded write, a
// read index, a membership change, members' addresses; its status is
// still answered.
func TestConfiguredNonMemberMayOnlyAskToJoin(t *testing.T) {
	g, x, xh := addedAndRemoved(t)
	l := leaderOf(g.cs)
	lid := g.hosts[l].ID()
	g.gaters[l].Allow(xh.ID()) // as if listed in the leader's p2p.peers
	xh.Peerstore().AddAddrs(lid, g.hosts[l].Addrs(), peerstore.PermanentAddrTTL)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	victim := g.hosts[(l+1)%3].ID()
	remove, _ := json.Marshal(MembershipChange{Action: ActionRemove, ID: victim.String()})
	for _, req := range []struct {
		kind rpcType
		body []byte
	}{
		{rpcProposeBatch, proposeBatchRequest{Cmds: [][]byte{[]byte("from-configured")}}.encode()},
		{rpcPropose, []byte("from-configured")},
		{rpcReadIndex, nil},
		{rpcMembership, remove},
		{rpcAddrs, addrsRequest{Peer: victim}.encode()},
	} {
		_, err := x.call(ctx, lid, req.kind, req.body)
		if err == nil || !strings.Contains(err.Error(), "not a member of this cluster") {
			t.Errorf("request type %d from a configured non-member: %v, want a refusal", req.kind, err)
		}
	}
	if _, err := x.call(ctx, lid, rpcStatus, nil); err != nil {
		t.Errorf("status asked by a configured peer: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // time for a write that got through to apply
	if g.machines[l].applied("from-configured") {
		t.Error("the leader applied a write a non-member forwarded")
	}
	if !g.cs[l].isMember(raft.ServerID(victim.String()), raft.Voter) {
		t.Error("a non-member removed a voter")
	}
}

// TestRefusedMembershipRequestAdmitsNoOne: a membership request the
// leader refuses (demote a peer that is no voter) leaves the peer it names
// unadmitted, and so does an add that fails.
func TestRefusedMembershipRequestAdmitsNoOne(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	l := leaderOf(g.cs)
	_, sh := startOutsider(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, action := range []string{ActionDemote, ActionPromote, ActionRemove, ActionTransferLeader} {
		err := g.cs[(l+1)%3].ChangeMembership(ctx, MembershipChange{Action: action, ID: sh.ID().String(), Addrs: hostAddrs(sh)})
		if err == nil {
			t.Fatalf("%s of a stranger was carried out", action)
		}
		for i, gt := range g.gaters {
			if gt.Allowed(sh.ID()) {
				t.Fatalf("after a refused %s, node %d admits the stranger it named", action, i)
			}
		}
	}
	// An add of a voter that does not answer (no addresses) fails, and
	// the peer it admitted while it ran is admitted no more.
	stranger := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	stranger.Close()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionAddVoter, ID: stranger.ID().String()}); err == nil {
		t.Fatal("a voter that cannot be reached was added")
	}
	if g.gaters[l].Allowed(stranger.ID()) {
		t.Fatal("a failed add left its peer admitted")
	}
}

// dialOnly is a raft.StreamLayer that only dials over libp2p: a peer's
// raw raft transport, which sends whatever requests it is given.
type dialOnly struct {
	h    host.Host
	once sync.Once
	done chan struct{}
}

func (d *dialOnly) Accept() (net.Conn, error) { <-d.done; return nil, net.ErrClosed }
func (d *dialOnly) Close() error              { d.once.Do(func() { close(d.done) }); return nil }
func (d *dialOnly) Addr() net.Addr            { return &net.TCPAddr{} }
func (d *dialOnly) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	pid, err := peer.Decode(string(a))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return gostream.Dial(ctx, d.h, pid, RaftProtocol)
}

func rawRaftTransport(t *testing.T, h host.Host) *raft.NetworkTransport {
	tr := raft.NewNetworkTransport(&dialOnly{h: h, done: make(chan struct{})}, 1, 5*time.Second, nil)
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestRaftRequestsMustComeFromTheirSender: a member that sends raft
// requests naming another voter as their sender (the leader's entries at a
// far higher term, which the fork guard would take as another history and
// stop every node for) is refused, and so is a removed member still
// listed among the configured peers that names itself and claims to lead;
// no node changes its term, forks or loses its leader.
func TestRaftRequestsMustComeFromTheirSender(t *testing.T) {
	g, _, xh := addedAndRemoved(t)
	writeThroughEach(t, g)
	l := leaderOf(g.cs)
	terms := make([]uint64, 3)
	for i, c := range g.cs {
		terms[i] = c.raft.CurrentTerm()
	}
	// A follower's identity speaks for the other voters.
	m := (l + 1) % 3
	member := rawRaftTransport(t, g.hosts[m])
	for i, h := range g.hosts {
		if i == m {
			continue
		}
		other := g.hosts[3-m-i].ID().String() // the voter that is neither m nor i
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(other), Addr: []byte(other)},
			Term:      1 << 40,
			Entries:   []*raft.Log{{Index: 1, Term: 424242, Type: raft.LogNoop}},
		}
		var resp raft.AppendEntriesResponse
		err := member.AppendEntries(raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()), req, &resp)
		if err == nil || !strings.Contains(err.Error(), "as its sender") {
			t.Errorf("entries sent by node %d in node %d's name to node %d: %v, want a refusal", m, 3-m-i, i, err)
		}
	}
	// The removed member, configured everywhere, claims to lead in its own
	// name.
	for _, gt := range g.gaters {
		gt.Allow(xh.ID())
	}
	removed := rawRaftTransport(t, xh)
	for i, h := range g.hosts {
		xh.Peerstore().AddAddrs(h.ID(), h.Addrs(), peerstore.PermanentAddrTTL)
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(xh.ID().String()), Addr: []byte(xh.ID().String())},
			Term:      1 << 20,
		}
		var resp raft.AppendEntriesResponse
		err := removed.AppendEntries(raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()), req, &resp)
		if err == nil || !strings.Contains(err.Error(), "cannot lead") {
			t.Errorf("a heartbeat at a higher term from the removed member to node %d: %v, want a refusal", i, err)
		}
	}
	for i, c := range g.cs {
		if c.Forked() != nil || c.raft.CurrentTerm() != terms[i] {
			t.Errorf("node %d: forked %v, term %d (was %d)", i, c.Forked(), c.raft.CurrentTerm(), terms[i])
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := g.cs[m].Apply(ctx, []byte("after")); err != nil {
		t.Fatalf("a write after the forged requests: %v", err)
	}
}

// TestRaftStreamsPerPeerAreBounded: a member that opens raft streams and
// sends half a request on each gets at most raftStreamsHandled of them
// handled at once; the cluster goes on writing.
func TestRaftStreamsPerPeerAreBounded(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	l := leaderOf(g.cs)
	from, to := g.hosts[(l+1)%3], g.hosts[(l+2)%3]
	const extra = 16
	before := goroutinesIn("raft.(*NetworkTransport).handleConn")
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range raftStreamsHandled + extra {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		c, err := gostream.Dial(ctx, from, to.ID(), RaftProtocol)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{0}); err != nil { // the type of an append, and no more
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second) // the node takes the streams in
	// The members' own streams may open meanwhile (a few: the leader's
	// pool), so the bound is checked with that margin, far under extra.
	if n := goroutinesIn("raft.(*NetworkTransport).handleConn") - before; n > raftStreamsHandled+4 {
		t.Fatalf("%d raft streams handled beyond those before, above the bound of %d a peer", n, raftStreamsHandled)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := g.cs[l].Apply(ctx, []byte("after")); err != nil {
		t.Fatalf("a write after the streams: %v", err)
	}
}

// addedNonvoter starts three gated voters and adds node X, which no
// member admits before, as a non-voter (a read replica), returning once
// every member admits it as a member and X knows where every member
// listens.
func addedNonvoter(t *testing.T) (*gatedCluster, *Cluster, host.Host) {
	t.Helper()
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	x, xh := startOutsider(t)
	for i := range g.gaters {
		if g.gaters[i].Allowed(xh.ID()) {
			t.Fatalf("node %d admits X before it is added", i)
		}
	}
	l := leaderOf(g.cs)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionAddNonvoter, ID: xh.ID().String(), Addrs: hostAddrs(xh)}); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "X to replicate", 15*time.Second, func() bool { return x.raft.AppliedIndex() > 0 })
	pollUntil(t, "every member to admit X as a member", 10*time.Second, func() bool {
		for _, gt := range g.gaters {
			if !gt.Allowed(xh.ID()) || !gt.Member(xh.ID()) {
				return false
			}
		}
		return true
	})
	for _, h := range g.hosts {
		xh.Peerstore().AddAddrs(h.ID(), h.Addrs(), peerstore.PermanentAddrTTL)
	}
	return g, x, xh
}

// forgedAppend is an append in from's own name at a far higher term with
// another entry at index 1: taken, it makes a node that applied entries
// see another history and stop raft for good (the fork guard).
func forgedAppend(from host.Host) *raft.AppendEntriesRequest {
	id := []byte(from.ID().String())
	return &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: id, Addr: id},
		Term:      1 << 40,
		Entries:   []*raft.Log{{Index: 1, Term: 424242, Type: raft.LogNoop}},
	}
}

// sendForgedAppends sends forgedAppend from h to every voter of g and
// requires each to be refused as from a peer that is no voter, and no
// voter to fork or change its term.
func sendForgedAppends(t *testing.T, g *gatedCluster, h host.Host) {
	t.Helper()
	writeThroughEach(t, g)
	terms := make([]uint64, len(g.cs))
	for i, c := range g.cs {
		terms[i] = c.raft.CurrentTerm()
	}
	raw := rawRaftTransport(t, h)
	for i, v := range g.hosts {
		var resp raft.AppendEntriesResponse
		err := raw.AppendEntries(raft.ServerID(v.ID().String()), raft.ServerAddress(v.ID().String()), forgedAppend(h), &resp)
		if err == nil || !strings.Contains(err.Error(), "not a voter") {
			t.Errorf("a forged append in its own name to node %d: %v, want a refusal", i, err)
		}
	}
	for i, c := range g.cs {
		if c.Forked() != nil || c.raft.CurrentTerm() != terms[i] {
			t.Errorf("node %d after the forged appends: forked %v, term %d (was %d)", i, c.Forked(), c.raft.CurrentTerm(), terms[i])
		}
	}
}

// TestReadReplicaCannotLeadOrStandForElection: a non-voter (a read
// replica, which raft never lets lead) that sends in its own name what
// only a voter sends is refused: a forged append, a call on the leader to
// stand for election, a vote request at a higher term marked as a
// leadership transfer. No voter forks, changes its term or loses its
// leader.
func TestReadReplicaCannotLeadOrStandForElection(t *testing.T) {
	g, _, xh := addedNonvoter(t)
	sendForgedAppends(t, g, xh)
	raw := rawRaftTransport(t, xh)
	id := []byte(xh.ID().String())
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: id, Addr: id}
	l := leaderOf(g.cs)
	lh := g.hosts[l].ID().String()
	term := g.cs[l].raft.CurrentTerm()
	var tresp raft.TimeoutNowResponse
	if err := raw.TimeoutNow(raft.ServerID(lh), raft.ServerAddress(lh), &raft.TimeoutNowRequest{RPCHeader: hdr}, &tresp); err == nil || !strings.Contains(err.Error(), "not a voter") {
		t.Errorf("timeout-now from a read replica to the leader: %v, want a refusal", err)
	}
	for i, h := range g.hosts {
		var resp raft.RequestVoteResponse
		err := raw.RequestVote(raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()),
			&raft.RequestVoteRequest{RPCHeader: hdr, Term: term + 100, LeadershipTransfer: true}, &resp)
		if err == nil || !strings.Contains(err.Error(), "not a voter") {
			t.Errorf("a vote request from a read replica to node %d: %v, want a refusal", i, err)
		}
		var presp raft.RequestPreVoteResponse
		err = raw.RequestPreVote(raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()),
			&raft.RequestPreVoteRequest{RPCHeader: hdr, Term: term + 100}, &presp)
		if err == nil || !strings.Contains(err.Error(), "not a voter") {
			t.Errorf("a pre-vote request from a read replica to node %d: %v, want a refusal", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // time for a term change to show
	if got := g.cs[l].raft.CurrentTerm(); got != term || !g.cs[l].IsLeader() {
		t.Errorf("the leader after a read replica's requests: term %d (was %d), leads %v", got, term, g.cs[l].IsLeader())
	}
}

// TestListedPeerThatNeverJoinedCannotLead: a peer every voter lists in
// its configured peers (as OPERATIONS says to before a node joins) that is
// not a member yet sends a forged append in its own name: refused.
func TestListedPeerThatNeverJoinedCannotLead(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	_, xh := startOutsider(t)
	for i, gt := range g.gaters {
		gt.Allow(xh.ID())
		xh.Peerstore().AddAddrs(g.hosts[i].ID(), g.hosts[i].Addrs(), peerstore.PermanentAddrTTL)
	}
	sendForgedAppends(t, g, xh)
}

// TestFailedAddClosesThePeersConnections: an add that fails (the peer
// holds a raft log of its own) admitted the peer while it ran; after it,
// the leader holds no connection to it and answers it nothing.
func TestFailedAddClosesThePeersConnections(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	l := leaderOf(g.cs)
	sh := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	s, err := Start(Config{Dir: filepath.Join(t.TempDir(), "raft"), Host: sh, StateMachine: &countingMachine{},
		Bootstrap: true, ClusterID: "test", Codec: indexCodec{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown() })
	pollUntil(t, "the other cluster's node to lead itself", 10*time.Second, s.IsLeader)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionAddVoter, ID: sh.ID().String(), Addrs: hostAddrs(sh)}); err == nil {
		t.Fatal("a node with a raft log of its own was added")
	}
	if g.gaters[l].Allowed(sh.ID()) {
		t.Fatal("the gater still admits the peer of a failed add")
	}
	pollUntil(t, "the leader to drop the peer's connections", 5*time.Second, func() bool {
		return len(g.hosts[l].Network().ConnsToPeer(sh.ID())) == 0
	})
	if _, err := s.call(ctx, g.hosts[l].ID(), rpcStatus, nil); err == nil {
		t.Fatal("the peer of a failed add is still answered")
	}
}

// TestRemovedPeersRaftTransportCloses: a member that sent raft requests
// and is then removed leaves no transport (nor its goroutines) behind on
// any member.
func TestRemovedPeersRaftTransportCloses(t *testing.T) {
	g, _, xh := addedNonvoter(t)
	raw := rawRaftTransport(t, xh)
	id := []byte(xh.ID().String())
	for _, h := range g.hosts {
		var resp raft.RequestPreVoteResponse
		_ = raw.RequestPreVote(raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()), &raft.RequestPreVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: id, Addr: id}, Term: 1}, &resp) // refused: it only opens a stream
	}
	holding := func() (n int) {
		for _, c := range g.cs {
			c.trans.mu.Lock()
			if c.trans.inbound[xh.ID()] != nil {
				n++
			}
			c.trans.mu.Unlock()
		}
		return n
	}
	if holding() != 3 {
		t.Fatalf("%d of 3 members made a transport for the replica's streams", holding())
	}
	l := leaderOf(g.cs)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionRemove, ID: xh.ID().String()}); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "every member to close the removed peer's transport", 10*time.Second, func() bool { return holding() == 0 })
}

// TestGaterFollowsTheConfiguration: the gater's members follow the
// configurations raft reports, older ones too (an entry not committed and
// then overwritten), except that a configuration read before this node's
// own removal of a peer does not bring it back, and an add known at a
// newer index is not undone by an older configuration; a peer configured
// but not a voter sends nothing only voters send, whatever it was before.
func TestGaterFollowsTheConfiguration(t *testing.T) {
	self, a, x, y := peer.ID("self"), peer.ID("a"), peer.ID("x"), peer.ID("y")
	g := NewGater(self, x) // x is listed in the configured peers
	members := func(ids ...peer.ID) []GaterMember {
		var ms []GaterMember
		for _, id := range ids {
			ms = append(ms, GaterMember{ID: id, Voter: id != y})
		}
		return ms
	}
	if g.Voter(a) || g.Voter(x) {
		t.Fatal("before its first configuration a node takes a leader's requests from a peer")
	}
	g.SetMembers(members(self, a, x, y), 10)
	if !g.Voter(a) || !g.Voter(x) || g.Voter(y) || !g.Member(y) {
		t.Fatalf("at 10: voters a %v x %v y %v, y member %v", g.Voter(a), g.Voter(x), g.Voter(y), g.Member(y))
	}
	// This node, leading, removes x at 12; a pass that read 10 comes after.
	if g.Remove(x, 12) {
		t.Fatal("x is configured: still admitted")
	}
	g.SetMembers(members(self, a, x, y), 10)
	if g.Member(x) || g.Voter(x) || !g.Allowed(x) {
		t.Fatalf("a configuration read before the removal brought x back: member %v voter %v (allowed %v: configured)", g.Member(x), g.Voter(x), g.Allowed(x))
	}
	// y leaves at 20 (not committed), and a new leader's log makes 15,
	// with y, the latest again.
	if gone := g.SetMembers(members(self, a), 20); len(gone) != 1 || gone[0] != y || g.Allowed(y) {
		t.Fatalf("y left at 20: gone %v, allowed %v", gone, g.Allowed(y))
	}
	g.SetMembers(members(self, a, y), 15)
	if !g.Member(y) || !g.Allowed(y) {
		t.Fatal("a configuration older than the last taken, raft's latest again, does not bring y back")
	}
	// An add of z committed at 30 stays through a pass that read 25.
	z := peer.ID("z")
	done := g.Admit(z)
	if !g.Allowed(z) || g.Member(z) {
		t.Fatal("a peer being added is admitted, not a member")
	}
	if !done(30, true) {
		t.Fatal("an added peer is admitted")
	}
	g.SetMembers(members(self, a, y), 25)
	if !g.Member(z) || !g.Voter(z) {
		t.Fatal("an older configuration undid an add known at a newer index")
	}
	// A failed add leaves its peer out.
	w := peer.ID("w")
	if g.Admit(w)(0, false) || g.Allowed(w) {
		t.Fatal("a failed add left its peer admitted")
	}
	// After a restart (a new gater), a removed member still configured is
	// admitted, not a member, and no voter.
	g2 := NewGater(self, a, x)
	g2.SetMembers(members(self, a), 50)
	if !g2.Allowed(x) || g2.Member(x) || g2.Voter(x) {
		t.Fatalf("a configured non-member after a restart: allowed %v member %v voter %v", g2.Allowed(x), g2.Member(x), g2.Voter(x))
	}
	// A node that is its configuration's only voter (a member restored
	// and started alone) takes a configured peer's entries only once
	// another configured peer vouched for it, and only for a while; a
	// non-voter member's too once vouched for (a promotion it missed).
	g3 := NewGater(self, x)
	g3.SetMembers(members(self, y), 60)
	if g3.Voter(x) || !g3.LoneVoterWith(x) || g3.LoneVoterWith(y) {
		t.Fatalf("a lone voter: configured peer a voter %v (lone voter with it %v), non-voter member %v", g3.Voter(x), g3.LoneVoterWith(x), g3.LoneVoterWith(y))
	}
	if g3.Vouched(y) {
		t.Fatal("a non-voter member is vouched for before anyone did")
	}
	g3.Vouch(x, time.Now().Add(time.Hour))
	g3.Vouch(y, time.Now().Add(time.Hour))
	stranger := peer.ID("stranger")
	g3.Vouch(stranger, time.Now().Add(time.Hour))
	if !g3.Vouched(x) || !g3.Vouched(y) || g3.Vouched(stranger) {
		t.Fatalf("vouched for: configured peer %v, non-voter member %v, a peer neither %v", g3.Vouched(x), g3.Vouched(y), g3.Vouched(stranger))
	}
	g3.Vouch(x, time.Now().Add(-time.Second))
	if g3.Vouched(x) {
		t.Fatal("a vouch that ended still counts")
	}
	// A newer configuration ends every vouch (a peer vouched for, then
	// demoted, keeps none); the same one again does not.
	g3.SetMembers(members(self, y), 60)
	if !g3.Vouched(y) {
		t.Fatal("the same configuration again ended a vouch")
	}
	g3.SetMembers(members(self, y), 61)
	if g3.Vouched(y) {
		t.Fatal("a vouch outlived a newer configuration")
	}
	// An empty configuration: this node joins, and takes them from anyone
	// admitted.
	g4 := NewGater(self, x)
	g4.SetMembers(nil, 0)
	if !g4.Voter(x) {
		t.Fatal("a joining node refuses a configured peer's entries")
	}
}

// TestLoneVoterTakesNoForgedAppendFromAListedPeer: a one-voter cluster
// whose node lists a peer that has not joined yet (as OPERATIONS says to
// before it joins) takes no entries from that peer alone: a forged append
// in its own name neither forks it nor moves its term.
func TestLoneVoterTakesNoForgedAppendFromAListedPeer(t *testing.T) {
	g := mustStartGatedClusters(t, 1, func(Entry) {})
	writeThroughEach(t, g)
	_, xh := startOutsider(t)
	g.gaters[0].Allow(xh.ID())
	xh.Peerstore().AddAddrs(g.hosts[0].ID(), g.hosts[0].Addrs(), peerstore.PermanentAddrTTL)
	term := g.cs[0].raft.CurrentTerm()
	raw := rawRaftTransport(t, xh)
	v := g.hosts[0].ID().String()
	for range 3 {
		var resp raft.AppendEntriesResponse
		if err := raw.AppendEntries(raft.ServerID(v), raft.ServerAddress(v), forgedAppend(xh), &resp); err == nil {
			t.Fatal("the lone voter took a listed peer's forged append")
		}
	}
	if g.cs[0].Forked() != nil || g.cs[0].raft.CurrentTerm() != term || !g.cs[0].IsLeader() {
		t.Fatalf("the lone voter after the forged appends: forked %v, term %d (was %d), leads %v", g.cs[0].Forked(), g.cs[0].raft.CurrentTerm(), term, g.cs[0].IsLeader())
	}
}

// TestDemotedVoterCannotLeadAtOnce: the moment a demotion returns, the
// demoted member's forged append in its own name is refused by the other
// voters: the gater takes a configuration when raft stores it, not at its
// next pass a second later.
func TestDemotedVoterCannotLeadAtOnce(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	writeThroughEach(t, g)
	l := leaderOf(g.cs)
	d := (l + 1) % 3
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionDemote, ID: g.hosts[d].ID().String()}); err != nil {
		t.Fatal(err)
	}
	raw := rawRaftTransport(t, g.hosts[d])
	for i, h := range g.hosts {
		if i == d {
			continue
		}
		var resp raft.AppendEntriesResponse
		err := raw.AppendEntries(raft.ServerID(h.ID().String()), raft.ServerAddress(h.ID().String()), forgedAppend(g.hosts[d]), &resp)
		if err == nil || !strings.Contains(err.Error(), "not a voter") {
			t.Errorf("the demoted member's forged append to node %d: %v, want a refusal", i, err)
		}
	}
	for i, c := range g.cs {
		if i != d && c.Forked() != nil {
			t.Errorf("node %d forked on the demoted member's append: %v", i, c.Forked())
		}
	}
}

// missedPromotion adds a read replica X to three voters (addedNonvoter),
// runs before(g, c) for the follower c it then cuts off, promotes X, makes
// it leader and writes "under-x" through it; c holds X a non-voter.
func missedPromotion(t *testing.T, before func(g *gatedCluster, c int)) (g *gatedCluster, x *Cluster, c int) {
	t.Helper()
	g, x, xh := addedNonvoter(t)
	l := leaderOf(g.cs)
	c = (l + 1) % 3
	if before != nil {
		before(g, c)
	}
	for i := range g.hosts {
		if i != c {
			g.cut(c, i)
		}
	}
	g.gaters[c].Block(xh.ID())
	_ = g.hosts[c].Network().ClosePeer(xh.ID())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionPromote, ID: xh.ID().String()}); err != nil {
		t.Fatal(err)
	}
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionTransferLeader, ID: xh.ID().String()}); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the promoted replica to lead", 10*time.Second, x.IsLeader)
	if _, err := x.Apply(ctx, []byte("under-x")); err != nil {
		t.Fatal(err)
	}
	if g.gaters[c].Voter(xh.ID()) {
		t.Fatal("the cut-off follower already holds the new leader a voter")
	}
	return g, x, c
}

// healFollower heals follower c's links cut by missedPromotion.
func healFollower(g *gatedCluster, x *Cluster, c int) {
	for i := range g.hosts {
		if i != c {
			g.heal(c, i)
		}
	}
	g.gaters[c].Unblock(x.host.ID())
}

// TestFollowerThatMissedAPromotionCatchesUp: a follower cut off while a
// read replica is promoted and made leader holds the new leader as a
// non-voter and refuses its entries, which alone would tell it of the
// promotion; another voter it knows says it follows the new leader, and
// the follower takes its entries and catches up.
func TestFollowerThatMissedAPromotionCatchesUp(t *testing.T) {
	g, x, c := missedPromotion(t, nil)
	healFollower(g, x, c)
	pollUntil(t, "the follower to apply the new leader's write", 20*time.Second, func() bool { return g.machines[c].applied("under-x") })
}

// TestReplicaCannotStarveVouching: a second replica that sends the
// follower refused appends all along does not keep it from asking about
// the new leader (each leader asked about is limited on its own).
func TestReplicaCannotStarveVouching(t *testing.T) {
	var yh host.Host
	g, x, c := missedPromotion(t, func(g *gatedCluster, c int) {
		_, yh = startOutsider(t)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := g.cs[leaderOf(g.cs)].ChangeMembership(ctx, MembershipChange{Action: ActionAddNonvoter, ID: yh.ID().String(), Addrs: hostAddrs(yh)}); err != nil {
			t.Fatal(err)
		}
		pollUntil(t, "the second replica a member at the follower", 10*time.Second, func() bool { return g.gaters[c].Member(yh.ID()) })
		yh.Peerstore().AddAddrs(g.hosts[c].ID(), g.hosts[c].Addrs(), peerstore.PermanentAddrTTL)
	})
	raw := rawRaftTransport(t, yh)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	cid := raft.ServerID(g.hosts[c].ID().String())
	spam := make(chan struct{})
	go func() {
		defer close(spam)
		for i := 0; i < 3000 && ctx.Err() == nil; i++ { // bounded: 30 s at most
			var resp raft.AppendEntriesResponse
			_ = raw.AppendEntries(cid, raft.ServerAddress(cid), forgedAppend(yh), &resp)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second) // the replica's refused appends come first
	healFollower(g, x, c)
	pollUntil(t, "the follower to apply the new leader's write", 20*time.Second, func() bool { return g.machines[c].applied("under-x") })
	stop()
	<-spam
	if g.cs[c].Forked() != nil {
		t.Fatalf("the follower forked: %v", g.cs[c].Forked())
	}
}

// TestLeaderThatDemotesItselfIsNotVouchedFor: a leader demotes itself and
// at once sends a voter forged appends in its own name; the voter refuses
// it (no longer a voter) and asks the other voter, which names no leader
// that is not a voter of its own configuration (raft keeps naming the old
// leader until its heartbeat timeout): the voter never forks.
func TestLeaderThatDemotesItselfIsNotVouchedFor(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	writeThroughEach(t, g)
	l := leaderOf(g.cs)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.cs[l].ChangeMembership(ctx, MembershipChange{Action: ActionDemote, ID: g.hosts[l].ID().String()}); err != nil {
		t.Fatal(err)
	}
	raw := rawRaftTransport(t, g.hosts[l])
	n := (l + 1) % 3
	nid := raft.ServerID(g.hosts[n].ID().String())
	for i := 0; i < 100; i++ { // 5 s: past askVouchers' first round
		var resp raft.AppendEntriesResponse
		if err := raw.AppendEntries(nid, raft.ServerAddress(nid), forgedAppend(g.hosts[l]), &resp); err == nil {
			t.Fatalf("forged append %d from the leader that demoted itself taken by node %d", i, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g.cs[n].Forked() != nil || g.gaters[n].Vouched(g.hosts[l].ID()) {
		t.Fatalf("node %d: forked %v, vouched for the demoted leader %v", n, g.cs[n].Forked(), g.gaters[n].Vouched(g.hosts[l].ID()))
	}
}

// writeThroughEach applies one write through each node of g, so that
// every node has applied entries (a forged history then forks it).
func writeThroughEach(t *testing.T, g *gatedCluster) {
	t.Helper()
	for k, c := range g.cs {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := c.Apply(ctx, []byte{byte(k)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestVouchesOnlyWithTheMembershipKnown: a peer's status vouches for a
// leader only when it names that leader and knows at least the
// configurations the asking node knows (one that missed a demotion would
// still follow a leader that demoted itself); a lone voter asks with 0.
func TestVouchesOnlyWithTheMembershipKnown(t *testing.T) {
	leader, other := peer.ID("leader"), peer.ID("other")
	for _, c := range []struct {
		ps    PeerStatus
		known uint64
		want  bool
	}{
		{PeerStatus{Leader: leader.String(), ConfigIndex: 40}, 40, true},
		{PeerStatus{Leader: leader.String(), ConfigIndex: 41}, 40, true},
		{PeerStatus{Leader: leader.String(), ConfigIndex: 39}, 40, false}, // it missed a configuration this node has
		{PeerStatus{Leader: leader.String()}, 40, false},                  // a build that does not say
		{PeerStatus{Leader: other.String(), ConfigIndex: 50}, 40, false},
		{PeerStatus{Leader: leader.String(), ConfigIndex: 5}, 0, true}, // a lone voter's question
	} {
		if got := vouches(c.ps, leader, c.known); got != c.want {
			t.Errorf("%+v asked with %d: vouches %v, want %v", c.ps, c.known, got, c.want)
		}
	}
}
