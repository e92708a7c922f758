package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// ErrForked is the error of a node whose state machine applied entries that
// the cluster's log does not hold: raft, following the leader, was about to
// replace them.
var ErrForked = errors.New("this node's state forked from the cluster's log")

// ForkError says where the fork is: the leader's log differs from this
// node's at index From, and the state machine had applied up to Applied
// (From <= Applied).
type ForkError struct {
	From, Applied uint64
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("%v: the leader's log differs from this node's at index %d, and this node already applied up to %d "+
		"(a member restored from a backup, or started with another member's identity, and run alone); "+
		"it takes no entries from the leader and stopped raft: remove it (trustctl cluster remove) and add it again with an empty data directory",
		ErrForked, e.From, e.Applied)
}

func (e *ForkError) Unwrap() error { return ErrForked }

// forkGuard is the raft log store with one refusal: replacing entries the
// state machine has applied. raft deletes a suffix of a follower's log when
// the leader's entries differ from it. An applied entry is a committed one,
// and raft never replaces a committed entry of one cluster's history, so
// such a deletion means this node's state and log come from another history
// (a one-node cluster restored from a backup under a member's identity
// committed entries of its own, then met the cluster). Letting it go
// through, raft would append the leader's entries behind the state machine's
// applied index: the state machine skips those as applied before, then
// applies the next ones over a state that holds writes the cluster never
// saw, and answers from it for good without anything reporting it.
//
// appendFork finds the same earlier, in the leader's append itself, and
// also where raft would never delete anything: a restored node's log starts
// at its snapshot, and a leader whose entry there differs finds no earlier
// entry to agree on and retries for good.
//
// Refused, raft fails that append; found records the fork (Cluster.Forked),
// and the node stops taking part in raft: its log, holding a configuration
// of its own, would have it stand for election and lead its own history
// again. Its log and state stay as they were, agreeing.
//
// Log compaction deletes a prefix and always leaves at least
// raft.trailing_logs (at least 1) entries, so a deletion that reaches the
// log's last entry is never one.
//
// Entries at or below the newest snapshot's index are not counted: the
// state came from the snapshot (termAt).
type forkGuard struct {
	raft.LogStore
	applied func() uint64
	// snapshotEnd is the newest snapshot's last index (0: none).
	snapshotEnd func() uint64
	found       func(*ForkError)
}

func (g forkGuard) DeleteRange(lo, hi uint64) error {
	last, err := g.LastIndex()
	if err != nil {
		return err
	}
	from := max(lo, g.snapshotEnd()+1) // the first entry deleted that this node applied through its log
	if applied := g.applied(); hi >= last && from <= hi && from <= applied {
		e := &ForkError{From: from, Applied: applied}
		g.found(e)
		return e
	}
	return g.LogStore.DeleteRange(lo, hi)
}

// dropStaleBelow removes from logs what installing a snapshot that ends
// at (index, term) leaves stale: every entry below index, and the entry at
// index unless it has the snapshot's term. raft v1.8.0 compacts the log
// after an install as after a snapshot of its own (compactLogs), keeping up
// to trailing_logs entries below the snapshot's index: on a deposed leader
// those are its own entries of an older term, never committed, and once
// elected again it sends them to followers as its log. A follower that had
// applied the committed entries there was declared forked; one that had
// not would have applied them. Entries past index stay: they are the
// follower's own, checked against the leader's as any others, and the
// entry at index, when it is the snapshot's, is what the leader's next
// append is matched against (raft clearing the whole log instead, as for a
// monotonic log store, leaves raft's last index past an empty log, and it
// refuses every append after the install: hashicorp/raft#697).
func dropStaleBelow(logs raft.LogStore, index, term uint64) error {
	first, err := logs.FirstIndex()
	if err != nil || first == 0 {
		return err // an empty log: nothing stale
	}
	if first < index {
		if err := logs.DeleteRange(first, index-1); err != nil {
			return err
		}
	}
	var l raft.Log
	switch err := logs.GetLog(index, &l); {
	case err == nil && l.Term != term:
		return logs.DeleteRange(index, index)
	case err == nil, errors.Is(err, raft.ErrLogNotFound):
		return nil
	default:
		return err
	}
}

// dropStale is what the state machine's wrapper runs once a snapshot
// raft installed is restored (fsm.afterRestore): raft's main loop waits
// for that restore, so nothing appends to the log meanwhile. The snapshot
// is the one raft opened for the restore, just before it.
func (c *Cluster) dropStale() {
	p := c.snaps.opened.Load()
	if p == nil {
		return
	}
	if err := dropStaleBelow(c.logs, p.index, p.term); err != nil {
		c.log.Warn("could not remove the log entries an installed snapshot left stale", "snapshot_index", p.index, "err", err)
	}
}

// appendFork returns the fork an append from a leader shows to a node at
// currentTerm that applied up to applied, or nil: an entry it has at an
// index the node applied, or the one before its entries, whose term
// differs from the node's there (termAt). A leader of a term at least the
// node's holds every entry committed before it (raft's leader
// completeness), so every entry the node applied, with the same term; an
// append of an older term (a deposed leader's) proves nothing and is left
// to raft, which refuses it. An index whose term the node no longer knows
// (below its log and its newest snapshot) is passed over.
func appendFork(ae *raft.AppendEntriesRequest, currentTerm, applied uint64, termAt func(uint64) (uint64, bool)) *ForkError {
	if ae.PrevLogEntry > applied || ae.Term < currentTerm {
		return nil
	}
	if ae.PrevLogEntry > 0 {
		if term, ok := termAt(ae.PrevLogEntry); ok && term != ae.PrevLogTerm {
			return &ForkError{From: ae.PrevLogEntry, Applied: applied}
		}
	}
	for _, e := range ae.Entries {
		if e.Index > applied {
			break
		}
		if term, ok := termAt(e.Index); ok && term != e.Term {
			return &ForkError{From: e.Index, Applied: applied}
		}
	}
	return nil
}

// termAt returns the term of the entry at index that this node applied
// through its log: at its newest snapshot's last entry, the snapshot's
// term; below it, none (raft does not clear the log when it installs a
// snapshot: compactLogs keeps up to trailing_logs entries below the
// snapshot's index, which may be another term's, never committed, while
// the state came from the snapshot); above it, the log's.
func (c *Cluster) termAt(index uint64) (uint64, bool) {
	if snap, ok := c.snaps.newestSnapshot(); ok && index <= snap.index {
		return snap.term, index == snap.index
	}
	var l raft.Log
	if err := c.logs.GetLog(index, &l); err == nil {
		return l.Term, true
	}
	return 0, false
}

// forkKey is the stable store's record of a fork found: a node that found
// one does not start raft again (Start fails with the *ForkError).
var forkKey = []byte("trustreg/forked")

// forkState records the first fork found; found is closed then.
type forkState struct {
	err   atomic.Pointer[ForkError]
	found chan struct{}
}

func newForkState() forkState { return forkState{found: make(chan struct{})} }

// forkedBefore returns the fork a previous run of this node recorded in
// logs, or nil.
func forkedBefore(logs *LogStore) error {
	raw, err := logs.Get(forkKey)
	if errors.Is(err, errKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var e ForkError
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("%w (its record in the raft store does not decode: %v)", ErrForked, err)
	}
	return &e
}

// Forked returns the *ForkError of a node whose state machine applied
// entries the leader's log does not hold (forkGuard), or nil.
func (c *Cluster) Forked() error {
	if e := c.fork.err.Load(); e != nil {
		return e
	}
	return nil
}

// forkFound records e, first in the stable store, and logs it; the first
// one found ends raft here (stopOnFork).
func (c *Cluster) forkFound(e *ForkError) {
	if !c.fork.err.CompareAndSwap(nil, e) {
		return
	}
	raw, _ := json.Marshal(e) // two integers: cannot fail
	if err := c.logs.Set(forkKey, raw); err != nil {
		c.log.Error("could not record the fork in the raft store; a restart would not know it", "err", err)
	}
	c.log.Error("refusing the leader's entries and stopping raft: this node's state holds entries the cluster's log does not",
		"from", e.From, "applied", e.Applied, "err", e.Error())
	close(c.fork.found)
}

// stopOnFork shuts raft down once a fork is found. It cannot be done where
// the fork is found: that is inside raft's own loop, which Shutdown waits
// for.
func (c *Cluster) stopOnFork(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-c.fork.found:
		if err := c.raft.Shutdown().Error(); err != nil {
			c.log.Error("stopping raft after a fork", "err", err)
		}
	}
}

// refuseFork is the transport's check of every request (commitWatch.fork):
// once a fork is found every request is answered with it (raft no longer
// runs to take them), and an append that shows one is refused with it and
// the fork recorded.
func (c *Cluster) refuseFork(cmd any) error {
	if e := c.Forked(); e != nil {
		return e
	}
	ae, isAppend := cmd.(*raft.AppendEntriesRequest)
	if !isAppend {
		return nil
	}
	// The applied index first: every entry it covers was committed in a
	// term no later than the term read after it. The other way round, an
	// entry applied between the two reads could have been committed in a
	// term past the one read, and a deposed leader of that term could
	// differ there.
	applied := c.sm.AppliedIndex()
	var term uint64
	if r := c.fsm.raft.Load(); r != nil {
		term = r.CurrentTerm()
	} else {
		// raft may take requests before Start has it: the term it starts
		// with is the stored one.
		stored, err := c.logs.GetUint64([]byte("CurrentTerm"))
		if err != nil && !errors.Is(err, errKeyNotFound) {
			return err
		}
		term = stored
	}
	if e := appendFork(ae, term, applied, c.termAt); e != nil {
		c.forkFound(e)
		return e
	}
	return nil
}
