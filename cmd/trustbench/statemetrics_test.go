package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestStateDiskUsageAndCommitmentShare: the state's parts are read from
// trustd_state_disk_usage_bytes in MiB, and the commitment's share is its
// parts over all the others.
func TestStateDiskUsageAndCommitmentShare(t *testing.T) {
	const mib = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "# TYPE trustd_state_disk_usage_bytes gauge\n")
		for _, p := range []struct {
			part string
			mib  int
		}{{"records", 60}, {"results", 30}, {"meta", 0}, {"other", 10}, {"commitment_map", 30}, {"commitment_log_nodes", 10}, {"commitment_log_leaves", 5}} {
			fmt.Fprintf(w, "trustd_state_disk_usage_bytes{part=%q} %d\n", p.part, p.mib*mib)
		}
	}))
	defer srv.Close()
	parts, err := stateDiskUsage(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 7 || parts["records"] != 60 || parts["commitment_log_leaves"] != 5 {
		t.Fatalf("parts %v", parts)
	}
	if got := commitmentShare(parts); got != 0.45 {
		t.Errorf("commitment share %v, want 45/100", got)
	}
	if got := partsLine(parts); got != "records 60.0 MiB, results 30.0 MiB, meta 0.0 MiB, other 10.0 MiB, commitment_map 30.0 MiB, commitment_log_nodes 10.0 MiB, commitment_log_leaves 5.0 MiB" {
		t.Errorf("parts printed as %q", got)
	}
	if got := commitmentShare(map[string]float64{"commitment_map": 1}); got != 0 {
		t.Errorf("commitment share without any other part %v, want 0", got)
	}
}

// TestStateDiskUsageOfAnOlderTrustd: a trustd without the metric is an
// error that says so, not a share of 0.
func TestStateDiskUsageOfAnOlderTrustd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE trustd_pebble_disk_usage_bytes gauge\ntrustd_pebble_disk_usage_bytes{db=\"state\"} 1024\n")
	}))
	defer srv.Close()
	if parts, err := stateDiskUsage(srv.URL); err == nil {
		t.Fatalf("parts %v from a trustd without trustd_state_disk_usage_bytes", parts)
	}
}

// TestRaftReadings: a cluster's raft snapshots, commits and applies, and
// the bytes its Pebble databases wrote into sstables, are the sums of its
// nodes' metrics (a node that cannot be read counts nothing), and a
// round's are the difference of two reads.
func TestRaftReadings(t *testing.T) {
	var nodes []*trustdNode
	type nodeHists struct {
		snap, commit, apply    prometheus.Histogram
		flushed, compacted     *prometheus.CounterVec
		commits, commitSeconds prometheus.Counter
		stalls                 *prometheus.CounterVec
		batching               []prometheus.Counter // appends, appended, applied, forwards, forwarded
		checks                 *prometheus.CounterVec
	}
	var hists []nodeHists
	for range 2 {
		reg := prometheus.NewRegistry()
		h := nodeHists{
			snap:          prometheus.NewHistogram(prometheus.HistogramOpts{Name: "trustd_raft_snapshot_duration_seconds", Help: "raft snapshot durations"}),
			commit:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "trustd_raft_commit_duration_seconds", Help: "raft commit durations"}),
			apply:         prometheus.NewHistogram(prometheus.HistogramOpts{Name: "trustd_raft_apply_duration_seconds", Help: "raft apply durations"}),
			flushed:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustd_pebble_flushed_bytes_total", Help: "flushed"}, []string{"db"}),
			compacted:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustd_pebble_compacted_bytes_total", Help: "compacted"}, []string{"db"}),
			commits:       prometheus.NewCounter(prometheus.CounterOpts{Name: "trustd_state_commits_total", Help: "commits"}),
			commitSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "trustd_state_commit_seconds_total", Help: "commit time"}),
			stalls:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustd_state_write_stall_seconds_total", Help: "stalls"}, []string{"cause"}),
			checks:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustd_signature_checks_total", Help: "signature checks"}, []string{"when"}),
		}
		reg.MustRegister(h.snap, h.commit, h.apply, h.flushed, h.compacted, h.commits, h.commitSeconds, h.stalls, h.checks)
		for _, name := range []string{"trustd_raft_log_appends_total", "trustd_raft_log_appended_entries_total", "trustd_raft_applied_entries_total", "trustd_raft_forwarded_batches_total", "trustd_raft_forwarded_writes_total"} {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "batching"})
			reg.MustRegister(c)
			h.batching = append(h.batching, c)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		nodes = append(nodes, &trustdNode{url: srv.URL})
		hists = append(hists, h)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	nodes = append(nodes, &trustdNode{url: down.URL})

	start := raftReadings(nodes)
	for i, n := range start {
		if up := i < len(hists); (n != nil) != up || up && (n.snaps != (histTotals{}) || n.stages != (raftStages{})) {
			t.Fatalf("before any, node %d (up: %t): %+v", i, up, n)
		}
	}
	hists[1].commit.Observe(0.004) // before the round: not in it
	hists[0].compacted.WithLabelValues("state").Add(1e6)
	hists[0].commits.Add(7)
	hists[0].commitSeconds.Add(3)
	hists[0].stalls.WithLabelValues("l0").Add(2)
	for _, c := range hists[1].batching { // before the round: not in it
		c.Add(1000)
	}
	hists[1].checks.WithLabelValues("ahead").Add(1000)
	before := raftReadings(nodes)
	for i, h := range hists { // in the round: per write, 100 writes
		h.flushed.WithLabelValues("state").Add(float64(300 * (i + 1)))
		h.compacted.WithLabelValues("state").Add(float64(100 * (i + 1)))
		h.flushed.WithLabelValues("raft_log").Add(float64(1000 * (i + 1)))
	}
	hists[0].snap.Observe(0.5)
	hists[1].snap.Observe(1.25)
	hists[1].snap.Observe(0.25)
	hists[0].commit.Observe(0.002)
	hists[0].commit.Observe(0.003)
	hists[0].apply.Observe(0.0005)
	hists[1].apply.Observe(0.0015)
	// In the round: 5 appends of 35 entries, 40 entries applied in the
	// round's 2 applies, 4 forwarded requests of 14 writes.
	for i, n := range [][]float64{{2, 14, 16, 0, 0}, {3, 21, 24, 4, 14}} {
		for j, v := range n {
			hists[i].batching[j].Add(v)
		}
	}
	// In the round, 100 writes: 300 signatures checked ahead, 3 while
	// judging.
	hists[0].checks.WithLabelValues("ahead").Add(100)
	hists[1].checks.WithLabelValues("ahead").Add(200)
	hists[1].checks.WithLabelValues("judging").Add(3)
	for i, h := range hists { // the applies' 2 ms, 0.5 ms of it in commits
		h.commits.Inc()
		h.commitSeconds.Add(0.00025)
		h.stalls.WithLabelValues("memtables").Add(0.0001 * float64(i))
		h.stalls.WithLabelValues("l0").Add(0.0001)
	}
	got, _, missed := raftReadings(nodes).since(start)
	if got.Count != 3 || got.Seconds != 2 || missed != 1 {
		t.Fatalf("snapshots %+v with %d nodes left out, want 3 taking 2 s and the node that is down", got, missed)
	}
	if s := formatSnapshots([]histTotals{{}, got}); s != "0, 3 (2.0 s)" {
		t.Fatalf("printed as %q", s)
	}
	_, round, _ := raftReadings(nodes).since(before)
	if round.Commits.Count != 2 || round.Applies.Count != 2 {
		t.Fatalf("round %+v, want 2 commits and 2 applies", round)
	}
	if s := formatStages([]raftStages{round, {}}); s != "2.50 / 1.00, 0.00 / 0.00" {
		t.Fatalf("printed as %q", s)
	}
	if want := (lsmBytes{StateFlushed: 900, StateCompacted: 300, LogFlushed: 3000}); round.LSM != want {
		t.Fatalf("round's sstable bytes %+v, want %+v", round.LSM, want)
	}
	if s := formatLSM([]raftStages{round, round, {}}, []int64{100, 0, 100}); s != "9 + 3 / 30 + 0, -, -" {
		t.Fatalf("printed as %q", s)
	}
	if round.StateCommits.Count != 2 || math.Abs(round.StateCommits.Seconds-0.0005) > 1e-9 || math.Abs(round.StateStalls-0.0003) > 1e-9 {
		t.Fatalf("round's state commits %+v, stalled %v s; want 2 taking 0.5 ms, 0.3 ms stalled", round.StateCommits, round.StateStalls)
	}
	if s := formatStateCommits([]raftStages{round, {}}); s != "25 % (0.0 s stalled), -" {
		t.Fatalf("printed as %q", s)
	}
	if want := (batching{Appends: 5, Appended: 35, Applied: 40, Forwards: 4, Forwarded: 14, ChecksAhead: 300, ChecksJudging: 3}); round.Batching != want {
		t.Fatalf("round's batching %+v, want %+v", round.Batching, want)
	}
	if s := formatBatching([]raftStages{round, {}}); s != "7.0 / 20.0 / 3.5, - / - / -" {
		t.Fatalf("printed as %q", s)
	}
	if s := formatSignatureChecks([]raftStages{round, round, {}}, []int64{100, 0, 100}); s != "3.00 / 0.03, -, -" {
		t.Fatalf("printed as %q", s)
	}
}

// TestRaftReadingsLeaveOutANodeReadOnce: a node whose metrics could not be
// read before the round but could after adds nothing to the round (it
// would add everything it counted since it started), and is counted as
// left out.
func TestRaftReadingsLeaveOutANodeReadOnce(t *testing.T) {
	var nodes []*trustdNode
	var commits []prometheus.Histogram
	var up []*atomic.Bool
	for range 2 {
		reg := prometheus.NewRegistry()
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "trustd_raft_commit_duration_seconds", Help: "raft commit durations"})
		reg.MustRegister(h)
		on := new(atomic.Bool)
		on.Store(true)
		metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !on.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			metrics.ServeHTTP(w, r)
		}))
		defer srv.Close()
		nodes = append(nodes, &trustdNode{url: srv.URL})
		commits = append(commits, h)
		up = append(up, on)
	}
	for range 1000 { // the second node's history before the round
		commits[1].Observe(0.001)
	}
	up[1].Store(false)
	before := raftReadings(nodes)
	up[1].Store(true)
	commits[0].Observe(0.002)
	commits[1].Observe(0.002)
	_, round, missed := raftReadings(nodes).since(before)
	if round.Commits.Count != 1 || missed != 1 {
		t.Fatalf("the round counted %d commits with %d nodes left out, want the first node's 1 and the second node left out", round.Commits.Count, missed)
	}
}
