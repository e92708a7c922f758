package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The --stability benchmark: does a leader hold across distance? Three
// voters p2p.test_delay and p2p.test_jitter apart take a steady write load
// (--stability-rate writes a second, in turn through each voter) for
// --stability at each raft timing; then the leader is killed.

// stabilityResult is what --stability measured at one round-trip time and
// raft timing.
type stabilityResult struct {
	RTTMS    float64 `json:"rtt_ms"`
	OneWayMS float64 `json:"one_way_ms"`
	JitterMS float64 `json:"jitter_ms"`
	// TimingMS: raft.heartbeat_timeout and raft.election_timeout.
	TimingMS float64 `json:"raft_timing_ms"`
	// WindowS: the length of the measured run; Rate: writes started a
	// second during it (0: an idle cluster).
	WindowS float64 `json:"window_s"`
	Rate    int     `json:"write_rate"`
	// Writes: the latency of the writes acknowledged during the run.
	Writes latency `json:"writes"`
	// WriteErrors: writes refused or failed (no leader, a timeout);
	// Skipped: writes not started because maxStabilityInFlight were
	// outstanding.
	WriteErrors int `json:"write_errors"`
	Skipped     int `json:"writes_skipped"`
	// LeaderChanges: leaders elected during the run, the most any voter
	// counted (the rise of trustd_raft_leader_changes_total).
	LeaderChanges uint64 `json:"leader_changes"`
	// Elections: elections started during the run, by any voter (the rise
	// of the highest trustd_raft_term; a pre-vote that fails starts none).
	Elections uint64 `json:"elections"`
	// LongestGapMS: the longest time between two writes acknowledged
	// during the run: how long the cluster stalled at worst (0 at rate 0).
	LongestGapMS float64 `json:"longest_gap_ms"`
	// FailoverMS: after the run, from kill -9 of the leader to the next
	// write acknowledged through a surviving voter.
	FailoverMS float64 `json:"failover_ms"`
	// NoFailover: why the failover was not measured (FailoverMS 0).
	NoFailover string `json:"no_failover,omitempty"`
}

// shortStability is the longest --stability run in short mode (CI).
const shortStability = 15 * time.Second

// maxStabilityInFlight bounds the writes outstanding during a --stability
// run: a cluster without a leader must not pile up goroutines.
const maxStabilityInFlight = 256

// benchStability runs the --stability benchmark at each round-trip time
// and raft timing.
func benchStability(ctx context.Context, c config, dir string, rep *report) error {
	for _, rtt := range c.rtts {
		for _, timing := range c.rttTimings {
			sub := filepath.Join(dir, "stability-"+rtt.String()+"-timing-"+timing.String())
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return err
			}
			r, err := stabilityRun(ctx, c, sub, rtt, timing)
			if err != nil {
				return fmt.Errorf("rtt %s, raft timing %s: %w", rtt, timing, err)
			}
			rep.Stability = append(rep.Stability, *r)
		}
	}
	return nil
}

func stabilityRun(ctx context.Context, c config, dir string, rtt, timing time.Duration) (*stabilityResult, error) {
	oneWay := rtt / 2
	fmt.Fprintf(os.Stderr, "stability, rtt %s: 3 voters %s apart each way (jitter %s), raft timing %s, %d writes/s for %s\n",
		rtt, oneWay, c.jitter, timing, c.stabilityRate, c.stability)
	w, err := startWANCluster(c.trustd, dir, wanSpec{oneWay: oneWay, jitter: c.jitter, timing: timing})
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	w.client = newClient(maxStabilityInFlight / 2)
	res := &stabilityResult{RTTMS: millis(rtt), OneWayMS: millis(oneWay), JitterMS: millis(c.jitter), TimingMS: millis(timing),
		WindowS: c.stability.Seconds(), Rate: c.stabilityRate}
	before, err := w.raftReadings()
	if err != nil {
		return nil, err
	}
	load := w.steadyWrites(ctx, c.stability, c.stabilityRate)
	after, err := w.raftReadings()
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.Writes = latencyOf("steady", load.latencies)
	res.WriteErrors, res.Skipped = load.errors, load.skipped
	if c.stabilityRate > 0 {
		res.LongestGapMS = millis(longestGap(load.start, load.end, load.acked))
	}
	res.LeaderChanges, res.Elections = raftRises(before, after)

	// A cluster that cannot hold a leader has no failover to measure: the
	// run's figures say so, and the next timing is measured.
	l := w.waitLeader(noLeaderWait)
	if l < 0 {
		res.NoFailover = fmt.Sprintf("no leader for %s after the run", noLeaderWait)
		return res, nil
	}
	failover, err := w.failover(l, (l+1)%3)
	if err != nil {
		res.NoFailover = err.Error()
		return res, nil
	}
	res.FailoverMS = millis(failover)
	return res, nil
}

// noLeaderWait bounds the wait for a leader before the failover.
const noLeaderWait = 30 * time.Second

// waitLeader returns a voter the voters name as leader, polling for up
// to d, or -1.
func (w *wanCluster) waitLeader(d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		if l := w.leader([]int{0, 1, 2}); l >= 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// steadyLoad is what steadyWrites saw.
type steadyLoad struct {
	start, end time.Time
	latencies  []time.Duration // of the writes acknowledged
	acked      []time.Time     // when each was acknowledged
	errors     int
	skipped    int
}

// steadyWrites starts rate writes a second for d, in turn through voters
// 0, 1 and 2, each as its own request (at most maxStabilityInFlight
// outstanding), and returns once every write started has been answered.
// At rate 0 it writes nothing for d.
func (w *wanCluster) steadyWrites(ctx context.Context, d time.Duration, rate int) *steadyLoad {
	var (
		mu       sync.Mutex
		out      = &steadyLoad{start: time.Now()}
		wg       sync.WaitGroup
		inFlight atomic.Int64
	)
	done := time.NewTimer(d)
	defer done.Stop()
	if rate == 0 { // idle: the run's length, no writes
		select {
		case <-ctx.Done():
		case <-done.C:
		}
		out.end = time.Now()
		return out
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
		case <-done.C:
		case <-tick.C:
			if inFlight.Load() >= maxStabilityInFlight {
				mu.Lock()
				out.skipped++
				mu.Unlock()
				continue
			}
			inFlight.Add(1)
			wg.Go(func() {
				defer inFlight.Add(-1)
				t0 := time.Now()
				_, err := w.write(n % 3)
				t1 := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					out.errors++
					return
				}
				out.latencies = append(out.latencies, t1.Sub(t0))
				out.acked = append(out.acked, t1)
			})
			continue
		}
		break
	}
	out.end = time.Now()
	wg.Wait() // each write is bounded by the client's timeout
	return out
}

// longestGap is the longest time between two acknowledgements in acked
// (in any order), or the whole run, from start to end, when fewer than two
// were acknowledged. The time before the first acknowledgement is a
// write's latency, not a stall, so it is left out.
func longestGap(start, end time.Time, acked []time.Time) time.Duration {
	if len(acked) < 2 {
		return end.Sub(start)
	}
	ts := slices.Clone(acked)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

// raftReading is one voter's raft counters.
type raftReading struct {
	leaderChanges, term uint64
}

// raftReadings reads the raft counters of voters 0-2 from their /metrics.
func (w *wanCluster) raftReadings() ([]raftReading, error) {
	out := make([]raftReading, 3)
	for i := range out {
		r, err := readRaftCounters(w.client, w.nodes[i].url)
		if err != nil {
			return nil, fmt.Errorf("trustd%d: %w", i, err)
		}
		out[i] = r
	}
	return out, nil
}

// readRaftCounters reads trustd_raft_leader_changes_total and
// trustd_raft_term from the /metrics of the gateway at base.
func readRaftCounters(client *http.Client, base string) (raftReading, error) {
	var r raftReading
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return r, err
	}
	defer closeRead(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return r, fmt.Errorf("parse %s/metrics: %w", base, err)
	}
	for name, v := range map[string]*uint64{"trustd_raft_leader_changes_total": &r.leaderChanges, "trustd_raft_term": &r.term} {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) != 1 {
			return r, fmt.Errorf("%s/metrics has no %s", base, name)
		}
		m := f.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			*v = uint64(m.GetCounter().GetValue())
		case m.GetGauge() != nil:
			*v = uint64(m.GetGauge().GetValue())
		}
	}
	return r, nil
}

// raftRises returns the leader changes the voter that counted most saw
// between the readings, and the rise of the highest term.
func raftRises(before, after []raftReading) (leaderChanges, elections uint64) {
	var termBefore, termAfter uint64
	for i := range before {
		if after[i].leaderChanges > before[i].leaderChanges {
			leaderChanges = max(leaderChanges, after[i].leaderChanges-before[i].leaderChanges)
		}
		termBefore = max(termBefore, before[i].term)
		termAfter = max(termAfter, after[i].term)
	}
	if termAfter > termBefore {
		elections = termAfter - termBefore
	}
	return leaderChanges, elections
}

// printStability prints the --stability figures through w, which keeps
// the first write error.
func printStability(w *errWriter, rs []stabilityResult) {
	if len(rs) == 0 {
		return
	}
	w.Printf("Leader stability across regions: 3 voters, steady writes in turn through each voter\n")
	w.Printf("  %8s %8s %8s %7s %7s %8s %9s %9s %8s %8s %8s %11s\n", "rtt ms", "jitter", "timing", "run s", "w/s", "acked", "p50 ms", "p99 ms", "errors", "leaders", "elects", "stall/fail")
	for _, r := range rs {
		fail := fmt.Sprintf("%4.1fs", r.FailoverMS/1000)
		if r.NoFailover != "" {
			fail = "    -"
		}
		w.Printf("  %8.0f %8.0f %8.0f %7.0f %7d %8d %9.1f %9.1f %8d %8d %8d %5.1f/%s\n", r.RTTMS, r.JitterMS, r.TimingMS, r.WindowS, r.Rate,
			r.Writes.N, r.Writes.P50MS, r.Writes.P99MS, r.WriteErrors+r.Skipped, r.LeaderChanges, r.Elections, r.LongestGapMS/1000, fail)
	}
	for _, r := range rs {
		if r.NoFailover != "" {
			w.Printf("  timing %.0f ms: failover not measured: %s\n", r.TimingMS, r.NoFailover)
		}
	}
	w.Printf("  (leaders: leaders elected during the run; elects: elections started; stall: the longest time no write was acknowledged; fail: kill -9 of the leader to the next acknowledged write)\n\n")
}
