package node

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// inflight counts the calls into the state that come from outside raft
// (HTTP requests, writes forwarded to this leader being prepared), so Close
// can wait for them before it closes the state: Pebble panics when a closed
// database is used, and a request may outlive http.Server.Shutdown's grace
// (a write waiting on raft, a read waiting for an index).
type inflight struct {
	n       atomic.Int64
	closing atomic.Bool
}

// enter counts a call in; it reports false once Close has begun, when the
// call must not touch the state. Every enter is matched by a leave.
func (f *inflight) enter() bool {
	f.n.Add(1)
	return !f.closing.Load()
}

func (f *inflight) leave() { f.n.Add(-1) }

// errShuttingDown refuses requests that arrive once Close has begun; the
// client may retry on another node.
var errShuttingDown = record.Errorf(gateway.ErrUnavailable, "node is shutting down")

// wrap counts h's requests; once closing, new ones are refused with 503
// (the gateway's "unavailable" problem, with Retry-After).
func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer f.leave()
		if !f.enter() {
			gateway.WriteError(w, r, errShuttingDown)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refuse makes every call from now on refused.
func (f *inflight) refuse() { f.closing.Store(true) }

// wait refuses new calls and waits up to d for the running ones to finish;
// it returns how many are still running.
func (f *inflight) wait(d time.Duration) int64 {
	f.closing.Store(true)
	deadline := time.Now().Add(d)
	for f.n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling interval during shutdown
	}
	return f.n.Load()
}
