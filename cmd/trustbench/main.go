// Command trustbench measures trustreg against baselines run side by side
// on the same machine with the same load generator, and prints ratios:
// gateway trust queries against a bare net/http handler, replicated signed
// writes on a three-node cluster against a three-member etcd cluster, and
// a node at scale. See BENCHMARKS.md.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/version"
)

type config struct {
	short     bool
	jsonOut   bool
	trustd    string
	entities  []int
	conns     int
	duration  time.Duration
	writers   []int
	skipEtcd  bool
	skipWrite bool
	skipReads bool
	scale     int
	profile   string
	// generatorGC is the load generator's GOGC (--generator-gc), 0 for
	// the runtime's.
	generatorGC int
	// baselineBallast: --baseline-ballast, MiB.
	baselineBallast int
	keep            bool
	splitCPUs       bool
	// serverNice: --server-nice.
	serverNice int
	halfConns  int
	questions  int
	rounds     int
	rates      []int
	save       bool
	results    string
	note       string
	// rtts: the --rtt benchmark's round-trip times; set, it runs alone.
	rtts []time.Duration
	// rttTimings: raft.heartbeat_timeout and raft.election_timeout of the
	// --rtt cluster; each round-trip time is measured at each.
	rttTimings []time.Duration
	// jitter: p2p.test_jitter of the --rtt cluster's members.
	jitter time.Duration
	// stability: the length of each --stability run; set, the --rtt
	// cluster's leader stability is measured instead of its latencies.
	stability time.Duration
	// stabilityRate: writes a second started during a --stability run.
	stabilityRate int
	// commitmentCost: the write runs also drive a cluster held below the
	// commitment's feature level (held.go).
	commitmentCost bool
}

// report is everything measured, also printed as JSON with --json.
type report struct {
	Mode    string        `json:"mode"`
	Machine string        `json:"machine"`
	Reads   []readResult  `json:"reads"`
	Writes  []writeResult `json:"writes"`
	Scale   *scaleResult  `json:"scale,omitempty"`
	// WAN: the --rtt benchmark, one result per round-trip time and raft
	// timing.
	WAN []wanResult `json:"wan,omitempty"`
	// Stability: the --rtt --stability benchmark, one result per
	// round-trip time and raft timing.
	Stability []stabilityResult `json:"stability,omitempty"`
	// Error: the part that failed; the figures before it are kept.
	Error string `json:"error,omitempty"`

	// Date: when the run started, RFC 3339 in UTC (a day alone in runs
	// rebuilt from tables that gave no time).
	Date string `json:"date,omitempty"`
	// Args: trustbench's command line after the program's name.
	Args []string `json:"args,omitempty"`
	// Trustd: the build of trustd measured, as the go command stamped it
	// into the binary (nil when it carries no build information).
	Trustd *version.Info `json:"trustd_build,omitempty"`
	// Note: what the person who ran it said about the run (--note).
	Note string `json:"note,omitempty"`
	// Reconstructed: set only in runs rebuilt from old tables.
	Reconstructed *reconstruction `json:"reconstructed,omitempty"`
}

type readResult struct {
	Entities int `json:"entities"`
	// BaselineBallastMiB: the memory the bare handler held
	// (--baseline-ballast); 0 for the SPEC §8 baseline.
	BaselineBallastMiB int `json:"baseline_ballast_mib,omitempty"`
	// Questions: the distinct trust questions asked in turn (one per
	// college); fewer than the answer cache holds are all answered from
	// it after the first round.
	Questions int     `json:"questions"`
	Conns     int     `json:"conns"`
	Trustd    stats   `json:"trustd"`
	Baseline  stats   `json:"baseline"`
	Ratio     float64 `json:"ratio"`
	// The ratio within each round (the bare handler, then trustd, back to
	// back): how far the machine moved the figure during the run.
	RoundRatios []float64 `json:"round_ratios"`
	// The median of RoundRatios: each round's two runs share the machine's
	// state of the moment, so this is less swayed by a slow or fast spell
	// than Ratio, whose two best runs may come from different rounds.
	MedianRoundRatio float64 `json:"median_round_ratio"`
	// trustd's CPU per query over the bare handler's, in each round.
	RoundCPURatios []float64 `json:"round_cpu_ratios"`
	// HalfRate is half trustd's maximum rate, where TrustdAtHalf is
	// measured; BaselineHalfRate half the bare handler's, where
	// BaselineAtHal is (runs that lack it measured both at HalfRate).
	// The SPEC §8 bar: HalfP99Ratio, trustd's p99 over the bare
	// handler's, each at half its own maximum rate, at most 1.25.
	HalfRate         float64 `json:"half_rate"`
	BaselineHalfRate float64 `json:"baseline_half_rate,omitempty"`
	TrustdAtHalf     stats   `json:"trustd_at_half_rate"`
	BaselineAtHal    stats   `json:"baseline_at_half_rate"`
	HalfP99Ratio     float64 `json:"half_rate_p99_ratio,omitempty"`
	// HalfRounds: each round of the half-rate runs, in order (runs from
	// before the order alternated have none).
	HalfRounds []pairRound `json:"half_rate_rounds,omitempty"`
	// Latency at the fixed rates of --rates: where p99 meets a bound.
	AtRates []ratePoint `json:"at_rates,omitempty"`
	// CPU microseconds each server spent per answered query in the run
	// kept: less noisy than throughput on a shared machine.
	TrustdCPUus   float64 `json:"trustd_cpu_us_per_query"`
	BaselineCPUus float64 `json:"baseline_cpu_us_per_query"`
	// Proof: the same questions asked with their proof bundle (absent in
	// runs from before it was measured).
	Proof *proofResult `json:"proof,omitempty"`
}

// pairRound is one round of pacedPair: each side's p99 and send lag, and
// which side ran first.
type pairRound struct {
	TrustdFirst     bool    `json:"trustd_first"`
	TrustdP99       float64 `json:"trustd_p99_ms"`
	BaselineP99     float64 `json:"baseline_p99_ms"`
	TrustdSendLag   float64 `json:"trustd_send_lag_p99_ms"`
	BaselineSendLag float64 `json:"baseline_send_lag_p99_ms"`
	// Each server's process CPU per answered request in the round.
	TrustdCPUus   float64 `json:"trustd_cpu_us_per_request,omitempty"`
	BaselineCPUus float64 `json:"baseline_cpu_us_per_request,omitempty"`
}

// pacedServers are the two servers a paced pair drives: trustd (its
// gateway's base URL, its process, its admin address for profiles) and
// the bare handler; name names the runs' profiles.
type pacedServers struct {
	gateway                    string
	trustd, baseline           *process
	trustdAdmin, baselineAdmin string
	name                       string
}

type ratePoint struct {
	Rate     int   `json:"rate"`
	Trustd   stats `json:"trustd"`
	Baseline stats `json:"baseline"`
}

// writeResult compares trustd's writes, through its HTTP gateway, with
// etcd's driven two ways: through etcd's own Go client (gRPC), as etcd's
// users write to it and the SPEC §8 bar reads (the *GRPC fields), and
// through etcd's HTTP/JSON gateway (the fields without a suffix, named as
// in the runs before the gRPC baseline, so their history stays
// comparable).
type writeResult struct {
	Clients int     `json:"clients"`
	Trustd  stats   `json:"trustd"`
	Etcd    stats   `json:"etcd"`
	Ratio   float64 `json:"ratio"`
	// The ratio within each round (trustd, then etcd, back to back) and
	// its median, as for reads: a single pair of runs on a shared machine
	// can land either side of a bar that the rounds together do not.
	RoundRatios      []float64 `json:"round_ratios"`
	MedianRoundRatio float64   `json:"median_round_ratio"`
	// CPU milliseconds the servers spent per acknowledged write, all
	// three processes together: where the time goes.
	TrustdCPUms float64 `json:"trustd_cpu_ms_per_op"`
	EtcdCPUms   float64 `json:"etcd_cpu_ms_per_op"`

	EtcdGRPC             stats     `json:"etcd_grpc"`
	RatioGRPC            float64   `json:"ratio_grpc"`
	RoundRatiosGRPC      []float64 `json:"round_ratios_grpc"`
	MedianRoundRatioGRPC float64   `json:"median_round_ratio_grpc"`
	EtcdGRPCCPUms        float64   `json:"etcd_grpc_cpu_ms_per_op"`

	// Minor page faults per acknowledged write, all three processes
	// together, in the same runs as the CPU per write: a part of that CPU
	// (see usage). Zero in runs before they were counted.
	TrustdFaults   float64 `json:"trustd_minor_faults_per_op,omitempty"`
	EtcdGRPCFaults float64 `json:"etcd_grpc_minor_faults_per_op,omitempty"`
	EtcdFaults     float64 `json:"etcd_minor_faults_per_op,omitempty"`

	// With --commitment-cost: the same writes on a second trustd cluster
	// held below the state commitment's feature level, run after trustd in
	// each round; trustd's rate over it (the commitment's cost is one
	// minus it), best runs and each round's.
	TrustdHeld           stats     `json:"trustd_held,omitzero"`
	TrustdHeldCPUms      float64   `json:"trustd_held_cpu_ms_per_op,omitempty"`
	TrustdHeldFaults     float64   `json:"trustd_held_minor_faults_per_op,omitempty"`
	RatioHeld            float64   `json:"ratio_held,omitempty"`
	RoundRatiosHeld      []float64 `json:"round_ratios_held,omitempty"`
	MedianRoundRatioHeld float64   `json:"median_round_ratio_held,omitempty"`

	// The raft snapshots each cluster's nodes took during each round's
	// run and the settle after it, all nodes together: a snapshot copies
	// the whole state, so a round that holds one has less CPU for writes.
	RoundSnapshots     []histTotals `json:"round_snapshots,omitempty"`
	RoundSnapshotsHeld []histTotals `json:"round_snapshots_held,omitempty"`
	// RoundRaft and RoundRaftHeld are each round's raftStages over its
	// run and settle.
	RoundRaft     []raftStages `json:"round_raft,omitempty"`
	RoundRaftHeld []raftStages `json:"round_raft_held,omitempty"`
	// RoundWrites and RoundWritesHeld are each round's writes (its
	// requests), what RoundRaft's LSM bytes are divided by.
	RoundWrites     []int64 `json:"round_writes,omitempty"`
	RoundWritesHeld []int64 `json:"round_writes_held,omitempty"`
}

type scaleResult struct {
	Entities    int     `json:"entities"`
	P99At       []point `json:"p99_at"`
	PebbleMiB   float64 `json:"pebble_mib"`
	SnapshotMiB float64 `json:"snapshot_mib"`
	CatchUpSec  float64 `json:"catch_up_seconds"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	// GoRuntimeMiB is, when the peak is read, the memory the Go runtime
	// has taken from the system; the rest of the peak is C allocations
	// (Pebble's block cache and memtables), the binary and thread stacks.
	GoRuntimeMiB  float64 `json:"go_runtime_mib"`
	LoadOpsPerSec float64 `json:"load_ops_per_second"`
	// Distinct: at the largest size, every college asked about once (up
	// to 250,000), before the peak memory is read.
	Distinct distinctPass `json:"distinct"`
	// StateMiBByPart is the state's size on disk by part
	// (trustd_state_disk_usage_bytes: records, results, meta,
	// commitment_map, commitment_log_nodes, commitment_log_leaves, other),
	// read from the loaded node restarted at the end, whose start flushed
	// the writes the load left in the memtable; CommitmentShare is the
	// commitment's parts over the rest (issue #32's budget: at most 0.5).
	// Absent in runs before they were measured.
	StateMiBByPart  map[string]float64 `json:"state_mib_by_part,omitempty"`
	CommitmentShare float64            `json:"commitment_share,omitempty"`
	// SelfAuditSec is how long the loaded node's start-up audit of its
	// state against its commitment took, the node restarted at the end.
	SelfAuditSec float64 `json:"self_audit_seconds,omitempty"`
}

type point struct {
	Entities int     `json:"entities"`
	P99      float64 `json:"p99_ms"`
	P50      float64 `json:"p50_ms"`
	// RoundP99s: the p99 of each round at this count, P99 and P50 being
	// the round with the lowest (runs before rounds have none).
	RoundP99s []float64 `json:"round_p99_ms,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline-server" {
		if err := baselineServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "trustbench baseline-server:", err)
			os.Exit(1)
		}
		return
	}
	// Interrupted or terminated, it stops the servers it started before it
	// exits (a plain kill used to leave them running).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trustbench:", err)
		os.Exit(1)
	}
}

func intList(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	if len(args) > 0 && args[0] == "compare" {
		return compareReports(args[1:], stdout)
	}
	fs := flag.NewFlagSet("trustbench", flag.ContinueOnError)
	var c config
	var entities, writers, rates string
	fs.BoolVar(&c.short, "short", false, "short mode for CI: small data set, short runs (under two minutes)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&c.trustd, "trustd", "", "trustd binary (default: build ./cmd/trustd)")
	fs.StringVar(&entities, "entities", "", "entity counts for the read benchmark (default: 10000,100000; short: 2000)")
	fs.StringVar(&writers, "writers", "1,64,256", "concurrent writers for the write benchmark")
	fs.StringVar(&rates, "rates", "", "also measure read latency at these fixed request rates (comma-separated)")
	fs.IntVar(&c.conns, "conns", 64, "connections for the read benchmark")
	fs.DurationVar(&c.duration, "duration", 0, "length of each measured run (default 10s; short: 3s)")
	fs.BoolVar(&c.skipEtcd, "skip-etcd", false, "do not run the etcd baseline")
	fs.BoolVar(&c.skipWrite, "skip-writes", false, "do not run the write benchmark")
	fs.BoolVar(&c.skipReads, "skip-reads", false, "do not run the read benchmark")
	fs.BoolVar(&c.commitmentCost, "commitment-cost", false, "in the write runs, also drive a second trustd cluster held below the state commitment's feature level (raft.max_feature_level), round by round: what the commitment costs a write")
	fs.IntVar(&c.rounds, "rounds", 0, "interleaved rounds of each read and write measurement, the best kept (default 3; short: 2)")
	fs.IntVar(&c.questions, "questions", 1024, "distinct trust questions the read benchmark asks in turn, one per college; 0: every college loaded")
	fs.IntVar(&c.halfConns, "half-conns", 0, "connections for the latency run at half the maximum rate (default: --conns)")
	fs.BoolVar(&c.splitCPUs, "split-cpus", false, "run the servers on the upper half of the CPUs and the load generator on the lower half")
	fs.IntVar(&c.baselineBallast, "baseline-ballast", 0, "the bare handler holds this many MiB of memory, in use while it is measured (a diagnostic, not the SPEC §8 baseline: on a machine that monitors memory, a server's tail can follow its resident set)")
	fs.IntVar(&c.generatorGC, "generator-gc", 0, "the load generator's own GOGC (0: the runtime's, 100 unless GOGC is set); servers are not affected")
	fs.IntVar(&c.serverNice, "server-nice", 0, "run every server (trustd, the bare handler, etcd) at this niceness (1-19), the load generator at its own: on a machine too small to give the generator cores of its own, the generator is served first")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (data directories and node logs) for inspection")
	fs.StringVar(&c.profile, "profile", "", "save CPU profiles of trustd during the measured runs, and of the load generator, into this directory")
	fs.IntVar(&c.scale, "scale", -1, "entities for the scale run, 0 to skip it (default: 1000000; short mode: 3000)")
	fs.BoolVar(&c.save, "save", false, "also write the JSON report into the results directory (--results), as a new file")
	fs.StringVar(&c.results, "results", "", "results directory for --save (default: "+defaultResultsDir+" in the trustreg checkout)")
	fs.StringVar(&c.note, "note", "", "a remark kept with the report (what else ran, what changed)")
	var rtts, timings string
	fs.StringVar(&rtts, "rtt", "", "instead of the other parts, measure 3 voters and a replica this round-trip time apart (p2p.test_delay, half each way): comma-separated, e.g. 0,100ms,300ms")
	fs.StringVar(&timings, "rtt-raft-timing", wanTiming.String(), "raft.heartbeat_timeout and raft.election_timeout of the --rtt cluster: comma-separated, each --rtt measured at each, e.g. 1s,2s")
	fs.DurationVar(&c.jitter, "jitter", 0, "with --rtt: p2p.test_jitter, up to this much random delay more on each send (order kept)")
	fs.DurationVar(&c.stability, "stability", 0, "with --rtt: instead of latencies, measure leader stability of 3 voters under a steady write load for this long at each round-trip time and raft timing (leader changes, elections, write p50/p99, longest stall, then failover); short mode: at most "+shortStability.String())
	fs.IntVar(&c.stabilityRate, "stability-rate", 20, "writes a second started during a --stability run, in turn through each voter; 0: none (an idle cluster, heartbeats only)")
	if err = fs.Parse(args); err != nil {
		return err
	}
	if rtts != "" {
		if c.rtts, err = parseRTTs(rtts); err != nil {
			return err
		}
		if c.rttTimings, err = parseTimings(timings); err != nil {
			return err
		}
		c.skipReads, c.skipWrite, c.scale = true, true, 0
	}
	if c.jitter < 0 || c.stability < 0 || c.stabilityRate < 0 {
		return fmt.Errorf("--jitter %s, --stability %s, --stability-rate %d: none may be negative", c.jitter, c.stability, c.stabilityRate)
	}
	if c.stability > 0 && len(c.rtts) == 0 {
		return errors.New("--stability measures the --rtt cluster: give --rtt too")
	}
	if c.short && c.stability > shortStability {
		fmt.Fprintf(os.Stderr, "short mode: --stability runs of %s, not %s\n", shortStability, c.stability)
		c.stability = shortStability
	}
	if c.save {
		// Before anything is measured, as for etcd below.
		if c.results, err = makeResultsDir(c.results); err != nil {
			return err
		}
	}
	if c.questions < 0 {
		return fmt.Errorf("--questions %d: give a positive count, or 0 for every college loaded", c.questions)
	}
	c.entities, c.writers, c.rates = intList(entities), intList(writers), intList(rates)
	if len(c.entities) == 0 {
		c.entities = []int{10000, 100000}
		if c.short {
			c.entities = []int{2000}
		}
	}
	if c.duration == 0 {
		c.duration = 10 * time.Second
		if c.short {
			c.duration = 3 * time.Second
		}
	}
	if c.rounds <= 0 {
		c.rounds = 3
		if c.short {
			c.rounds = 2
		}
	}
	if c.scale < 0 {
		c.scale = 1_000_000
		if c.short {
			c.scale = 3000
		}
	}
	if !c.skipWrite && !c.skipEtcd {
		// Before anything is measured: a missing baseline found after the
		// reads would throw their minutes away.
		if err := ensureEtcd(os.Stderr); err != nil {
			return err
		}
	}
	if c.splitCPUs {
		gen, servers, err := splitCPUs()
		if err != nil {
			return err
		}
		if err := pinSelf(gen); err != nil {
			return err
		}
		serverCPUs = servers
		fmt.Fprintf(os.Stderr, "load generator on CPUs %v, servers on CPUs %v\n", gen, servers)
	}
	if c.serverNice < 0 || c.serverNice > 19 {
		return fmt.Errorf("--server-nice %d: want 0 to 19", c.serverNice)
	}
	serverNice = c.serverNice
	if c.baselineBallast < 0 {
		return fmt.Errorf("--baseline-ballast %d: want MiB, or 0 for none", c.baselineBallast)
	}
	if c.generatorGC < 0 {
		return fmt.Errorf("--generator-gc %d: want a percentage, or 0 for the runtime's", c.generatorGC)
	}
	if c.generatorGC > 0 {
		// This process only: the servers it starts read GOGC from the
		// environment, which this leaves alone.
		debug.SetGCPercent(c.generatorGC)
	}
	if c.profile != "" {
		// The load generator's own profile: what a request costs the side
		// that sends it.
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(c.profile, "generator.pprof"))
		if err != nil {
			return err
		}
		// The profile is written when it stops; a write error shows at
		// the close.
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("generator profile: %w", cerr)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "trustbench-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Fprintln(os.Stderr, "keeping the work directory", dir)
	} else {
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil {
				fmt.Fprintln(os.Stderr, "removing the work directory:", rerr)
			}
		}()
	}
	builtHere := c.trustd == ""
	if builtHere {
		if c.trustd, err = buildTrustd(dir); err != nil {
			return err
		}
	}
	rep := &report{Mode: map[bool]string{true: "short", false: "full"}[c.short], Machine: machine(),
		Date: time.Now().UTC().Format(time.RFC3339), Args: args, Trustd: trustdBuild(c.trustd, builtHere), Note: c.note}
	// A part that fails ends the run, and what was measured before it is
	// still reported, marked incomplete.
	err = measure(ctx, c, dir, rep)
	if err != nil {
		rep.Error = err.Error()
	}
	if c.save {
		err = errors.Join(err, saveRun(c.results, rep))
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); err == nil {
			err = jerr
		}
		return err
	}
	if perr := printReport(stdout, rep); err == nil {
		err = perr
	}
	return err
}

// measure runs the benchmark's parts in order into rep, stopping at the
// first that fails. An interruption (SIGINT, SIGTERM) stops it too: the
// part it cut short measured servers being stopped, so its figures are
// dropped, and the parts before it stay.
func measure(ctx context.Context, c config, dir string, rep *report) error {
	parts := []struct {
		name string
		skip bool
		run  func(context.Context, config, string, *report) error
	}{
		{"reads", c.skipReads, benchReads},
		{"writes", c.skipWrite, benchWrites},
		{"scale", c.scale <= 0, benchScale},
		{"rtt", len(c.rtts) == 0 || c.stability > 0, benchRTTs},
		{"stability", len(c.rtts) == 0 || c.stability == 0, benchStability},
	}
	for _, p := range parts {
		if p.skip {
			continue
		}
		before := *rep
		err := p.run(ctx, c, dir, rep)
		if ctx.Err() != nil {
			*rep = before
			return fmt.Errorf("%s: interrupted (%v); its figures are left out", p.name, context.Cause(ctx))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

func machine() string {
	cpu := "unknown cpu"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	n := 0
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(raw), "processor\t:")
	}
	return fmt.Sprintf("%s, %d cores", cpu, n)
}

// baselineServer is the read baseline: a bare net/http handler that
// returns a fixed JSON body (the bytes of a real trust answer, so the size
// matches).
func baselineServer(args []string) error {
	fs := flag.NewFlagSet("baseline-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	bodyFile := fs.String("body", "", "file with the JSON body to return")
	admin := fs.String("admin", "", "also serve /debug/pprof on this address, for profiles comparable with trustd's")
	ballastMiB := fs.Int("ballast", 0, "hold this many MiB of memory, every page written at the start and again each second in which a request came")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ballastMiB < 0 {
		return fmt.Errorf("--ballast %d: want MiB, or 0 for none", *ballastMiB)
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	if *admin != "" {
		// On its own listener and mux, as trustd's admin endpoint is: the
		// measured handler stays the bare one.
		ln, err := net.Listen("tcp", *admin)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		go func() {
			if err := http.Serve(ln, mux); err != nil {
				fmt.Fprintln(os.Stderr, "baseline-server admin:", err)
			}
		}()
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body) // a client gone away is not the server's error
	})
	if *ballastMiB > 0 {
		h = ballasted(h, *ballastMiB)
	}
	return http.ListenAndServe(*addr, h)
}

// ballasted returns h holding mib MiB of memory resident: every page is
// written at the start, and again each second in which h served a
// request, so the memory is in use while the handler is measured and
// rests while the other side is. A diagnostic (--baseline-ballast): on
// this machine the half-rate tail follows a server's resident memory
// (BENCHMARKS.md). Under GOGC 100 the process's resident set comes to
// about twice the ballast.
func ballasted(h http.Handler, mib int) http.Handler {
	ballast := make([]byte, mib<<20)
	page := os.Getpagesize()
	touch := func() {
		for i := 0; i < len(ballast); i += page {
			ballast[i]++
		}
	}
	touch()
	var served atomic.Bool
	go func() {
		// For the life of the process, which the benchmark stops.
		for range time.Tick(time.Second) {
			if served.Swap(false) {
				touch()
			}
		}
	}()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Store(true)
		h.ServeHTTP(w, r)
	})
}

// startDataNode starts one trustd node in dir/name with the benchmark's
// framework and agencies, a cosigner of its checkpoints with cosign; the
// caller stops it.
func startDataNode(ctx context.Context, c config, dir, name string, cosign bool) (*trustdNode, *dataset, error) {
	sub, err := mkdir(dir, name)
	if err != nil {
		return nil, nil, err
	}
	nodes, gov, err := startTrustdCluster(ctx, c.trustd, sub, 1, cosign, 0)
	if err != nil {
		stopAll(nodes)
		return nil, nil, err
	}
	d, err := newDataset(nodes[0].url, gov)
	if err != nil {
		stopAll(nodes)
		return nil, nil, err
	}
	return nodes[0], d, nil
}

func benchReads(ctx context.Context, c config, dir string, rep *report) error {
	n, d, err := startDataNode(ctx, c, dir, "reads", true)
	if err != nil {
		return err
	}
	defer n.stop()
	for _, entities := range c.entities {
		if err := d.loadColleges(ctx, []string{n.url}, entities); err != nil {
			return err
		}
		settle(ctx, n.process, c.settleLimit())
		questions := c.questions
		if questions <= 0 || questions > entities {
			questions = entities
		}
		urls := d.trustURLs(n.url, questions)
		// A college under an agency (did:key) and one under a registered
		// sub-agency (did:web) must both be authorized; the first one's
		// answer is the bare handler's body.
		var body []byte
		for i := min(1, len(d.collegeDIDs)-1); i >= 0; i-- {
			resp, err := http.Get(trustURL(n.url, d.collegeDIDs[i]))
			if err != nil {
				return err
			}
			body, err = io.ReadAll(resp.Body)
			closeRead(resp.Body)
			if err != nil {
				return fmt.Errorf("the benchmark's trust query for %s: %w", d.collegeDIDs[i], err)
			}
			var dec struct{ Authorized bool }
			if json.Unmarshal(body, &dec) != nil || !dec.Authorized {
				return fmt.Errorf("the benchmark's trust query for %s is not answered as authorized: %s", d.collegeDIDs[i], body)
			}
		}
		bodyFile := filepath.Join(dir, "baseline-body.json")
		if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
			return err
		}
		port := freePort()
		self, _ := os.Executable()
		baseArgs := []string{"baseline-server", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--body", bodyFile}
		if c.baselineBallast > 0 {
			baseArgs = append(baseArgs, "--ballast", strconv.Itoa(c.baselineBallast))
		}
		var baseAdmin string
		if c.profile != "" {
			baseAdmin = fmt.Sprintf("127.0.0.1:%d", freePort())
			baseArgs = append(baseArgs, "--admin", baseAdmin)
		}
		bp, err := start(dir, "baseline", self, baseArgs...)
		if err != nil {
			return err
		}
		baseURL := fmt.Sprintf("http://127.0.0.1:%d/v1/trust", port)
		if err := bp.waitReady(baseURL, 10*time.Second); err != nil {
			bp.stop()
			return err
		}
		trustNext := func(w int, i int64) (request, bool) {
			return request{method: "GET", url: urls[i%int64(len(urls))]}, true
		}
		baseNext := func(w int, i int64) (request, bool) { return request{method: "GET", url: baseURL}, true }
		ok200 := func(s int) bool { return s == 200 }
		proof, proofNext, err := prepareProofs(ctx, n.url, urls)
		if err != nil {
			bp.stop()
			return err
		}
		fmt.Fprintf(os.Stderr, "reads: %d entities, %d distinct questions, %d connections, %s runs\n", entities, questions, c.conns, c.duration)
		// Interleave rounds and keep each side's best: the machine is shared.
		var tr, br stats
		var tCPU, bCPU float64
		perQuery := func(p *process, run func() stats) (stats, float64) {
			cpu0 := p.cpuSeconds()
			s := run()
			if s.Requests == 0 {
				return s, 0
			}
			return s, (p.cpuSeconds() - cpu0) * 1e6 / float64(s.Requests)
		}
		// With --profile, every round of each side is profiled, so the two
		// can be compared (go tool pprof -diff_base): the first round keeps
		// the plain name, later ones add "-round<N>" (with many distinct
		// questions the first round meets them cold and the later ones
		// warm, which profile differently).
		profiled := func(round int, admin, name string, run func()) {
			if round > 0 {
				name += fmt.Sprintf("-round%d", round)
			}
			stop := c.profileDuring(admin, name)
			run()
			stop()
		}
		var roundRatios, roundCPU []float64
		for round := range c.rounds {
			var bs, ts stats
			var bc, tc float64
			profiled(round, baseAdmin, fmt.Sprintf("reads-%d-baseline", entities), func() {
				if bs, bc = perQuery(bp, func() stats {
					return sending("net/http", func() stats { return closedLoop(ctx, c.conns, c.duration, baseNext, ok200) })
				}); bs.PerSecond > br.PerSecond {
					br, bCPU = bs, bc
				}
			})
			profiled(round, n.admin, fmt.Sprintf("reads-%d", entities), func() {
				if ts, tc = perQuery(n.process, func() stats {
					return sending("trustd", func() stats { return closedLoop(ctx, c.conns, c.duration, trustNext, ok200) })
				}); ts.PerSecond > tr.PerSecond {
					tr, tCPU = ts, tc
				}
			})
			profiled(round, n.admin, fmt.Sprintf("reads-%d-proof", entities), func() {
				if ps, pc := perQuery(n.process, func() stats { return closedLoop(ctx, c.conns, c.duration, proofNext, ok200) }); ps.PerSecond > proof.Trustd.PerSecond {
					proof.Trustd, proof.CPUus = ps, pc
				}
			})
			uncachedNext := uncachedProofs(urls, time.Now())
			profiled(round, n.admin, fmt.Sprintf("reads-%d-proof-uncached", entities), func() {
				if ps, pc := perQuery(n.process, func() stats { return closedLoop(ctx, c.conns, c.duration, uncachedNext, ok200) }); ps.PerSecond > proof.Uncached.PerSecond {
					proof.Uncached, proof.UncachedCPUus = ps, pc
				}
			})
			if bs.PerSecond > 0 && bc > 0 {
				roundRatios = append(roundRatios, ts.PerSecond/bs.PerSecond)
				roundCPU = append(roundCPU, tc/bc)
			}
		}
		half := tr.PerSecond / 2
		r := readResult{Entities: entities, BaselineBallastMiB: c.baselineBallast, Questions: questions, Conns: c.conns, Trustd: tr, Baseline: br, Ratio: tr.PerSecond / br.PerSecond, RoundRatios: roundRatios, MedianRoundRatio: median(roundRatios), RoundCPURatios: roundCPU, HalfRate: half, TrustdCPUus: tCPU, BaselineCPUus: bCPU}
		if tr.PerSecond > 0 {
			proof.RatioToPlain = proof.Trustd.PerSecond / tr.PerSecond
			proof.UncachedRatioToPlain = proof.Uncached.PerSecond / tr.PerSecond
		}
		r.Proof = proof
		halfConns := c.conns
		if c.halfConns > 0 {
			halfConns = c.halfConns
		}
		r.BaselineHalfRate = br.PerSecond / 2
		sv := pacedServers{gateway: n.url, trustd: n.process, trustdAdmin: n.admin, baseline: bp, baselineAdmin: baseAdmin, name: fmt.Sprintf("reads-%d-half", entities)}
		r.TrustdAtHalf, r.BaselineAtHal, r.HalfRounds = c.pacedPair(ctx, halfConns, half, r.BaselineHalfRate, sv, urls[0], trustNext, baseURL, baseNext, ok200)
		if r.BaselineAtHal.P99 > 0 {
			r.HalfP99Ratio = r.TrustdAtHalf.P99 / r.BaselineAtHal.P99
		}
		for _, rate := range c.rates {
			sv.name = fmt.Sprintf("reads-%d-rate%d", entities, rate)
			t, b, _ := c.pacedPair(ctx, halfConns, float64(rate), float64(rate), sv, urls[0], trustNext, baseURL, baseNext, ok200)
			r.AtRates = append(r.AtRates, ratePoint{Rate: rate, Trustd: t, Baseline: b})
		}
		bp.stop()
		rep.Reads = append(rep.Reads, r)
	}
	return nil
}

// settleLimit bounds the wait for a loaded node to go idle.
func (c config) settleLimit() time.Duration {
	if c.short {
		return 10 * time.Second
	}
	return time.Minute
}

// pacedPair measures trustd at rate and the baseline at baseRate, paced,
// in interleaved rounds and keeps each side's lower p99, as for
// throughput. Each side opens half the rounds (c.rounds made even), so
// neither always runs right after the other: one run with the order
// reversed once looked like an order effect, which the alternating rounds
// did not bear out (BENCHMARKS.md); each round's figures are returned, so
// a report shows whether the order mattered.
//
// trustd's own handler times, allocation and collections for the kept
// run are read from its metrics at gateway (trustd's base URL) before and
// after the run. Each side's process CPU per request is measured, and
// with --profile each run is profiled as name ("-baseline" for the bare
// handler's, "-roundN" after the first round).
func (c config) pacedPair(ctx context.Context, conns int, rate, baseRate float64, sv pacedServers, trustWarm string, trustNext func(int, int64) (request, bool), baseWarm string, baseNext func(int, int64) (request, bool), ok func(int) bool) (t, b stats, rounds []pairRound) {
	round := 0
	measured := func(p *process, admin, name string, run func() stats) stats {
		if round > 0 {
			name += fmt.Sprintf("-round%d", round)
		}
		stop := c.profileDuring(admin, name)
		cpu0 := p.cpuSeconds()
		s := run()
		if s.Requests > 0 {
			s.ServerCPUus = (p.cpuSeconds() - cpu0) * 1e6 / float64(s.Requests)
		}
		stop()
		return s
	}
	trust := func(first bool) stats {
		before, berr := readMetrics(sv.gateway, trustRoute)
		s := measured(sv.trustd, sv.trustdAdmin, sv.name, func() stats {
			return sending("trustd", func() stats { return paced(ctx, conns, rate, c.duration, trustWarm, trustNext, ok) })
		})
		after, aerr := readMetrics(sv.gateway, trustRoute)
		if err := errors.Join(berr, aerr); err != nil {
			fmt.Fprintln(os.Stderr, "trustbench: trustd's handler times are not reported:", err)
		} else {
			h := handlerTimesBetween(before, after)
			s.Handler = &h
		}
		if first || s.P99 < t.P99 {
			t = s
		}
		return s
	}
	base := func(first bool) stats {
		s := measured(sv.baseline, sv.baselineAdmin, sv.name+"-baseline", func() stats {
			return sending("net/http", func() stats { return paced(ctx, conns, baseRate, c.duration, baseWarm, baseNext, ok) })
		})
		if first || s.P99 < b.P99 {
			b = s
		}
		return s
	}
	for ; round < c.rounds+c.rounds%2; round++ {
		r := pairRound{TrustdFirst: round%2 == 0}
		var ts, bs stats
		if r.TrustdFirst {
			ts = trust(round == 0)
			bs = base(round == 0)
		} else {
			bs = base(false)
			ts = trust(false)
		}
		r.TrustdP99, r.BaselineP99, r.TrustdSendLag, r.BaselineSendLag = ts.P99, bs.P99, ts.SendLagP99, bs.SendLagP99
		r.TrustdCPUus, r.BaselineCPUus = ts.ServerCPUus, bs.ServerCPUus
		rounds = append(rounds, r)
	}
	return t, b, rounds
}

func benchWrites(ctx context.Context, c config, dir string, rep *report) error {
	sub, err := mkdir(dir, "writes")
	if err != nil {
		return err
	}
	nodes, gov, err := startTrustdCluster(ctx, c.trustd, sub, 3, false, 0)
	defer stopAll(nodes)
	if err != nil {
		return err
	}
	var bases []string
	for _, n := range nodes {
		bases = append(bases, n.url)
	}
	d, err := newDataset(bases[0], gov)
	if err != nil {
		return err
	}
	pool := newOpPool("", d)
	var held *heldCluster
	if c.commitmentCost {
		if err := waitFeatureLevel(ctx, bases[0], registry.FeatureLevelCommitment, false); err != nil {
			return err
		}
		held, err = startHeldCluster(ctx, c, dir)
		defer held.stop()
		if err != nil {
			return err
		}
	}
	var etcdProcs []*process
	var etcdURLs []string
	if !c.skipEtcd {
		var sub string
		if sub, err = mkdir(dir, "etcd"); err != nil {
			return err
		}
		etcdProcs, etcdURLs, err = startEtcdCluster(sub, 3)
		defer func() {
			for _, p := range etcdProcs {
				p.stop()
			}
		}()
		if err != nil {
			return err
		}
	}
	// etcd's values are as long as trustd's operations (base64 in the
	// JSON gateway's request, as the gateway's API encodes bytes).
	sample, _ := d.collegeOp(0)
	rawValue := make([]byte, len(sample))
	value := base64.StdEncoding.EncodeToString(rawValue)
	defer pool.report()
	var tprocs []*process
	for _, n := range nodes {
		tprocs = append(tprocs, n.process)
	}
	// Each process's floor, once the clusters have settled from their
	// start and loads: the settles after the runs wait for CPU above it,
	// and do not count it (measured).
	floored := slices.Concat(tprocs, etcdProcs)
	if held != nil {
		floored = append(floored, held.procs...)
	}
	measureFloor(ctx, floored, c.settleLimit())
	for _, clients := range c.writers {
		fmt.Fprintf(os.Stderr, "writes: %d clients, %s runs\n", clients, c.duration)
		r := writeResult{Clients: clients}
		// Interleave the rounds and keep the best of each side, as for
		// reads; each round's own ratio is reported too.
		for round := range c.rounds {
			pool.refill(c.duration.Seconds())
			trustNext := pool.nextFor(bases)
			stopProfile := func() {}
			if round == 0 {
				stopProfile = c.profileCluster(nodes, fmt.Sprintf("writes-%d", clients))
			}
			before := raftReadings(nodes)
			ts, cpu, faults := measured(ctx, c, tprocs, func() stats {
				defer stopProfile()
				return closedLoop(ctx, clients, c.duration, trustNext, func(s int) bool { return s == 201 })
			})
			snaps, stages := roundReadings(before, raftReadings(nodes), fmt.Sprintf("%d clients, round %d, trustd", clients, round+1))
			r.RoundSnapshots = append(r.RoundSnapshots, snaps)
			r.RoundRaft = append(r.RoundRaft, stages)
			r.RoundWrites = append(r.RoundWrites, ts.Requests)
			if ts.PerSecond > r.Trustd.PerSecond {
				r.Trustd, r.TrustdCPUms, r.TrustdFaults = ts, cpu, faults
			}
			if held != nil {
				before := raftReadings(held.nodes)
				hs, cpu, faults := held.run(ctx, c, clients, round == 0)
				snaps, stages := roundReadings(before, raftReadings(held.nodes), fmt.Sprintf("%d clients, round %d, the held cluster", clients, round+1))
				r.RoundSnapshotsHeld = append(r.RoundSnapshotsHeld, snaps)
				r.RoundRaftHeld = append(r.RoundRaftHeld, stages)
				r.RoundWritesHeld = append(r.RoundWritesHeld, hs.Requests)
				if hs.PerSecond > r.TrustdHeld.PerSecond {
					r.TrustdHeld, r.TrustdHeldCPUms, r.TrustdHeldFaults = hs, cpu, faults
				}
				if hs.PerSecond > 0 {
					r.RoundRatiosHeld = append(r.RoundRatiosHeld, ts.PerSecond/hs.PerSecond)
				}
			}
			if c.skipEtcd {
				continue
			}
			// etcd through its own Go client: the baseline the bar reads.
			grpcNext := func(w int, i int64) (request, bool) {
				return request{url: fmt.Sprintf("bench/grpc/%d/%d/%d", clients, round, i), body: rawValue}, true
			}
			gs, cpu, faults := measured(ctx, c, etcdProcs, func() stats {
				return closedLoopOf(ctx, clients, c.duration, etcdSenders(etcdURLs), grpcNext, func(s int) bool { return s == 200 })
			})
			if gs.PerSecond > r.EtcdGRPC.PerSecond {
				r.EtcdGRPC, r.EtcdGRPCCPUms, r.EtcdGRPCFaults = gs, cpu, faults
			}
			if gs.PerSecond > 0 {
				r.RoundRatiosGRPC = append(r.RoundRatiosGRPC, ts.PerSecond/gs.PerSecond)
			}
			// etcd through its HTTP/JSON gateway, as every run before the
			// gRPC baseline measured it.
			etcdNext := func(w int, i int64) (request, bool) {
				key := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("bench/%d/%d/%d", clients, round, i)))
				body := []byte(`{"key":"` + key + `","value":"` + value + `"}`)
				return request{method: "POST", url: etcdURLs[w%len(etcdURLs)] + "/v3/kv/put", contentType: "application/json", body: body}, true
			}
			es, cpu, faults := measured(ctx, c, etcdProcs, func() stats {
				return closedLoop(ctx, clients, c.duration, etcdNext, func(s int) bool { return s == 200 })
			})
			if es.PerSecond > r.Etcd.PerSecond {
				r.Etcd, r.EtcdCPUms, r.EtcdFaults = es, cpu, faults
			}
			if es.PerSecond > 0 {
				r.RoundRatios = append(r.RoundRatios, ts.PerSecond/es.PerSecond)
			}
		}
		if r.Etcd.PerSecond > 0 {
			r.Ratio = r.Trustd.PerSecond / r.Etcd.PerSecond
		}
		if r.EtcdGRPC.PerSecond > 0 {
			r.RatioGRPC = r.Trustd.PerSecond / r.EtcdGRPC.PerSecond
		}
		if r.TrustdHeld.PerSecond > 0 {
			r.RatioHeld = r.Trustd.PerSecond / r.TrustdHeld.PerSecond
			r.MedianRoundRatioHeld = median(r.RoundRatiosHeld)
		}
		r.MedianRoundRatio = median(r.RoundRatios)
		r.MedianRoundRatioGRPC = median(r.RoundRatiosGRPC)
		rep.Writes = append(rep.Writes, r)
	}
	return nil
}

// mkdir makes the directory name under dir and returns its path.
func mkdir(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.MkdirAll(path, 0o700)
}

func stopAll(nodes []*trustdNode) {
	for _, n := range nodes {
		if n != nil && n.process != nil {
			n.stop()
		}
	}
}

// printReport prints the report for a reader and returns the first write
// error.
func printReport(w io.Writer, r *report) error {
	ew := &errWriter{W: w}
	ew.Printf("trustbench (%s mode) on %s\n\n", r.Mode, r.Machine)
	if r.Error != "" {
		ew.Printf("INCOMPLETE, the run stopped at: %s\n\n", r.Error)
	}
	printWAN(ew, r.WAN)
	printStability(ew, r.Stability)
	if len(r.Reads) > 0 {
		ew.Printf("Reads: GET /v1/trust vs a bare net/http JSON handler (same body size, same client)\n")
		ew.Printf("%10s %6s %12s %12s %7s %9s %9s %9s %14s %12s\n", "entities", "conns", "trustd r/s", "net/http r/s", "ratio", "p50 ms", "p99 ms", "base p99", "trustd cpu/q", "base cpu/q")
		for _, x := range r.Reads {
			ew.Printf("%10d %6d %12.0f %12.0f %7.2f %9.2f %9.2f %9.2f %11.1f us %9.1f us\n", x.Entities, x.Conns, x.Trustd.PerSecond, x.Baseline.PerSecond,
				x.Ratio, x.Trustd.P50, x.Trustd.P99, x.Baseline.P99, x.TrustdCPUus, x.BaselineCPUus)
		}
		for _, x := range r.Reads {
			ew.Printf("%10d entities, %d distinct questions, each round (net/http, then trustd): ratio%s (median %.2f); CPU per query, trustd / net/http%s\n",
				x.Entities, x.Questions, formatRatios(x.RoundRatios), x.MedianRoundRatio, formatRatios(x.RoundCPURatios))
			if x.BaselineBallastMiB > 0 {
				ew.Printf("%10d entities: the bare handler held %d MiB of memory (--baseline-ballast): not the SPEC §8 baseline\n", x.Entities, x.BaselineBallastMiB)
			}
		}
		printProofRows(ew, r.Reads)
		ew.Printf("Latency at half each one's maximum rate, then both at --rates (paced, open loop; trustd / net/http)\n")
		ew.Printf("%10s %16s %16s %16s %18s %14s %44s %16s\n", "entities", "r/s", "p50 ms", "p99 ms", "send lag p99 ms", "cpu steal %", "trustd handler p99, >1ms; alloc, GCs", "generator cpu/q")
		for _, x := range r.Reads {
			t, b := x.TrustdAtHalf, x.BaselineAtHal
			baseRate := x.BaselineHalfRate
			if baseRate == 0 {
				baseRate = x.HalfRate // a run from before each side had its own half rate
			}
			ew.Printf("%10d %7.0f / %6.0f %7.2f / %6.2f %7.2f / %6.2f %9.2f / %6.2f %6.1f / %5.1f %44s %16s\n", x.Entities, x.HalfRate, baseRate, t.P50, b.P50, t.P99, b.P99, t.SendLagP99, b.SendLagP99, t.StealPct, b.StealPct, formatHandler(t.Handler), formatGenCPU(t, b))
			for _, p := range x.AtRates {
				t, b := p.Trustd, p.Baseline
				ew.Printf("%10s %16d %7.2f / %6.2f %7.2f / %6.2f %9.2f / %6.2f %6.1f / %5.1f %44s %16s\n", "", p.Rate, t.P50, b.P50, t.P99, b.P99, t.SendLagP99, b.SendLagP99, t.StealPct, b.StealPct, formatHandler(t.Handler), formatGenCPU(t, b))
			}
		}
		for _, x := range r.Reads {
			if x.HalfP99Ratio > 0 {
				ew.Printf("%10d entities: p99 at half rate, trustd / net/http = %.2f (SPEC §8: at most 1.25)\n", x.Entities, x.HalfP99Ratio)
			}
			if len(x.HalfRounds) > 0 {
				ew.Printf("%10d entities, each round at half rate, p99 ms (send lag p99 ms), the side that ran first marked *: %s\n", x.Entities, formatPairRounds(x.HalfRounds))
				if cpu := formatPairCPU(x.HalfRounds); cpu != "" {
					ew.Printf("%10d entities, each round at half rate, server CPU per request, trustd / net/http: %s\n", x.Entities, cpu)
				}
			}
		}
		ew.Println()
	}
	if len(r.Writes) > 0 {
		ew.Printf("Writes: signed accredit operations on 3 trustd nodes (HTTP gateway) vs puts of the same size on 3 etcd members,\n")
		ew.Printf("through etcd's Go client (gRPC: the SPEC §8 baseline) and through etcd's HTTP/JSON gateway (the earlier runs' baseline)\n")
		ew.Printf("%8s %-10s %12s %9s %9s %12s %9s %9s %7s %14s %12s\n", "clients", "etcd via", "trustd op/s", "p50 ms", "p99 ms", "etcd op/s", "p50 ms", "p99 ms", "ratio", "trustd cpu/op", "etcd cpu/op")
		for _, x := range r.Writes {
			type baseline struct {
				via        string
				s          stats
				ratio, cpu float64
			}
			var rows []baseline
			if x.EtcdGRPC.PerSecond > 0 {
				rows = append(rows, baseline{"gRPC", x.EtcdGRPC, x.RatioGRPC, x.EtcdGRPCCPUms})
			}
			if x.Etcd.PerSecond > 0 {
				rows = append(rows, baseline{"JSON", x.Etcd, x.Ratio, x.EtcdCPUms})
			}
			if len(rows) == 0 {
				rows = append(rows, baseline{via: "-"}) // --skip-etcd
			}
			for _, e := range rows {
				ew.Printf("%8d %-10s %12.0f %9.2f %9.2f %12.0f %9.2f %9.2f %7.2f %11.2f ms %9.2f ms\n", x.Clients, e.via, x.Trustd.PerSecond, x.Trustd.P50, x.Trustd.P99,
					e.s.PerSecond, e.s.P50, e.s.P99, e.ratio, x.TrustdCPUms, e.cpu)
			}
		}
		for _, x := range r.Writes {
			if len(x.RoundRatiosGRPC) > 0 {
				ew.Printf("%8d clients, each round (trustd, then etcd via gRPC): ratio%s (median %.2f)\n", x.Clients, formatRatios(x.RoundRatiosGRPC), x.MedianRoundRatioGRPC)
			}
			if len(x.RoundRatios) > 0 {
				ew.Printf("%8d clients, each round (trustd, then etcd via JSON): ratio%s (median %.2f)\n", x.Clients, formatRatios(x.RoundRatios), x.MedianRoundRatio)
			}
			if x.TrustdHeld.PerSecond > 0 {
				ew.Printf("%8d clients, trustd / the same build held at feature level %d (no state commitment): %.0f / %.0f op/s = %.2f, each round%s (median %.2f); cpu/op %.2f / %.2f ms\n",
					x.Clients, heldLevel, x.Trustd.PerSecond, x.TrustdHeld.PerSecond, x.RatioHeld, formatRatios(x.RoundRatiosHeld), x.MedianRoundRatioHeld, x.TrustdCPUms, x.TrustdHeldCPUms)
			}
			if len(x.RoundSnapshots) > 0 {
				line := fmt.Sprintf("%8d clients, raft snapshots during each round's run and settle: trustd %s", x.Clients, formatSnapshots(x.RoundSnapshots))
				if len(x.RoundSnapshotsHeld) > 0 {
					line += "; held " + formatSnapshots(x.RoundSnapshotsHeld)
				}
				ew.Println(line)
			}
			if len(x.RoundRaft) > 0 {
				line := fmt.Sprintf("%8d clients, raft's commit of an entry (leader) / apply of a batch (every node), ms, each round: trustd %s", x.Clients, formatStages(x.RoundRaft))
				if len(x.RoundRaftHeld) > 0 {
					line += "; held " + formatStages(x.RoundRaftHeld)
				}
				ew.Println(line)
				line = fmt.Sprintf("%8d clients, the applies' time in the state's Pebble commits (all nodes), each round: trustd %s", x.Clients, formatStateCommits(x.RoundRaft))
				if len(x.RoundRaftHeld) > 0 {
					line += "; held " + formatStateCommits(x.RoundRaftHeld)
				}
				ew.Println(line)
				line = fmt.Sprintf("%8d clients, bytes a write into sstables (all nodes; state flushed + compacted / raft log flushed + compacted), each round: trustd %s", x.Clients, formatLSM(x.RoundRaft, x.RoundWrites))
				if len(x.RoundRaftHeld) > 0 {
					line += "; held " + formatLSM(x.RoundRaftHeld, x.RoundWritesHeld)
				}
				ew.Println(line)
				line = fmt.Sprintf("%8d clients, raft's batches (all nodes): entries per synced log append / per apply, writes per forwarded request, each round: trustd %s", x.Clients, formatBatching(x.RoundRaft))
				if len(x.RoundRaftHeld) > 0 {
					line += "; held " + formatBatching(x.RoundRaftHeld)
				}
				ew.Println(line)
				line = fmt.Sprintf("%8d clients, signatures verified per write (all nodes; ahead of the rules / while judging), each round: trustd %s", x.Clients, formatSignatureChecks(x.RoundRaft, x.RoundWrites))
				if len(x.RoundRaftHeld) > 0 {
					line += "; held " + formatSignatureChecks(x.RoundRaftHeld, x.RoundWritesHeld)
				}
				ew.Println(line)
			}
			if x.TrustdFaults > 0 {
				ew.Printf("%8d clients, minor page faults per write (kept runs): trustd %.1f, etcd via gRPC %.1f, via JSON %.1f\n", x.Clients, x.TrustdFaults, x.EtcdGRPCFaults, x.EtcdFaults)
			}
		}
		ew.Println()
	}
	if s := r.Scale; s != nil {
		ew.Printf("Scale: %d entities (loaded at %.0f ops/s)\n", s.Entities, s.LoadOpsPerSec)
		for _, p := range s.P99At {
			line := fmt.Sprintf("  trust query at %8d entities: p50 %.2f ms, p99 %.2f ms", p.Entities, p.P50, p.P99)
			if len(p.RoundP99s) > 1 {
				line += fmt.Sprintf(" (the lowest of %d rounds' p99:%s ms)", len(p.RoundP99s), formatRatios(p.RoundP99s))
			}
			ew.Println(line)
		}
		if x := s.Distinct; x.Questions > 0 {
			ew.Printf("  %d distinct questions, each asked once: %d answered at %.0f r/s, p50 %.2f ms, p99 %.2f ms\n", x.Questions, x.Answered, x.PerSecond, x.P50, x.P99)
		}
		catchUp := fmt.Sprintf("snapshot sent %.1f MiB; new node caught up from it", s.SnapshotMiB)
		if s.SnapshotMiB == 0 {
			catchUp = "no snapshot sent; new node caught up from the log"
		}
		ew.Printf("  Pebble state on disk %.1f MiB; %s in %.1f s; node peak RSS %.0f MiB (after the distinct questions; the Go runtime's share %.0f MiB)\n", s.PebbleMiB, catchUp, s.CatchUpSec, s.PeakRSSMiB, s.GoRuntimeMiB)
		if len(s.StateMiBByPart) > 0 {
			ew.Printf("  the commitment's share of the state on disk: %.2f of the rest (%s)\n", s.CommitmentShare, partsLine(s.StateMiBByPart))
		}
		if s.SelfAuditSec > 0 {
			ew.Printf("  start-up self-audit of the state against its commitment (the node restarted): %.1f s\n", s.SelfAuditSec)
		}
	}
	return ew.Err
}

// profileDuring starts a CPU profile of the process (trustd or the read
// baseline) behind admin and returns a function that waits for it and
// saves it (with --profile).
func (c config) profileDuring(admin, name string) func() {
	if c.profile == "" || admin == "" {
		return func() {}
	}
	if err := os.MkdirAll(c.profile, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := int(c.duration.Seconds())
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer closeRead(resp.Body)
		f, err := os.Create(filepath.Join(c.profile, name+".pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "profile %s: %v\n", name, err)
		}
	}()
	return func() { <-done }
}

// leaderAdmin returns the admin address of the node that leads.
// profileCluster starts a CPU profile of each node of a cluster (with
// --profile), saved as PREFIX-nodeI-ROLE.pprof, and returns what stops
// them all.
func (c config) profileCluster(nodes []*trustdNode, prefix string) func() {
	leader := leaderAdmin(nodes)
	var stops []func()
	for i, n := range nodes {
		role := "follower"
		if n.admin == leader {
			role = "leader"
		}
		stops = append(stops, c.profileDuring(n.admin, fmt.Sprintf("%s-node%d-%s", prefix, i, role)))
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func leaderAdmin(nodes []*trustdNode) string {
	for _, n := range nodes {
		resp, err := http.Get(n.url + "/v1/status")
		if err != nil {
			continue
		}
		var st struct {
			NodeID, Leader string
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		closeRead(resp.Body)
		if err != nil {
			continue
		}
		if st.Leader != "" {
			for _, m := range nodes {
				if m.peerID == st.Leader {
					return m.admin
				}
			}
		}
	}
	return ""
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is left as it is.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// sending runs a load against server with the generator's goroutines
// labelled server=NAME, so its CPU profile (--profile, generator.pprof)
// splits by the server asked: go tool pprof -tagfocus server=trustd.
func sending(server string, run func() stats) (s stats) {
	pprof.Do(context.Background(), pprof.Labels("server", server), func(context.Context) { s = run() })
	return s
}

// formatGenCPU writes the generator's CPU per request on each side, in
// microseconds, "trustd / net/http" ("-" for a run without it).
func formatGenCPU(t, b stats) string {
	if t.GeneratorCPUus == 0 && b.GeneratorCPUus == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f us", t.GeneratorCPUus, b.GeneratorCPUus)
}

// formatPairRounds writes each round as "trustd / net/http", the side
// that ran first marked with a star.
func formatPairRounds(rs []pairRound) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		ts, bs := "", "*"
		if r.TrustdFirst {
			ts, bs = "*", ""
		}
		parts[i] = fmt.Sprintf("%s%.2f (%.2f) / %s%.2f (%.2f)", ts, r.TrustdP99, r.TrustdSendLag, bs, r.BaselineP99, r.BaselineSendLag)
	}
	return strings.Join(parts, "; ")
}

// formatPairCPU lists each round's server CPU per request, trustd's then
// the bare handler's, or nothing for rounds from before it was measured.
func formatPairCPU(rs []pairRound) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.TrustdCPUus == 0 && r.BaselineCPUus == 0 {
			return ""
		}
		parts = append(parts, fmt.Sprintf("%.1f / %.1f us", r.TrustdCPUus, r.BaselineCPUus))
	}
	return strings.Join(parts, "; ")
}

// formatRatios lists ratios with two decimals, each after a space.
func formatRatios(rs []float64) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, " %.2f", r)
	}
	return b.String()
}
