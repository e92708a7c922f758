package node

import (
	"context"
	"errors"
	"time"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/registry"
)

// Feature-level raising: the leader looks for a feature level that every
// member's build applies and the cluster is not at yet, and proposes it
// (registry/features.go says why levels exist). A fresh cluster reaches
// this build's level within levelPoll of electing its first leader; a
// cluster in a rolling upgrade reaches it within levelRecheck of its last
// member restarting on the new build.
const (
	// levelPoll is the leader's first look, soon after its election;
	// levelRecheck the next ones while a member holds the level back.
	levelPoll    = 50 * time.Millisecond
	levelRecheck = 2 * time.Second
	// levelWait bounds how long a write that needs a level this node's
	// build knows waits for the cluster to reach it (Submit).
	levelWait = 2 * time.Second
)

// raiseFeatureLevel runs until ctx ends or the cluster is at this build's
// level.
func (n *Node) raiseFeatureLevel(ctx context.Context) {
	t := time.NewTimer(levelPoll)
	defer t.Stop()
	held := 0 // the level last reported as held back, to log it once
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.State.ClusterFeatureLevel() >= n.buildLevel {
			return // levels never go down: nothing is left to raise
		}
		t.Reset(levelPoll)
		if !n.cluster.IsLeader() {
			continue
		}
		var (
			target int
			lowest []string
		)
		resp, err := n.cluster.ProposeWithMembers(ctx, func(ms []consensus.MemberStatus) []byte {
			target, lowest = commonLevel(ms, n.buildLevel)
			if target <= n.State.ClusterFeatureLevel() {
				return nil
			}
			return registry.EncodeFeatureLevel(target)
		})
		if err != nil || len(lowest) > 0 {
			t.Reset(levelRecheck) // a member's build changes at a restart, not in moments
		}
		switch {
		case err != nil && !errors.Is(err, consensus.ErrNotLeader) && ctx.Err() == nil:
			n.log.Warn("could not raise the cluster's feature level", "err", err)
		case resp != nil:
			n.log.Info("raised the cluster's feature level", "level", n.State.ClusterFeatureLevel())
		case len(lowest) > 0 && held != n.State.ClusterFeatureLevel():
			held = n.State.ClusterFeatureLevel()
			n.log.Info("the cluster's feature level stays below this build's until these members run a newer trustd",
				"level", held, "build", n.buildLevel, "members", lowest)
		}
	}
}

// commonLevel is the highest feature level every member applies, capped at
// build (this node's), and the members that hold it below build (a member
// that does not answer holds it where it is: its build is unknown).
func commonLevel(ms []consensus.MemberStatus, build int) (int, []string) {
	level := build
	var lowest []string
	for _, m := range ms {
		switch {
		case !m.Reachable:
			return 0, []string{m.ID + " (not answering)"}
		case m.FeatureLevel < build:
			level = min(level, m.FeatureLevel)
			lowest = append(lowest, m.ID)
		}
	}
	return level, lowest
}
