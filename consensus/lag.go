package consensus

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// commitWatch is raft's network transport with the leader's commit index
// read off the way in: every AppendEntries request a leader sends carries
// its commit index at sending, which a follower or replica records before
// raft handles the request. Heartbeats carry none (raft's fast path), but
// a leader sends an AppendEntries at least every CommitTimeout while it
// leads, with new entries or none.
type commitWatch struct {
	*raft.NetworkTransport
	rpcs chan raft.RPC
	stop chan struct{} // closed by close: relay ends
	once sync.Once
	// heard is the highest commit index a leader has sent this node.
	heard atomic.Uint64
}

func newCommitWatch(t *raft.NetworkTransport) *commitWatch {
	w := &commitWatch{NetworkTransport: t, rpcs: make(chan raft.RPC), stop: make(chan struct{})}
	go w.relay(w.stop)
	return w
}

// close ends the relay; raft must have shut down.
func (w *commitWatch) close() { w.once.Do(func() { close(w.stop) }) }

// Consumer implements raft.Transport: raft reads the requests relay
// passes on.
func (w *commitWatch) Consumer() <-chan raft.RPC { return w.rpcs }

func (w *commitWatch) relay(stop <-chan struct{}) {
	in := w.NetworkTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if ae, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				for {
					old := w.heard.Load()
					if ae.LeaderCommitIndex <= old || w.heard.CompareAndSwap(old, ae.LeaderCommitIndex) {
						break
					}
				}
			}
			select {
			case w.rpcs <- rpc:
			case <-stop:
				return
			}
		case <-stop:
			return
		}
	}
}

// LeaderCommitIndex is the leader's commit index as this node last heard
// it: its own on the leader, else the highest a leader has sent it (or
// its own commit index, if higher).
func (c *Cluster) LeaderCommitIndex() uint64 {
	own := c.raft.CommitIndex()
	if c.raft.State() == raft.Leader {
		return own
	}
	return max(own, c.watch.heard.Load())
}

// Lag is how far this node is behind the leader, as far as it knows:
// the leader's commit index as last heard (LeaderCommitIndex) minus the
// index raft has applied here. A node cannot count entries the leader has
// not yet sent it: behind a link of delay d it is about d behind while
// Lag is 0; trustd_raft_last_contact_seconds shows the link.
func (c *Cluster) Lag() uint64 {
	applied := c.raft.AppliedIndex()
	if heard := c.LeaderCommitIndex(); heard > applied {
		return heard - applied
	}
	return 0
}
