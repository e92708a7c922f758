package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
)

// selfRegister is a did:key's registration of itself, with a location when
// location is not empty.
func selfRegister(t *testing.T, location string) []byte {
	t.Helper()
	k, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"op": record.OpRegisterEntity, "iat": time.Now().Unix(), "id": k.DID, "name": "College"}
	if location != "" {
		m["metadata"] = map[string]any{"location": location}
	}
	raw, _ := json.Marshal(m)
	jws, err := k.SignCompact(raw)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func (c *testCluster) levelsAre(want int) bool {
	for i := range c.nodes {
		if n := c.node(i); n != nil && n.State.ClusterFeatureLevel() != want {
			return false
		}
	}
	return true
}

// A rolling upgrade: while one member still runs a build that does not know
// entity locations (a stand-in reporting feature level 1), every node
// refuses them alike and the states agree; once that member restarts on the
// new build, the leader raises the cluster's level and they are accepted.
func TestFeatureLevelRisesWhenEveryMemberRunsTheNewBuild(t *testing.T) {
	c := mustNewClusterAt(t, 3, map[int]int{2: registry.FeatureLevelBase})
	leader := c.waitLeader()

	// The leader sees the old member and holds the level.
	waitFor(t, "the leader to see node 2's build", 15*time.Second, func() bool {
		for _, m := range c.node(leader).cluster.Members(context.Background()) {
			if m.ID == peerOf(t, c.cfgs[2]).String() {
				return m.Reachable && m.FeatureLevel == registry.FeatureLevelBase
			}
		}
		return false
	})
	// The leader looks again after levelRecheck; past that, the level is
	// still where it was (nothing to wait for: the point is that it does
	// not happen).
	time.Sleep(levelRecheck + 4*levelPoll)
	if !c.levelsAre(registry.FeatureLevelBase) {
		t.Fatal("the level rose with a member on an older build")
	}
	for i := range 3 {
		res, err := c.submit(i, selfRegister(t, "Cambridge, MA, USA"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted || res.Code != record.CodeInvalid || !strings.Contains(res.Reason, "feature level 2") {
			t.Fatalf("a location through node %d at level 1: %+v", i, res)
		}
	}
	c.converged(c.mustSubmit(1, selfRegister(t, "")).Index)

	// The member is upgraded: restarted on the new build.
	c.stop(2)
	c.mu.Lock()
	c.levels = nil
	c.mu.Unlock()
	c.start(2)
	waitFor(t, "every node at this build's feature level", 30*time.Second, func() bool { return c.levelsAre(registry.FeatureLevel) })
	for i := range 3 {
		c.converged(c.mustSubmit(i, selfRegister(t, "Cambridge, MA, USA")).Index)
	}
	st, _ := json.Marshal(c.node(0).Status())
	if want := fmt.Sprintf(`"feature_level":%d,"build_feature_level":%d`, registry.FeatureLevel, registry.FeatureLevel); !strings.Contains(string(st), want) {
		t.Fatalf("status: %s", st)
	}
}

// A node whose build applies less than the cluster's level is not admitted:
// as a member it would refuse operations the others accept.
func TestFeatureLevelRefusesAnOlderMember(t *testing.T) {
	c := soloVoterWithReplica(t, nil)
	c.mu.Lock()
	c.levels = map[int]int{1: registry.FeatureLevelBase}
	c.mu.Unlock()
	c.start(1) // it asks to join on its own, and is refused each time

	replica := peerOf(t, c.cfgs[1])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, action := range []string{consensus.ActionAddNonvoter, consensus.ActionAddVoter} {
		err := c.node(0).cluster.ChangeMembership(ctx, consensus.MembershipChange{Action: action, ID: replica.String(), Addrs: c.node(1).P2PAddrs()})
		if !errors.Is(err, consensus.ErrBadMembership) || !strings.Contains(err.Error(), fmt.Sprintf("applies feature level 1 and the cluster is at %d: upgrade it first", registry.FeatureLevel)) {
			t.Fatalf("%s of a node on an older build: %v", action, err)
		}
	}
	if slices.ContainsFunc(c.node(0).cluster.Status().Members, func(m consensus.Member) bool { return m.ID == replica.String() }) {
		t.Fatal("the older node became a member")
	}

	// Upgraded, it joins by itself.
	c.stop(1)
	c.mu.Lock()
	c.levels = nil
	c.mu.Unlock()
	c.start(1)
	waitFor(t, "the upgraded replica to join", 30*time.Second, func() bool {
		return slices.ContainsFunc(c.node(0).cluster.Status().Members, func(m consensus.Member) bool { return m.ID == replica.String() })
	})
	c.converged(c.mustSubmit(0, selfRegister(t, "Boston")).Index)
}

// commonLevel holds the level where it is while a member does not answer,
// and names the members below this build's.
func TestCommonLevel(t *testing.T) {
	ms := []consensus.MemberStatus{
		{Member: consensus.Member{ID: "a"}, Reachable: true, FeatureLevel: 2},
		{Member: consensus.Member{ID: "b"}, Reachable: true, FeatureLevel: 1},
	}
	if l, low := commonLevel(ms, 2); l != 1 || !slices.Equal(low, []string{"b"}) {
		t.Fatalf("one member at 1: %d %v", l, low)
	}
	ms[1].FeatureLevel = 3
	if l, low := commonLevel(ms, 2); l != 2 || len(low) != 0 {
		t.Fatalf("a member ahead of this build: %d %v", l, low)
	}
	ms = append(ms, consensus.MemberStatus{Member: consensus.Member{ID: "c"}})
	if l, low := commonLevel(ms, 2); l != 0 || len(low) != 1 || !strings.Contains(low[0], "not answering") {
		t.Fatalf("a member not answering: %d %v", l, low)
	}
}

// On a new single-node cluster, an operation that needs this build's level
// is accepted even when it arrives before the leader has raised it: it
// waits for the raise instead of being refused.
func TestFeatureLevelNewClusterAcceptsRightAway(t *testing.T) {
	n, err := New(LoopbackConfig(t.TempDir()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := n.Submit(ctx, selfRegister(t, "Cambridge, MA, USA"))
	if err != nil || !res.Accepted {
		t.Fatalf("a location on a new cluster: %+v, %v", res, err)
	}
}

// raft.max_feature_level holds the cluster's level where the operator puts
// it (the node offers no more), lets it rise once removed, and refuses a
// start below the level its state is already at, and one above the build's.
func TestMaxFeatureLevelHoldsTheClustersLevel(t *testing.T) {
	cfg := LoopbackConfig(t.TempDir())
	held := registry.FeatureLevelCommitment - 1
	cfg.Raft.MaxFeatureLevel = held
	start := func() *Node {
		t.Helper()
		n, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.State.WaitFeatureLevel(ctx, held); err != nil {
		t.Fatal(err)
	}
	if res, err := n.Submit(ctx, selfRegister(t, "")); err != nil || !res.Accepted {
		t.Fatalf("a write at level %d: %+v, %v", held, res, err)
	}
	if got := n.State.ClusterFeatureLevel(); got != held {
		t.Fatalf("cluster at feature level %d, held at %d", got, held)
	}
	if _, _, err := n.State.LogHead(); err == nil {
		t.Fatal("a state held below the commitment's level has a log head")
	}
	n.Close()

	cfg.Raft.MaxFeatureLevel = 0
	n = start()
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatalf("unheld: %v", err)
	}
	n.Close()

	cfg.Raft.MaxFeatureLevel = held
	if n, err := New(cfg, Options{}); !errors.Is(err, ErrFeatureLevel) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("a start offering %d on a state at %d: %v", held, registry.FeatureLevel, err)
	}
	cfg.Raft.MaxFeatureLevel = registry.FeatureLevel + 1
	if n, err := New(cfg, Options{}); !errors.Is(err, ErrFeatureLevel) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("raft.max_feature_level above the build's: %v", err)
	}
}
