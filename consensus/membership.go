package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Membership actions.
const (
	ActionAddVoter       = "add-voter"
	ActionAddNonvoter    = "add-nonvoter"
	ActionPromote        = "promote"
	ActionDemote         = "demote"
	ActionRemove         = "remove"
	ActionTransferLeader = "transfer-leader"
)

// MembershipChange asks the leader to change the raft configuration.
type MembershipChange struct {
	Action string   `json:"action"`
	ID     string   `json:"id,omitempty"`    // peer id
	Addrs  []string `json:"addrs,omitempty"` // multiaddrs of a new member
}

// ChangeMembership applies a membership change at the leader, forwarding it
// from a follower.
func (c *Cluster) ChangeMembership(ctx context.Context, m MembershipChange) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	// A plain call, not callLeader: a change of leader is what a transfer
	// or the leader's removal is asked to bring about, not a reason to stop
	// waiting for its answer.
	_, err = c.toLeader(ctx, false, func() ([]byte, error) { return nil, c.changeLocal(m) },
		func(leader peer.ID) ([]byte, error) { return c.call(ctx, leader, rpcMembership, body) })
	return err
}

func (c *Cluster) changeLocal(m MembershipChange) error {
	// Membership changes wait for ProposeWithMembers: a member admitted
	// while it decides would be one it did not ask.
	c.memberMu.Lock()
	defer c.memberMu.Unlock()
	var id peer.ID
	if m.ID != "" || m.Action != ActionTransferLeader {
		var err error
		if id, err = peer.Decode(m.ID); err != nil {
			return badMembership("member id %q is not a peer id", m.ID)
		}
	}
	// Only an add admits the peer (its connections, the leader's
	// questions to it), for as long as it runs, and a member once it
	// succeeds; any other request names a member or is refused, and
	// admits no one. A failed add closes what the peer opened meanwhile.
	var added uint64
	if id != "" && (m.Action == ActionAddVoter || m.Action == ActionAddNonvoter) {
		c.addAddrs(id, m.Addrs)
		if c.gater != nil {
			done := c.gater.Admit(id)
			defer func() {
				if !done(added, m.Action == ActionAddVoter) {
					c.dropPeer(id)
				}
			}()
		}
	}
	sid, addr := raft.ServerID(id.String()), raft.ServerAddress(id.String())
	var f raft.Future
	switch m.Action {
	case ActionAddVoter:
		if err := c.answers(id); err != nil {
			return err
		}
		f = c.raft.AddVoter(sid, addr, 0, 30*time.Second)
	case ActionAddNonvoter:
		if err := c.admitsReplica(id); err != nil {
			return err
		}
		f = c.raft.AddNonvoter(sid, addr, 0, 30*time.Second)
	case ActionPromote:
		if !c.isMember(sid, raft.Nonvoter) {
			return badMembership("%s is not a non-voter of this cluster", id)
		}
		if err := c.answers(id); err != nil {
			return err
		}
		f = c.raft.AddVoter(sid, addr, 0, 30*time.Second)
	case ActionDemote:
		if !c.isMember(sid, raft.Voter) {
			return badMembership("%s is not a voter of this cluster", id)
		}
		if err := c.keepsAVoter(sid); err != nil {
			return err
		}
		f = c.raft.DemoteVoter(sid, 0, 30*time.Second)
	case ActionRemove:
		if !c.isMember(sid, raft.Voter) && !c.isMember(sid, raft.Nonvoter) {
			return badMembership("%s is not a member of this cluster", id)
		}
		if c.isMember(sid, raft.Voter) {
			if err := c.keepsAVoter(sid); err != nil {
				return err
			}
		}
		f = c.raft.RemoveServer(sid, 0, 30*time.Second)
	case ActionTransferLeader:
		self := raft.ServerID(c.host.ID().String())
		switch {
		case id == "":
			if voters := c.voters(); len(voters) < 2 {
				return badMembership("this node is the cluster's only voter: there is no other to hand leadership to")
			}
			f = c.raft.LeadershipTransfer()
		case sid == self:
			return badMembership("%s already leads", id)
		case !c.isMember(sid, raft.Voter):
			return badMembership("%s is not a voter of this cluster: only voters can lead", id)
		default:
			f = c.raft.LeadershipTransferToServer(sid, addr)
		}
	default:
		return badMembership("unknown action %q", m.Action)
	}
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return ErrNotLeader
		}
		return fmt.Errorf("%s %s: %w", m.Action, id, err)
	}
	if idx, ok := f.(raft.IndexFuture); ok {
		switch m.Action {
		case ActionAddVoter, ActionAddNonvoter:
			added = idx.Index()
		case ActionRemove:
			if c.gater != nil && c.gater.Remove(id, idx.Index()) {
				c.dropPeer(id)
			}
		}
	}
	c.log.Info("membership changed", "action", m.Action, "peer", m.ID)
	return nil
}

// ErrBadMembership marks a membership request that cannot be carried out.
// The errors that carry it are *MembershipError.
var ErrBadMembership = errors.New("consensus: bad membership request")

// MembershipError is a membership request the leader refused, with the
// reason, which tells the operator what to do instead. It is
// ErrBadMembership; a follower that forwarded the request gets the leader's
// reason unchanged (rpcErrBadMembership).
type MembershipError struct {
	Reason string
}

func (e *MembershipError) Error() string { return ErrBadMembership.Error() + ": " + e.Reason }

// Is makes a MembershipError ErrBadMembership.
func (e *MembershipError) Is(target error) bool { return target == ErrBadMembership }

func badMembership(format string, args ...any) error {
	return &MembershipError{Reason: fmt.Sprintf(format, args...)}
}

// answers checks that the leader reaches a node about to get a vote, and
// that the node's build applies the cluster's feature level. A voter that
// cannot be reached counts against the quorum from the moment its
// configuration is stored: added to a one-node cluster, it would stop
// every write until it came up.
func (c *Cluster) answers(id peer.ID) error {
	if id == c.host.ID() {
		return nil
	}
	ps, err := c.peerStatus(id, 5*time.Second)
	if errors.Is(err, ErrForeignCluster) {
		return foreignMember(id, err)
	}
	if err != nil {
		return badMembership("%s does not answer (%v): start it first, since a voter that cannot be reached counts against the quorum (or add it as a non-voter, and promote it once it has caught up)", id, err)
	}
	if err := c.holdsNoOtherLog(id, ps); err != nil {
		return err
	}
	return c.featureGate(id, ps)
}

// holdsNoOtherLog refuses a node about to be added, or promoted, that
// holds a raft log and follows another leader (ownHistory).
func (c *Cluster) holdsNoOtherLog(id peer.ID, ps PeerStatus) error {
	sid := raft.ServerID(id.String())
	member := c.isMember(sid, raft.Voter) || c.isMember(sid, raft.Nonvoter)
	if !ownHistory(c.host.ID().String(), member, ps) {
		return nil
	}
	follows := ""
	if ps.Leader != "" {
		follows = " and follows another leader, " + ps.Leader
	}
	return badMembership("%s holds a raft log of its own (last index %d)%s: it is, or was, a member of a cluster with another history, and following this one would take it from its own; add it with an empty data directory, and it catches up from the leader", id, ps.LastLogIndex, follows)
}

// ownHistory reports whether a node that reported ps, about to be added
// to (or promoted in) the cluster that leader leads, holds a history of
// its own: a raft log while it follows another leader. It belongs, or
// belonged, to another cluster (a member of a running cluster, a registry
// restored from a backup), and this leader, with its term, would have it
// follow this log over its state, taking it from its own. A node with an
// empty log has none, nor has one that follows this leader (a non-voter
// replicating from it). One with a log that follows no leader has one
// unless it is a member already (as before peers reported their leader).
// So a non-voter added before it ran, which turns out to lead or follow
// another cluster, is not promoted. A node joins with an empty data
// directory and catches up from the leader (docs/OPERATIONS.md).
func ownHistory(leader string, member bool, ps PeerStatus) bool {
	switch {
	case ps.LastLogIndex == 0 || ps.Leader == leader:
		return false
	case ps.Leader != "":
		return true
	}
	return !member
}

// foreignMember refuses a node that answered as a member of another
// cluster (another consortium's genesis): it could never replicate this
// log, and the leader would fail its heartbeats for as long as it stayed.
func foreignMember(id peer.ID, err error) error {
	return badMembership("%s belongs to another consortium (%v): it runs with another genesis and cannot replicate this registry", id, err)
}

// admitsReplica checks the build of a node about to become a non-voter,
// when it answers. One that does not answer yet is added all the same (a
// replica is often added before it is started): OPERATIONS.md asks that it
// run a build at least as new as the members'.
func (c *Cluster) admitsReplica(id peer.ID) error {
	if id == c.host.ID() {
		return nil
	}
	// A node started a moment ago may refuse the first call (its hello
	// not yet done): asked again until replicaStatusWait has passed.
	deadline := time.Now().Add(replicaStatusWait)
	for {
		ps, err := c.peerStatus(id, time.Until(deadline))
		if err == nil {
			if err := c.holdsNoOtherLog(id, ps); err != nil {
				return err
			}
			return c.featureGate(id, ps)
		}
		if errors.Is(err, ErrForeignCluster) {
			return foreignMember(id, err)
		}
		if !time.Now().Add(replicaStatusRetry).Before(deadline) || c.life.ctx.Err() != nil {
			c.log.Warn("adding a non-voter that does not answer: its build's feature level is not checked", "peer", id.String(), "err", err)
			return nil
		}
		time.Sleep(replicaStatusRetry) // bounded by replicaStatusWait
	}
}

// How long admitsReplica asks a node for its status, and how often.
const (
	replicaStatusWait  = 2 * time.Second
	replicaStatusRetry = 100 * time.Millisecond
)

// peerStatus asks a peer what it reports about itself.
func (c *Cluster) peerStatus(id peer.ID, timeout time.Duration) (PeerStatus, error) {
	ctx, cancel := context.WithTimeout(c.life.ctx, timeout)
	defer cancel()
	raw, err := c.call(ctx, id, rpcStatus, nil)
	if err != nil {
		return PeerStatus{}, err
	}
	ps, err := decodeJSON[PeerStatus](raw)
	if err != nil {
		return ps, fmt.Errorf("status of %s: %w", id, err)
	}
	return ps, nil
}

// featureGate refuses a member whose build applies less than the cluster's
// feature level: it would reject operations the other members accept, and
// its state would part from theirs.
func (c *Cluster) featureGate(id peer.ID, ps PeerStatus) error {
	if c.clusterLevel == nil {
		return nil
	}
	have, need := ps.featureLevel(), c.clusterLevel()
	if have < need {
		return badMembership("%s runs a trustd that applies feature level %d and the cluster is at %d: upgrade it first, or it would reject operations the other members accept", id, have, need)
	}
	return nil
}

// keepsAVoter refuses to take away the last voter's vote: raft would
// refuse too, with a message about its configuration.
func (c *Cluster) keepsAVoter(id raft.ServerID) error {
	if voters := c.voters(); len(voters) == 1 && voters[0] == id {
		return badMembership("%s is the cluster's only voter: add or promote another voter first", id)
	}
	return nil
}

// voters are the voters of the latest configuration.
func (c *Cluster) voters() []raft.ServerID {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var ids []raft.ServerID
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func (c *Cluster) isMember(id raft.ServerID, suffrage raft.ServerSuffrage) bool {
	return inConfiguration(c.raft, id, suffrage)
}

// inConfiguration reports whether r's latest configuration holds id with
// suffrage.
func inConfiguration(r *raft.Raft, id raft.ServerID, suffrage raft.ServerSuffrage) bool {
	f := r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id && s.Suffrage == suffrage {
			return true
		}
	}
	return false
}

// Apply replicates cmd through the leader: proposed here when this node
// leads, forwarded over libp2p otherwise. It returns the state machine's
// response from the leader; wrapped in Resent when an attempt whose
// outcome was unknown was followed by another (IdempotentCommands): the
// response may then be the state machine's answer to cmd proposed a
// second time by this node, not by its caller.
func (c *Cluster) Apply(ctx context.Context, cmd []byte) (any, error) {
	var resp any
	var unknown, resent bool
	try := func(out []byte, err error) ([]byte, error) {
		resent = resent || unknown
		unknown = unknown || errors.Is(err, ErrUnknownOutcome)
		return out, err
	}
	out, err := c.toLeader(ctx, c.idempotent, func() ([]byte, error) {
		r, err := c.proposeLocal(ctx, cmd)
		resp = r
		return try(nil, err)
	}, func(leader peer.ID) ([]byte, error) { return try(c.fwd.propose(ctx, leader, cmd)) })
	if err != nil {
		return nil, err
	}
	if resp == nil {
		if resp, err = c.codec.Decode(out); err != nil {
			return nil, err
		}
	}
	if resent {
		return Resent{resp}, nil
	}
	return resp, nil
}

// Resent is Apply's response to a command this node proposed again after
// an attempt whose outcome it did not learn: a state machine that answers
// a command applied before as a duplicate may have applied this caller's
// first attempt.
type Resent struct{ Response any }

// ReadIndex returns an index that reflects every write acknowledged before
// the call: the leader's commit index, with its leadership confirmed by a
// quorum. A linearizable read waits until this node has applied it.
func (c *Cluster) ReadIndex(ctx context.Context) (uint64, error) {
	// Asking for a read index changes nothing: one whose answer was lost
	// is asked again.
	out, err := c.toLeader(ctx, true, func() ([]byte, error) {
		idx, err := c.readIndexLocal(ctx)
		if err != nil {
			return nil, err
		}
		return readIndexAnswer{Index: idx}.encode(), nil
	}, func(leader peer.ID) ([]byte, error) {
		out, err := c.callLeader(ctx, leader, rpcReadIndex, nil)
		var na *noAnswerError
		if errors.As(err, &na) {
			return nil, &unconfirmedReadError{Leader: leader.String(), Err: na.err}
		}
		return out, err
	})
	if errors.Is(err, ErrUnknownOutcome) {
		// Not from the call's stream (that is unconfirmedReadError above):
		// an answer that said so. %v: a read has no outcome to be unsure
		// of, so the error must not be ErrUnknownOutcome.
		return 0, fmt.Errorf("%w: the leader did not confirm the read: %v", ErrNoLeader, err)
	}
	if err != nil {
		return 0, err
	}
	a, err := decodeReadIndexAnswer(out)
	if err != nil {
		return 0, err
	}
	return a.Index, nil
}

// unconfirmedReadError is a read index the leader was asked for and did
// not answer. A read has no outcome to be unsure of: the error is
// ErrNoLeader (the read was not confirmed), never ErrUnknownOutcome, and
// Err says what happened to the call.
type unconfirmedReadError struct {
	Leader string // peer id
	Err    error
}

func (e *unconfirmedReadError) Error() string {
	return fmt.Sprintf("%v: the leader did not confirm the read: no answer from %s: %v", ErrNoLeader, e.Leader, e.Err)
}

// Unwrap makes an unconfirmedReadError ErrNoLeader and its Err.
func (e *unconfirmedReadError) Unwrap() []error { return []error{ErrNoLeader, e.Err} }

// readIndexLocal is the leader's side of a read index: once this leader
// has committed an entry of its term (termCommitted) and a quorum asked
// after the call began confirms it still leads (confirmLeadership), its
// commit index covers every write acknowledged before the call.
func (c *Cluster) readIndexLocal(ctx context.Context) (uint64, error) {
	term, leads := c.leaderTerm()
	if !leads {
		return 0, ErrNotLeader
	}
	if err := c.termCommitted(term); err != nil {
		return 0, err
	}
	if err := c.confirmLeadership(ctx, term); err != nil {
		return 0, err
	}
	return c.lastCommandAtOrBefore(c.raft.CommitIndex())
}

// termCommitted returns once this node, leading in term, has committed an
// entry of that term. Until then its commit index may lag the last
// leader's: an entry that leader committed and acknowledged is in this
// node's log, but this node learns it is committed only by committing a
// later entry. A barrier is such an entry; one per term is enough.
func (c *Cluster) termCommitted(term uint64) error {
	if c.readTerm.Load() == term {
		return nil
	}
	c.termMu.Lock()
	defer c.termMu.Unlock()
	if c.readTerm.Load() == term {
		return nil
	}
	if err := c.life.await(c.raft.Barrier(c.leaderWait)); err != nil {
		// %v: the barrier's outcome (ErrUnknownOutcome when the lifetime
		// ended) is not the read's; the read was not confirmed.
		return fmt.Errorf("%w: commit an entry of term %d: %v", ErrNotLeader, term, err)
	}
	if t, leads := c.leaderTerm(); !leads || t != term {
		return fmt.Errorf("%w: term %d ended", ErrNotLeader, term)
	}
	c.readTerm.Store(term)
	return nil
}

// lastCommandAtOrBefore returns the index of the last command entry at or
// below index. The state machine counts only commands (raft's no-op and
// configuration entries never reach it), so this is the index a reader
// waits for: every acknowledged write is a command at or below the commit
// index. Entries compacted away are all in the state machine already.
//
// The scan stops after 4,096 entries and answers the state machine's
// applied index. On the leader, after termCommitted, that is safe: the
// term's barrier returned once every entry before it was applied, so if the
// last command came before the barrier the applied index is at or past it;
// one after the barrier is found within the bound, since what follows it
// in the same term are only this leader's configuration changes and
// barriers, never 4,096 of them.
func (c *Cluster) lastCommandAtOrBefore(index uint64) (uint64, error) {
	var l raft.Log
	for i := index; i > 0 && index-i < 4096; i-- {
		if err := c.logs.GetLog(i, &l); errors.Is(err, raft.ErrLogNotFound) {
			break
		} else if err != nil {
			return 0, err
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return c.sm.AppliedIndex(), nil
}

// ProposeWithMembers runs on the leader: it asks every member for its
// status, hands the answers to decide, and proposes the command decide
// returns (none when nil), with membership changes held off from the
// asking until the command is applied, so no member joins unasked. It
// returns ErrNotLeader on a follower and the state machine's response
// otherwise (nil when nothing was proposed).
func (c *Cluster) ProposeWithMembers(ctx context.Context, decide func([]MemberStatus) []byte) (any, error) {
	c.memberMu.Lock()
	defer c.memberMu.Unlock()
	if !c.IsLeader() {
		return nil, ErrNotLeader
	}
	cmd := decide(c.Members(ctx))
	if cmd == nil {
		return nil, nil
	}
	return c.proposeLocal(ctx, cmd)
}

// MemberStatus is one member with what it reports about itself.
type MemberStatus struct {
	Member
	Reachable    bool   `json:"reachable"`
	State        string `json:"state,omitempty"`
	AppliedIndex uint64 `json:"applied_index"`
	Lag          uint64 `json:"lag"`
	// FeatureLevel is the highest feature level the member's build
	// applies (0 when it does not answer).
	FeatureLevel int `json:"feature_level,omitempty"`
	// Addrs are the member's multiaddrs (with /p2p/<id>) as this node
	// knows them: its own listen addresses, or those of the peer in its
	// peerstore; empty when it knows none.
	Addrs []string `json:"addrs,omitempty"`
	// LastContact is when this node last heard from the member: the last
	// answer to one of its calls (this status request among them) or,
	// on a follower, raft's last contact with the leader. Zero, and left
	// out, for this node itself and for a member it never reached.
	LastContact time.Time `json:"last_contact,omitzero"`
	// Connection is how this node is connected to the member now:
	// ConnDirect, ConnRelayed (only through another member's relay) or
	// empty (not connected, or this node itself).
	Connection string `json:"connection,omitempty"`
}

// Members asks every member for its status; lag is counted against this
// node's commit index.
func (c *Cluster) Members(ctx context.Context) []MemberStatus {
	st := c.Status()
	out := make([]MemberStatus, 0, len(st.Members))
	for _, m := range st.Members {
		ms := MemberStatus{Member: m}
		var ps PeerStatus
		if m.ID == st.NodeID {
			ps = PeerStatus{State: st.State, AppliedIndex: c.raft.AppliedIndex(), FeatureLevel: c.featureLevel}
			ms.Reachable = true
			ms.Addrs = st.Addrs
		} else if id, err := peer.Decode(m.ID); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			raw, err := c.call(cctx, id, rpcStatus, nil)
			cancel()
			if err == nil {
				ps, err = decodeJSON[PeerStatus](raw)
				ms.Reachable = err == nil
			}
			for _, a := range c.host.Peerstore().Addrs(id) {
				ms.Addrs = append(ms.Addrs, a.String()+"/p2p/"+m.ID)
			}
			slices.Sort(ms.Addrs)
			ms.LastContact = c.contacted.last(id)
			ms.Connection = connectionKind(c.host, id)
			if m.ID == st.Leader {
				if t := c.raft.LastContact(); t.After(ms.LastContact) {
					ms.LastContact = t
				}
			}
		}
		ms.State, ms.AppliedIndex = ps.State, ps.AppliedIndex
		if ms.Reachable {
			ms.FeatureLevel = ps.featureLevel()
		}
		if ms.Reachable && st.CommitIndex > ps.AppliedIndex {
			ms.Lag = st.CommitIndex - ps.AppliedIndex
		}
		out = append(out, ms)
	}
	return out
}

// JoinRequest is what a joining node sends to a member.
type JoinRequest struct {
	Nonvoter bool     `json:"nonvoter"`
	Addrs    []string `json:"addrs"`
}

// Join asks the members at peers (multiaddrs already in the peerstore) to
// add this node, trying each in turn every joinRetry until one succeeds or
// ctx ends. The member asked admits the node only if its own gater admits
// this node's peer id (its configuration lists it).
//
// A member of another consortium ends the join at once (ErrForeignCluster).
// A refusal (the leader's reason, or a member whose build does not serve
// joins) is logged when it first comes or changes, and the join goes on
// asking: the operator may fix the members' configuration meanwhile.
// JoinFailure reports the last failure until the join succeeds.
func (c *Cluster) Join(ctx context.Context, peers []peer.ID, nonvoter bool) error {
	req := JoinRequest{Nonvoter: nonvoter}
	for _, a := range c.host.Addrs() {
		req.Addrs = append(req.Addrs, a.String())
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var last error
	t := time.NewTicker(joinRetry)
	defer t.Stop()
	for {
		if c.isMember(raft.ServerID(c.host.ID().String()), raft.Voter) || c.isMember(raft.ServerID(c.host.ID().String()), raft.Nonvoter) {
			c.joinFailure.Store(nil)
			return nil
		}
		for _, p := range peers {
			cctx, cancel := context.WithTimeout(ctx, 35*time.Second)
			_, err := c.call(cctx, p, rpcJoin, body)
			cancel()
			if err == nil {
				c.joinFailure.Store(nil)
				c.log.Info("joined the cluster", "through", p.String(), "nonvoter", nonvoter)
				return nil
			}
			last = err
			c.joinFailed(&JoinError{Peer: p, Err: err})
			if errors.Is(err, ErrForeignCluster) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return fmt.Errorf("join: %w", ctx.Err())
			}
			return fmt.Errorf("join: %w (last error: %w)", ctx.Err(), last)
		case <-c.life.ctx.Done():
			return ErrShutdown
		case <-t.C:
		}
	}
}

// handleJoin runs on the member a joining node asked: the stream's peer is
// the node to add, admitted by this member's gater.
func (c *Cluster) handleJoin(ctx context.Context, from peer.ID, body []byte) error {
	req, err := decodeJSON[JoinRequest](body)
	if err != nil {
		return badMembership("join request: %v", err)
	}
	if c.gater != nil && !c.gater.Allowed(from) {
		return badMembership("%s is not in this node's configured peers", from)
	}
	action := ActionAddVoter
	if req.Nonvoter {
		action = ActionAddNonvoter
	}
	return c.ChangeMembership(ctx, MembershipChange{Action: action, ID: from.String(), Addrs: req.Addrs})
}
