package consensus

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// snapMachine is a countingMachine that keeps its applied index in its
// snapshots, as the registry does.
type snapMachine struct{ countingMachine }

func (m *snapMachine) Snapshot() (Snapshot, error) { return idxSnapshot(m.applied.Load()), nil }
func (m *snapMachine) Restore(r io.Reader) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	m.applied.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type idxSnapshot uint64

func (s idxSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(binary.BigEndian.AppendUint64(nil, uint64(s)))
	return int64(n), err
}
func (idxSnapshot) Release() {}

// TestHealthyDeposedLeaderIsNotAFork: a leader is cut off with entries it
// appended but never committed; the others elect a leader, write, snapshot
// and compact (trailing_logs 2). Healed, the old leader receives a
// snapshot; raft keeps (compactLogs with the old last index and
// TrailingLogs) its own uncommitted entries at and around the snapshot's
// index. Nothing it applied differs from the cluster: it must not be
// declared forked.
func TestHealthyDeposedLeaderIsNotAFork(t *testing.T) {
	const n = 3
	g := startGated(t, n, func(int) StateMachine { return &snapMachine{} }, func(c *Config) { c.TrailingLogs = 2 })
	cs := g.cs
	a := leaderOf(cs)
	for i := range 3 {
		if err := cs[a].raft.Apply(stamp([]byte(fmt.Sprint("c", i)), time.Now()), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	cut, heal := g.cut, g.heal
	b, c := (a+1)%3, (a+2)%3
	cut(a, b)
	cut(a, c)
	// The cut-off leader appends entries it can never commit.
	for i := range 20 {
		cs[a].raft.Apply(stamp([]byte(fmt.Sprint("lost", i)), time.Now()), time.Second)
	}
	commitA := cs[a].sm.AppliedIndex()
	pollUntil(t, "the cut-off leader to append", 5*time.Second, func() bool {
		_, last, _ := cs[a].LogBounds()
		return last >= commitA+20
	})
	_, lastA, _ := cs[a].LogBounds()
	t.Logf("old leader %d: applied %d, log ends at %d", a, commitA, lastA)
	pollUntil(t, "a new leader", 15*time.Second, func() bool { return cs[b].IsLeader() || cs[c].IsLeader() })
	l := b
	if cs[c].IsLeader() {
		l = c
	}
	// The new leader writes up to one below the old leader's last index,
	// then snapshots there (compacting its log with trailing_logs 2).
	for {
		_, last, _ := cs[l].LogBounds()
		if last >= lastA-1 {
			break
		}
		if err := cs[l].raft.Apply(stamp([]byte(fmt.Sprint("new", last)), time.Now()), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs[l].Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, last, _ := cs[l].LogBounds()
	metas, _ := cs[l].snaps.List()
	t.Logf("new leader %d (term %d): log %d..%d, snapshot at %d term %d", l, cs[l].raft.CurrentTerm(), first, last, metas[0].Index, metas[0].Term)
	heal(a, b)
	heal(a, c)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := cs[a].Forked(); err != nil {
			var lg raft.Log
			_ = cs[a].logs.GetLog(metas[0].Index, &lg)
			t.Fatalf("a healthy node was declared forked: %v (its log at %d: term %d)", err, metas[0].Index, lg.Term)
		}
		if cs[a].sm.AppliedIndex() >= metas[0].Index && cs[a].raft.AppliedIndex() > metas[0].Index {
			t.Logf("old leader caught up: applied %d", cs[a].sm.AppliedIndex())
			return
		}
		time.Sleep(20 * time.Millisecond)
		if time.Since(deadline.Add(-20*time.Second)) > 3*time.Second && cs[l].raft.LastIndex() <= lastA+5 {
			// raft alone livelocks until the leader's snapshot passes the
			// old leader's stale entries: write on and snapshot again.
			for i := range 5 {
				_ = cs[l].raft.Apply(stamp([]byte(fmt.Sprint("more", i)), time.Now()), 5*time.Second).Error()
			}
			t.Logf("leader snapshot again: %v", cs[l].Snapshot())
		}
	}
	t.Fatalf("old leader not caught up after 20s: applied %d, raft applied %d, state %s", cs[a].sm.AppliedIndex(), cs[a].raft.AppliedIndex(), cs[a].State())
}
