package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/trustreg/trustreg/configs"
)

// scrapeMetrics reads the node's /metrics over HTTP, as Prometheus does.
func scrapeMetrics(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(n.GatewayURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// sample returns the value of the series of family name whose labels
// include want (label, value pairs): a gauge's or counter's value, a
// histogram's count; ok is false when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, want ...string) (v float64, ok bool) {
	for _, m := range mfs[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func mustSample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	v, ok := sample(mfs, name, want...)
	if !ok {
		t.Fatalf("/metrics has no series %s %v", name, want)
	}
	return v
}

// TestMetricsMoveWithWritesAndSnapshots scrapes a node's /metrics around
// a write and a snapshot: the commit and apply latencies count the write,
// the snapshot duration the snapshot; term and state name the leader, and
// both Pebble databases report their sizes.
func TestMetricsMoveWithWritesAndSnapshots(t *testing.T) {
	c := mustNewCluster(t, 1)
	n := c.node(0)
	before := scrapeMetrics(t, n)
	c.mustSubmit(0, c.accreditOp("did:web:metrics.example"))
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	after := scrapeMetrics(t, n)
	for _, name := range []string{"trustd_raft_commit_duration_seconds", "trustd_raft_apply_duration_seconds", "trustd_raft_snapshot_duration_seconds"} {
		b, _ := sample(before, name)
		if a := mustSample(t, after, name); a <= b {
			t.Errorf("%s_count stayed at %v across a write and a snapshot", name, a)
		}
	}
	for _, name := range []string{"trustd_state_commits_total", "trustd_state_commit_seconds_total"} {
		b, _ := sample(before, name)
		if a := mustSample(t, after, name); a <= b {
			t.Errorf("%s stayed at %v across a write", name, a)
		}
	}
	commitTime := mustSample(t, after, "trustd_state_commit_seconds_total")
	for _, cause := range []string{"memtables", "l0"} {
		if v := mustSample(t, after, "trustd_state_write_stall_seconds_total", "cause", cause); v < 0 || v > commitTime {
			t.Errorf("trustd_state_write_stall_seconds_total{cause=%q} = %v, commits took %v", cause, v, commitTime)
		}
	}
	if v := mustSample(t, after, "trustd_raft_term"); v < 1 {
		t.Errorf("trustd_raft_term = %v, want at least 1", v)
	}
	if v := mustSample(t, after, "trustd_raft_state", "state", "Leader"); v != 1 {
		t.Errorf("trustd_raft_state{state=Leader} = %v on the only node", v)
	}
	if last, applied := mustSample(t, after, "trustd_raft_last_log_index"), mustSample(t, after, "trustd_raft_applied_index"); applied < 1 || last < applied {
		t.Errorf("trustd_raft_last_log_index %v, trustd_raft_applied_index %v", last, applied)
	}
	// raft's batches: the write is one entry, appended in one synced
	// append and applied as one command; the only node has appended
	// every entry of its log, and nothing was truncated.
	for name, want := range map[string]float64{"trustd_raft_log_appends_total": 1, "trustd_raft_log_appended_entries_total": 1, "trustd_raft_applied_entries_total": 1} {
		b, _ := sample(before, name)
		if a := mustSample(t, after, name); a-b != want {
			t.Errorf("%s moved by %v across one write, want %v", name, a-b, want)
		}
	}
	// The write's one signature: checked once, ahead of the rules (at
	// submission), not again by the check or the apply.
	for when, want := range map[string]float64{"ahead": 1, "judging": 0} {
		b, _ := sample(before, "trustd_signature_checks_total", "when", when)
		if a := mustSample(t, after, "trustd_signature_checks_total", "when", when); a-b != want {
			t.Errorf("trustd_signature_checks_total{when=%q} moved by %v across one write, want %v", when, a-b, want)
		}
	}
	if last, appended := mustSample(t, after, "trustd_raft_last_log_index"), mustSample(t, after, "trustd_raft_log_appended_entries_total"); appended != last {
		t.Errorf("trustd_raft_log_appended_entries_total %v on the only node, its last log index %v", appended, last)
	}
	for _, db := range []string{dbState, dbRaftLog} {
		if v := mustSample(t, after, "trustd_pebble_disk_usage_bytes", "db", db); v <= 0 {
			t.Errorf("trustd_pebble_disk_usage_bytes{db=%q} = %v", db, v)
		}
		mustSample(t, after, "trustd_pebble_compactions_total", "db", db)
		mustSample(t, after, "trustd_pebble_level_size_bytes", "db", db, "level", "6")
	}
}

// TestRestoreMetricOnAReplicaSentASnapshot: a replica that joins after
// the leader compacted its log is sent a snapshot, and its /metrics
// counts the restore.
func TestRestoreMetricOnAReplicaSentASnapshot(t *testing.T) {
	c := soloVoterWithReplica(t, func(voter, _ *configs.Config) {
		voter.Raft.TrailingLogs = 4
	})
	var last uint64
	for i := range 12 {
		last = c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:r%d.example", i))).Index
	}
	if err := c.node(0).Snapshot(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's log to be compacted", 30*time.Second, func() bool {
		first, _, err := c.node(0).cluster.LogBounds()
		return err == nil && first > 1
	})
	c.start(1)
	c.converged(last)
	// The restore makes the state current before the FSM adapter observes
	// its duration: the count can trail convergence by a moment.
	waitFor(t, "trustd_raft_restore_duration_seconds_count to count the replica's restore", 10*time.Second, func() bool {
		return mustSample(t, scrapeMetrics(t, c.node(1)), "trustd_raft_restore_duration_seconds") >= 1
	})
}

// TestLeaderChangeAndLastContactMetrics: in a 3-node cluster the leader's
// /metrics has a last contact for each other node; once the leader stops,
// a survivor's /metrics counts the leader change in a higher term.
func TestLeaderChangeAndLastContactMetrics(t *testing.T) {
	c := mustNewCluster(t, 3)
	l := c.waitLeader()
	var others []string
	for i := range 3 {
		if i != l {
			others = append(others, c.node(i).PeerID().String())
		}
	}
	slices.Sort(others)
	var peers []string
	for _, m := range scrapeMetrics(t, c.node(l))["trustd_raft_last_contact_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "peer" {
				peers = append(peers, lp.GetValue())
			}
		}
	}
	slices.Sort(peers)
	if !slices.Equal(peers, others) {
		t.Errorf("the leader's trustd_raft_last_contact_seconds covers %v, want the other nodes %v", peers, others)
	}

	s := (l + 1) % 3
	before := scrapeMetrics(t, c.node(s))
	changes, term := mustSample(t, before, "trustd_raft_leader_changes_total"), mustSample(t, before, "trustd_raft_term")
	c.stop(l)
	// The survivor counts the change once it hears from the new leader.
	waitFor(t, "the survivor to follow a new leader", 30*time.Second, func() bool {
		nl := c.leader()
		return nl >= 0 && c.node(s).cluster.LeaderID() == c.node(nl).PeerID().String()
	})
	after := scrapeMetrics(t, c.node(s))
	if v := mustSample(t, after, "trustd_raft_leader_changes_total"); v <= changes {
		t.Errorf("trustd_raft_leader_changes_total stayed at %v on a survivor after the leader stopped", v)
	}
	if v := mustSample(t, after, "trustd_raft_term"); v <= term {
		t.Errorf("trustd_raft_term stayed at %v on a survivor after the leader stopped", v)
	}
}

// TestPebbleCollectorCountsCompactions: the collector reports a database's
// flushes and compactions as they happen, and leaves out a database whose
// source has nothing (closed).
func TestPebbleCollectorCountsCompactions(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pebbleCollector{sources: map[string]func() *pebble.Metrics{
		"test":   db.Metrics,
		"closed": func() *pebble.Metrics { return nil },
	}})
	gather := func() map[string]*dto.MetricFamily {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf
		}
		return out
	}
	before := gather()
	// The same keys in two flushed tables, so the compaction merges them
	// (one table alone would be moved down, not rewritten).
	for range 2 {
		for i := range 100 {
			if err := db.Set(fmt.Appendf(nil, "k%03d", i), make([]byte, 1024), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(t.Context(), []byte("k"), []byte("l"), false); err != nil {
		t.Fatal(err)
	}
	after := gather()
	for _, name := range []string{"trustd_pebble_flushes_total", "trustd_pebble_compactions_total",
		"trustd_pebble_flushed_bytes_total", "trustd_pebble_compacted_bytes_total"} {
		if a, b := mustSample(t, after, name, "db", "test"), mustSample(t, before, name, "db", "test"); a <= b {
			t.Errorf("%s stayed at %v across a flush and a compaction", name, a)
		}
	}
	if v := mustSample(t, after, "trustd_pebble_level_tables", "db", "test", "level", "6"); v < 1 {
		t.Errorf("trustd_pebble_level_tables{level=6} = %v after a full compaction", v)
	}
	if _, ok := sample(after, "trustd_pebble_disk_usage_bytes", "db", "closed"); ok {
		t.Error("a closed database's metrics were reported")
	}
}

// dashboardMetric matches the metric names a PromQL expression of the
// dashboard uses.
var dashboardMetric = regexp.MustCompile(`\b(?:trustd|go|process)_[a-zA-Z0-9_]+`)

// dashboardExprs returns the PromQL expressions of docs/grafana-dashboard.json:
// its panels' targets (rows' nested panels included) and its variables'
// queries. It checks the dashboard selects its Prometheus data source
// through a variable.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource any    `json:"datasource"`
		Targets    []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Title         string            `json:"title"`
		SchemaVersion int               `json:"schemaVersion"`
		Panels        []json.RawMessage `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 {
		t.Fatalf("docs/grafana-dashboard.json is not a Grafana dashboard: title %q, schemaVersion %d, %d panels", d.Title, d.SchemaVersion, len(d.Panels))
	}
	var exprs []string
	hasDatasource := false
	for _, v := range d.Templating.List {
		switch q := v.Query.(type) {
		case string:
			hasDatasource = hasDatasource || (v.Type == "datasource" && q == "prometheus")
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	if !hasDatasource {
		t.Error("the dashboard has no Prometheus data source variable")
	}
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("panel: %v", err)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if ds, _ := p.Datasource.(map[string]any); ds["uid"] != "${datasource}" {
				t.Errorf("panel %q does not use the data source variable: %v", p.Title, p.Datasource)
			}
			for _, tg := range p.Targets {
				if !dashboardMetric.MatchString(tg.Expr) {
					t.Errorf("panel %q: expression %q names no metric", p.Title, tg.Expr)
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	return exprs
}

// servedNames returns the sample names a scrape holds: a histogram
// family's _bucket, _sum and _count, a summary's _sum and _count.
func servedNames(mfs ...map[string]*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for _, m := range mfs {
		for name, mf := range m {
			names[name] = true
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
			case dto.MetricType_SUMMARY:
				names[name+"_sum"], names[name+"_count"] = true, true
			}
		}
	}
	return names
}

// TestGrafanaDashboardMetricsAreServed: every metric the dashboard's
// queries name is in the /metrics of a real cluster's leader or
// follower, so the dashboard cannot drift from the code; and the
// dashboard graphs each family an operator needs.
func TestGrafanaDashboardMetricsAreServed(t *testing.T) {
	exprs := dashboardExprs(t)
	c := mustNewCluster(t, 3)
	l := c.waitLeader()
	// A write refused by the leader (a duplicate) and requests served
	// make the families that appear only once counted.
	jws := c.accreditOp("did:web:dashboard.example")
	c.mustSubmit(l, jws)
	if res, err := c.submit(l, jws); err != nil || !res.Duplicate {
		t.Fatalf("resubmission: %+v, %v", res, err)
	}
	f := (l + 1) % 3
	scrapeMetrics(t, c.node(l))
	served := servedNames(scrapeMetrics(t, c.node(l)), scrapeMetrics(t, c.node(f)))

	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range dashboardMetric.FindAllString(e, -1) {
			used[name] = true
			if !served[name] {
				t.Errorf("the dashboard queries %s, which no node serves: %s", name, e)
			}
		}
	}
	for _, name := range []string{
		"trustd_raft_term", "trustd_raft_state", "trustd_raft_leader_changes_total", "trustd_raft_last_contact_seconds",
		"trustd_raft_commit_duration_seconds_bucket", "trustd_raft_apply_duration_seconds_bucket",
		"trustd_raft_snapshot_duration_seconds_count", "trustd_raft_restore_duration_seconds_count",
		"trustd_pebble_disk_usage_bytes", "trustd_pebble_level_size_bytes", "trustd_pebble_compactions_total",
		"trustd_pebble_compaction_debt_bytes", "trustd_registry_operations_total", "trustd_registry_operations_refused_total",
		"trustd_http_requests_total", "trustd_http_request_duration_seconds_bucket", "trustd_build_info",
	} {
		if !used[name] {
			t.Errorf("the dashboard does not graph %s", name)
		}
	}
}

// TestStateDiskUsageByPart: after writes with the commitment on, once the
// node restarted (Pebble flushes the writes it replays from the WAL into
// sstables), /metrics splits the state's disk usage into its parts: every
// part the writes made is nonzero, and they add up to about the state's
// size on disk (trustd_pebble_disk_usage_bytes).
func TestStateDiskUsageByPart(t *testing.T) {
	c := mustNewCluster(t, 1)
	for i := range 200 {
		c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:usage-%d.example", i)))
	}
	c.stop(0)
	c.start(0)
	c.waitLeader()
	mfs := scrapeMetrics(t, c.node(0))
	var sum, commitment float64
	// The label values are what dashboards and trustbench read.
	for _, part := range []string{"meta", "records", "results", "commitment_map", "commitment_log_nodes", "commitment_log_leaves"} {
		v := mustSample(t, mfs, "trustd_state_disk_usage_bytes", "part", part)
		t.Logf("%-22s %8.0f bytes", part, v)
		if v <= 0 {
			t.Errorf("trustd_state_disk_usage_bytes{part=%q} = %v after 20 writes", part, v)
		}
		sum += v
		if strings.HasPrefix(part, "commitment_") {
			commitment += v
		}
	}
	if v := mustSample(t, mfs, "trustd_state_disk_usage_bytes", "part", "other"); v != 0 {
		t.Errorf("trustd_state_disk_usage_bytes{part=other} = %v: a table this build writes is in no part", v)
	}
	// The directory also holds the WAL, the manifest and the options;
	// the parts' estimate counts a data block across two parts in both.
	disk := mustSample(t, mfs, "trustd_pebble_disk_usage_bytes", "db", dbState)
	t.Logf("parts %.0f bytes, of which the commitment %.0f; the state's directory %.0f", sum, commitment, disk)
	if sum < disk/2 || sum > disk*1.25 {
		t.Errorf("the parts add up to %.0f bytes, the state's directory takes %.0f", sum, disk)
	}
}

// TestEveryNodeChecksEverySignature: in a three-node cluster every node
// verifies the signature of every write, whichever node received it (the
// receiving gateway, the leader's check, or a follower as it stores the
// entries), and once: trustd_signature_checks_total over the writes, on
// each node.
func TestEveryNodeChecksEverySignature(t *testing.T) {
	c := mustNewCluster(t, 3)
	c.waitLeader()
	var before [3]float64
	for i := range 3 {
		a, _ := sample(scrapeMetrics(t, c.node(i)), "trustd_signature_checks_total", "when", "ahead")
		j, _ := sample(scrapeMetrics(t, c.node(i)), "trustd_signature_checks_total", "when", "judging")
		before[i] = a + j
	}
	const writes = 12
	var last uint64
	for w := range writes {
		last = c.mustSubmit(w%3, c.accreditOp(fmt.Sprintf("did:web:checked%d.example", w))).Index
	}
	c.converged(last)
	for i := range 3 {
		mfs := scrapeMetrics(t, c.node(i))
		got := mustSample(t, mfs, "trustd_signature_checks_total", "when", "ahead") +
			mustSample(t, mfs, "trustd_signature_checks_total", "when", "judging") - before[i]
		// Each write's one signature, once; a Prefetch that met the apply
		// in the few µs between its look at the batch being applied and
		// the apply taking the parse would check one again.
		if got < writes || got > writes+1 {
			t.Errorf("node %d verified %v signatures over %d writes of one signature each", i, got, writes)
		}
	}
}
