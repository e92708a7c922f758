package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNotFollowing is the readiness failure of a member that does not apply
// what its cluster committed.
var ErrNotFollowing = errors.New("node: not following the cluster's log")

// How a follower's progress is watched: every lagCheckEvery it asks the
// leader for its committed index (a read index); an index the cluster had
// committed that this node has still not applied lagLimit later makes the
// node not ready. A follower that stops applying for a reason raft does
// not report keeps hearing the leader's heartbeats and looks healthy
// otherwise. (One whose state parted from the cluster's log, a member
// restored from its backup and run alone, is found sooner and named by the
// fork check: consensus.ErrForked.) lagLimit is well above a catch-up from
// a snapshot (about 24 s at a million entities, BENCHMARKS.md).
const (
	lagCheckEvery = 5 * time.Second
	lagLimit      = 60 * time.Second
	lagAsk        = 2 * time.Second
)

// lagWatch holds the oldest index the cluster had committed that this node
// has not applied, and when it was first seen.
type lagWatch struct {
	mu     sync.Mutex
	target uint64
	since  time.Time
	stuck  error
}

// observe takes the cluster's committed index and this node's applied one,
// read at now.
func (w *lagWatch) observe(committed, applied uint64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.target != 0 && applied >= w.target {
		w.target, w.stuck = 0, nil
	}
	if w.target == 0 {
		if committed > applied {
			w.target, w.since = committed, now
		}
		return
	}
	if waited := now.Sub(w.since); waited >= lagLimit {
		w.stuck = fmt.Errorf("%w: index %d, which the cluster committed %s ago, is not applied here (applied %d); see the log for raft's errors, and OPERATIONS.md (State audit) for taking the member out and adding it again",
			ErrNotFollowing, w.target, waited.Round(time.Second), applied)
	}
}

// clear forgets what was observed (the node leads, or knows no leader).
func (w *lagWatch) clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.target, w.stuck = 0, nil
}

// failure is why the node is not following, or nil.
func (w *lagWatch) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stuck
}

// watchLag runs the lag watch until ctx ends: on a follower that knows a
// leader, each check asks the leader's committed index. A check the leader
// does not answer changes nothing.
func (n *Node) watchLag(ctx context.Context) {
	t := time.NewTicker(lagCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.cluster.IsLeader() || n.cluster.LeaderID() == "" {
			n.lag.clear()
			continue
		}
		actx, cancel := context.WithTimeout(ctx, lagAsk)
		committed, err := n.cluster.ReadIndex(actx)
		cancel()
		if err != nil {
			continue
		}
		was := n.lag.failure()
		n.lag.observe(committed, n.State.AppliedIndex(), time.Now())
		if now := n.lag.failure(); now != nil && was == nil {
			n.log.Error("this node does not apply what the cluster committed: not ready", "err", now)
		} else if now == nil && was != nil {
			n.log.Warn("this node applies the cluster's log again: ready")
		}
	}
}
