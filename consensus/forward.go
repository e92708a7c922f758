package consensus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Forwarding limits. A batch is whatever queued while the previous batches
// were in flight, so under light load every write goes alone at once and
// under heavy load a few RPCs carry many writes.
const (
	forwardSenders     = 4       // batches in flight to the leader at once
	forwardMaxCommands = 256     // commands in one batch
	forwardMaxBytes    = 4 << 20 // bytes of commands in one batch (maxFrame is 8 MiB)
)

// forward states of one queued command.
const (
	fwdQueued int32 = iota
	fwdSent
	fwdAbandoned
)

type forwardReq struct {
	leader   peer.ID
	cmd      []byte
	deadline time.Time
	state    atomic.Int32
	done     chan forwardResult // buffered, one answer
}

type forwardResult struct {
	out []byte
	err error
}

// forwarder batches writes a follower forwards to the leader.
type forwarder struct {
	c        *Cluster
	queue    chan *forwardReq
	once     sync.Once
	batches  atomic.Uint64 // requests sent to a leader
	commands atomic.Uint64 // commands they carried
}

// ForwardStats reports how many batched requests this node has sent to a
// leader and how many writes they carried.
func (c *Cluster) ForwardStats() (batches, commands uint64) {
	return c.fwd.batches.Load(), c.fwd.commands.Load()
}

func newForwarder(c *Cluster) *forwarder {
	return &forwarder{c: c, queue: make(chan *forwardReq, forwardMaxCommands*forwardSenders)}
}

func (f *forwarder) start() {
	f.once.Do(func() {
		for range forwardSenders {
			f.c.life.spawn(f.send)
		}
	})
}

// propose forwards cmd to leader and returns the encoded response. An error
// wraps ErrTimeout when cmd certainly never left this node, and
// ErrUnknownOutcome when it may have reached the leader.
func (f *forwarder) propose(ctx context.Context, leader peer.ID, cmd []byte) ([]byte, error) {
	r := &forwardReq{leader: leader, cmd: cmd, done: make(chan forwardResult, 1)}
	r.deadline = time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		r.deadline = dl
	}
	select {
	case f.queue <- r:
	case <-f.c.life.ctx.Done():
		return nil, ErrShutdown
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: forwarding queue full: %w", ErrTimeout, ctx.Err())
	}
	select {
	case res := <-r.done:
		return res.out, res.err
	case <-f.c.life.ctx.Done():
		// The senders are stopping: one queued after they drained the
		// queue would wait for its caller's deadline.
		if r.state.CompareAndSwap(fwdQueued, fwdAbandoned) {
			return nil, ErrShutdown
		}
		select { // sent: the sender answers once its call ends
		case res := <-r.done:
			return res.out, res.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no answer from the leader in time", ErrUnknownOutcome)
		}
	case <-ctx.Done():
		if r.state.CompareAndSwap(fwdQueued, fwdAbandoned) {
			return nil, fmt.Errorf("%w: not sent to the leader in time", ErrTimeout)
		}
		return nil, fmt.Errorf("%w: no answer from the leader in time", ErrUnknownOutcome)
	}
}

// send takes the next queued command and every one queued behind it (up
// to the limits) and forwards them in one request per leader.
func (f *forwarder) send(ctx context.Context) {
	var batch []*forwardReq
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			f.failQueued()
			return
		case r := <-f.queue:
			batch = append(batch, r)
		}
		size := len(batch[0].cmd)
	drain:
		for len(batch) < forwardMaxCommands && size < forwardMaxBytes {
			select {
			case r := <-f.queue:
				batch = append(batch, r)
				size += len(r.cmd)
			default:
				break drain
			}
		}
		// One request per leader (normally all the same); drop commands
		// whose callers gave up before they were sent.
		byLeader := map[peer.ID][]*forwardReq{}
		for _, r := range batch {
			if r.state.CompareAndSwap(fwdQueued, fwdSent) {
				byLeader[r.leader] = append(byLeader[r.leader], r)
			}
		}
		for leader, reqs := range byLeader {
			f.batches.Add(1)
			f.commands.Add(uint64(len(reqs)))
			f.c.forwardBatch(ctx, leader, reqs)
		}
	}
}

// failQueued answers whatever is still queued at shutdown.
func (f *forwarder) failQueued() {
	for {
		select {
		case r := <-f.queue:
			r.done <- forwardResult{err: ErrShutdown}
		default:
			return
		}
	}
}

// forwardBatch sends reqs to leader in one rpcProposeBatch request and
// answers each.
func (c *Cluster) forwardBatch(ctx context.Context, leader peer.ID, reqs []*forwardReq) {
	deadline := reqs[0].deadline
	req := proposeBatchRequest{Cmds: make([][]byte, 0, len(reqs))}
	for _, r := range reqs {
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
		req.Cmds = append(req.Cmds, r.cmd)
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	out, err := c.callLeader(cctx, leader, rpcProposeBatch, req.encode())
	if err != nil {
		for _, r := range reqs {
			r.done <- forwardResult{err: err}
		}
		return
	}
	answers, err := decodeProposeBatchAnswer(out, len(reqs))
	if err != nil {
		err = fmt.Errorf("%w: %s: %w", ErrUnknownOutcome, leader, err)
		for _, r := range reqs {
			r.done <- forwardResult{err: err}
		}
		return
	}
	for i, r := range reqs {
		r.done <- answers[i].result("the leader")
	}
}

// result is what one answer in a batch says to the caller of its command.
func (a answer) result(from string) forwardResult {
	if a.Status == rpcOK {
		return forwardResult{out: a.Body}
	}
	return forwardResult{err: answerError(a.Status, a.Body, from)}
}

// proposeBatch is the leader's side of rpcProposeBatch: every command is
// prepared (concurrently), handed to raft without waiting for the one
// before, and answered once applied. Commands are independent: one
// failing does not fail the others.
func (c *Cluster) proposeBatch(ctx context.Context, body []byte) ([]byte, error) {
	if !c.IsLeader() {
		return nil, ErrNotLeader
	}
	cmds, err := decodeBatch(body)
	if err != nil {
		return nil, err
	}
	// decided[i] answers cmds[i] without proposing it (Config.Prepare).
	decided := make([]applyWait, len(cmds))
	if c.prepare != nil {
		var wg sync.WaitGroup
		for i, cmd := range cmds {
			wg.Go(func() {
				if resp, ok := c.decide(cmd); ok {
					decided[i] = applyWait{resp: resp, decided: true}
				}
			})
		}
		wg.Wait()
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	futures := make([]applyWait, len(cmds))
	now := time.Now()
	for i, cmd := range cmds {
		if decided[i].decided {
			futures[i] = decided[i]
			continue
		}
		futures[i] = c.enqueue(stamp(cmd, now), timeout)
	}
	out := make(proposeBatchAnswer, 0, len(futures))
	for _, f := range futures {
		resp, err := f.wait()
		var enc []byte
		if err == nil {
			enc, err = c.codec.Encode(resp)
		}
		if err != nil {
			status, body := answerOf(err)
			out = append(out, answer{Status: status, Body: body})
			continue
		}
		out = append(out, answer{Status: rpcOK, Body: enc})
	}
	return out.encode(), nil
}
