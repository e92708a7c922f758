package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeReport(t *testing.T, dir, name string, r *report) string {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompareMatchesFiguresByLoadAndShowsTheChange(t *testing.T) {
	dir := t.TempDir()
	old := writeReport(t, dir, "old.json", &report{Mode: "full", Machine: "m1",
		Reads:  []readResult{{Entities: 10000, Ratio: 0.80, TrustdCPUus: 25, TrustdAtHalf: stats{P99: 4.0}}},
		Writes: []writeResult{{Clients: 64, Ratio: 0.50, Trustd: stats{PerSecond: 1500}}, {Clients: 256, Ratio: 0.60}},
		Scale: &scaleResult{Entities: 1000000, P99At: []point{{Entities: 10000, P99: 2.0}, {Entities: 1000000, P99: 2.4}},
			CatchUpSec: 24, PeakRSSMiB: 431, Distinct: distinctPass{Questions: 250000, Answered: 250000, P99: 12.5},
			CommitmentShare: 0.42, SelfAuditSec: 280},
	})
	// The new run has its write levels in another order, one read level
	// more, and the write rounds' median the old one lacked.
	cur := writeReport(t, dir, "new.json", &report{Mode: "full", Machine: "m2",
		Reads: []readResult{{Entities: 10000, Questions: 10000, Ratio: 0.88, TrustdCPUus: 20, TrustdAtHalf: stats{P99: 3.0, Handler: &handlerTimes{AllocPerRequest: 2450}}},
			{Entities: 100000, Ratio: 0.77}},
		Writes: []writeResult{{Clients: 256, Ratio: 0.54}, {Clients: 64, Ratio: 0.60, MedianRoundRatio: 0.58, RatioGRPC: 0.30, Trustd: stats{PerSecond: 1800}}},
		Error:  "scale: boom",
	})
	var out bytes.Buffer
	if err := compareReports([]string{old, cur}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"different machines",
		"B is INCOMPLETE, its run stopped at: scale: boom",
		row("reads, 10000 entities: ratio to net/http", "0.80", "0.88", "1.10"),
		row("reads, 10000 entities: trustd CPU per query (µs)", "25.0", "20.0", "0.80"),
		row("reads, 10000 entities: trustd p99 at half rate (ms)", "4.00", "3.00", "0.75"),
		row("reads, 10000 entities: distinct questions (0: not recorded)", "-", "10000", "-"),
		row("reads, 10000 entities: trustd bytes allocated per query at half rate", "-", "2450", "-"),
		row("reads, 100000 entities: ratio to net/http", "-", "0.77", "-"),
		row("writes, 64 clients: ratio to etcd via JSON", "0.50", "0.60", "1.20"),
		row("writes, 64 clients: median round ratio to etcd via JSON", "-", "0.58", "-"),
		row("writes, 64 clients: ratio to etcd via gRPC", "-", "0.30", "-"),
		row("writes, 64 clients: trustd op/s", "1500", "1800", "1.20"),
		row("writes, 256 clients: ratio to etcd via JSON", "0.60", "0.54", "0.90"),
		row("scale: p99 at the most entities / p99 at the fewest", "1.20", "-", "-"),
		row("scale: node peak resident memory (MiB)", "431", "-", "-"),
		row("scale: distinct questions asked once each", "250000", "-", "-"),
		row("scale: p99 over the distinct questions (ms)", "12.5", "-", "-"),
		row("scale: the commitment's share of the state on disk", "0.42", "-", "-"),
		row("scale: start-up self-audit (s)", "280", "-", "-"),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Index(text, "writes, 64 clients") > strings.Index(text, "writes, 256 clients") {
		t.Errorf("rows are not in the first report's order:\n%s", text)
	}
}

func row(name, a, b, change string) string {
	return fmt.Sprintf(compareRow, name, a, b, change)
}

func TestCompareRefusesWhatIsNotAReport(t *testing.T) {
	dir := t.TempDir()
	good := writeReport(t, dir, "good.json", &report{Mode: "short", Machine: "m"})
	notJSON := filepath.Join(dir, "table.txt")
	os.WriteFile(notJSON, []byte("trustbench (full mode) on AMD EPYC\n"), 0o644)
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"name":"x"}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{good}, "two reports"},
		{[]string{good, filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{good, notJSON}, "table.txt is not a trustbench --json report"},
		{[]string{other, good}, "other.json is not a trustbench --json report"},
	} {
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"compare"}, c.args...), &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("compare %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
