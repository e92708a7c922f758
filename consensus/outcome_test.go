package consensus

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// hookMachine is a countingMachine that calls onApply with every entry
// before it applies it, and remembers whether it applied a command.
type hookMachine struct {
	countingMachine
	onApply func(Entry)
	mu      sync.Mutex
	seen    map[string]bool
}

func (m *hookMachine) Apply(entries []Entry) []any {
	for _, e := range entries {
		m.onApply(e)
		m.mu.Lock()
		m.seen[string(e.Data)] = true
		m.mu.Unlock()
	}
	return m.countingMachine.Apply(entries)
}

func (m *hookMachine) applied(cmd string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[cmd]
}

// gatedCluster is n voters on loopback, each host with a gater, so a test
// can cut and heal the links between them.
type gatedCluster struct {
	cs       []*Cluster
	hosts    []host.Host
	gaters   []*Gater
	machines []*hookMachine
}

// mustStartGatedClusters starts n voters whose commands are idempotent (as
// the registry's are) and whose state machines call onApply with every
// entry, and returns them once one leads.
func mustStartGatedClusters(t *testing.T, n int, onApply func(Entry)) *gatedCluster {
	t.Helper()
	machines := make([]*hookMachine, n)
	g := startGated(t, n, func(i int) StateMachine {
		machines[i] = &hookMachine{onApply: onApply, seen: map[string]bool{}}
		return machines[i]
	}, func(c *Config) { c.IdempotentCommands = true })
	g.machines = machines
	return g
}

// startGated starts n voters on loopback, each host with a gater, node i
// running machine(i) and its Config changed by adjust (when not nil), and
// returns them once one leads.
func startGated(t *testing.T, n int, machine func(i int) StateMachine, adjust func(*Config)) *gatedCluster {
	t.Helper()
	g := &gatedCluster{}
	ids := make([]peer.ID, n)
	for i := range n {
		id, err := LoadOrCreateIdentity(filepath.Join(t.TempDir(), "node.key"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := peer.IDFromPrivateKey(id)
		ids[i] = pid
		gater := NewGater(pid)
		h, err := NewHost(HostConfig{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: gater})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		g.hosts, g.gaters = append(g.hosts, h), append(g.gaters, gater)
	}
	for i, h := range g.hosts {
		for j, o := range g.hosts {
			if i != j {
				g.gaters[i].Allow(o.ID())
				h.Peerstore().AddAddrs(o.ID(), o.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
		cfg := Config{Dir: filepath.Join(t.TempDir(), "raft"), Host: h, StateMachine: machine(i), Gater: g.gaters[i],
			Bootstrap: true, Voters: ids, Contacts: ids, ClusterID: "test", Codec: indexCodec{}}
		if adjust != nil {
			adjust(&cfg)
		}
		c, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Shutdown() })
		g.cs = append(g.cs, c)
	}
	pollUntil(t, "a leader", 15*time.Second, func() bool { return leaderOf(g.cs) >= 0 })
	return g
}

// cut severs the link between nodes i and j both ways; heal restores it.
func (g *gatedCluster) cut(i, j int) {
	g.gaters[i].Block(g.hosts[j].ID())
	g.gaters[j].Block(g.hosts[i].ID())
	_ = g.hosts[i].Network().ClosePeer(g.hosts[j].ID())
	_ = g.hosts[j].Network().ClosePeer(g.hosts[i].ID())
}

func (g *gatedCluster) heal(i, j int) {
	g.gaters[i].Unblock(g.hosts[j].ID())
	g.gaters[j].Unblock(g.hosts[i].ID())
}

// pollUntil polls cond until it holds, failing the test after d.
func pollUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// TestCommittedForwardedWriteIsNeverNotSubmitted: a follower forwards a
// write, the write commits, and every link is cut before the leader's
// answer leaves it, so no leader can be elected while the follower
// retries. The follower must answer ErrUnknownOutcome, never an error
// that says the write was not carried out (ErrNoLeader, ErrNotLeader,
// ErrTimeout): the write is in the log, as the healed cluster shows.
// Before, the retries after the lost answer found no leader and the write
// was answered ErrNoLeader (the gateway's 503 "unavailable", not
// submitted).
func TestCommittedForwardedWriteIsNeverNotSubmitted(t *testing.T) {
	target := []byte("the write whose answer is lost")
	var (
		g       *gatedCluster
		ready   = make(chan struct{})
		cutOnce sync.Once
		cutDone atomic.Bool
	)
	cutAll := func() {
		for i := range g.cs {
			for j := i + 1; j < len(g.cs); j++ {
				g.cut(i, j)
			}
		}
		cutDone.Store(true)
	}
	g = mustStartGatedClusters(t, 3, func(e Entry) {
		if bytes.Equal(e.Data, target) {
			// The first node to apply it (the leader, or a follower
			// told of the commit first) cuts every link: the leader's
			// answer is written only after its own apply returns.
			<-ready
			cutOnce.Do(cutAll)
		}
	})
	close(ready)
	l := leaderOf(g.cs)
	f := (l + 1) % 3
	leaderID := g.hosts[l].ID().String()
	pollUntil(t, "the follower to know the leader", 10*time.Second, func() bool { return g.cs[f].LeaderID() == leaderID })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := g.cs[f].Apply(ctx, target)
	if !cutDone.Load() {
		t.Fatalf("the write returned (%v) before it was applied anywhere", err)
	}
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("a committed write whose answer was lost: %v, want ErrUnknownOutcome", err)
	}
	for _, notCarriedOut := range []error{ErrNoLeader, ErrNotLeader, ErrTimeout, ErrShutdown} {
		if errors.Is(err, notCarriedOut) {
			t.Fatalf("a committed write is answered %v", err)
		}
	}
	// The write is in the log: once healed, the follower applies it.
	for i := range g.cs {
		for j := i + 1; j < len(g.cs); j++ {
			g.heal(i, j)
		}
	}
	pollUntil(t, "the follower to apply the write", 30*time.Second, func() bool { return g.machines[f].applied(string(target)) })
}

// TestToLeaderKeepsAnUnknownOutcome: once an attempt's outcome is unknown,
// no later attempt's error that says it was not carried out (no leader,
// not the leader, the caller's deadline) replaces it.
func TestToLeaderKeepsAnUnknownOutcome(t *testing.T) {
	cs := mustStartClusters(t, 1)
	c := cs[0]
	c.leaderWait = 300 * time.Millisecond
	for name, later := range map[string]error{"no leader": ErrNoLeader, "not the leader": ErrNotLeader, "timeout": ErrTimeout} {
		attempts := 0
		_, err := c.toLeader(context.Background(), true, func() ([]byte, error) {
			attempts++
			if attempts == 1 {
				return nil, ErrUnknownOutcome
			}
			return nil, later
		}, nil)
		if !errors.Is(err, ErrUnknownOutcome) || errors.Is(err, later) || attempts < 2 {
			t.Errorf("%s after an unknown outcome (%d attempts): %v, want ErrUnknownOutcome", name, attempts, err)
		}
	}
	// Nothing reached a leader: the answer says so.
	_, err := c.toLeader(context.Background(), true, func() ([]byte, error) { return nil, ErrNotLeader }, nil)
	if !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("never reached: %v, want ErrNotLeader", err)
	}
}
