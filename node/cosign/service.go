package cosign

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustreg/trustreg/registry/tlog"
)

// Log is the registry's transparency log as a cosigner reads it: the size
// and root its state machine reached, the root at any smaller size, and the
// consistency proof between two sizes. *registry.State implements it.
type Log interface {
	LogHead() (size uint64, root []byte, err error)
	LogRootAt(size uint64) ([]byte, error)
	LogConsistency(size1, size2 uint64) ([][]byte, error)
}

// Bounds, each with its unit in its name.
const (
	// catchUpWait is how long a member asked to cosign a size its state
	// has not reached waits for it before it refuses (RefusedBehind).
	catchUpWait = 5 * time.Second
	// catchUpPoll is how often it looks meanwhile.
	catchUpPoll = 20 * time.Millisecond
	// callTimeout bounds one request to a peer, answer included.
	callTimeout = 10 * time.Second
	// serveTimeout bounds serving one request.
	serveTimeout = catchUpWait + 5*time.Second
	// tickEvery is how often the collector wakes to see whether a round
	// is due; it is also the least time between two rounds, which bounds
	// the rate at which writes cause rounds.
	tickEvery = time.Second
	// retryAfterFailure is how soon a round that found no quorum is tried
	// again.
	retryAfterFailure = 5 * time.Second
)

// Config configures a Service.
type Config struct {
	Host host.Host
	// Identity is the node's libp2p key; an Ed25519 key listed among
	// Cosigners makes this node a cosigner.
	Identity crypto.PrivKey
	Log      Log
	// Origin is the log's checkpoint origin: tlog.Origin of the genesis CID.
	Origin string
	// Cosigners and Quorum come from the genesis; each cosigner's node is
	// the libp2p peer whose identity is that key.
	Cosigners []tlog.CosignerKey
	Quorum    int
	// SetAt, when set, is the cosigner set in force for a checkpoint of a
	// log size this node's log has reached: the genesis set changed by the
	// setCosigners the log holds below that size. Nil: always the genesis
	// set.
	SetAt func(size uint64) (Roster, error)
	// StatePath is the file of the last checkpoint this node cosigned.
	StatePath string
	// Allowed says whether a peer may call this node (a member of its
	// cluster).
	Allowed func(peer.ID) bool
	// IsLeader and Leader say whether this node leads raft, and which peer
	// does ("" when none is known).
	IsLeader func() bool
	Leader   func() peer.ID
	// Interval is the longest time between two cosigned checkpoints
	// (proofs.cosign_interval).
	Interval time.Duration
	// Audit, when set, says whether this node's state passed its audit
	// against its own commitment: an error wrapping ErrStateCorrupt
	// refuses every cosignature (RefusedStateCorrupt), this node's own
	// as leader included. Nil: no audit gates cosigning.
	Audit   func() error
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: no metrics
}

// member is one cosigner and the peer that runs it.
type member struct {
	key  tlog.CosignerKey
	peer peer.ID
	// one verifies this member's cosignature alone.
	one *tlog.Verifier
}

// Service cosigns checkpoints for other members, collects them as leader,
// and keeps the latest checkpoint with a quorum.
type Service struct {
	cfg  Config
	log  *slog.Logger
	self peer.ID
	// catchUp is catchUpWait, in nanoseconds; tests shorten it.
	catchUp atomic.Int64
	state   *FileState

	rmu       sync.Mutex
	rosters   map[string]*roster        // the cosigner sets built (roster.go)
	cosigners map[string]*tlog.Cosigner // this node's cosigner under each name a set gives its key
	// signMu serializes cosigning: the cosigners of several names share
	// the one state file.
	signMu sync.Mutex

	round sync.Mutex // one collection or fetch at a time

	mu     sync.Mutex
	latest []byte         // the latest signed note with a quorum
	ver    *tlog.Verified // what verifying latest gave
	known  map[peer.ID]uint64
	// the pacing of rounds (collector.go)
	lastRound time.Time
	lastSize  uint64
	lastOK    bool
	// lastLeader is whether this node led at the last round.
	lastLeader bool
	closed     bool
	tasks      sync.WaitGroup
	stop       context.CancelFunc
	lifetime   context.Context
}

// New builds the service and registers its protocol handlers on the host.
// Start runs the collector.
func New(cfg Config) (*Service, error) {
	if len(cfg.Cosigners) == 0 {
		return nil, ErrNoCosigners
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("cosign: interval %s must be positive", cfg.Interval)
	}
	self, err := peer.IDFromPrivateKey(cfg.Identity)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "cosign"), self: self, known: map[peer.ID]uint64{}, state: NewFileState(cfg.StatePath),
		rosters: map[string]*roster{}, cosigners: map[string]*tlog.Cosigner{}}
	s.catchUp.Store(int64(catchUpWait))
	s.lifetime, s.stop = context.WithCancel(context.Background())
	// The genesis set, built now: a bad key or quorum fails here.
	if _, err := s.rosterOf(Roster{Cosigners: cfg.Cosigners, Quorum: cfg.Quorum}); err != nil {
		return nil, err
	}
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	cfg.Host.SetStreamHandler(CosignProtocol, s.serveCosign)
	cfg.Host.SetStreamHandler(CheckpointProtocol, s.serveCheckpoint)
	return s, nil
}

// PeerOf is the libp2p peer whose identity is the cosigner key k: a
// member's node cosigns with its libp2p Ed25519 key.
func PeerOf(k tlog.CosignerKey) (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(k.Key)
	if err != nil {
		return "", fmt.Errorf("cosigner %s: %w", k.Name, err)
	}
	return peer.IDFromPublicKey(pub)
}

// CosignerKeyOf is the cosigner key of a node's libp2p identity, under
// name: the vkey operators list in the genesis's cosigners.
func CosignerKeyOf(name string, id crypto.PrivKey) (tlog.CosignerKey, error) {
	priv, err := ed25519Of(id)
	if err != nil {
		return tlog.CosignerKey{}, err
	}
	return tlog.NewCosignerKey(name, priv.Public().(ed25519.PublicKey))
}

func ed25519Of(id crypto.PrivKey) (ed25519.PrivateKey, error) {
	if id == nil || id.Type() != crypto.Ed25519 {
		return nil, errors.New("cosign: the node's identity is not an Ed25519 key; only Ed25519 keys cosign")
	}
	raw, err := id.Raw()
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("cosign: Ed25519 identity of %d bytes", len(raw))
	}
	return ed25519.PrivateKey(raw), nil
}

// IsCosigner reports whether this node's key is in the cosigner set in
// force at its log's head, so that it cosigns the next checkpoints.
func (s *Service) IsCosigner() bool {
	size, _, err := s.cfg.Log.LogHead()
	if err != nil {
		return false
	}
	r, err := s.rosterAt(size)
	return err == nil && r.cosigner != nil
}

// Latest returns the latest checkpoint this node holds with a quorum of
// cosignatures, as a C2SP signed note, and what verifying it gave; or
// ErrNoCheckpoint.
func (s *Service) Latest() ([]byte, *tlog.Verified, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		return nil, nil, ErrNoCheckpoint
	}
	return bytes.Clone(s.latest), s.ver, nil
}

// offer keeps note if it is newer than the latest: a larger size, or the
// same checkpoint cosigned more recently. It reports whether it kept it.
func (s *Service) offer(note []byte, v *tlog.Verified) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ver != nil {
		cur := s.ver.Checkpoint
		switch {
		case v.Checkpoint.Size < cur.Size:
			return false
		case v.Checkpoint.Size == cur.Size && v.Checkpoint.Hash != cur.Hash:
			// A quorum cosigned two roots at one size: the quorum is
			// not honest. Keep the first and say so loudly.
			s.log.Error("two checkpoints with a quorum at one size: cosigners signed a fork", "size", cur.Size)
			return false
		case v.Checkpoint.Size == cur.Size && !v.FreshAsOf().After(s.ver.FreshAsOf()):
			return false
		}
	}
	s.latest, s.ver = note, v
	return true
}

// Close stops the collector, unregisters the handlers and waits for the
// requests being served.
func (s *Service) Close() {
	s.cfg.Host.RemoveStreamHandler(CosignProtocol)
	s.cfg.Host.RemoveStreamHandler(CheckpointProtocol)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.tasks.Wait()
}

// enter counts a handler or the collector in; false once Close began.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.tasks.Add(1)
	return true
}

// serveCosign answers one add-checkpoint request.
func (s *Service) serveCosign(st network.Stream) {
	defer func() { _ = st.Close() }()
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.tasks.Done()
	_ = st.SetDeadline(time.Now().Add(serveTimeout))
	from := st.Conn().RemotePeer()
	if !s.cfg.Allowed(from) {
		_ = writeAnswer(st, statusRefused, refusalBody(RefusedNotMember, "only the cluster's members may ask this node to cosign"))
		return
	}
	body, err := readFrame(bufio.NewReader(st), maxRequestBytes)
	if err != nil {
		_ = writeAnswer(st, statusRefused, refusalBody(RefusedMalformed, err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(s.lifetime, serveTimeout)
	defer cancel()
	sig, err := s.cosignRequest(ctx, body)
	if err != nil {
		stat, ans := s.answerOf(err)
		s.log.Warn("refused to cosign", "peer", from.String(), "err", err)
		_ = writeAnswer(st, stat, ans)
		return
	}
	_ = writeAnswer(st, statusOK, tlog.CosignaturesBody(sig))
}

// cosignRequest parses an add-checkpoint body and cosigns its checkpoint.
func (s *Service) cosignRequest(ctx context.Context, body []byte) (tlog.Cosignature, error) {
	req, err := tlog.ParseAddCheckpointRequest(body)
	if err != nil {
		return tlog.Cosignature{}, err
	}
	split := bytes.LastIndex(req.Checkpoint, []byte("\n\n"))
	if split < 0 {
		return tlog.Cosignature{}, fmt.Errorf("%w: the checkpoint note has no blank line before its signatures", tlog.ErrMalformedRequest)
	}
	cp, err := tlog.ParseCheckpoint(req.Checkpoint[:split+1])
	if err != nil {
		return tlog.Cosignature{}, err
	}
	return s.cosign(ctx, cp, req.OldSize, req.Proof)
}

// cosign cosigns cp once this node's own log has reached its size, when
// this node's key is in the cosigner set in force at that size, with
// tlog.Cosigner's checks: the root is this node's own at that size, and
// cp extends the last checkpoint this node cosigned.
func (s *Service) cosign(ctx context.Context, cp tlog.Checkpoint, oldSize uint64, proof [][]byte) (tlog.Cosignature, error) {
	if cp.Origin != s.cfg.Origin {
		return tlog.Cosignature{}, &tlog.OriginError{Want: s.cfg.Origin, Got: cp.Origin}
	}
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit(); err != nil {
			return tlog.Cosignature{}, err
		}
	}
	if err := s.waitSize(ctx, cp.Size); err != nil {
		return tlog.Cosignature{}, err
	}
	r, err := s.rosterAt(cp.Size)
	if err != nil {
		return tlog.Cosignature{}, err
	}
	if r.cosigner == nil {
		return tlog.Cosignature{}, fmt.Errorf("%w at log size %d", ErrNotCosigner, cp.Size)
	}
	if err := s.inForce(cp.Size); err != nil {
		return tlog.Cosignature{}, err
	}
	own, err := s.cfg.Log.LogRootAt(cp.Size)
	if err != nil {
		return tlog.Cosignature{}, fmt.Errorf("%w: root at size %d: %w", ErrUnavailable, cp.Size, err)
	}
	if cp.Size == 0 && len(own) == 0 {
		own = tlog.EmptyRoot()
	}
	s.signMu.Lock()
	defer s.signMu.Unlock()
	return r.cosigner.Cosign(cp, own, oldSize, proof)
}

// inForce refuses to cosign a checkpoint of size size when the cosigner
// set changed after it in this node's log: a cosignature dates a
// checkpoint (verifiers judge freshness by it), and cosigners a change
// removed must not vouch now for a state from before the change, which
// a bundle could then prove with their old set and none of the changes.
// Only the set in force at this node's head cosigns.
func (s *Service) inForce(size uint64) error {
	if s.cfg.SetAt == nil {
		return nil
	}
	head, _, err := s.cfg.Log.LogHead()
	if err != nil {
		return fmt.Errorf("%w: log head: %w", ErrUnavailable, err)
	}
	if head == size {
		return nil
	}
	at, err := s.cfg.SetAt(size)
	if err != nil {
		return fmt.Errorf("%w: the cosigner set at size %d: %w", ErrUnavailable, size, err)
	}
	now, err := s.cfg.SetAt(head)
	if err != nil {
		return fmt.Errorf("%w: the cosigner set at size %d: %w", ErrUnavailable, head, err)
	}
	if now.Changes != at.Changes {
		return fmt.Errorf("%w: the cosigner set changed after log size %d (%d changes there, %d at this node's log size %d); only the set in force cosigns", ErrNotCosigner, size, at.Changes, now.Changes, head)
	}
	return nil
}

// waitSize waits, at most catchUpWait, for this node's log to reach size.
func (s *Service) waitSize(ctx context.Context, size uint64) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.catchUp.Load()))
	defer cancel()
	t := time.NewTicker(catchUpPoll)
	defer t.Stop()
	for {
		have, _, err := s.cfg.Log.LogHead()
		if err != nil {
			return fmt.Errorf("%w: log head: %w", ErrUnavailable, err)
		}
		if have >= size {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: at size %d, asked to cosign size %d", ErrBehind, have, size)
		case <-t.C:
		}
	}
}

// answerOf is the wire answer for a refusal to cosign.
func (s *Service) answerOf(err error) (status, []byte) {
	var old *tlog.OldSizeError
	switch {
	case errors.As(err, &old):
		return statusConflict, tlog.ConflictBody(old.Last)
	case errors.Is(err, tlog.ErrInconsistent), errors.Is(err, tlog.ErrRollback):
		last, ok, serr := s.state.LastCosigned()
		if serr != nil || !ok {
			return statusRefused, refusalBody(RefusedUnavailable, err.Error())
		}
		return statusInconsistent, tlog.ConflictBody(last.Checkpoint.Size)
	case errors.Is(err, tlog.ErrRootMismatch):
		return statusRefused, refusalBody(RefusedRootMismatch, err.Error())
	case errors.Is(err, ErrNotCosigner):
		return statusRefused, refusalBody(RefusedNotCosigner, err.Error())
	case errors.Is(err, ErrBehind):
		return statusRefused, refusalBody(RefusedBehind, err.Error())
	case errors.Is(err, ErrStateCorrupt):
		return statusRefused, refusalBody(RefusedStateCorrupt, err.Error())
	case errors.Is(err, tlog.ErrMalformedRequest), errors.Is(err, tlog.ErrMalformedCheckpoint),
		errors.Is(err, tlog.ErrMalformedNote), errors.Is(err, tlog.ErrWrongOrigin):
		return statusRefused, refusalBody(RefusedMalformed, err.Error())
	}
	return statusRefused, refusalBody(RefusedUnavailable, err.Error())
}

// serveCheckpoint answers a member's request for the latest cosigned
// checkpoint.
func (s *Service) serveCheckpoint(st network.Stream) {
	defer func() { _ = st.Close() }()
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.tasks.Done()
	_ = st.SetDeadline(time.Now().Add(serveTimeout))
	if !s.cfg.Allowed(st.Conn().RemotePeer()) {
		_ = writeAnswer(st, statusRefused, refusalBody(RefusedNotMember, "only the cluster's members may fetch checkpoints over libp2p; verifiers use GET /v1/checkpoint"))
		return
	}
	if _, err := readFrame(bufio.NewReader(st), 0); err != nil {
		_ = writeAnswer(st, statusRefused, refusalBody(RefusedMalformed, err.Error()))
		return
	}
	note, _, err := s.Latest()
	if err != nil {
		_ = writeAnswer(st, statusRefused, refusalBody(RefusedNoCheckpoint, err.Error()))
		return
	}
	_ = writeAnswer(st, statusOK, note)
}

func (s *Service) registerMetrics() error {
	if s.cfg.Metrics == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "checkpoint_age_seconds",
			Help: "Seconds since the latest checkpoint this node holds was cosigned by a quorum (its quorum-th newest cosignature); +Inf while none has a quorum."},
			func() float64 {
				_, v, err := s.Latest()
				if err != nil {
					return math.Inf(1)
				}
				return s.cfg.Now().Sub(v.FreshAsOf()).Seconds()
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "checkpoint_cosignatures",
			Help: "Cosignatures by the cosigners in force on the latest checkpoint this node holds; 0 while none has a quorum."},
			func() float64 {
				_, v, err := s.Latest()
				if err != nil {
					return 0
				}
				return float64(len(v.Cosignatures))
			}),
	} {
		if err := s.cfg.Metrics.Register(c); err != nil {
			return err
		}
	}
	return nil
}
