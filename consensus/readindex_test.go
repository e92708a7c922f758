package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// countingMachine is the least a state machine can be: it counts entries.
type countingMachine struct{ applied atomic.Uint64 }

func (m *countingMachine) Apply(entries []Entry) []any {
	out := make([]any, len(entries))
	for i, e := range entries {
		m.applied.Store(e.Index)
		out[i] = e.Index
	}
	return out
}
func (m *countingMachine) Snapshot() (Snapshot, error) { return emptySnapshot{}, nil }
func (m *countingMachine) Restore(io.Reader) error     { return nil }
func (m *countingMachine) AppliedIndex() uint64        { return m.applied.Load() }

type emptySnapshot struct{}

func (emptySnapshot) WriteTo(io.Writer) (int64, error) { return 0, nil }
func (emptySnapshot) Release()                         {}

type indexCodec struct{}

func (indexCodec) Encode(v any) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, v.(uint64)), nil
}
func (indexCodec) Decode(b []byte) (any, error) { return binary.BigEndian.Uint64(b), nil }

// mustStartClusters starts n voters on loopback that know each other and
// returns them once one leads.
func mustStartClusters(t *testing.T, n int) []*Cluster {
	t.Helper()
	return mustStartClustersWith(t, n, func(*Config) {})
}

// mustStartClustersWith is mustStartClusters with each node's
// configuration passed through tweak first.
func mustStartClustersWith(t *testing.T, n int, tweak func(*Config)) []*Cluster {
	t.Helper()
	hosts := make([]host.Host, n)
	ids := make([]peer.ID, n)
	for i := range n {
		hosts[i] = mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
		ids[i] = hosts[i].ID()
	}
	cs := make([]*Cluster, n)
	for i, h := range hosts {
		for _, o := range hosts {
			if o != h {
				h.Peerstore().AddAddrs(o.ID(), o.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
		cfg := Config{Dir: filepath.Join(t.TempDir(), "raft"), Host: h, StateMachine: &countingMachine{},
			Bootstrap: true, Voters: ids, Contacts: ids, ClusterID: "test", Codec: indexCodec{}}
		tweak(&cfg)
		c, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Shutdown() })
		cs[i] = c
	}
	deadline := time.Now().Add(15 * time.Second)
	for leaderOf(cs) < 0 {
		if time.Now().After(deadline) {
			t.Fatal("no leader after 15 s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	return cs
}

func leaderOf(cs []*Cluster) int {
	for i, c := range cs {
		if c.IsLeader() {
			return i
		}
	}
	return -1
}

// TestConfirmAsksAQuorumInTheLeadersTerm: a voter confirms only the leader
// it follows, and only in its current term; the leader's round succeeds
// for its own term only, and a read index comes out of it on leader and
// followers alike.
func TestConfirmAsksAQuorumInTheLeadersTerm(t *testing.T) {
	cs := mustStartClusters(t, 3)
	l := leaderOf(cs)
	f, other := cs[(l+1)%3], cs[(l+2)%3]
	leader := cs[l]
	term, leads := leader.leaderTerm()
	if !leads {
		t.Fatal("the leader does not lead in its term")
	}
	// Followers learn the leader with its first heartbeat.
	deadline := time.Now().Add(5 * time.Second)
	for f.LeaderID() != leader.host.ID().String() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	body := binary.BigEndian.AppendUint64(nil, term)
	if err := f.answerConfirm(leader.host.ID(), body); err != nil {
		t.Fatalf("follower refused its leader in term %d: %v", term, err)
	}
	for name, err := range map[string]error{
		"a later term":   f.answerConfirm(leader.host.ID(), binary.BigEndian.AppendUint64(nil, term+1)),
		"an older term":  f.answerConfirm(leader.host.ID(), binary.BigEndian.AppendUint64(nil, term-1)),
		"not its leader": f.answerConfirm(other.host.ID(), body),
		"a short body":   f.answerConfirm(leader.host.ID(), body[:4]),
	} {
		if err == nil {
			t.Errorf("follower confirmed %s", name)
		}
	}
	if err := leader.confirmRound(context.Background(), term); err != nil {
		t.Fatalf("round in the leader's term: %v", err)
	}
	if err := leader.confirmRound(context.Background(), term+1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("round in a term the node does not lead: %v", err)
	}
	if err := f.confirmRound(context.Background(), term); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("round on a follower: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := leader.Apply(ctx, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		idx, err := c.ReadIndex(ctx)
		if err != nil || idx < res.(uint64) {
			t.Fatalf("read index on node %d: %d, %v; want at least %d", i, idx, err, res)
		}
	}
}

// TestUnconfirmedLeaderGivesNoReadIndex: when no voter answers the
// leader's confirmation, it gives no read index, even though raft's own
// heartbeats still flow and raft.VerifyLeader would confirm it (this test
// fails with VerifyLeader in place of confirmLeadership).
func TestUnconfirmedLeaderGivesNoReadIndex(t *testing.T) {
	cs := mustStartClusters(t, 3)
	l := leaderOf(cs)
	leader := cs[l]
	term, _ := leader.leaderTerm()
	if err := leader.termCommitted(term); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if i != l {
			c.host.RemoveStreamHandler(RPCProtocol) // its answers never come
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if idx, err := leader.readIndexLocal(ctx); err == nil {
		t.Fatalf("an unconfirmed leader gave read index %d", idx)
	}
}

// TestVotersOfAnOlderBuildAreKnownByTheirHello: voters whose hello says
// they are of a build from before rpcConfirm (they speak the hello without
// a version) are not asked to confirm; while they are needed for a quorum,
// the leader confirms itself as those builds did (raft.VerifyLeader). The
// leader learns their build from the hello alone: here they could not
// answer a confirmation in any words, as their RPC handler is gone, and
// before, the leader asked them and, finding no "unknown request type" in
// the failure, gave no read index.
func TestVotersOfAnOlderBuildAreKnownByTheirHello(t *testing.T) {
	cs := mustStartClustersWith(t, 3, func(c *Config) { c.helloV1 = true })
	l := leaderOf(cs)
	leader := cs[l]
	term, _ := leader.leaderTerm()
	if err := leader.termCommitted(term); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if i == l {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := leader.peers.verify(ctx, c.host.ID())
		cancel()
		if v := leader.peers.version(c.host.ID()); err != nil || v != v1Version {
			t.Fatalf("the leader sees voter %d at %+v (%v), want %+v", i, v, err, v1Version)
		}
		c.host.RemoveStreamHandler(RPCProtocol) // no answer of any kind
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := leader.readIndexLocal(ctx); err != nil {
		t.Fatalf("with its voters on an older build, the leader gave no read index: %v", err)
	}
	_, err := leader.call(ctx, cs[(l+1)%3].host.ID(), rpcConfirm, confirmRequest{Term: term}.encode())
	if !errors.Is(err, ErrUnknownRequest) {
		t.Errorf("a confirmation sent to an older build: %v, want ErrUnknownRequest before sending", err)
	}
}
