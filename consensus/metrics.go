package consensus

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// raftMetrics are what the cluster measures as it runs: the latencies the
// FSM adapter and the snapshot paths observe, the leader changes raft
// reports, and when each peer last answered a raft call of this node.
// Everything else the cluster's collector reads from raft at scrape time.
type raftMetrics struct {
	commit   prometheus.Histogram
	apply    prometheus.Histogram
	snapshot prometheus.Histogram
	restore  prometheus.Histogram
	// applied counts the command entries handed to the state machine,
	// in the batches apply observes.
	applied atomic.Uint64
	// leaderChanges counts the leaders raft named (LeaderObservation with
	// a leader), counted in the observer's filter, which raft calls for
	// every observation: none is dropped.
	leaderChanges atomic.Uint64
	// answered is when each peer last sent bytes on a raft stream this
	// node dialed: on the leader, a follower's answers to its appends and
	// heartbeats.
	answered lastContacts
	started  time.Time
}

// latencyBuckets span a loopback commit (~100µs) to a stalled disk or a
// long election (10s).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// durationBuckets span a snapshot of a tiny state (1ms) to one of many
// gigabytes (~17min).
var durationBuckets = prometheus.ExponentialBuckets(.001, 4, 11)

func newRaftMetrics() *raftMetrics {
	h := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "trustd", Subsystem: "raft", Name: name, Help: help, Buckets: buckets})
	}
	return &raftMetrics{
		commit: h("commit_duration_seconds",
			"On the leader: from a write handed to raft (its stamp) until it is committed and its apply begins here. Entries of this leader's own term only.", latencyBuckets),
		apply: h("apply_duration_seconds",
			"Time the state machine took to apply one batch of committed entries.", latencyBuckets),
		snapshot: h("snapshot_duration_seconds",
			"Time to take a raft snapshot: capture the state and write it to the snapshot store. Successful snapshots only.", durationBuckets),
		restore: h("restore_duration_seconds",
			"Time to restore the state from a snapshot (one received from the leader, or the newest one at start). Successful restores only.", durationBuckets),
		started: time.Now(),
	}
}

// observeSince records the time from start to now in h; a start after now
// (the leader's clock stepped back) counts as 0.
func observeSince(h prometheus.Histogram, start time.Time) {
	h.Observe(max(time.Since(start).Seconds(), 0))
}

// countLeaders is a raft observer filter: it counts each leader raft names
// and lets nothing through (the observer has no channel).
func (m *raftMetrics) countLeaders(o *raft.Observation) bool {
	if l, ok := o.Data.(raft.LeaderObservation); ok && l.LeaderID != "" {
		m.leaderChanges.Add(1)
	}
	return false
}

// contactConn is a raft stream this node dialed; every read from it is an
// answer from the peer.
type contactConn struct {
	net.Conn
	id   peer.ID
	seen *lastContacts
}

func (c *contactConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.seen.saw(c.id, time.Now())
	}
	return n, err
}

var (
	descTerm  = prometheus.NewDesc("trustd_raft_term", "The raft term this node is in.", nil, nil)
	descState = prometheus.NewDesc("trustd_raft_state",
		"1 for the raft state this node is in (Follower, Candidate, Leader, Shutdown), 0 for the others.", []string{"state"}, nil)
	descLeaderChanges = prometheus.NewDesc("trustd_raft_leader_changes_total",
		"Leaders this node has seen elected since it started (a new leader, or the same one again after an election).", nil, nil)
	descLastContact = prometheus.NewDesc("trustd_raft_last_contact_seconds",
		"On the leader: seconds since each other member last answered a raft call from it (since this node started if it has not yet). On a follower: seconds since it last heard from the leader.", []string{"peer"}, nil)
	descLastIndex    = prometheus.NewDesc("trustd_raft_last_log_index", "Index of the last entry in this node's raft log.", nil, nil)
	descAppliedIndex = prometheus.NewDesc("trustd_raft_applied_index",
		"Last index raft has applied on this node, raft's own entries (configurations, a leader's no-op) included.", nil, nil)
	descCheckpointBytes = prometheus.NewDesc("trustd_raft_checkpoint_bytes",
		"Bytes under raft/checkpoints (this node's raft snapshots kept as checkpoints of the state, checkpoints being taken, and streams made from them to send): held=\"own\", files linked from nowhere else (sstables the state has compacted away since, copied WALs, streams), which stay until their checkpoint or stream is removed; held=\"shared\", files also linked from outside it (the live state), which cost no room of their own.",
		[]string{"held"}, nil)
)

var raftStates = []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

// clusterCollector is the Cluster's prometheus.Collector.
type clusterCollector struct{ c *Cluster }

// Collector returns the cluster's metrics, read from raft when scraped:
// term, state, leader changes, last contact, log indexes, and the commit,
// apply, snapshot and restore latencies. The raft log's Pebble metrics are
// LogDBMetrics. Register it on one registry.
func (c *Cluster) Collector() prometheus.Collector { return clusterCollector{c} }

func (cc clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTerm, descState, descLeaderChanges, descLastContact, descLastIndex, descAppliedIndex, descCheckpointBytes} {
		ch <- d
	}
	m := cc.c.metrics
	for _, h := range []prometheus.Histogram{m.commit, m.apply, m.snapshot, m.restore} {
		h.Describe(ch)
	}
}

func (cc clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c, m := cc.c, cc.c.metrics
	for _, h := range []prometheus.Histogram{m.commit, m.apply, m.snapshot, m.restore} {
		h.Collect(ch)
	}
	ch <- prometheus.MustNewConstMetric(descLeaderChanges, prometheus.CounterValue, float64(m.leaderChanges.Load()))
	if c.snaps != nil && c.snaps.ckpts != nil {
		// A walk that fails (a directory unreadable) leaves the gauge out
		// of this scrape rather than report a wrong size.
		if u, err := c.snaps.ckpts.usage(); err != nil {
			c.log.Debug("could not measure the checkpoints directory", "err", err)
		} else {
			ch <- prometheus.MustNewConstMetric(descCheckpointBytes, prometheus.GaugeValue, float64(u.Own), "own")
			ch <- prometheus.MustNewConstMetric(descCheckpointBytes, prometheus.GaugeValue, float64(u.Shared), "shared")
		}
	}
	if c.raft == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(c.raft.CurrentTerm()))
	state := c.raft.State()
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.String())
	}
	ch <- prometheus.MustNewConstMetric(descLastIndex, prometheus.GaugeValue, float64(c.raft.LastIndex()))
	ch <- prometheus.MustNewConstMetric(descAppliedIndex, prometheus.GaugeValue, float64(c.raft.AppliedIndex()))
	now := time.Now()
	switch state {
	case raft.Leader:
		f := c.raft.GetConfiguration()
		if f.Error() != nil {
			return
		}
		self := c.host.ID()
		for _, s := range f.Configuration().Servers {
			id, err := peer.Decode(string(s.ID))
			if err != nil || id == self {
				continue
			}
			last := m.answered.last(id)
			if last.IsZero() {
				last = m.started
			}
			ch <- prometheus.MustNewConstMetric(descLastContact, prometheus.GaugeValue, now.Sub(last).Seconds(), string(s.ID))
		}
	case raft.Follower:
		leader := c.LeaderID()
		if last := c.raft.LastContact(); leader != "" && !last.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastContact, prometheus.GaugeValue, now.Sub(last).Seconds(), leader)
		}
	}
}

// LogDBMetrics returns the raft log database's Pebble metrics (sizes,
// compactions, flushes), or nil once the cluster is shut down.
func (c *Cluster) LogDBMetrics() *pebble.Metrics { return c.logs.dbMetrics() }

func (s *LogStore) dbMetrics() *pebble.Metrics {
	if s.use() != nil {
		return nil
	}
	defer s.mu.RUnlock()
	return s.db.Metrics()
}
