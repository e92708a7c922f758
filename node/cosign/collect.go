package cosign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/trustreg/trustreg/registry/tlog"
)

// Start runs the collector until Close: once a second it sees whether a
// round is due (due) and, on the leader, collects a checkpoint of the log's
// latest size (Collect); a follower fetches the leader's (Fetch).
func (s *Service) Start() {
	if !s.enter() {
		return
	}
	go func() {
		defer s.tasks.Done()
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			s.tick(s.lifetime)
			select {
			case <-s.lifetime.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// tick runs a round when one is due.
func (s *Service) tick(ctx context.Context) {
	size, _, err := s.cfg.Log.LogHead()
	if err != nil {
		s.log.Warn("cannot read the log's head", "err", err)
		return
	}
	leader := s.cfg.IsLeader()
	now := s.cfg.Now()
	s.mu.Lock()
	held := uint64(0)
	if s.ver != nil {
		held = s.ver.Checkpoint.Size
	}
	run := due(now, s.lastRound, s.lastOK, s.lastSize, size, held, s.cfg.Interval, leader) || leader != s.lastLeader
	if run {
		s.lastRound, s.lastSize, s.lastLeader = now, size, leader
	}
	s.mu.Unlock()
	if !run {
		return
	}
	if leader {
		err = s.Collect(ctx)
	} else {
		err = s.Fetch(ctx)
	}
	s.mu.Lock()
	s.lastOK = err == nil
	s.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		s.log.Warn("no cosigned checkpoint this round", "leader", leader, "size", size, "err", err)
	}
}

// due decides whether a round runs now, given when the last one ran (zero:
// never), whether it succeeded, the log size it saw, the log size now, the
// size of the checkpoint held, and the interval. Rounds are at least
// tickEvery apart (the caller ticks that often). The leader collects every
// interval, and at the next tick after the log grew; a round that found
// no quorum is tried again after retryAfterFailure. A follower fetches every
// half interval, and while the checkpoint it holds is behind its own log,
// every retryAfterFailure. (A node that becomes leader, or stops being
// it, runs a round at the next tick whatever due says.)
func due(now, last time.Time, lastOK bool, lastSize, size, held uint64, interval time.Duration, leader bool) bool {
	if last.IsZero() {
		return true
	}
	since := now.Sub(last)
	if leader {
		return since >= interval || (!lastOK && since >= min(interval, retryAfterFailure)) || (size != lastSize && since >= tickEvery)
	}
	return since >= interval/2 || ((!lastOK || held < size) && since >= min(interval/2, retryAfterFailure))
}

// Collect builds the checkpoint of the log's latest size, cosigns it
// itself when it is a cosigner, asks every other cosigner's node for its
// cosignature, and keeps the result when it carries a quorum. A member's
// refusal is logged and costs only its own cosignature. Without a quorum
// it returns an error wrapping tlog.ErrTooFewCosignatures.
func (s *Service) Collect(ctx context.Context) error {
	s.round.Lock()
	defer s.round.Unlock()
	size, root, err := s.cfg.Log.LogHead()
	if err != nil {
		return fmt.Errorf("%w: log head: %w", ErrUnavailable, err)
	}
	cp := tlog.Checkpoint{Origin: s.cfg.Origin, Size: size}
	if size == 0 && len(root) == 0 {
		root = tlog.EmptyRoot()
	}
	if len(root) != tlog.HashSize {
		return fmt.Errorf("%w: log root of %d bytes", ErrUnavailable, len(root))
	}
	copy(cp.Hash[:], root)
	r, err := s.rosterAt(size)
	if err != nil {
		return err
	}

	var sigs []tlog.Cosignature
	var refusals []string
	// This node first, so the note the others receive carries its
	// cosignature, as tlog-witness asks of a checkpoint.
	for _, m := range r.members {
		if m.peer != s.self {
			continue
		}
		sig, err := s.ask(ctx, m, cp, nil)
		if err != nil {
			refusals = append(refusals, err.Error())
			break
		}
		sigs = append(sigs, sig)
	}
	note := tlog.SignedNote(cp, sigs...)
	type result struct {
		sig tlog.Cosignature
		err error
	}
	results := make(chan result, len(r.members))
	asked := 0
	for _, m := range r.members {
		if m.peer == s.self {
			continue
		}
		asked++
		go func() {
			sig, err := s.ask(ctx, m, cp, note)
			results <- result{sig, err}
		}()
	}
	for range asked {
		r := <-results
		if r.err != nil {
			refusals = append(refusals, r.err.Error())
			continue
		}
		sigs = append(sigs, r.sig)
	}
	slices.SortFunc(sigs, func(a, b tlog.Cosignature) int { return strings.Compare(a.Name, b.Name) })
	full := tlog.SignedNote(cp, sigs...)
	v, err := r.verifier.Verify(full)
	if err != nil {
		return fmt.Errorf("checkpoint of size %d: %w (refusals: %s)", size, err, strings.Join(refusals, "; "))
	}
	if len(refusals) > 0 {
		s.log.Warn("some cosigners did not cosign", "size", size, "cosignatures", len(sigs), "refusals", refusals)
	}
	s.offer(full, v)
	return nil
}

// ask gets m's cosignature on cp. It sends the old size this node last
// learned for m, with the consistency proof from it; when m answers that
// it last cosigned another size (a leader change, a restart), it asks once
// more from that size.
func (s *Service) ask(ctx context.Context, m member, cp tlog.Checkpoint, note []byte) (tlog.Cosignature, error) {
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		old := s.known[m.peer]
		s.mu.Unlock()
		if m.peer == s.self {
			// This node's own record is at hand.
			last, ok, err := s.state.LastCosigned()
			if err != nil {
				return tlog.Cosignature{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			old = 0
			if ok {
				old = last.Checkpoint.Size
			}
		}
		if old > cp.Size {
			return tlog.Cosignature{}, &ConflictError{Peer: m.key.Name, Last: old}
		}
		var proof [][]byte
		if old > 0 && old < cp.Size {
			p, err := s.cfg.Log.LogConsistency(old, cp.Size)
			if err != nil {
				return tlog.Cosignature{}, fmt.Errorf("%w: consistency proof %d to %d: %w", ErrUnavailable, old, cp.Size, err)
			}
			proof = p
		}
		var sig tlog.Cosignature
		var err error
		if m.peer == s.self {
			sig, err = s.cosign(ctx, cp, old, proof)
			if err != nil {
				st, body := s.answerOf(err)
				err = answerError(m.key.Name, st, body)
			}
		} else {
			sig, err = s.call(ctx, m, cp, tlog.AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: note})
		}
		var conflict *ConflictError
		if errors.As(err, &conflict) && !conflict.Inconsistent && conflict.Last != old && attempt == 0 {
			s.mu.Lock()
			s.known[m.peer] = conflict.Last
			s.mu.Unlock()
			continue
		}
		if err != nil {
			return tlog.Cosignature{}, err
		}
		s.mu.Lock()
		s.known[m.peer] = cp.Size
		s.mu.Unlock()
		return sig, nil
	}
}

// call sends one add-checkpoint request to m's node and returns its
// cosignature, checked against m's key.
func (s *Service) call(ctx context.Context, m member, cp tlog.Checkpoint, req tlog.AddCheckpointRequest) (tlog.Cosignature, error) {
	body, err := req.Marshal()
	if err != nil {
		return tlog.Cosignature{}, err
	}
	st, ans, err := s.roundTrip(ctx, m.peer, CosignProtocol, body)
	if err != nil {
		return tlog.Cosignature{}, fmt.Errorf("ask %s (%s): %w", m.key.Name, m.peer, err)
	}
	if st != statusOK {
		return tlog.Cosignature{}, answerError(m.key.Name, st, ans)
	}
	lines, err := tlog.ParseSignatureLines(ans)
	if err != nil || len(lines) != 1 {
		return tlog.Cosignature{}, fmt.Errorf("%w: %s answered %d signature lines (%v)", ErrBadAnswer, m.key.Name, len(lines), err)
	}
	sig, err := tlog.CosignatureFromSignature(lines[0])
	if err != nil {
		return tlog.Cosignature{}, fmt.Errorf("%w: %s: %w", ErrBadAnswer, m.key.Name, err)
	}
	// A cosignature that does not verify would make the whole note fail
	// (signed-note rejects a note with a bad signature by a known key), so
	// one member could deny the quorum: each is checked alone first.
	if _, err := m.one.Verify(tlog.SignedNote(cp, sig)); err != nil {
		return tlog.Cosignature{}, fmt.Errorf("%w: cosignature from %s: %w", ErrBadAnswer, m.key.Name, err)
	}
	return sig, nil
}

// roundTrip opens a stream to p, sends body as one frame and reads the
// answer, within callTimeout.
func (s *Service) roundTrip(ctx context.Context, p peer.ID, proto protocol.ID, body []byte) (status, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	str, err := s.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "cosign"), p, proto)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = str.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = str.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl)
	}
	if err := writeFrame(str, body); err != nil {
		return 0, nil, err
	}
	_ = str.CloseWrite()
	return readAnswer(str)
}

// noteRoster returns the cosigner set in force at the size of the
// checkpoint note holds, once this node's own log has reached that size
// (waiting for it at most catchUpWait): the set follows from the log.
func (s *Service) noteRoster(ctx context.Context, note []byte) (*roster, error) {
	split := bytes.LastIndex(note, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("%w: no blank line before the signatures", tlog.ErrMalformedNote)
	}
	cp, err := tlog.ParseCheckpoint(note[:split+1])
	if err != nil {
		return nil, err
	}
	if err := s.waitSize(ctx, cp.Size); err != nil {
		return nil, err
	}
	return s.rosterAt(cp.Size)
}

// Fetch asks the leader for its latest cosigned checkpoint and keeps it if
// it verifies against the cosigner set in force at its size (followed
// from this node's own log) and is newer than the one held.
// A follower believes no leader: only the quorum's signatures count.
func (s *Service) Fetch(ctx context.Context) error {
	s.round.Lock()
	defer s.round.Unlock()
	leader := s.cfg.Leader()
	if leader == "" {
		return errors.New("cosign: no leader known to fetch a checkpoint from")
	}
	st, ans, err := s.roundTrip(ctx, leader, CheckpointProtocol, nil)
	if err != nil {
		return fmt.Errorf("fetch the checkpoint from %s: %w", leader, err)
	}
	if st != statusOK {
		return answerError(leader.String(), st, ans)
	}
	r, err := s.noteRoster(ctx, ans)
	if err != nil {
		return fmt.Errorf("checkpoint from the leader %s: %w", leader, err)
	}
	v, err := r.verifier.Verify(ans)
	if err != nil {
		return fmt.Errorf("checkpoint from the leader %s: %w", leader, err)
	}
	s.offer(ans, v)
	return nil
}
