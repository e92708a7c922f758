package consensus

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// joinRetry is how long Join waits between rounds of asking the members.
const joinRetry = time.Second

// ErrJoinRefused marks a join a member refused: its leader gave a reason
// (ErrBadMembership), it belongs to another consortium (ErrForeignCluster),
// or its build does not serve joins (ErrUnknownRequest).
var ErrJoinRefused = errors.New("join refused")

// JoinError is a failed attempt of Join: the member asked and what came
// back. It is ErrJoinRefused when the member refused (Refused), and always
// its Err.
type JoinError struct {
	Peer peer.ID
	Err  error
}

// Refused reports whether the member refused the join, as opposed to not
// answering.
func (e *JoinError) Refused() bool {
	return errors.Is(e.Err, ErrBadMembership) || errors.Is(e.Err, ErrForeignCluster) || errors.Is(e.Err, ErrUnknownRequest)
}

func (e *JoinError) Error() string {
	if e.Refused() {
		return fmt.Sprintf("%v by %s: %v", ErrJoinRefused, e.Peer, e.Err)
	}
	return fmt.Sprintf("not joined yet: %s did not answer: %v (if it runs, check that its p2p.peers lists this node's peer id)", e.Peer, e.Err)
}

// Unwrap makes a refusal ErrJoinRefused, and every JoinError its Err.
func (e *JoinError) Unwrap() []error {
	if e.Refused() {
		return []error{ErrJoinRefused, e.Err}
	}
	return []error{e.Err}
}

// JoinFailure returns the last failed attempt of a Join that has not
// succeeded (a *JoinError), or nil: no Join ran, it succeeded, or the node
// has become a member since (an operator added it).
func (c *Cluster) JoinFailure() error {
	e := c.joinFailure.Load()
	if e == nil {
		return nil
	}
	self := raft.ServerID(c.host.ID().String())
	if c.isMember(self, raft.Voter) || c.isMember(self, raft.Nonvoter) {
		return nil
	}
	return e
}

// joinFailed records a failed attempt and logs it when it differs from the
// one before: a refusal as an error with the member's reason, no answer as
// a warning.
func (c *Cluster) joinFailed(e *JoinError) {
	prev := c.joinFailure.Swap(e)
	if prev != nil && prev.Error() == e.Error() {
		return // logged already; Join asks again every joinRetry
	}
	switch {
	case errors.Is(e.Err, ErrForeignCluster):
		c.log.Error("join refused: the member belongs to another consortium; this node stops asking (check its genesis)",
			"member", e.Peer.String(), "reason", e.Err.Error())
		return
	case e.Refused():
		c.log.Error("join refused: this node is not a member; it asks again until the join succeeds or its time runs out",
			"member", e.Peer.String(), "reason", e.Err.Error())
		return
	}
	c.log.Warn("join: no answer from a member; asking again", "member", e.Peer.String(), "err", e.Err.Error())
}
