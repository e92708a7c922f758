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

// addedAndRemoved starts three gated voters, adds node X (which no member
// lists in its configured peers) as a non-voter, waits until every member
// admits it, removes it, and returns once no member holds it.
func addedAndRemoved(t *testing.T) (*gatedCluster, *Cluster, host.Host) {
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
	pollUntil(t, "every member to admit X", 10*time.Second, func() bool {
		for _, gt := range g.gaters {
			if !gt.Allowed(xh.ID()) || !gt.Member(xh.ID()) {
				return false
			}
		}
		return true
	})
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
	for k := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if _, err := g.cs[k].Apply(ctx, []byte{byte(k)}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
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
// sends half a request on each gets at most raftStreamsHandled handled at
// once, and each ends once it has carried nothing for raftStreamIdle.
func TestRaftStreamsPerPeerAreBounded(t *testing.T) {
	old := raftStreamIdle
	raftStreamIdle = 2 * time.Second
	t.Cleanup(func() { raftStreamIdle = old })
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
	pollUntil(t, "the idle streams to end", 10*time.Second, func() bool {
		return goroutinesIn("raft.(*NetworkTransport).handleConn") <= before+4
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := g.cs[l].Apply(ctx, []byte("after")); err != nil {
		t.Fatalf("a write after the streams: %v", err)
	}
}
