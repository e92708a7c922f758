package consensus

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// lastContacts remembers when each peer last answered one of this node's
// calls (call), for the members' status. It holds one time per peer this
// node has called, so at most one per peer ever reached; entries are
// never removed, as a member removed and added again is the same peer.
type lastContacts struct {
	mu   sync.Mutex
	seen map[peer.ID]time.Time
}

// saw records an answer from id at t.
func (l *lastContacts) saw(id peer.ID, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[peer.ID]time.Time{}
	}
	if t.After(l.seen[id]) {
		l.seen[id] = t
	}
}

// last returns when id last answered; the zero time if it never has.
func (l *lastContacts) last(id peer.ID) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[id]
}
