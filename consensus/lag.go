package consensus

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// commitWatch is raft's network transport with the leader's commit index
// read off the way in: every AppendEntries request a leader sends carries
// its commit index at sending, which a follower or replica records before
// raft handles the request. Heartbeats carry none (raft's fast path), but
// a leader sends an AppendEntries at least every CommitTimeout while it
// leads, with new entries or none.
type commitWatch struct {
	*boundTransport
	rpcs chan raft.RPC
	stop chan struct{} // closed by close: relay ends
	once sync.Once
	// heard is the highest commit index a leader has sent this node.
	heard atomic.Uint64
	beats heartbeats
	// fork, when not nil, is asked about every request before raft sees
	// it: one it returns an error for is answered with that error, and
	// raft never sees it (Cluster.refuseFork).
	fork func(cmd any) error
}

func newCommitWatch(t *boundTransport, fork func(cmd any) error) *commitWatch {
	w := &commitWatch{boundTransport: t, rpcs: make(chan raft.RPC), stop: make(chan struct{}), fork: fork}
	w.beats.done = make(chan struct{})
	go w.relay(w.stop)
	return w
}

// close ends the relay and waits, up to wait, for the heartbeat handlers
// still running; raft must have shut down. It reports whether they ended.
func (w *commitWatch) close(wait time.Duration) bool {
	w.once.Do(func() { close(w.stop) })
	return w.beats.close(wait)
}

// SetHeartbeatHandler implements raft.Transport. Raft handles heartbeats
// on the transport's connection goroutines, not its own: one that passed
// raft's shutdown check just before Shutdown finds the state no longer
// Follower and saves the term (whatever its term) possibly after Shutdown
// returned; raft panics when that write fails on a closed log store. The
// handler given is counted, so the cluster can wait for it before it
// closes the log (Cluster.close), and refused once the wait has begun.
func (w *commitWatch) SetHeartbeatHandler(fn func(raft.RPC)) {
	if fn != nil {
		fn = w.beats.wrap(fn)
	}
	w.boundTransport.SetHeartbeatHandler(fn)
}

// heartbeats counts the heartbeat handlers running; after close, it
// refuses new ones.
type heartbeats struct {
	mu      sync.Mutex
	closed  bool
	running int
	done    chan struct{} // closed once closed is set and none is running
	handled atomic.Uint64 // heartbeats passed to raft
}

func (h *heartbeats) wrap(fn func(raft.RPC)) func(raft.RPC) {
	return func(rpc raft.RPC) {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			rpc.Respond(nil, raft.ErrRaftShutdown)
			return
		}
		h.running++
		h.mu.Unlock()
		h.handled.Add(1)
		defer func() {
			h.mu.Lock()
			if h.running--; h.closed && h.running == 0 {
				close(h.done)
			}
			h.mu.Unlock()
		}()
		fn(rpc)
	}
}

// close refuses new handlers and waits up to wait for the running ones;
// it reports whether they ended.
func (h *heartbeats) close(wait time.Duration) bool {
	h.mu.Lock()
	if !h.closed {
		if h.closed = true; h.running == 0 {
			close(h.done)
		}
	}
	h.mu.Unlock()
	return closedWithin(h.done, wait)
}

// Consumer implements raft.Transport: raft reads the requests relay
// passes on.
func (w *commitWatch) Consumer() <-chan raft.RPC { return w.rpcs }

func (w *commitWatch) relay(stop <-chan struct{}) {
	in := w.boundTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if w.fork != nil {
				if err := w.fork(rpc.Command); err != nil {
					rpc.Respond(nil, err)
					continue
				}
			}
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
