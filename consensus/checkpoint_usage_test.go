package consensus

import (
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCheckpointUsageCountsWhatOnlyCheckpointsHold measures a checkpoints
// directory over real hard links: a file the live state also links is
// shared, one only checkpoints link (however many) is their own, and a
// file the state drops moves from shared to own.
func TestCheckpointUsageCountsWhatOnlyCheckpointsHold(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "state")
	ckpts, err := newCheckpoints(filepath.Join(root, "raft", "checkpoints"), filepath.Join(root, "raft", "snapshots"), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(path string, n int) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.Repeat("x", n)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, dir string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(state, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want CheckpointUsage) {
		t.Helper()
		got, err := ckpts.usage()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("usage = %+v, want %+v", got, want)
		}
	}
	check(CheckpointUsage{})

	// Two checkpoints of a state of two sstables; the first also holds a
	// copied WAL, and a stream is being made beside them.
	write(filepath.Join(state, "000001.sst"), 1000)
	write(filepath.Join(state, "000002.sst"), 200)
	first, second := ckpts.path("1-10-1"), ckpts.path("1-20-2")
	link("000001.sst", first)
	link("000002.sst", first)
	link("000001.sst", second)
	write(filepath.Join(first, "000003.log"), 30)
	write(filepath.Join(ckpts.dir, "1-10-1"+streamSuffix), 4)
	check(CheckpointUsage{Own: 34, Shared: 1200})

	// The state compacts 000001.sst away: both checkpoints still link it,
	// and now nothing else does.
	if err := os.Remove(filepath.Join(state, "000001.sst")); err != nil {
		t.Fatal(err)
	}
	check(CheckpointUsage{Own: 1034, Shared: 200})

	// The gauge reports the same.
	c := &Cluster{snaps: &snapshotStore{ckpts: ckpts}, metrics: newRaftMetrics(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "trustd_raft_checkpoint_bytes" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				got[l.GetName()+"="+l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	if want := map[string]float64{"held=own": 1034, "held=shared": 200}; !maps.Equal(got, want) {
		t.Fatalf("trustd_raft_checkpoint_bytes = %v, want %v", got, want)
	}
}
