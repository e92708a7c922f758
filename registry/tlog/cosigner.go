package tlog

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// Cosigned is what a cosigner remembers: the last checkpoint it cosigned and
// the timestamp it stated. The zero value means it never cosigned.
type Cosigned struct {
	Checkpoint Checkpoint
	Time       time.Time
}

// CosignerState persists a cosigner's last cosigned checkpoint. The node
// implements it over its own storage (not the replicated state: each member's
// record is its own).
type CosignerState interface {
	// LastCosigned returns the last checkpoint stored by StoreCosigned, or
	// ok false if none ever was.
	LastCosigned() (c Cosigned, ok bool, err error)
	// StoreCosigned durably records c as the last cosigned checkpoint; it
	// returns only after c would survive a crash.
	StoreCosigned(c Cosigned) error
}

// Cosigner cosigns checkpoints of one log for one member, and only those
// its member can vouch for: the checkpoint's root must be the root its own
// state machine produced at that size, and the checkpoint must be consistent
// with (and no smaller than) the last one it cosigned. It checks and records
// under one lock, so two concurrent requests cannot roll its record back
// (tlog-witness). It is safe for concurrent use.
type Cosigner struct {
	mu     sync.Mutex
	signer *CosignatureSigner
	origin string
	state  CosignerState
	now    func() time.Time
}

// NewCosigner returns a cosigner for the log called origin. now is the clock
// its timestamps come from (nil means time.Now).
func NewCosigner(signer *CosignatureSigner, origin string, state CosignerState, now func() time.Time) (*Cosigner, error) {
	if signer == nil || state == nil {
		return nil, fmt.Errorf("%w: cosigner needs a signer and a state", ErrBadPolicy)
	}
	if err := checkOrigin(origin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	if now == nil {
		now = time.Now
	}
	return &Cosigner{signer: signer, origin: origin, state: state, now: now}, nil
}

// Key returns the cosigner's public key.
func (c *Cosigner) Key() CosignerKey { return c.signer.Key() }

// Cosign cosigns cp, given ownRoot, the root this member's own state machine
// produced at size cp.Size, oldSize, the size of the last checkpoint the
// requester believes this cosigner cosigned, and proof, a consistency proof
// from that checkpoint to cp. It refuses, with nothing recorded, in this
// order:
//
//  1. cp is invalid (ErrMalformedCheckpoint) or for another log
//     (ErrWrongOrigin, *OriginError);
//  2. cp's root is not ownRoot (ErrRootMismatch, *RootMismatchError): the
//     member's state differs from what the checkpoint claims;
//  3. the last cosigned checkpoint cannot be read (ErrCosignState);
//  4. oldSize is not its size (ErrOldSize, *OldSizeError carrying the size to
//     retry with);
//  5. cp is smaller than it (ErrRollback);
//  6. cp does not extend it: a non-empty proof from size 0, a different root
//     at the same size, or a consistency proof that does not verify
//     (ErrInconsistent, wrapping ErrConsistencyProof for the latter);
//  7. recording cp fails (ErrCosignState).
//
// A node that has not yet applied cp.Size entries has no root to give; it
// should answer "not yet" itself rather than call Cosign, which would refuse
// a nil ownRoot as a mismatch.
//
// The same checkpoint may be cosigned again (same size and root, empty
// proof), which refreshes its timestamp. Timestamps never go backwards: a
// clock behind the last recorded one is replaced by it.
func (c *Cosigner) Cosign(cp Checkpoint, ownRoot []byte, oldSize uint64, proof [][]byte) (Cosignature, error) {
	if err := cp.Validate(); err != nil {
		return Cosignature{}, err
	}
	if cp.Origin != c.origin {
		return Cosignature{}, &OriginError{Want: c.origin, Got: cp.Origin}
	}
	if !bytes.Equal(cp.Hash[:], ownRoot) {
		return Cosignature{}, &RootMismatchError{Size: cp.Size, Got: bytes.Clone(cp.Hash[:]), Want: bytes.Clone(ownRoot)}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok, err := c.state.LastCosigned()
	if err != nil {
		return Cosignature{}, fmt.Errorf("%w: read the last cosigned checkpoint: %w", ErrCosignState, err)
	}
	if !ok {
		last = Cosigned{Checkpoint: Checkpoint{Origin: c.origin}}
		copy(last.Checkpoint.Hash[:], EmptyRoot())
	}
	if last.Checkpoint.Origin != c.origin {
		return Cosignature{}, fmt.Errorf("%w: the stored checkpoint is for %q, not %q", ErrCosignState, last.Checkpoint.Origin, c.origin)
	}
	prev := last.Checkpoint
	switch {
	case oldSize != prev.Size:
		return Cosignature{}, &OldSizeError{Got: oldSize, Last: prev.Size}
	case cp.Size < prev.Size:
		return Cosignature{}, fmt.Errorf("%w: size %d after %d", ErrRollback, cp.Size, prev.Size)
	case prev.Size == 0 && len(proof) != 0:
		return Cosignature{}, fmt.Errorf("%w: a proof from size 0 must be empty, got %d hashes", ErrInconsistent, len(proof))
	case prev.Size == 0:
		// Every tree extends the empty one.
	case cp.Size == prev.Size && (len(proof) != 0 || cp.Hash != prev.Hash):
		return Cosignature{}, fmt.Errorf("%w: another root at the cosigned size %d", ErrInconsistent, cp.Size)
	default:
		if err := VerifyConsistency(prev.Size, cp.Size, proof, prev.Hash[:], cp.Hash[:]); err != nil {
			return Cosignature{}, fmt.Errorf("%w: %w", ErrInconsistent, err)
		}
	}

	t := c.now().Truncate(time.Second)
	if t.Before(last.Time) {
		t = last.Time
	}
	sig, err := c.signer.Sign(cp, t)
	if err != nil {
		return Cosignature{}, err
	}
	if err := c.state.StoreCosigned(Cosigned{Checkpoint: cp, Time: sig.Time}); err != nil {
		return Cosignature{}, fmt.Errorf("%w: record the cosigned checkpoint: %w", ErrCosignState, err)
	}
	return sig, nil
}

// MemCosignerState is an in-memory CosignerState for tests and tools that
// need no durability. It is safe for concurrent use.
type MemCosignerState struct {
	mu   sync.Mutex
	last Cosigned
	ok   bool
}

// LastCosigned implements CosignerState.
func (s *MemCosignerState) LastCosigned() (Cosigned, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.ok, nil
}

// StoreCosigned implements CosignerState.
func (s *MemCosignerState) StoreCosigned(c Cosigned) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.ok = c, true
	return nil
}
