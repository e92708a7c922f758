package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustreg/trustreg/node/cosign"
	"github.com/trustreg/trustreg/registry"
)

// Bounds of the state's audit, each with its unit in its name.
const (
	// auditTriggerGap is the least time between two audits a proof
	// read's ErrStateCorrupt starts: a burst of failing reads costs one.
	auditTriggerGap = time.Minute
	// auditMaxDuration bounds one audit; one that runs longer is
	// abandoned without a verdict and runs again at the next interval.
	// (BenchmarkSelfAudit on a loaded 2-core machine: about 12 s for
	// 100,000 accreditations, 4.6 minutes for 1,000,000.)
	auditMaxDuration = 30 * time.Minute
)

// ErrStateCorrupt is Ready's answer while this node's state failed its
// audit against its own commitment: its answers cannot be trusted and it
// does not cosign (docs/OPERATIONS.md, State audit). It wraps the audit's
// error, registry.ErrStateCorrupt.
var ErrStateCorrupt = errors.New("node: the state failed its audit against its commitment; this node does not cosign, restore it from a backup or let it catch up from a snapshot (OPERATIONS.md, State audit)")

// auditOutcome is where the state's audit stands.
type auditOutcome int

const (
	auditPending auditOutcome = iota // none has finished since the start
	auditPassed                      // the last one passed (or there is no commitment to audit yet)
	auditFailed                      // the last one, or a proof read since, found the state corrupt
)

// auditor runs registry.State.SelfAudit at start, every interval, and
// after a proof read found the state corrupt, and keeps its outcome for
// the cosigner, Ready and the metrics.
type auditor struct {
	state    func() *registry.State
	log      *slog.Logger
	interval time.Duration // 0: at start and on trigger only
	trigger  chan struct{} // capacity 1: triggers coalesce

	mu       sync.Mutex
	outcome  auditOutcome
	err      error     // the failure, when outcome is auditFailed
	last     time.Time // when the last audit finished (zero: none)
	took     time.Duration
	lastKick time.Time // when a proof read last started an audit
}

func newAuditor(state func() *registry.State, log *slog.Logger, interval time.Duration) *auditor {
	return &auditor{state: state, log: log.With("component", "audit"), interval: interval, trigger: make(chan struct{}, 1)}
}

// run audits now, then every interval and on trigger, until ctx ends (an
// audit under way is cancelled with it).
func (a *auditor) run(ctx context.Context) {
	var tick <-chan time.Time
	if a.interval > 0 {
		t := time.NewTicker(a.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		a.audit(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-a.trigger:
		}
	}
}

// audit runs one SelfAudit and records its outcome; a cancelled one
// changes nothing.
func (a *auditor) audit(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, auditMaxDuration)
	err := a.state().SelfAudit(actx)
	cancel()
	took := time.Since(start)
	if ctx.Err() != nil {
		return // the node is closing
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.took = time.Now(), took
	switch {
	case err == nil || errors.Is(err, registry.ErrNoCommitment):
		if a.outcome == auditFailed {
			a.log.Warn("the state passed its audit again (restored since it failed)", "took", took)
		}
		a.outcome, a.err = auditPassed, nil
		a.log.Info("state audit passed", "took", took, "commitment", err == nil)
	case errors.Is(err, registry.ErrStateCorrupt):
		a.outcome, a.err = auditFailed, err
		a.log.Error("state audit failed: the stored state does not match its commitment; this node refuses to cosign and is not ready", "first_divergence", err.Error(), "took", took)
	default:
		// Not a verdict on the state (a read error): keep the last one.
		a.log.Error("state audit could not run", "err", err, "took", took)
	}
}

// corruptRead is registry.Options.OnStateCorrupt: a proof read found the
// state corrupt. The node stops cosigning at once, and a full audit (at
// most one per auditTriggerGap) finds and logs the first divergence.
func (a *auditor) corruptRead(err error) {
	a.mu.Lock()
	first := a.outcome != auditFailed
	a.outcome, a.err = auditFailed, err
	kick := time.Since(a.lastKick) >= auditTriggerGap
	if kick {
		a.lastKick = time.Now()
	}
	a.mu.Unlock()
	if first {
		a.log.Error("a proof read found the state corrupt; this node refuses to cosign and is not ready", "err", err)
	}
	if kick {
		select {
		case a.trigger <- struct{}{}:
		default: // an audit is already due
		}
	}
}

// cosignGate is cosign.Config.Audit: nil once the state passed its audit.
func (a *auditor) cosignGate() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.outcome {
	case auditPending:
		return fmt.Errorf("%w: the state's audit at start has not finished", cosign.ErrUnavailable)
	case auditFailed:
		return fmt.Errorf("%w: %w", cosign.ErrStateCorrupt, a.err)
	}
	return nil
}

// failure is Ready's part: ErrStateCorrupt while the state failed.
func (a *auditor) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.outcome == auditFailed {
		return fmt.Errorf("%w: %w", ErrStateCorrupt, a.err)
	}
	return nil
}

func (a *auditor) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "state_audit_ok",
			Help: "1 when the last audit of the stored state against its own commitment passed; 0 while it failed (the node refuses to cosign and is not ready) or none has finished since the start (see trustd_state_audit_last_timestamp_seconds)."},
			func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				if a.outcome == auditPassed {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "state_audit_last_timestamp_seconds",
			Help: "Unix time the last audit of the stored state finished; 0 while none has since the start."},
			func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				if a.last.IsZero() {
					return 0
				}
				return float64(a.last.UnixNano()) / 1e9
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "trustd", Name: "state_audit_duration_seconds",
			Help: "How long the last audit of the stored state took."},
			func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				return a.took.Seconds()
			}),
	}
}

// startAudit registers the audit's metrics and runs it in the background
// for the node's lifetime: Close cancels an audit under way.
func (n *Node) startAudit() error {
	for _, c := range n.audit.collectors() {
		if err := n.Metrics.Register(c); err != nil {
			return err
		}
	}
	n.tasks.Go(func() { n.audit.run(n.lifetime) })
	return nil
}
