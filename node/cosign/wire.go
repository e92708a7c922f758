package cosign

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/trustreg/trustreg/consensus/frame"
	"github.com/trustreg/trustreg/registry/tlog"
)

// Protocol ids, append-only: a new version of a protocol gets a new id and
// the old one stays served while builds that speak it remain.
const (
	// CosignProtocol carries one add-checkpoint request and its answer.
	CosignProtocol protocol.ID = "/trustreg/cosign/1.0.0"
	// CheckpointProtocol carries an empty request and the latest cosigned
	// checkpoint the callee holds.
	CheckpointProtocol protocol.ID = "/trustreg/checkpoint/1.0.0"
)

// Both protocols exchange one request and one answer per stream. A request
// is one frame: a uvarint length, then the bytes (the add-checkpoint body,
// or nothing). An answer is a status byte, then one frame:
//
//	status          body
//	0 ok            cosign: signature lines (tlog.CosignaturesBody);
//	                checkpoint: the signed note
//	1 conflict      tlog.ConflictBody: the old size is not the size the
//	                member last cosigned, which the body gives (tlog-witness 409)
//	2 inconsistent  tlog.ConflictBody: the checkpoint does not extend the
//	                last cosigned one, or is smaller (tlog-witness 422)
//	3 refused       one refusal byte (below), then the member's words
//
// The numbers are wire numbers: append-only, never reused.
type status byte

const (
	statusOK           status = 0
	statusConflict     status = 1
	statusInconsistent status = 2
	statusRefused      status = 3
)

// Refusal says why a member did not cosign. Wire numbers, append-only.
type Refusal byte

// Refusals.
const (
	// RefusedNotMember: the caller is not a peer the member's allowlist
	// admits.
	RefusedNotMember Refusal = 1
	// RefusedNotCosigner: this node's key is not among the genesis
	// cosigners, or it serves no checkpoint.
	RefusedNotCosigner Refusal = 2
	// RefusedMalformed: the request is not an add-checkpoint body with a
	// checkpoint of this log.
	RefusedMalformed Refusal = 3
	// RefusedRootMismatch: the member's own root at that size differs.
	RefusedRootMismatch Refusal = 4
	// RefusedBehind: the member's state did not reach the checkpoint's
	// size within catchUpWait.
	RefusedBehind Refusal = 5
	// RefusedUnavailable: the member could not read its log or its
	// cosigning state.
	RefusedUnavailable Refusal = 6
	// RefusedNoCheckpoint: the callee holds no cosigned checkpoint yet.
	RefusedNoCheckpoint Refusal = 7
	// RefusedStateCorrupt: the member's stored state failed its own
	// audit against its commitment (or has not passed it yet since the
	// node started), so its roots vouch for nothing.
	RefusedStateCorrupt Refusal = 8
)

func (r Refusal) String() string {
	switch r {
	case RefusedNotMember:
		return "not a member"
	case RefusedNotCosigner:
		return "not a cosigner"
	case RefusedMalformed:
		return "malformed request"
	case RefusedRootMismatch:
		return "root mismatch"
	case RefusedBehind:
		return "behind"
	case RefusedUnavailable:
		return "unavailable"
	case RefusedNoCheckpoint:
		return "no checkpoint"
	case RefusedStateCorrupt:
		return "state corrupt"
	}
	return fmt.Sprintf("refusal %d", byte(r))
}

// Limits on what crosses the wire, in bytes.
const (
	// maxRequestBytes bounds an add-checkpoint request: 64 proof lines and
	// a note of tlog.MaxNoteSize fit.
	maxRequestBytes = tlog.MaxNoteSize + 8<<10
	// maxAnswerBytes bounds an answer: a signed note at most.
	maxAnswerBytes = tlog.MaxNoteSize + 1
)

// Errors.
var (
	// ErrNoCosigners: the genesis lists no cosigners, so there are no
	// checkpoints (and no proofs).
	ErrNoCosigners = errors.New("cosign: the consortium's genesis lists no cosigners, so this registry has no cosigned checkpoints")
	// ErrNoCheckpoint: no checkpoint has a quorum of cosignatures yet.
	ErrNoCheckpoint = errors.New("cosign: no checkpoint carries a quorum of cosignatures yet")
	// ErrNotMember: the caller is not admitted.
	ErrNotMember = errors.New("cosign: the caller is not a cluster member")
	// ErrNotCosigner: the node holds no cosigner key of the genesis.
	ErrNotCosigner = errors.New("cosign: this node's key is not a genesis cosigner")
	// ErrBehind: the state did not reach the checkpoint's size in time.
	ErrBehind = errors.New("cosign: this node's log has not reached the checkpoint's size")
	// ErrUnavailable: the log or the cosigning state could not be read.
	ErrUnavailable = errors.New("cosign: log or cosigning state unavailable")
	// ErrStateCorrupt: this node's state has not passed its audit against
	// its own commitment (Config.Audit), so it does not cosign.
	ErrStateCorrupt = errors.New("cosign: this node's state has not passed its audit against its commitment")
	// ErrBadAnswer: a peer's answer could not be read.
	ErrBadAnswer = errors.New("cosign: malformed answer")
)

// RefusalError is a member's refusal, as the caller receives it. It is
// errors.Is the sentinel of its kind (tlog.ErrRootMismatch for
// RefusedRootMismatch, ErrNotMember, ...).
type RefusalError struct {
	Peer   string
	Reason Refusal
	Words  string // the member's explanation
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("cosign: %s refused (%s): %s", e.Peer, e.Reason, e.Words)
}

// Is maps the refusal to its sentinel.
func (e *RefusalError) Is(target error) bool {
	switch e.Reason {
	case RefusedNotMember:
		return target == ErrNotMember
	case RefusedNotCosigner:
		return target == ErrNotCosigner
	case RefusedMalformed:
		return target == tlog.ErrMalformedRequest
	case RefusedRootMismatch:
		return target == tlog.ErrRootMismatch
	case RefusedBehind:
		return target == ErrBehind
	case RefusedUnavailable:
		return target == ErrUnavailable
	case RefusedNoCheckpoint:
		return target == ErrNoCheckpoint
	case RefusedStateCorrupt:
		return target == ErrStateCorrupt
	}
	return false
}

// ConflictError is a member's conflict answer: it last cosigned a
// checkpoint of size Last. Inconsistent says the checkpoint asked for does
// not extend that one (tlog.ErrInconsistent); otherwise only the old size
// was wrong (tlog.ErrOldSize) and the request can be sent again from Last.
type ConflictError struct {
	Peer         string
	Last         uint64
	Inconsistent bool
}

func (e *ConflictError) Error() string {
	if e.Inconsistent {
		return fmt.Sprintf("cosign: %s refused a checkpoint that does not extend the one of size %d it last cosigned", e.Peer, e.Last)
	}
	return fmt.Sprintf("cosign: %s last cosigned size %d, not the old size sent", e.Peer, e.Last)
}

// Is makes a ConflictError tlog.ErrInconsistent or tlog.ErrOldSize.
func (e *ConflictError) Is(target error) bool {
	if e.Inconsistent {
		return target == tlog.ErrInconsistent
	}
	return target == tlog.ErrOldSize
}

// writeFrame writes b as one frame, in one write (frame.Write).
func writeFrame(w io.Writer, b []byte) error { return frame.Write(w, b) }

// writeAnswer writes a status byte and a frame, in one write.
func writeAnswer(w io.Writer, st status, body []byte) error {
	return frame.WriteMessage(w, byte(st), body)
}

// refusalBody is the body of a statusRefused answer.
func refusalBody(r Refusal, words string) []byte {
	return append([]byte{byte(r)}, words...)
}

// readFrame reads one frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	b, err := frame.Read(r, uint64(limit))
	return b, frameError(err)
}

// readAnswer reads a status byte and its frame.
func readAnswer(r io.Reader) (status, []byte, error) {
	st, body, err := frame.ReadMessage(r, maxAnswerBytes)
	return status(st), body, frameError(err)
}

// frameError marks a frame above its limit ErrBadAnswer.
func frameError(err error) error {
	var big *frame.TooLargeError
	if errors.As(err, &big) {
		return fmt.Errorf("%w: frame of %d bytes, at most %d", ErrBadAnswer, big.Size, big.Limit)
	}
	return err
}

// answerError turns a non-ok answer into the caller's error.
func answerError(peer string, st status, body []byte) error {
	switch st {
	case statusConflict, statusInconsistent:
		last, err := tlog.ParseConflictBody(body)
		if err != nil {
			return fmt.Errorf("%w: conflict from %s: %w", ErrBadAnswer, peer, err)
		}
		return &ConflictError{Peer: peer, Last: last, Inconsistent: st == statusInconsistent}
	case statusRefused:
		if len(body) == 0 {
			return fmt.Errorf("%w: empty refusal from %s", ErrBadAnswer, peer)
		}
		return &RefusalError{Peer: peer, Reason: Refusal(body[0]), Words: string(body[1:])}
	}
	return fmt.Errorf("%w: status %d from %s", ErrBadAnswer, st, peer)
}
