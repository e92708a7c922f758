package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for trustbench when a read
// benchmark starts its bare baseline by running itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "baseline-server" {
		if err := baselineServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "baseline-server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runStoppedAt runs trustbench with args (which include --json), wants it
// to fail in the part named by part, and returns its JSON report, which
// must carry that same error.
func runStoppedAt(t *testing.T, part string, args ...string) report {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	if err == nil || !strings.Contains(err.Error(), part) {
		t.Fatalf("run %v: %v, want an error in %q", args, err, part)
	}
	var rep report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("the report is not JSON: %v\n%s", jerr, out.Bytes())
	}
	if rep.Error != err.Error() {
		t.Fatalf("report error %q, want %q", rep.Error, err)
	}
	return rep
}

// testTrustd builds trustd into dir, from the test's package directory, and returns its path.
func testTrustd(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "trustd")
	build := exec.Command("go", "build", "-o", bin, "../trustd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build trustd: %v\n%s", err, out)
	}
	return bin
}

// --generator-gc sets this process's collector, and a negative value is
// refused before anything runs.
func TestGeneratorGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	var out strings.Builder
	if err := run(t.Context(), []string{"--generator-gc", "-1", "--trustd", "/bin/true", "--skip-reads", "--skip-writes", "--skip-etcd", "--scale", "0"}, &out); err == nil || !strings.Contains(err.Error(), "--generator-gc -1") {
		t.Fatalf("--generator-gc -1: %v, want it refused", err)
	}
	if err := run(t.Context(), []string{"--generator-gc", "300", "--trustd", "/bin/true", "--skip-reads", "--skip-writes", "--skip-etcd", "--scale", "0", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 300 {
		t.Fatalf("after --generator-gc 300 the generator's GOGC is %d", got)
	}
}

// The bare handler's ballast is resident memory of the process, and the
// handler still answers; a negative size is refused.
func TestBaselineBallastIsResident(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"--baseline-ballast", "-1", "--trustd", "/bin/true", "--skip-reads", "--skip-writes", "--skip-etcd", "--scale", "0"}, &out); err == nil || !strings.Contains(err.Error(), "--baseline-ballast -1") {
		t.Fatalf("--baseline-ballast -1: %v, want it refused", err)
	}
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body.json")
	if err := os.WriteFile(bodyFile, []byte(`{"authorized":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	url := "http://" + addr + "/v1/trust"
	p, err := start(dir, "baseline", self, "baseline-server", "--addr", addr, "--body", bodyFile, "--ballast", "96")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	// The ballast is written before the server listens: once it answers,
	// every page has been touched.
	if err := p.waitReady(url, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if mib := p.peakRSS(); mib < 96 {
		t.Fatalf("the baseline server with a 96 MiB ballast peaked at %.1f MiB resident", mib)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != `{"authorized":true}` {
		t.Fatalf("the ballasted handler answered %d %q", resp.StatusCode, b)
	}
}

func TestAFailedPartIsReportedWithTheRun(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-trustd")
	rep := runStoppedAt(t, "reads:", "--trustd", missing, "--skip-writes", "--scale", "0", "--entities", "10", "--json")
	if len(rep.Reads) != 0 {
		t.Fatalf("%d read results from a run whose reads failed", len(rep.Reads))
	}
	var out bytes.Buffer
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
	if want := "64 clients, each round (trustd, then etcd via JSON): ratio 0.55 0.64 0.49 (median 0.55)"; !strings.Contains(out.String(), want) {
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

func TestReadsMeasuredBeforeAFailedWritePartAreKept(t *testing.T) {
	if testing.Short() {
		t.Skip("builds trustd and measures reads for real")
	}
	// A trustd that serves the read benchmark's node but refuses
	// "identity" for a node under the write benchmark's directory
	// ("writes"): the writes fail after the reads were measured.
	dir := t.TempDir()
	bin := testTrustd(t, dir)
	wrapper := filepath.Join(dir, "trustd-without-identity")
	script := "#!/bin/sh\ncase \"$1 $*\" in identity*/writes/*) echo 'identity refused' >&2; exit 1;; esac\nexec " + bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rep := runStoppedAt(t, "writes:", "--trustd", wrapper, "--skip-etcd", "--scale", "0", "--entities", "200",
		"--writers", "1", "--duration", "1s", "--rounds", "1", "--json")
	if len(rep.Writes) != 0 {
		t.Fatalf("%d write results from a run whose writes failed", len(rep.Writes))
	}
	if len(rep.Reads) != 1 {
		t.Fatalf("%d read results kept, want the one measured before the writes failed", len(rep.Reads))
	}
	r := rep.Reads[0]
	if r.Entities != 200 || r.Trustd.Requests == 0 || r.Baseline.Requests == 0 || r.Ratio <= 0 {
		t.Fatalf("the kept read result is not a measurement: %+v", r)
	}
	// A closed loop keeps the generator busy for the whole second: its
	// own CPU per request is counted on both sides.
	if r.Trustd.GeneratorCPUus <= 0 || r.Baseline.GeneratorCPUus <= 0 {
		t.Fatalf("the generator's CPU per request: trustd side %.1f µs, net/http side %.1f µs", r.Trustd.GeneratorCPUus, r.Baseline.GeneratorCPUus)
	}
	// trustd's own handler times came from its metrics: at least every
	// answered query of the kept half-rate run (its warm-ups count too).
	// Its runtime's allocation too: every query allocates (net/http's
	// request, at least).
	if h := r.TrustdAtHalf.Handler; h == nil || h.Requests < r.TrustdAtHalf.Requests || h.P99AtMostMs <= 0 || h.AllocPerRequest <= 0 {
		t.Fatalf("trustd's handler times at half rate: %+v for %d answered queries", h, r.TrustdAtHalf.Requests)
	}
	// One round asked for, two run: each side opens one, and the lower
	// p99 of each side's is the one kept.
	if hr := r.HalfRounds; len(hr) != 2 || !hr[0].TrustdFirst || hr[1].TrustdFirst ||
		r.TrustdAtHalf.P99 != min(hr[0].TrustdP99, hr[1].TrustdP99) || r.BaselineAtHal.P99 != min(hr[0].BaselineP99, hr[1].BaselineP99) ||
		hr[0].TrustdP99 <= 0 || hr[1].TrustdP99 <= 0 || hr[0].BaselineP99 <= 0 || hr[1].BaselineP99 <= 0 {
		t.Fatalf("the half-rate rounds %+v, kept trustd p99 %.3f, net/http %.3f: want two rounds, trustd first in the first, each side's lower p99 kept",
			hr, r.TrustdAtHalf.P99, r.BaselineAtHal.P99)
	}
	// Each side's server process CPU per answered request, every round:
	// each answer costs its server something.
	for i, x := range r.HalfRounds {
		if x.TrustdCPUus <= 0 || x.BaselineCPUus <= 0 {
			t.Fatalf("half-rate round %d: server CPU per request trustd %.1f µs, net/http %.1f µs", i, x.TrustdCPUus, x.BaselineCPUus)
		}
	}
	if r.TrustdAtHalf.ServerCPUus <= 0 || r.BaselineAtHal.ServerCPUus <= 0 {
		t.Fatalf("the kept half-rate runs carry no server CPU per request: trustd %.1f µs, net/http %.1f µs", r.TrustdAtHalf.ServerCPUus, r.BaselineAtHal.ServerCPUus)
	}
	if r.BaselineAtHal.Handler != nil {
		t.Fatalf("the bare handler has no metrics, yet handler times %+v", r.BaselineAtHal.Handler)
	}
	// The read node cosigns its checkpoints, so the same questions are
	// answered with their proofs too, each sized once.
	if p := r.Proof; p == nil || p.Trustd.Requests == 0 || p.RatioToPlain <= 0 || p.CPUus <= 0 ||
		p.Bundle.Answers != r.Questions || p.Bundle.Mean <= 0 || p.Bundle.Max < int(p.Bundle.Mean) || p.Bundle.GzipMean <= 0 || p.Bundle.CompactMean <= 0 || p.Bundle.CompactMax >= p.Bundle.Max ||
		p.Uncached.Requests == 0 || p.Uncached.Errors != 0 || p.UncachedCPUus <= 0 || p.UncachedRatioToPlain <= 0 {
		t.Fatalf("the proof row is not a measurement: %+v", p)
	}
}

func TestScaleAsksEveryCollegeOnceBeforeReadingPeakMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds trustd and runs the scale part for real")
	}
	bin := testTrustd(t, t.TempDir())
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--trustd", bin, "--skip-reads", "--skip-writes", "--scale", "300", "--conns", "8", "--rounds", "2", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Scale == nil {
		t.Fatalf("no scale result: %v\n%s", err, out.Bytes())
	}
	// The one latency point (300 entities), the lowest p99 of its rounds.
	if ps := rep.Scale.P99At; len(ps) != 1 || len(ps[0].RoundP99s) != 2 || ps[0].P99 != min(ps[0].RoundP99s[0], ps[0].RoundP99s[1]) || ps[0].P99 <= 0 {
		t.Fatalf("the latency points: %+v, want one at 300 entities with the lower p99 of two rounds", ps)
	}
	if d := rep.Scale.Distinct; d.Questions != 300 || d.Answered != 300 || d.Errors != 0 || d.P99 <= 0 {
		t.Fatalf("the pass over distinct questions: %+v, want each of 300 colleges answered once", d)
	}
	if rep.Scale.PeakRSSMiB <= 0 || rep.Scale.CatchUpSec <= 0 || rep.Scale.GoRuntimeMiB <= 0 {
		t.Fatalf("scale result without peak memory or catch-up: %+v", rep.Scale)
	}
	// The state's parts on disk, the commitment's share, and the
	// restarted node's start-up audit.
	if parts := rep.Scale.StateMiBByPart; parts["records"] <= 0 || parts["commitment_map"] <= 0 || rep.Scale.CommitmentShare <= 0 || rep.Scale.SelfAuditSec <= 0 {
		t.Fatalf("scale result without the state's parts, the commitment's share or the start-up audit: %+v", rep.Scale)
	}
}

// TestAnInterruptedPartIsLeftOut: a run interrupted (its context ended by
// SIGINT or SIGTERM) stops at the part it was in, says so, and reports no
// figures of that part, which would be of servers being stopped; the
// figures of the parts before it stay.
func TestAnInterruptedPartIsLeftOut(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("terminated signal received"))
	before := readResult{Entities: 10, Ratio: 0.9}
	rep := &report{Reads: []readResult{before}}
	err := measure(ctx, config{skipReads: true, trustd: filepath.Join(t.TempDir(), "trustd"), writers: []int{1}, rounds: 1}, t.TempDir(), rep)
	if err == nil || err.Error() != "writes: interrupted (terminated signal received); its figures are left out" {
		t.Fatalf("measure after an interruption: %v", err)
	}
	if len(rep.Reads) != 1 || rep.Reads[0].Entities != before.Entities || rep.Reads[0].Ratio != before.Ratio || len(rep.Writes) != 0 || rep.Scale != nil {
		t.Fatalf("report after an interrupted write part: %+v", rep)
	}
}

// --commitment-cost drives a second cluster of the same build held at the
// feature level below the commitment, in every round beside trustd, and
// reports trustd's rate over it; waitFeatureLevel makes sure each side
// runs at the level it is measured at.
func TestCommitmentCostDrivesAHeldCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds trustd and runs two clusters")
	}
	bin := testTrustd(t, t.TempDir())
	var out bytes.Buffer
	err := run(context.Background(), []string{"--trustd", bin, "--skip-reads", "--skip-etcd", "--scale", "0",
		"--writers", "4", "--duration", "1s", "--rounds", "2", "--commitment-cost", "--json"}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.Bytes())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Writes) != 1 {
		t.Fatalf("%d write results", len(rep.Writes))
	}
	w := rep.Writes[0]
	if w.TrustdHeld.Requests == 0 || w.TrustdHeldCPUms <= 0 || w.RatioHeld <= 0 || len(w.RoundRatiosHeld) != 2 || w.MedianRoundRatioHeld <= 0 {
		t.Fatalf("no held-cluster measurement: %+v", w)
	}
	var text bytes.Buffer
	printReport(&text, &rep)
	if want := fmt.Sprintf("held at feature level %d (no state commitment)", heldLevel); !strings.Contains(text.String(), want) {
		t.Fatalf("the report does not print the held cluster (%q):\n%s", want, text.String())
	}
}

func TestFeatureLevelWaitRefusesAnotherLevel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"feature_level":7}`)
	}))
	defer srv.Close()
	if err := waitFeatureLevel(context.Background(), srv.URL, 7, true); err != nil {
		t.Fatal(err)
	}
	if err := waitFeatureLevel(context.Background(), srv.URL, 6, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := waitFeatureLevel(ctx, srv.URL, 6, true); !errors.Is(err, errFeatureLevel) {
		t.Fatalf("a cluster at 7 measured as held at 6: %v", err)
	}
}
