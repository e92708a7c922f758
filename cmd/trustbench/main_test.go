package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestAFailedPartIsReportedWithTheRun(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-trustd")
	var out bytes.Buffer
	err := run(context.Background(), []string{"--trustd", missing, "--skip-writes", "--scale", "0", "--entities", "10", "--json"}, &out)
	if err == nil || !strings.Contains(err.Error(), "reads:") {
		t.Fatalf("run with a missing trustd: %v, want the reads' error", err)
	}
	var rep report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("the report is not JSON: %v\n%s", jerr, out.Bytes())
	}
	if rep.Error != err.Error() || len(rep.Reads) != 0 {
		t.Fatalf("report error %q with %d read results; want %q and none", rep.Error, len(rep.Reads), err)
	}
	out.Reset()
	run(context.Background(), []string{"--trustd", missing, "--skip-writes", "--scale", "0", "--entities", "10"}, &out)
	if !strings.Contains(out.String(), "INCOMPLETE, the run stopped at: reads:") {
		t.Fatalf("the text report does not say the run stopped:\n%s", out.String())
	}
}

func TestWriteRoundsArePrintedWithTheirMedian(t *testing.T) {
	rep := &report{Mode: "full", Machine: "test", Writes: []writeResult{{
		Clients: 64, Trustd: stats{PerSecond: 1600}, Etcd: stats{PerSecond: 2500}, Ratio: 0.64,
		RoundRatios: []float64{0.55, 0.64, 0.49}, MedianRoundRatio: 0.55,
	}}}
	var out bytes.Buffer
	printReport(&out, rep)
	if want := "64 clients, each round (trustd, then etcd): ratio 0.55 0.64 0.49 (median 0.55)"; !strings.Contains(out.String(), want) {
		t.Fatalf("the report does not list the write rounds (%q):\n%s", want, out.String())
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"round_ratios":[0.55,0.64,0.49],"median_round_ratio":0.55`) {
		t.Fatalf("the JSON report does not carry the write rounds: %s", raw)
	}
}
