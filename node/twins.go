package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/trustreg/trustreg/consensus"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// twins lets one submission of the same bytes at a time through this
// node: bytes sent again while the first is still in flight (a client
// retrying over a second connection, two clients relaying the same
// operation) wait for the first and get its answer as a duplicate.
//
// Without it both would be proposed and the state machine would tell them
// apart, original and duplicate, except when this node lost the answer to
// the first's forwarding and resent it (consensus.Resent): the duplicate it
// then finds may be its own first attempt or the twin, and it answers as
// if its own, so both callers would be told theirs was the original. That
// can still happen to copies that differ in their bytes but not as
// operations (re-serialized, re-signed: registry's findDuplicate), to
// copies sent through two nodes, and to a copy sent right after the first
// was answered: the resend cannot tell whose the duplicate is without
// the log recording which attempt each entry was (not done).
type twins struct {
	mu     sync.Mutex
	flying map[[sha256.Size]byte]*twinFlight
}

// twinFlight is one operation's submission in flight; done is closed once
// res and err are set. waiting counts the twins that came to wait for it,
// those that gave up since included (under twins.mu; tests watch it).
type twinFlight struct {
	done    chan struct{}
	res     *record.Result
	err     error
	waiting int
}

// submit runs send for jws unless the same bytes are in flight, in which
// case it waits for them: an answer (accepted, rejected or duplicate) is
// shared, marked a duplicate when it accepted the operation; an error is
// not (the outcome is the first caller's to learn), and the wait ends with
// send run for this caller.
func (t *twins) submit(ctx context.Context, jws []byte, send func() (*record.Result, error)) (*record.Result, error) {
	key := sha256.Sum256(jws)
	for {
		t.mu.Lock()
		f, busy := t.flying[key]
		if busy {
			f.waiting++
		} else {
			f = &twinFlight{done: make(chan struct{})}
			if t.flying == nil {
				t.flying = map[[sha256.Size]byte]*twinFlight{}
			}
			t.flying[key] = f
		}
		t.mu.Unlock()
		if !busy {
			return t.fly(key, f, send)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			// The twin may yet be applied: this caller learns by asking again.
			// This call sent nothing: its signers' charge is given back.
			return nil, clusterError(fmt.Errorf("%w: %w: %w", consensus.ErrUnknownOutcome, gateway.ErrSentByAnother, ctx.Err()))
		}
		if f.err != nil {
			continue
		}
		res := *f.res
		if res.Accepted {
			res.Duplicate = true
		}
		return &res, nil
	}
}

// fly runs send for the flight it registered under key, and ends the
// flight however send returns.
func (t *twins) fly(key [sha256.Size]byte, f *twinFlight, send func() (*record.Result, error)) (*record.Result, error) {
	f.err = errTwinAbandoned // replaced unless send panics
	defer func() {
		t.mu.Lock()
		delete(t.flying, key)
		t.mu.Unlock()
		close(f.done)
	}()
	f.res, f.err = send()
	return f.res, f.err
}

// errTwinAbandoned is a flight's outcome when its send did not return.
var errTwinAbandoned = errors.New("submission abandoned")
