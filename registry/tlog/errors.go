package tlog

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every refusal in this package wraps exactly one of them
// (typed errors below report theirs through Is), so callers compare with
// errors.Is and never read an error's text.
var (
	// Leaves.
	ErrLeafMalformed = errors.New("tlog: malformed leaf")
	ErrLeafVersion   = errors.New("tlog: unknown leaf version")
	ErrLeafTooLarge  = errors.New("tlog: leaf larger than an entry bundle can carry")

	// The log and its proofs.
	ErrHashSize         = errors.New("tlog: hash is not 32 bytes")
	ErrNodeNotFound     = errors.New("tlog: node hash not stored")
	ErrOutOfRange       = errors.New("tlog: index or tree size out of range")
	ErrInclusionProof   = errors.New("tlog: inclusion proof does not verify")
	ErrConsistencyProof = errors.New("tlog: consistency proof does not verify")

	// Checkpoints, notes, keys and cosignatures.
	ErrMalformedCheckpoint = errors.New("tlog: malformed checkpoint")
	ErrMalformedNote       = errors.New("tlog: malformed signed note")
	ErrMalformedKey        = errors.New("tlog: malformed cosigner key")
	ErrBadOrigin           = errors.New("tlog: genesis identifier cannot make an origin")
	ErrWrongOrigin         = errors.New("tlog: checkpoint is for another log")
	ErrBadSignature        = errors.New("tlog: cosignature does not verify")
	ErrTooFewCosignatures  = errors.New("tlog: too few cosignatures")
	ErrUnknownKey          = errors.New("tlog: cosignature by a key outside the cosigner set")
	ErrBadPolicy           = errors.New("tlog: invalid cosigner set or quorum")

	// The cosigner's refusals.
	ErrRootMismatch = errors.New("tlog: checkpoint root differs from this node's own root at that size")
	ErrOldSize      = errors.New("tlog: old size is not the size of the last cosigned checkpoint")
	ErrRollback     = errors.New("tlog: checkpoint is smaller than the last cosigned checkpoint")
	ErrInconsistent = errors.New("tlog: checkpoint is not consistent with the last cosigned checkpoint")
	ErrCosignState  = errors.New("tlog: cosigner state unavailable")

	// Wire formats: tlog-witness bodies and tlog-tiles paths and resources.
	ErrMalformedRequest  = errors.New("tlog: malformed add-checkpoint request")
	ErrMalformedTilePath = errors.New("tlog: malformed tile path")
	ErrMalformedTile     = errors.New("tlog: malformed tile or entry bundle")
)

// OriginError reports a checkpoint whose origin line is not the expected one.
type OriginError struct {
	Want, Got string
}

func (e *OriginError) Error() string {
	return fmt.Sprintf("tlog: checkpoint origin %q, want %q: the answer comes from another log (check the genesis)", e.Got, e.Want)
}

// Is reports ErrWrongOrigin.
func (e *OriginError) Is(target error) bool { return target == ErrWrongOrigin }

// SignatureError reports a signature line whose key name and ID match a
// known cosigner key but whose signature does not verify. Per signed-note, one
// such line rejects the whole note.
type SignatureError struct {
	Name  string
	KeyID uint32
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("tlog: cosignature by %s+%08x does not verify: the checkpoint was altered or the signature forged", e.Name, e.KeyID)
}

// Is reports ErrBadSignature.
func (e *SignatureError) Is(target error) bool { return target == ErrBadSignature }

// QuorumError reports a checkpoint with fewer valid cosignatures from the
// cosigner set than the quorum. Unknown lists the names on signature lines
// whose key is not in the set (they are ignored, as signed-note requires);
// when it is not empty the error also matches ErrUnknownKey.
type QuorumError struct {
	Have, Need int
	Unknown    []string
}

func (e *QuorumError) Error() string {
	if len(e.Unknown) > 0 {
		return fmt.Sprintf("tlog: %d of the %d cosignatures needed, and %d by keys outside the cosigner set (%v)", e.Have, e.Need, len(e.Unknown), e.Unknown)
	}
	return fmt.Sprintf("tlog: %d of the %d cosignatures needed", e.Have, e.Need)
}

// Is reports ErrTooFewCosignatures, and ErrUnknownKey when some signature
// lines were by keys outside the set.
func (e *QuorumError) Is(target error) bool {
	return target == ErrTooFewCosignatures || (target == ErrUnknownKey && len(e.Unknown) > 0)
}

// RootMismatchError reports a checkpoint whose root is not the one this
// node's own state machine produced at that size.
type RootMismatchError struct {
	Size      uint64
	Got, Want []byte // Got is the checkpoint's root, Want this node's
}

func (e *RootMismatchError) Error() string {
	return fmt.Sprintf("tlog: checkpoint root at size %d is %x, this node's state produced %x: refusing to cosign", e.Size, e.Got, e.Want)
}

// Is reports ErrRootMismatch.
func (e *RootMismatchError) Is(target error) bool { return target == ErrRootMismatch }

// OldSizeError reports an add-checkpoint request whose old size is not the
// size of the last checkpoint the cosigner cosigned (tlog-witness answers 409
// with Last as the body).
type OldSizeError struct {
	Got, Last uint64
}

func (e *OldSizeError) Error() string {
	return fmt.Sprintf("tlog: old size %d, but the last cosigned checkpoint has size %d: resend with old size %d and a proof from it", e.Got, e.Last, e.Last)
}

// Is reports ErrOldSize.
func (e *OldSizeError) Is(target error) bool { return target == ErrOldSize }
