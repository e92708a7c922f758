package consensus

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// scrape gathers c's collector through a pedantic registry, which also
// checks that what it collects matches what it describes.
func scrape(t *testing.T, c *Cluster) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c.Collector()); err != nil {
		t.Fatal(err)
	}
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

// value returns the value of the series of family name whose labels
// include want (label, value pairs): a gauge's or counter's value, a
// histogram's count. ok is false when there is no such series.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) (v float64, ok bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
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
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	v, ok := value(mfs, name, want...)
	if !ok {
		t.Fatalf("no series %s %v scraped", name, want)
	}
	return v
}

// labelValues returns the values of label in the series of family name.
func labelValues(mfs map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, m := range mfs[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestMetricsFollowWritesAndLeaderChanges drives a 3-voter cluster: a
// write moves the leader's commit and apply latencies and every member's
// apply latency; the leader reports last contact for each other member
// and a follower for the leader; cutting the leader off elects another,
// which the survivors count as a leader change in a higher term.
func TestMetricsFollowWritesAndLeaderChanges(t *testing.T) {
	g := mustStartGatedClusters(t, 3, func(Entry) {})
	l := leaderOf(g.cs)
	leader := g.cs[l]
	before := scrape(t, leader)
	if v := mustValue(t, before, "trustd_raft_state", "state", "Leader"); v != 1 {
		t.Errorf("the leader's trustd_raft_state{state=Leader} = %v, want 1", v)
	}
	if v := mustValue(t, before, "trustd_raft_state", "state", "Follower"); v != 0 {
		t.Errorf("the leader's trustd_raft_state{state=Follower} = %v, want 0", v)
	}
	commits := mustValue(t, before, "trustd_raft_commit_duration_seconds")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := leader.Apply(ctx, []byte("a write")); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, leader)
	if v := mustValue(t, after, "trustd_raft_commit_duration_seconds"); v <= commits {
		t.Errorf("trustd_raft_commit_duration_seconds_count on the leader stayed at %v after a write", v)
	}
	for i, c := range g.cs {
		pollUntil(t, "the write applied on every member", 10*time.Second, func() bool {
			v, _ := value(scrape(t, c), "trustd_raft_apply_duration_seconds")
			return v > 0
		})
		if v := mustValue(t, scrape(t, c), "trustd_raft_term"); v < 1 {
			t.Errorf("member %d: trustd_raft_term = %v, want at least 1", i, v)
		}
		// The one command, in the one batch the apply histogram counts;
		// the configuration and no-op entries around it are not commands.
		appends, appended, applied := c.BatchStats()
		if batches := mustValue(t, scrape(t, c), "trustd_raft_apply_duration_seconds"); applied != 1 || batches != 1 {
			t.Errorf("member %d: %d entries applied in %v batches, want the one write in one", i, applied, batches)
		}
		if appends < 1 || appended < appends {
			t.Errorf("member %d: %d synced appends of %d entries", i, appends, appended)
		}
	}

	var others []string
	for i, h := range g.hosts {
		if i != l {
			others = append(others, h.ID().String())
		}
	}
	slices.Sort(others)
	if got := labelValues(after, "trustd_raft_last_contact_seconds", "peer"); !slices.Equal(got, others) {
		t.Errorf("the leader reports last contact for %v, want the other members %v", got, others)
	}
	f := (l + 1) % 3
	pollUntil(t, "a follower's last contact with the leader", 10*time.Second, func() bool {
		_, ok := value(scrape(t, g.cs[f]), "trustd_raft_last_contact_seconds", "peer", g.hosts[l].ID().String())
		return ok
	})

	survivor := scrape(t, g.cs[f])
	changes := mustValue(t, survivor, "trustd_raft_leader_changes_total")
	term := mustValue(t, survivor, "trustd_raft_term")
	if changes < 1 {
		t.Errorf("a follower counted %v leader changes after the first election, want at least 1", changes)
	}
	for i := range g.cs {
		if i != l {
			g.cut(l, i)
		}
	}
	pollUntil(t, "a new leader among the survivors", 30*time.Second, func() bool {
		for i, c := range g.cs {
			if i != l && c.IsLeader() {
				return true
			}
		}
		return false
	})
	pollUntil(t, "the survivor to see the new leader", 10*time.Second, func() bool {
		return g.cs[f].LeaderID() != "" && g.cs[f].LeaderID() != g.hosts[l].ID().String()
	})
	now := scrape(t, g.cs[f])
	if v := mustValue(t, now, "trustd_raft_leader_changes_total"); v <= changes {
		t.Errorf("trustd_raft_leader_changes_total on a survivor stayed at %v across an election", v)
	}
	if v := mustValue(t, now, "trustd_raft_term"); v <= term {
		t.Errorf("trustd_raft_term on a survivor stayed at %v across an election", v)
	}
}

// TestMetricsTimeSnapshotsAndRestores: a snapshot taken moves the
// snapshot duration; a start that restores the newest snapshot moves the
// restore duration; the raft log's Pebble metrics are there while the
// cluster runs and absent once it is shut down.
func TestMetricsTimeSnapshotsAndRestores(t *testing.T) {
	g := mustStartGatedClusters(t, 1, func(Entry) {})
	c := g.cs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Apply(ctx, []byte("a write")); err != nil {
		t.Fatal(err)
	}
	if v := mustValue(t, scrape(t, c), "trustd_raft_snapshot_duration_seconds"); v != 0 {
		t.Fatalf("trustd_raft_snapshot_duration_seconds_count = %v before any snapshot", v)
	}
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if v := mustValue(t, scrape(t, c), "trustd_raft_snapshot_duration_seconds"); v != 1 {
		t.Errorf("trustd_raft_snapshot_duration_seconds_count = %v after one snapshot, want 1", v)
	}
	if m := c.LogDBMetrics(); m == nil || m.DiskSpaceUsage() == 0 {
		t.Errorf("the raft log's Pebble metrics while it runs: %v", m)
	}

	h := mustNewHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	dir := filepath.Join(t.TempDir(), "raft")
	if err := SeedSnapshot(dir, h.ID(), 10, func(w io.Writer) error { _, err := w.Write([]byte("state")); return err }); err != nil {
		t.Fatal(err)
	}
	restored, err := Start(Config{Dir: dir, Host: h, StateMachine: &restoreMachine{}, ClusterID: "test", Codec: indexCodec{}})
	if err != nil {
		t.Fatal(err)
	}
	if v := mustValue(t, scrape(t, restored), "trustd_raft_restore_duration_seconds"); v != 1 {
		t.Errorf("trustd_raft_restore_duration_seconds_count = %v after a start that restored a snapshot, want 1", v)
	}
	if err := restored.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if m := restored.LogDBMetrics(); m != nil {
		t.Errorf("the raft log's Pebble metrics after shutdown: %v, want nil", m)
	}
	scrape(t, restored) // a scrape after shutdown still works
}

// TestApplyCountsCommandEntries: the applied-entries count moves by the
// commands of a batch, not by its configuration or no-op entries, and
// not at all for a batch without commands, which the apply histogram does
// not count either.
func TestApplyCountsCommandEntries(t *testing.T) {
	m := &countingMachine{}
	f := &fsm{sm: m, metrics: newRaftMetrics()}
	cmd := func(i uint64) *raft.Log {
		return &raft.Log{Index: i, Type: raft.LogCommand, Data: stamp([]byte("w"), time.Now())}
	}
	out := f.ApplyBatch([]*raft.Log{cmd(1), {Index: 2, Type: raft.LogConfiguration}, cmd(3), {Index: 4, Type: raft.LogNoop}, cmd(5)})
	if out[0] != uint64(1) || out[1] != nil || out[2] != uint64(3) || out[4] != uint64(5) {
		t.Fatalf("responses %v", out)
	}
	f.ApplyBatch([]*raft.Log{{Index: 6, Type: raft.LogNoop}})
	f.ApplyBatch([]*raft.Log{cmd(7)})
	var h dto.Metric
	if err := f.metrics.apply.Write(&h); err != nil {
		t.Fatal(err)
	}
	if applied := f.metrics.applied.Load(); applied != 4 || h.GetHistogram().GetSampleCount() != 2 {
		t.Fatalf("%d entries applied in %d batches, want 4 in 2", applied, h.GetHistogram().GetSampleCount())
	}
}
