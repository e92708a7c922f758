package registry

import (
	"crypto/sha256"
	"errors"
	"time"

	"github.com/trustreg/trustreg/registry/decide"
	"github.com/trustreg/trustreg/registry/record"
)

// Check decides a signed operation against the state applied so far, as the
// apply would decide it as the next entry with commit time now, and
// changes nothing. It returns nil when the operation may be proposed, or
// the result to answer with in place of proposing it: a refusal (Index
// zero: the operation is not in the log), or the result an earlier copy of
// the operation got (Duplicate set).
//
// The leader checks every operation before it proposes it, so that nothing
// the current state refuses enters the replicated log: a forged or
// unauthorized operation costs the node that received it a check, not
// every node a log entry (SPEC §3, "Nothing refused enters the log").
// The apply still decides what is proposed. An operation that passes here
// and is refused at apply was overtaken by an entry committed in between:
// a key rotated or an accreditation revoked meanwhile, two versions of a
// status list naming the same previous one, two grants racing for one id,
// or commit times that moved past its iat window. Those rejections are
// recorded in the log because the apply, a pure function of the log, is
// the only place that sees the entries in their final order.
//
// A storage read that fails here returns nil: the apply reads the same
// records and stops the node if they cannot be read.
//
// Check runs concurrently with the apply and with other checks: it writes
// only to a batch of its own, which it discards, leaves the caches the
// apply consumes as they are, and fills the record cache only from a
// reader made between commits (see judge).
func (s *applier) Check(raw []byte, now time.Time) *record.Result {
	b := s.db.NewIndexedBatch()
	defer func() { _ = b.Close() }() // the batch is discarded: nothing to report
	// The commit time never runs backwards (ApplyBatch); the apply will
	// stamp a time at least this one.
	t := now.UTC()
	if last := time.Unix(0, s.commitTime.Load()).UTC(); t.Before(last) {
		t = last
	}
	// A batch that raised the feature level and is not committed yet puts
	// the level in memory ahead of the state the check reads: a check
	// that began or ended in such a window decides nothing.
	seq := s.levelSeq.Load()
	if seq%2 == 1 {
		return nil
	}
	c, res, err := s.judge(b, s.applied.Load()+1, t, raw, map[decide.RecordKey]struct{}{})
	if c != nil || s.levelSeq.Load() != seq {
		return nil // passes (or the level moved under it): propose it
	}
	if err != nil && !refusal(err) {
		return nil // a storage failure: the apply decides
	}
	// Refused or a duplicate: never applied, so never taken from the
	// parse memory by the apply.
	s.verify.parsed.forget(sha256.Sum256(raw))
	if err == nil {
		return res // a duplicate
	}
	res = rejected(res, err)
	res.Index = 0
	return res
}

// refusal reports whether err is a domain refusal of an operation, as
// opposed to a storage failure.
func refusal(err error) bool {
	var rj *record.Rejection
	return errors.As(err, &rj) || errors.Is(err, record.ErrMalformed) || errors.Is(err, record.ErrTooLarge)
}

// CheckCommand is Check for a log command (EncodeOperation); any other
// command passes.
func (s *applier) CheckCommand(cmd []byte, now time.Time) *record.Result {
	if len(cmd) > 2 && cmd[0] == commandVersion1 && cmd[1] == commandTypeSubmitOp {
		return s.Check(cmd[2:], now)
	}
	return nil
}
