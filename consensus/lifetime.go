package consensus

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// shutdownWait bounds how long Shutdown waits for the cluster's goroutines
// and the requests it is serving once it has ended their context and raft.
const shutdownWait = 10 * time.Second

// strandedWait bounds the wait for a raft future once the lifetime has
// ended (see await); Shutdown lets raft run that long for the futures
// being waited on to be answered before it stops raft.
const strandedWait = 2 * time.Second

// errStranded: raft shut down without answering a future.
var errStranded = errors.New("raft shut down without answering")

// lifetime is a running Cluster's (or stream layer's) context and the
// goroutines and calls that run under it. Everything the cluster starts
// takes its context from ctx and is counted in wg, so Shutdown ends them
// all and then waits for them before it closes the stores they use.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // orders enter's wg.Add before stop's wg.Wait
	ended  bool
	wg     sync.WaitGroup
	waited chan struct{} // closed once wg reached zero after stop

	awaiting atomic.Int64 // raft futures being waited on (await)
}

func newLifetime() *lifetime {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifetime{ctx: ctx, cancel: cancel, waited: make(chan struct{})}
}

// enter counts a call in. It reports false, counting nothing, once stop has
// begun: the caller then fails with ErrShutdown. Every true is matched by
// a leave.
func (l *lifetime) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.wg.Add(1)
	return true
}

func (l *lifetime) leave() { l.wg.Done() }

// spawn runs f in a goroutine counted in, with the lifetime's context. It
// reports false, and runs nothing, once stop has begun.
func (l *lifetime) spawn(f func(ctx context.Context)) bool {
	if !l.enter() {
		return false
	}
	go func() {
		defer l.leave()
		f(l.ctx)
	}()
	return true
}

// stop refuses new calls and cancels the context; running ones see it end.
func (l *lifetime) stop() {
	l.mu.Lock()
	if !l.ended {
		l.ended = true
		go func() {
			l.wg.Wait()
			close(l.waited)
		}()
	}
	l.mu.Unlock()
	l.cancel()
}

// wait stops the lifetime and waits up to d for everything counted in to
// return. It reports false when something was still running at the
// deadline.
func (l *lifetime) wait(d time.Duration) bool {
	l.stop()
	return closedWithin(l.waited, d)
}

// closedWithin waits up to d for ch to be closed and reports whether it
// was.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// drainAwaits waits up to d for the raft futures being waited on to be
// answered; Shutdown calls it while raft still runs, so writes in flight
// get their outcome instead of being cut off.
func (l *lifetime) drainAwaits(d time.Duration) {
	deadline := time.Now().Add(d)
	for l.awaiting.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling interval during shutdown
	}
}

// await returns f's error. Raft answers every future it took up, but
// never one still in its buffered apply channel (Config.BatchApplyCh) or
// on its way to the state machine when it shuts down: its Error would
// block for ever. So once the lifetime has ended, the wait is bounded by
// strandedWait, after which await returns errStranded (the entry may or
// may not have been committed) and leaves the goroutine blocked on f
// behind: one per such future, only at shutdown.
func (l *lifetime) await(f raft.Future) error {
	l.awaiting.Add(1)
	defer l.awaiting.Add(-1)
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return err
	case <-l.ctx.Done():
	}
	t := time.NewTimer(strandedWait)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return errStranded
	}
}
