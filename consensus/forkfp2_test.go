package consensus

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestReelectedLeaderSendsNoStaleEntries: a deposed leader A, cut off with
// 300 entries of its own it never committed, installs the cluster's
// snapshot; raft's compactLogs would keep its log below the snapshot's
// index (trailing_logs 400), stale entries and all. A leads again, and
// follower F, which applied the committed entries at those indexes and
// was away meanwhile, comes back. F is healthy: it must neither be
// declared forked (it was, comparing A's stale term with its own) nor take
// A's stale entries (raft alone had it apply 246 of them). dropStaleBelow
// removes A's log below the snapshot once it is installed.
func TestReelectedLeaderSendsNoStaleEntries(t *testing.T) {
	const n = 5
	g := startGated(t, n, func(int) StateMachine { return &snapMachine{} }, func(c *Config) { c.TrailingLogs = 400 })
	cs, ids := g.cs, make([]peer.ID, n)
	for i, h := range g.hosts {
		ids[i] = h.ID()
	}
	a := leaderOf(cs)
	for i := range 3 {
		if err := cs[a].raft.Apply(stamp([]byte(fmt.Sprint("c", i)), time.Now()), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	cut, heal := g.cut, g.heal
	others := []int{}
	for i := range n {
		if i != a {
			others = append(others, i)
			cut(a, i)
		}
	}
	for i := range 300 {
		cs[a].raft.Apply(stamp([]byte(fmt.Sprint("lost", i)), time.Now()), 2*time.Second)
	}
	commitA := cs[a].sm.AppliedIndex()
	pollUntil(t, "the cut-off leader to append", 5*time.Second, func() bool {
		_, last, _ := cs[a].LogBounds()
		return last >= commitA+290
	})
	_, lastA, _ := cs[a].LogBounds()
	t.Logf("old leader %d: applied %d, log ends at %d", a, commitA, lastA)
	pollUntil(t, "a new leader", 15*time.Second, func() bool {
		for _, i := range others {
			if cs[i].IsLeader() {
				return true
			}
		}
		return false
	})
	l := -1
	for _, i := range others {
		if cs[i].IsLeader() {
			l = i
		}
	}
	f := -1
	for _, i := range others {
		if i != l {
			f = i
			break
		}
	}
	p := commitA + 10
	write := func(what string) {
		if err := cs[l].raft.Apply(stamp([]byte(what), time.Now()), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for {
		_, last, _ := cs[l].LogBounds()
		if last >= p {
			break
		}
		write(fmt.Sprint("new", last))
	}
	if _, last, _ := cs[l].LogBounds(); last != p {
		t.Fatalf("new leader's log ends at %d, want %d", last, p)
	}
	pollUntil(t, "F to apply p", 5*time.Second, func() bool { return cs[f].sm.AppliedIndex() >= p })
	for i := range n {
		if i != f {
			cut(f, i)
		}
	}
	var stale, real raft.Log
	_ = cs[a].logs.GetLog(p, &stale)
	_ = cs[f].logs.GetLog(p, &real)
	t.Logf("at p=%d: old leader's entry term %d, F's (applied %d) term %d", p, stale.Term, cs[f].sm.AppliedIndex(), real.Term)
	for {
		_, last, _ := cs[l].LogBounds()
		if last >= lastA+450 {
			break
		}
		write(fmt.Sprint("more", last))
	}
	if err := cs[l].Snapshot(); err != nil {
		t.Fatal(err)
	}
	metas, _ := cs[l].snaps.List()
	first, last, _ := cs[l].LogBounds()
	t.Logf("new leader %d term %d: log %d..%d, snapshot at %d term %d", l, cs[l].raft.CurrentTerm(), first, last, metas[0].Index, metas[0].Term)
	for _, i := range others {
		if i != f {
			heal(a, i)
		}
	}
	pollUntil(t, "the old leader to catch up", 20*time.Second, func() bool {
		if err := cs[a].Forked(); err != nil {
			t.Fatalf("old leader declared forked: %v", err)
		}
		return cs[a].raft.AppliedIndex() >= metas[0].Index
	})
	write("post")
	pollUntil(t, "the old leader to take the new entries", 10*time.Second, func() bool { return cs[a].raft.LastIndex() > metas[0].Index })
	afirst, alast, _ := cs[a].LogBounds()
	t.Logf("old leader's log %d..%d", afirst, alast)
	// Once it installed the snapshot, the old leader keeps nothing of its
	// log at or below the snapshot's index: no stale entry to send.
	if afirst <= metas[0].Index {
		t.Fatalf("the old leader's log starts at %d, at or below the snapshot it installed (%d): its stale entries are kept", afirst, metas[0].Index)
	}
	if err := cs[l].raft.LeadershipTransferToServer(raft.ServerID(ids[a].String()), raft.ServerAddress(ids[a].String())).Error(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the old leader to lead again", 10*time.Second, func() bool { return cs[a].IsLeader() })
	t.Logf("old leader %d leads again in term %d; F's term %d", a, cs[a].raft.CurrentTerm(), cs[f].raft.CurrentTerm())
	for i := range n {
		if i != f {
			heal(f, i)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := cs[f].Forked(); err != nil {
			t.Fatalf("healthy follower F declared forked: %v", err)
		}
		if cs[f].raft.AppliedIndex() >= metas[0].Index+1 {
			t.Logf("F caught up: %d", cs[f].raft.AppliedIndex())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("F not caught up: applied %d, raft applied %d", cs[f].sm.AppliedIndex(), cs[f].raft.AppliedIndex())
}
