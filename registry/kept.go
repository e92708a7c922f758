package registry

import (
	"errors"
	"sync"
	"time"
)

// Errors of ViewAtLogSize.
var (
	// ErrLogBehind: the state's log is shorter than the size asked for;
	// the entries that make it up are not applied yet (wait, then ask
	// again).
	ErrLogBehind = errors.New("registry: the state's log has not reached that size yet")
	// ErrNoKeptView: no view of the state at exactly that log size is kept
	// (no published state had it, or it was dropped); a later size may be.
	ErrNoKeptView = errors.New("registry: no view of the state at that log size is kept")
)

// Bounds of the kept views: how many, and how long one is kept after a
// newer published state superseded it. The newest is kept however old:
// an idle cluster's checkpoint is re-cosigned at the same size.
const (
	maxKeptViews   = 16
	keptViewMaxAge = 2 * time.Minute
)

// keptViews keeps views of recently published states by their log size,
// so that an answer about "now" can be computed and proven from the state
// at exactly the latest cosigned checkpoint's size while the state has
// moved on (the map is updated in place). Views reach it from a watcher
// that takes one after every published commit (it may miss states that
// several quick commits publish in turn) and from State.LogHead, so the
// size a leader's collector cosigns is kept.
//
// A kept view holds its Pebble snapshot and its read lock on the store
// (store.readers) until it is dropped and the last view handed out from
// it is closed. A restore pauses the keeping: every kept view is dropped
// first, so the restore's write lock waits only for views in use.
type keptViews struct {
	mu      sync.Mutex
	entries []*keptView // ascending log size
	paused  bool
	stop    chan struct{}
	done    chan struct{}
}

type keptView struct {
	v          *View
	size       uint64
	superseded time.Time // zero while it is the newest
	refs       int       // views handed out and not closed
	dropped    bool
}

// startKeeping starts the watcher that offers a view of every published
// state it sees; stopKeeping ends it and drops every kept view.
func (s *State) startKeeping() {
	k := &keptViews{stop: make(chan struct{}), done: make(chan struct{})}
	s.kept = k
	go func() {
		defer close(k.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s.mu.Lock()
			ch := s.appliedCh
			s.mu.Unlock()
			k.offer(s.View())
			select {
			case <-k.stop:
				return
			case <-ch:
			case <-tick.C:
			}
		}
	}()
}

func (s *State) stopKeeping() {
	close(s.kept.stop)
	<-s.kept.done
	s.kept.pause()
}

// offer keeps v if no view at its log size is kept, else closes it; it
// also drops what the bounds no longer allow.
func (k *keptViews) offer(v *View) {
	c, err := v.Commitment()
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	keep := err == nil && !k.paused
	for _, e := range k.entries {
		if e.size >= c.LogSize {
			keep = false
		}
	}
	if keep {
		if n := len(k.entries); n > 0 {
			k.entries[n-1].superseded = now
		}
		v.mem = newViewMemory()
		k.entries = append(k.entries, &keptView{v: v, size: c.LogSize})
	} else {
		v.Close()
	}
	k.prune(now)
}

// prune drops the views past the bounds; the newest is always kept. The
// caller holds k.mu.
func (k *keptViews) prune(now time.Time) {
	for len(k.entries) > 0 {
		e := k.entries[0]
		if len(k.entries) <= maxKeptViews && (e.superseded.IsZero() || now.Sub(e.superseded) < keptViewMaxAge) {
			return
		}
		k.drop(e)
		k.entries = k.entries[1:]
	}
}

// drop closes e's view now, or when the last view handed out from it
// closes. The caller holds k.mu.
func (k *keptViews) drop(e *keptView) {
	e.dropped = true
	if e.refs == 0 {
		e.v.Close()
	}
}

// pause drops every kept view and keeps none until resume.
func (k *keptViews) pause() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.paused = true
	for _, e := range k.entries {
		k.drop(e)
	}
	k.entries = nil
}

func (k *keptViews) resume() {
	k.mu.Lock()
	k.paused = false
	k.mu.Unlock()
}

// ViewAtLogSize returns a view of the state whose transparency log had
// exactly size leaves, if one is kept: ErrLogBehind when this node's log
// is still shorter, ErrNoKeptView when that state is not kept (missed
// between quick commits, or dropped). Close the view when done, as any.
// The view reads records without the record cache.
func (s *State) ViewAtLogSize(size uint64) (*View, error) {
	if v := s.kept.viewAt(size); v != nil {
		return v, nil
	}
	n, _, err := s.LogHead()
	switch {
	case errors.Is(err, ErrNoCommitment):
		return nil, ErrLogBehind
	case err != nil:
		return nil, err
	case n < size:
		return nil, ErrLogBehind
	}
	// LogHead offered the latest state: it may be the one.
	if v := s.kept.viewAt(size); v != nil {
		return v, nil
	}
	return nil, ErrNoKeptView
}

// viewAt hands out a view of the kept state of log size size, or nil.
func (k *keptViews) viewAt(size uint64) *View {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.entries {
		if e.size == size && !e.dropped {
			e.refs++
			src := e.v
			v := &View{m: src.m, snap: src.snap, ov: src.ov, index: src.index, commitTime: src.commitTime, mem: src.mem}
			v.rd = storeReader{r: src.snap, snap: src.snap}
			v.release = func() { k.release(e) }
			return v
		}
	}
	return nil
}

// release ends one handed-out view of e.
func (k *keptViews) release(e *keptView) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.dropped {
		e.v.Close()
	}
}
