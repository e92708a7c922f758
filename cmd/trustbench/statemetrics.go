package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads every metric family of trustd's /metrics at gatewayURL.
func scrape(gatewayURL string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(gatewayURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer closeRead(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", gatewayURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", gatewayURL, err)
	}
	return families, nil
}

// gauge returns the value of a family's only gauge; ok is false without
// exactly one.
func gauge(families map[string]*dto.MetricFamily, name string) (v float64, ok bool) {
	f, found := families[name]
	if !found || len(f.GetMetric()) != 1 || f.GetMetric()[0].Gauge == nil {
		return 0, false
	}
	return f.GetMetric()[0].GetGauge().GetValue(), true
}

// stateDiskUsage reads trustd_state_disk_usage_bytes: the state's size
// on disk by part (records, results, meta, the commitment's parts, other),
// in MiB.
func stateDiskUsage(gatewayURL string) (map[string]float64, error) {
	families, err := scrape(gatewayURL)
	if err != nil {
		return nil, err
	}
	f, ok := families["trustd_state_disk_usage_bytes"]
	if !ok || len(f.GetMetric()) == 0 {
		return nil, fmt.Errorf("%s/metrics has no trustd_state_disk_usage_bytes (a trustd built before it)", gatewayURL)
	}
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		if part, ok := labelValue(m, "part"); ok {
			out[part] += m.GetGauge().GetValue() / (1 << 20)
		}
	}
	return out, nil
}

// labelValue returns the value of m's label name, if it has one.
func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

// commitmentPart reports whether a part of the state is the commitment's.
func commitmentPart(part string) bool { return strings.HasPrefix(part, "commitment_") }

// commitmentShare is the commitment's parts over everything else in the
// state (issue #32's budget: at most 0.5), 0 when there is nothing else.
func commitmentShare(parts map[string]float64) float64 {
	var commitment, rest float64
	for p, v := range parts {
		if commitmentPart(p) {
			commitment += v
		} else {
			rest += v
		}
	}
	if rest <= 0 {
		return 0
	}
	return commitment / rest
}

// auditWaitMax bounds the wait for a restarted node's start-up audit:
// trustd gives up an audit after 30 minutes (node.auditMaxDuration).
const auditWaitMax = 35 * time.Minute

// startupAudit stops the node, starts it again on the same data directory
// and ports, and returns how long its start-up audit of the state against
// its commitment took (trustd_state_audit_duration_seconds, once
// trustd_state_audit_last_timestamp_seconds says one finished). The node
// runs on as the new process, which the caller stops. An audit that did
// not pass is an error.
func startupAudit(ctx context.Context, dir string, n *trustdNode, bin string) (float64, error) {
	n.stop()
	p, err := start(dir, n.name+"-restarted", bin, "--config", n.config)
	if err != nil {
		return 0, err
	}
	n.process = p
	deadline := time.Now().Add(auditWaitMax)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return 0, fmt.Errorf("%s exited (%v) before its start-up audit finished; the end of its log:\n%s", p.name, p.waitErr, p.logTail(2048))
		default:
		}
		if families, err := scrape(n.url); err == nil {
			if last, ok := gauge(families, "trustd_state_audit_last_timestamp_seconds"); ok && last > 0 {
				took, _ := gauge(families, "trustd_state_audit_duration_seconds")
				if okv, _ := gauge(families, "trustd_state_audit_ok"); okv != 1 {
					return took, fmt.Errorf("the restarted node's start-up audit did not pass (after %.1f s); the end of its log:\n%s", took, p.logTail(2048))
				}
				return took, nil
			}
		}
		time.Sleep(time.Second) // polling interval
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("the restarted node's start-up audit did not finish within %s", auditWaitMax)
}

// statePartOrder is the order the report prints the state's parts in;
// parts it does not know follow in name order.
var statePartOrder = []string{"records", "results", "meta", "other", "commitment_map", "commitment_log_nodes", "commitment_log_leaves"}

// partsLine prints the state's parts, in MiB.
func partsLine(parts map[string]float64) string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if v, ok := parts[p]; ok && !seen[p] {
			seen[p] = true
			out = append(out, fmt.Sprintf("%s %.1f MiB", p, v))
		}
	}
	for _, p := range statePartOrder {
		add(p)
	}
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		add(p)
	}
	return strings.Join(out, ", ")
}

// histTotals is one duration histogram's samples summed over a
// cluster's nodes: how many, and their seconds.
type histTotals struct {
	Count   uint64  `json:"count"`
	Seconds float64 `json:"seconds"`
}

// raftStages is where a cluster's writes spent their time in raft, from
// its nodes' histograms: Commits, an entry (one write, or a batch a
// follower forwarded) from being handed to raft until it is committed by
// a quorum and its apply begins (the leader observes it); Applies, the
// state machine's apply of one batch of committed entries (every node
// observes it).
//
// LSM, read in the same pass, is what the nodes' Pebble databases wrote
// into sstables.
type raftStages struct {
	Commits histTotals `json:"commits"`
	Applies histTotals `json:"applies"`
	LSM     lsmBytes   `json:"lsm_bytes"`
	// StateCommits is the part of the applies spent in the state's Pebble
	// commits (trustd_state_commit_seconds_total; nothing from a build
	// without it), StateStalls the part of that stalled
	// (trustd_state_write_stall_seconds_total, every cause).
	StateCommits histTotals `json:"state_commits"`
	StateStalls  float64    `json:"state_write_stall_seconds"`
	// Batching is how raft batched the writes, counted by every node
	// (nothing from a build without the counters).
	Batching batching `json:"batching"`
}

// batching is a cluster's raft batching, summed over its nodes: the synced
// appends to the raft logs and the entries they carried
// (trustd_raft_log_appends_total, trustd_raft_log_appended_entries_total),
// the command entries the state machines applied
// (trustd_raft_applied_entries_total, in Applies.Count batches), and the
// requests that forwarded writes to the leader and the writes they carried
// (trustd_raft_forwarded_batches_total, trustd_raft_forwarded_writes_total),
// and the signatures verified ahead of the rules and while judging
// (trustd_signature_checks_total by its when label).
type batching struct {
	Appends       float64 `json:"log_appends"`
	Appended      float64 `json:"log_appended_entries"`
	Applied       float64 `json:"applied_entries"`
	Forwards      float64 `json:"forwarded_batches"`
	Forwarded     float64 `json:"forwarded_writes"`
	ChecksAhead   float64 `json:"signature_checks_ahead,omitempty"`
	ChecksJudging float64 `json:"signature_checks_judging,omitempty"`
}

// batchingOf reads one node's batching.
func batchingOf(families map[string]*dto.MetricFamily) batching {
	v := func(name string) float64 { n, _ := counterSum(families, name); return n }
	return batching{
		Appends: v("trustd_raft_log_appends_total"), Appended: v("trustd_raft_log_appended_entries_total"),
		Applied:  v("trustd_raft_applied_entries_total"),
		Forwards: v("trustd_raft_forwarded_batches_total"), Forwarded: v("trustd_raft_forwarded_writes_total"),
		ChecksAhead:   labelled(families, "trustd_signature_checks_total", "when", "ahead"),
		ChecksJudging: labelled(families, "trustd_signature_checks_total", "when", "judging"),
	}
}

// labelled is the sum of counter name's series whose label is value (0
// when there is none).
func labelled(families map[string]*dto.MetricFamily, name, label, value string) float64 {
	var sum float64
	for _, m := range families[name].GetMetric() {
		if v, ok := labelValue(m, label); ok && v == value && m.GetCounter() != nil {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func (s batching) plus(o batching) batching {
	return batching{s.Appends + o.Appends, s.Appended + o.Appended, s.Applied + o.Applied, s.Forwards + o.Forwards, s.Forwarded + o.Forwarded,
		s.ChecksAhead + o.ChecksAhead, s.ChecksJudging + o.ChecksJudging}
}

// since is what was counted between o and s (s read later).
func (s batching) since(o batching) batching {
	return batching{s.Appends - o.Appends, s.Appended - o.Appended, s.Applied - o.Applied, s.Forwards - o.Forwards, s.Forwarded - o.Forwarded,
		s.ChecksAhead - o.ChecksAhead, s.ChecksJudging - o.ChecksJudging}
}

// formatSignatureChecks writes each round's signatures verified per write,
// summed over the nodes, ahead of the rules and while judging: "3.0 / 0.0,
// ..." (a cluster that keeps up checks each signature once on each node,
// ahead); "-" for a round without the counters (an older build).
func formatSignatureChecks(rounds []raftStages, writes []int64) string {
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		b := r.Batching
		if i >= len(writes) || writes[i] <= 0 || b.ChecksAhead+b.ChecksJudging <= 0 {
			parts[i] = "-"
			continue
		}
		n := float64(writes[i])
		parts[i] = fmt.Sprintf("%.2f / %.2f", b.ChecksAhead/n, b.ChecksJudging/n)
	}
	return strings.Join(parts, ", ")
}

// formatBatching writes each round's entries per synced log append, per
// apply batch, and writes per forwarded request: "7.1 / 15.8 / 3.5, ...";
// a figure without its counts is "-".
func formatBatching(rounds []raftStages) string {
	per := func(n, d float64) string {
		if d <= 0 || n <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", n/d)
	}
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		b := r.Batching
		parts[i] = per(b.Appended, b.Appends) + " / " + per(b.Applied, float64(r.Applies.Count)) + " / " + per(b.Forwarded, b.Forwards)
	}
	return strings.Join(parts, ", ")
}

// lsmBytes is what the Pebble databases of a cluster's nodes wrote into
// sstables, summed over the nodes: by memtable flushes and by
// compactions, of the state and of the raft log
// (trustd_pebble_flushed_bytes_total, trustd_pebble_compacted_bytes_total;
// nothing from a build without them).
type lsmBytes struct {
	StateFlushed   float64 `json:"state_flushed"`
	StateCompacted float64 `json:"state_compacted"`
	LogFlushed     float64 `json:"raft_log_flushed"`
	LogCompacted   float64 `json:"raft_log_compacted"`
}

// lsmOf reads one node's lsmBytes.
func lsmOf(families map[string]*dto.MetricFamily) lsmBytes {
	byDB := func(name, db string) float64 { return labelled(families, name, "db", db) }
	const flushed, compacted = "trustd_pebble_flushed_bytes_total", "trustd_pebble_compacted_bytes_total"
	return lsmBytes{
		StateFlushed: byDB(flushed, "state"), StateCompacted: byDB(compacted, "state"),
		LogFlushed: byDB(flushed, "raft_log"), LogCompacted: byDB(compacted, "raft_log"),
	}
}

func (s lsmBytes) plus(o lsmBytes) lsmBytes {
	return lsmBytes{s.StateFlushed + o.StateFlushed, s.StateCompacted + o.StateCompacted,
		s.LogFlushed + o.LogFlushed, s.LogCompacted + o.LogCompacted}
}

// since is what was written between o and s (s read later).
func (s lsmBytes) since(o lsmBytes) lsmBytes {
	return lsmBytes{s.StateFlushed - o.StateFlushed, s.StateCompacted - o.StateCompacted,
		s.LogFlushed - o.LogFlushed, s.LogCompacted - o.LogCompacted}
}

// formatLSM writes each round's lsmBytes per write, the round's writes
// given: "state flushed + compacted / raft log flushed + compacted", as
// "6320 + 1240 / 2950 + 0, ..."; a round without writes or without the
// metrics is "-".
func formatLSM(rounds []raftStages, writes []int64) string {
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		l := r.LSM
		if i >= len(writes) || writes[i] <= 0 || l == (lsmBytes{}) {
			parts[i] = "-"
			continue
		}
		n := float64(writes[i])
		parts[i] = fmt.Sprintf("%.0f + %.0f / %.0f + %.0f", l.StateFlushed/n, l.StateCompacted/n, l.LogFlushed/n, l.LogCompacted/n)
	}
	return strings.Join(parts, ", ")
}

// clusterReading is one read of every node's /metrics: per node, the raft
// snapshots it took so far (trustd_raft_snapshot_duration_seconds) and its
// raftStages; nil where the node could not be read.
type clusterReading []*nodeRaftReading

type nodeRaftReading struct {
	snaps  histTotals
	stages raftStages
}

// raftReadings reads every node's raft metrics.
func raftReadings(nodes []*trustdNode) clusterReading {
	out := make(clusterReading, len(nodes))
	for i, n := range nodes {
		families, err := scrape(n.url)
		if err != nil {
			continue
		}
		var st raftStages
		st.Commits = histogramOf(families, "trustd_raft_commit_duration_seconds")
		st.Applies = histogramOf(families, "trustd_raft_apply_duration_seconds")
		st.LSM = lsmOf(families)
		commits, _ := counterSum(families, "trustd_state_commits_total")
		seconds, _ := counterSum(families, "trustd_state_commit_seconds_total")
		st.StateCommits = histTotals{Count: uint64(commits), Seconds: seconds}
		st.StateStalls, _ = counterSum(families, "trustd_state_write_stall_seconds_total")
		st.Batching = batchingOf(families)
		out[i] = &nodeRaftReading{snaps: histogramOf(families, "trustd_raft_snapshot_duration_seconds"), stages: st}
	}
	return out
}

// roundReadings is what a round's nodes counted between before and after,
// saying on stderr when a node's figures are left out of it (what names
// the round).
func roundReadings(before, after clusterReading, what string) (histTotals, raftStages) {
	snaps, stages, missed := after.since(before)
	if missed > 0 {
		fmt.Fprintf(os.Stderr, "writes, %s: %d of %d nodes' metrics could not be read before or after the round; their raft figures are left out of it\n", what, missed, len(after))
	}
	return snaps, stages
}

// since is what the nodes read both times counted between o and r (r
// read later), summed, and how many nodes were not read both times: those
// are left out, since a node read only once would add what it counted
// since it started.
func (r clusterReading) since(o clusterReading) (histTotals, raftStages, int) {
	var snaps histTotals
	var st raftStages
	missed := 0
	for i, n := range r {
		if n == nil || i >= len(o) || o[i] == nil {
			missed++
			continue
		}
		snaps = snaps.plus(n.snaps.since(o[i].snaps))
		st = st.plus(n.stages.since(o[i].stages))
	}
	return snaps, st, missed
}

// counterSum adds up the series of counter name in one node's metrics.
func counterSum(families map[string]*dto.MetricFamily, name string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	var v float64
	for _, m := range f.GetMetric() {
		v += m.GetCounter().GetValue()
	}
	return v, true
}

// histogramOf reads the histogram name of one node's metrics.
func histogramOf(families map[string]*dto.MetricFamily, name string) histTotals {
	f, ok := families[name]
	if !ok {
		return histTotals{}
	}
	var s histTotals
	for _, m := range f.GetMetric() {
		if h := m.GetHistogram(); h != nil {
			s.Count += h.GetSampleCount()
			s.Seconds += h.GetSampleSum()
		}
	}
	return s
}

func (s histTotals) plus(o histTotals) histTotals {
	return histTotals{Count: s.Count + o.Count, Seconds: s.Seconds + o.Seconds}
}

// since is what was observed between o and s (s read later).
func (s histTotals) since(o histTotals) histTotals {
	return histTotals{Count: s.Count - o.Count, Seconds: s.Seconds - o.Seconds}
}

// plus adds o's figures to s's.
func (s raftStages) plus(o raftStages) raftStages {
	return raftStages{Commits: s.Commits.plus(o.Commits), Applies: s.Applies.plus(o.Applies), LSM: s.LSM.plus(o.LSM),
		StateCommits: s.StateCommits.plus(o.StateCommits), StateStalls: s.StateStalls + o.StateStalls, Batching: s.Batching.plus(o.Batching)}
}

// since is what was observed between o and s (s read later).
func (s raftStages) since(o raftStages) raftStages {
	return raftStages{Commits: s.Commits.since(o.Commits), Applies: s.Applies.since(o.Applies), LSM: s.LSM.since(o.LSM),
		StateCommits: s.StateCommits.since(o.StateCommits), StateStalls: s.StateStalls - o.StateStalls, Batching: s.Batching.since(o.Batching)}
}

// meanMs is the mean sample in milliseconds, 0 without samples.
func (s histTotals) meanMs() float64 {
	if s.Count == 0 {
		return 0
	}
	return 1000 * s.Seconds / float64(s.Count)
}

// formatStages writes each round's mean commit of an entry and apply of a
// batch, in milliseconds: "2.10 / 0.31, 2.05 / 0.29".
func formatStages(rounds []raftStages) string {
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		parts[i] = fmt.Sprintf("%.2f / %.2f", r.Commits.meanMs(), r.Applies.meanMs())
	}
	return strings.Join(parts, ", ")
}

// formatStateCommits writes each round's share of the applies' time spent
// in the state's Pebble commits, and the seconds of it stalled: "31 %
// (0.0 s stalled), ..."; a round without the metrics is "-".
func formatStateCommits(rounds []raftStages) string {
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		if r.StateCommits.Count == 0 || r.Applies.Seconds <= 0 {
			parts[i] = "-"
			continue
		}
		parts[i] = fmt.Sprintf("%.0f %% (%.1f s stalled)", 100*r.StateCommits.Seconds/r.Applies.Seconds, r.StateStalls)
	}
	return strings.Join(parts, ", ")
}

// formatSnapshots writes each round's snapshots: " 0, 1 (2.3 s), 0".
func formatSnapshots(rounds []histTotals) string {
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		parts[i] = fmt.Sprint(r.Count)
		if r.Count > 0 {
			parts[i] += fmt.Sprintf(" (%.1f s)", r.Seconds)
		}
	}
	return strings.Join(parts, ", ")
}
