package consensus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// confirmWait bounds one confirmation round.
const confirmWait = 2 * time.Second

// confirmer batches the leadership confirmations of linearizable reads:
// a read joins the next round that starts after it arrived, and one round
// answers every read that joined it.
type confirmer struct {
	mu      sync.Mutex
	waiting []confirmWaiter
	running bool
}

type confirmWaiter struct {
	term uint64
	done chan error // buffered, one answer
}

// confirmLeadership returns once a quorum of voters, asked after this call
// began, said they are in term with this node as their leader. No leader
// of a later term can then have committed anything before the call: it
// would have needed a majority in its term, and one of them answered.
//
// raft.VerifyLeader is not enough here: it counts answers to heartbeats
// and appends that were already on their way when it was called, so a
// leader deposed while it was paused could confirm itself with an answer
// from before its deposition.
func (c *Cluster) confirmLeadership(ctx context.Context, term uint64) error {
	done := make(chan error, 1)
	c.confirm.mu.Lock()
	if !c.confirm.running {
		if !c.life.spawn(c.confirmRounds) {
			c.confirm.mu.Unlock()
			return ErrShutdown
		}
		c.confirm.running = true
	}
	c.confirm.waiting = append(c.confirm.waiting, confirmWaiter{term: term, done: done})
	c.confirm.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: leadership not confirmed in time", ErrNotLeader)
	}
}

// confirmRounds runs rounds while reads wait for one: each round takes
// every read waiting and confirms each term they asked about (normally
// one).
func (c *Cluster) confirmRounds(ctx context.Context) {
	for {
		c.confirm.mu.Lock()
		batch := c.confirm.waiting
		c.confirm.waiting = nil
		if len(batch) == 0 {
			c.confirm.running = false
			c.confirm.mu.Unlock()
			return
		}
		c.confirm.mu.Unlock()
		results := map[uint64]error{}
		for _, w := range batch {
			err, ok := results[w.term]
			if !ok {
				err = c.confirmRound(ctx, w.term)
				results[w.term] = err
			}
			w.done <- err
		}
	}
}

// confirmRound asks every other voter whether it still follows this node
// in term, and returns nil once a quorum (this node included) has said so.
func (c *Cluster) confirmRound(ctx context.Context, term uint64) error {
	if t, ok := c.leaderTerm(); !ok || t != term {
		return ErrNotLeader
	}
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("%w: configuration: %w", ErrNotLeader, err)
	}
	var others []peer.ID
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if id, err := peer.Decode(string(s.ID)); err == nil && id != c.host.ID() {
			others = append(others, id)
		}
	}
	need := voters/2 + 1 - 1 // this node's own answer is yes
	if need <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, confirmWait)
	defer cancel()
	body := confirmRequest{Term: term}.encode()
	answers := make(chan error, len(others))
	for _, id := range others {
		// Counted in the cluster's lifetime: a call still running when the
		// round has its answer ends with the round's context.
		if !c.life.spawn(func(context.Context) {
			_, err := c.call(ctx, id, rpcConfirm, body)
			answers <- err
		}) {
			answers <- ErrShutdown
		}
	}
	yes, older, no := 0, 0, 0
	for range others {
		switch err := <-answers; {
		case err == nil:
			yes++
		case errors.Is(err, ErrUnknownRequest):
			// A build from before rpcConfirm, as its hello said (call
			// does not ask it), or one that answered so.
			older++
		default:
			no++
		}
		if yes >= need {
			return nil
		}
		if no > len(others)-need {
			break
		}
	}
	if older > 0 && yes+older >= need {
		// During a rolling upgrade: confirm as older builds did.
		if err := c.raft.VerifyLeader().Error(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %d of %d other voters confirmed term %d, %d needed", ErrNotLeader, yes, len(others), term, need)
}

// leaderTerm returns the current term and whether this node leads in it.
func (c *Cluster) leaderTerm() (uint64, bool) {
	term := c.raft.CurrentTerm()
	leads := c.IsLeader()
	return term, leads && c.raft.CurrentTerm() == term
}

// answerConfirm is a voter's side of rpcConfirm.
func (c *Cluster) answerConfirm(from peer.ID, body []byte) error {
	req, err := decodeConfirmRequest(body)
	if err != nil {
		return err
	}
	term := req.Term
	_, leader := c.raft.LeaderWithID()
	if string(leader) != from.String() || c.raft.CurrentTerm() != term {
		return fmt.Errorf("%w: not following %s in term %d", ErrNotLeader, from, term)
	}
	return nil
}
