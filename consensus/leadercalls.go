package consensus

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// leaderCalls ends the calls in flight to a leader once raft names another
// leader, or none. A leader that died mid-call answers nothing, and nothing
// says so quickly: a QUIC connection to it, or a QUIC dial, waits out its
// idle or handshake timeout, longer than a caller waits for a leader. Once
// raft has moved on, the caller does better to ask the new leader
// (toLeader does).
type leaderCalls struct {
	mu    sync.Mutex
	next  uint64
	calls map[uint64]leaderCall
}

type leaderCall struct {
	to     string
	cancel context.CancelFunc
}

// add registers a call to the leader to; cancel ends it. The returned
// function unregisters it.
func (l *leaderCalls) add(to string, cancel context.CancelFunc) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[uint64]leaderCall{}
	}
	id := l.next
	l.next++
	l.calls[id] = leaderCall{to: to, cancel: cancel}
	return func() {
		l.mu.Lock()
		delete(l.calls, id)
		l.mu.Unlock()
	}
}

// leaderIs ends every call to a peer other than leader ("" for none).
func (l *leaderCalls) leaderIs(leader string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, c := range l.calls {
		if c.to != leader {
			c.cancel()
			delete(l.calls, id)
		}
	}
}

// watchLeader hands every change of leader raft observes to
// c.leaderCalls, until ctx ends.
func (c *Cluster) watchLeader(ctx context.Context) {
	ch := make(chan raft.Observation, 1)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	c.raft.RegisterObserver(obs)
	defer c.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			// An observation dropped while this one waited changes
			// nothing: the leader is read as it is now.
			c.leaderCalls.leaderIs(c.LeaderID())
		}
	}
}

// callLeader is call to the peer this node takes for the leader, ended
// early if raft names another leader meanwhile. A call ended before its
// request went out fails with ErrNoLeader, after it with
// ErrUnknownOutcome, as call's failures do.
func (c *Cluster) callLeader(ctx context.Context, to peer.ID, kind rpcType, body []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer c.leaderCalls.add(to.String(), cancel)()
	// A change seen before the call was registered sent no cancel.
	if c.LeaderID() != to.String() {
		return nil, fmt.Errorf("%w: %s no longer leads", ErrNotLeader, to)
	}
	return c.call(ctx, to, kind, body)
}
