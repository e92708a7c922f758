package registry

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// sharedSnapshot is a Pebble snapshot of one published state that several
// views read at once (readModel.View): Pebble's snapshots take concurrent
// reads, as the views handed out from a kept one do (kept.go). It is
// closed when the last of its holders lets go: the current slot
// (currentSnapshot) and each view taken from it.
type sharedSnapshot struct {
	snap       *pebble.Snapshot
	ov         *mapOverlay
	index      uint64
	commitTime int64
	seq        uint64 // the store's sequence of the state it holds (even)
	refs       atomic.Int64
}

// acquire takes a reference, unless the last one was let go (the
// snapshot is closed, or closing).
func (s *sharedSnapshot) acquire() bool {
	for {
		r := s.refs.Load()
		if r <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release lets go of a reference; the last one closes the snapshot.
func (s *sharedSnapshot) release() {
	if s.refs.Add(-1) == 0 {
		_ = s.snap.Close() // a snapshot holds no writes: its Close has nothing to report
	}
}

// currentSnapshot is the cache of the snapshot of the current published
// state that views share, so that a view does not take a Pebble snapshot
// of its own (and close it: a snapshot's Close runs Pebble's compaction
// picker whenever it was the oldest open, 1.6 % of the held cluster's CPU
// in the nodes' signature checks in a 64-client write profile). The first
// view of a state offers its snapshot; the views of that state after it
// share it. A commit or a restore empties the slot (caches.committed,
// caches.replaced), so the snapshot pins nothing past the next commit but
// for the views still reading it; a snapshot offered for a state already
// superseded leaves the slot at once. After close the slot takes nothing.
type currentSnapshot struct {
	p      atomic.Pointer[sharedSnapshot]
	closed atomic.Bool
}

// get returns the shared snapshot of the state of sequence seq with a
// reference taken for the caller, or nil.
func (c *currentSnapshot) get(seq uint64) *sharedSnapshot {
	s := c.p.Load()
	if s == nil || s.seq != seq || !s.acquire() {
		return nil
	}
	return s
}

// offer makes snap, of the state of sequence seq, the shared one unless
// the slot holds one of that state or a later one. On success it returns
// it with a reference taken for the caller (and one for the slot); else
// nil, and the caller keeps snap to itself. current is the store's
// sequence now: a state a commit superseded while it was offered leaves
// the slot at once, so that it pins nothing until the next commit.
func (c *currentSnapshot) offer(snap *pebble.Snapshot, ov *mapOverlay, index uint64, commitTime int64, seq uint64, current func() uint64) *sharedSnapshot {
	s := &sharedSnapshot{snap: snap, ov: ov, index: index, commitTime: commitTime, seq: seq}
	s.refs.Store(2)
	for {
		old := c.p.Load()
		if old != nil && old.seq >= seq || c.closed.Load() {
			return nil
		}
		if c.p.CompareAndSwap(old, s) {
			if old != nil {
				old.release()
			}
			break
		}
	}
	if (current() != seq || c.closed.Load()) && c.p.CompareAndSwap(s, nil) {
		s.release() // the slot's reference; the caller keeps its own
	}
	return s
}

// drop empties the slot: the state it held is no longer the current one.
func (c *currentSnapshot) drop() {
	if old := c.p.Swap(nil); old != nil {
		old.release()
	}
}

// close empties the slot for good: the database closes.
func (c *currentSnapshot) close() {
	c.closed.Store(true)
	c.drop()
}
