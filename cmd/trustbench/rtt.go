package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/gateway/api"
	"github.com/trustreg/trustreg/registry/record"
)

// The --rtt benchmark: three voters and a read replica, every member
// p2p.test_delay (half the round trip) away from every other, by default
// on the WAN raft timing of docs/OPERATIONS.md ("Members across regions"):
// raft.heartbeat_timeout and raft.election_timeout wanTiming.
const wanTiming = 2 * time.Second

// wanResult is what --rtt measured at one round-trip time.
type wanResult struct {
	RTTMS    float64 `json:"rtt_ms"`
	OneWayMS float64 `json:"one_way_ms"`
	// JitterMS: p2p.test_jitter, up to which each send is delayed more.
	JitterMS float64 `json:"jitter_ms,omitempty"`
	// TimingMS: raft.heartbeat_timeout and raft.election_timeout.
	TimingMS float64 `json:"raft_timing_ms"`
	// Writes: one writer, one write at a time, through the leader and
	// through a follower (which forwards it to the leader).
	Writes []latency `json:"writes"`
	// Reads: GET of a framework at the leader, a follower and the
	// replica, at each consistency level; min_index is a read of a write
	// the leader has just acknowledged.
	Reads []latency `json:"reads"`
	// FailoverMS: from SIGKILL of the leader to the next write
	// acknowledged (through a surviving voter, retried every 50 ms).
	FailoverMS float64 `json:"failover_ms"`
	// CatchUpMS: from the start of the replica's process, stopped while
	// CatchUpEntries entries were written, until it has applied them.
	CatchUpMS      float64 `json:"catch_up_ms"`
	CatchUpEntries int     `json:"catch_up_entries"`
}

// latency is a latency distribution of N requests.
type latency struct {
	Name  string  `json:"name"`
	N     int     `json:"n"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
}

func latencyOf(name string, ds []time.Duration) latency {
	slices.Sort(ds)
	at := func(q float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / float64(time.Millisecond)
	}
	return latency{Name: name, N: len(ds), P50MS: at(0.50), P99MS: at(0.99)}
}

// parseRTTs reads --rtt: comma-separated durations ("0,100ms,300ms").
func parseRTTs(s string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "0" {
			out = append(out, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--rtt %q: give round-trip times such as 0,100ms,300ms", s)
		}
		out = append(out, d)
	}
	return out, nil
}

// benchRTTs runs the --rtt benchmark at each round-trip time and raft
// timing.
func benchRTTs(ctx context.Context, c config, dir string, rep *report) error {
	for _, rtt := range c.rtts {
		for _, timing := range c.rttTimings {
			sub := filepath.Join(dir, "rtt-"+rtt.String()+"-timing-"+timing.String())
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return err
			}
			r, err := benchRTT(ctx, c, sub, rtt, timing)
			if err != nil {
				return fmt.Errorf("rtt %s, raft timing %s: %w", rtt, timing, err)
			}
			rep.WAN = append(rep.WAN, *r)
		}
	}
	return nil
}

// parseTimings reads --rtt-raft-timing: comma-separated positive
// durations ("1s,2s").
func parseTimings(s string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--rtt-raft-timing %q: give positive durations such as 1s,2s", s)
		}
		out = append(out, d)
	}
	return out, nil
}

// wanSpec is the shape of a --rtt cluster: how far apart its members are
// and the raft timing they run.
type wanSpec struct {
	// oneWay and jitter: p2p.test_delay and p2p.test_jitter of every member.
	oneWay, jitter time.Duration
	// timing: raft.heartbeat_timeout and raft.election_timeout.
	timing time.Duration
	// replica: also start node 3, a non-voter.
	replica bool
}

// wanCluster is the --rtt cluster: nodes 0-2 voters, node 3 the replica
// (nil without wanSpec.replica).
type wanCluster struct {
	bin, dir string
	nodes    []*trustdNode
	gov      *record.Signer
	client   *http.Client
	ops      atomic.Int64 // frameworks created, for unique ids
}

func startWANCluster(bin, dir string, spec wanSpec) (*wanCluster, error) {
	gov, err := record.GenerateKey(record.KeyEd25519)
	if err != nil {
		return nil, err
	}
	genesis, _ := json.Marshal(record.Genesis{Consortium: "bench", Members: []record.Member{{ID: gov.DID}}, Threshold: 1})
	gpath := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(gpath, genesis, 0o644); err != nil {
		return nil, err
	}
	w := &wanCluster{bin: bin, dir: dir, gov: gov, client: newClient(8), nodes: make([]*trustdNode, 4)}
	for i := range w.nodes {
		dd := filepath.Join(dir, fmt.Sprintf("trustd%d", i))
		out, err := execOutput(bin, "identity", "--data-dir", dd)
		if err != nil {
			return nil, fmt.Errorf("trustd identity: %w", err)
		}
		w.nodes[i] = &trustdNode{peerID: strings.TrimSpace(out), dataDir: dd,
			url: fmt.Sprintf("http://127.0.0.1:%d", freePort()), admin: fmt.Sprintf("127.0.0.1:%d", freePort()),
			p2p: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort())}
	}
	for i, nd := range w.nodes {
		var peers []string
		for j, o := range w.nodes[:3] {
			if j != i {
				peers = append(peers, "    - "+o.p2p+"/p2p/"+o.peerID)
			}
		}
		raft := fmt.Sprintf("raft:\n  heartbeat_timeout: %s\n  election_timeout: %s\n", spec.timing, spec.timing)
		if i == 3 {
			raft += "  nonvoter: true\n  join:\n" + strings.Join(peers, "\n") + "\n"
		}
		cfg := fmt.Sprintf("data_dir: %s\ngenesis: %s\nhttp:\n  addr: %s\nadmin:\n  addr: %s\np2p:\n  listen:\n    - %s\n  peers:\n%s\n  test_delay: %s\n  test_jitter: %s\n%slog:\n  level: warn\n",
			nd.dataDir, gpath, strings.TrimPrefix(nd.url, "http://"), nd.admin, nd.p2p, strings.Join(peers, "\n"), spec.oneWay, spec.jitter, raft)
		nd.config = filepath.Join(dir, fmt.Sprintf("trustd%d.yaml", i))
		if err := os.WriteFile(nd.config, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
	}
	for i := range 3 {
		if err := w.start(i); err != nil {
			return w, err
		}
	}
	for _, nd := range w.nodes[:3] {
		if err := nd.waitReady(nd.url+"/readyz", 60*time.Second); err != nil {
			return w, err
		}
	}
	if !spec.replica {
		w.nodes = w.nodes[:3]
		return w, nil
	}
	// The replica is added by an operator, then starts and joins.
	replica := w.nodes[3].p2p + "/p2p/" + w.nodes[3].peerID
	body, _ := json.Marshal(api.MembershipRequest{Addr: replica})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := w.client.Post("http://"+w.nodes[0].admin+"/admin/v1/cluster/add-nonvoter", "application/json", strings.NewReader(string(body)))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			closeRead(resp.Body)
			if resp.StatusCode/100 == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			return w, fmt.Errorf("add-nonvoter %s: %v", replica, err)
		}
		time.Sleep(200 * time.Millisecond) // the voters elect a leader
	}
	if err := w.start(3); err != nil {
		return w, err
	}
	return w, w.nodes[3].waitReady(w.nodes[3].url+"/readyz", 60*time.Second)
}

func (w *wanCluster) start(i int) error {
	p, err := start(w.dir, fmt.Sprintf("trustd%d", i), w.bin, "--config", w.nodes[i].config, "--allow-test-delay")
	if err != nil {
		return err
	}
	w.nodes[i].process = p
	return nil
}

func (w *wanCluster) stop() {
	for _, nd := range w.nodes {
		if nd != nil && nd.process != nil {
			nd.stop()
		}
	}
}

// leader is the index of the node the voters' admin API names as leader,
// or -1.
func (w *wanCluster) leader(among []int) int {
	for _, i := range among {
		resp, err := w.client.Get("http://" + w.nodes[i].admin + "/admin/v1/cluster")
		if err != nil {
			continue
		}
		var view struct {
			Members []struct {
				ID     string `json:"id"`
				Leader bool   `json:"leader"`
			} `json:"members"`
		}
		err = json.NewDecoder(resp.Body).Decode(&view)
		closeRead(resp.Body)
		if err != nil {
			continue
		}
		for _, m := range view.Members {
			for j, nd := range w.nodes {
				if m.Leader && m.ID == nd.peerID {
					return j
				}
			}
		}
	}
	return -1
}

// write creates a framework through node i and returns its index.
func (w *wanCluster) write(i int) (uint64, error) {
	n := w.ops.Add(1)
	payload, _ := json.Marshal(map[string]any{"op": record.OpCreateFramework, "iat": time.Now().Unix(),
		"id": fmt.Sprintf("https://bench.example/wan/%d", n), "name": "WAN bench", "roots": []string{w.gov.DID}})
	jws, err := record.SignJSON(payload, w.gov)
	if err != nil {
		return 0, err
	}
	r, err := submit(w.client, w.nodes[i].url, jws)
	if err != nil {
		return 0, err
	}
	return r.Index, nil
}

// read GETs path at node i and returns the index it was answered at.
func (w *wanCluster) read(i int, path string) (uint64, error) {
	resp, err := w.client.Get(w.nodes[i].url + path)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	closeRead(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s at trustd%d: %d", path, i, resp.StatusCode)
	}
	return strconv.ParseUint(resp.Header.Get(gateway.IndexHeader), 10, 64)
}

func benchRTT(ctx context.Context, c config, dir string, rtt, timing time.Duration) (*wanResult, error) {
	oneWay := rtt / 2
	fmt.Fprintf(os.Stderr, "rtt %s: starting 3 voters and a replica %s apart each way (jitter %s), raft timing %s\n", rtt, oneWay, c.jitter, timing)
	w, err := startWANCluster(c.trustd, dir, wanSpec{oneWay: oneWay, jitter: c.jitter, timing: timing, replica: true})
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	res := &wanResult{RTTMS: millis(rtt), OneWayMS: millis(oneWay), JitterMS: millis(c.jitter), TimingMS: millis(timing)}
	l := w.leader([]int{0, 1, 2})
	if l < 0 {
		return nil, errors.New("no leader")
	}
	f := (l + 1) % 3
	n := 50
	if c.short {
		n = 15
	}
	timed := func(op func() error) (time.Duration, error) {
		t0 := time.Now()
		err := op()
		return time.Since(t0), err
	}
	var last uint64
	for _, at := range []struct {
		name string
		node int
	}{{"leader", l}, {"follower", f}} {
		var ds []time.Duration
		for range n {
			d, err := timed(func() (err error) { last, err = w.write(at.node); return err })
			if err != nil {
				return nil, fmt.Errorf("write through the %s: %w", at.name, err)
			}
			ds = append(ds, d)
		}
		res.Writes = append(res.Writes, latencyOf(at.name, ds))
	}
	path := "/v1/frameworks/" + url.PathEscape("https://bench.example/wan/1")
	for _, at := range []struct {
		name string
		node int
	}{{"leader", l}, {"follower", f}, {"replica", 3}} {
		for _, level := range []string{"local", "min_index", "linearizable"} {
			var ds []time.Duration
			for range n {
				q := ""
				switch level {
				case "min_index":
					idx, err := w.write(l)
					if err != nil {
						return nil, err
					}
					q = fmt.Sprintf("?min_index=%d", idx)
				case "linearizable":
					q = "?consistency=linearizable"
				}
				d, err := timed(func() error { _, err := w.read(at.node, path+q); return err })
				if err != nil {
					return nil, err
				}
				ds = append(ds, d)
			}
			res.Reads = append(res.Reads, latencyOf(at.name+" "+level, ds))
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Failover: the leader killed, the next acknowledged write.
	failover, err := w.failover(l, f)
	if err != nil {
		return nil, err
	}
	res.FailoverMS = millis(failover)

	// Catch-up: the replica stopped while entries are written, restarted.
	w.nodes[3].stop()
	res.CatchUpEntries = 2000
	if c.short {
		res.CatchUpEntries = 500
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(res.CatchUpEntries) {
				idx, err := w.write(f)
				if err != nil {
					failed.Store(err)
					return
				}
				storeMax(&last, idx)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return nil, fmt.Errorf("writes for the catch-up: %w", err)
	}
	target := atomic.LoadUint64(&last)
	restarted := time.Now()
	if err := w.start(3); err != nil {
		return nil, err
	}
	deadline := restarted.Add(5 * time.Minute)
	for {
		if idx, err := w.read(3, path); err == nil && idx >= target {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the replica did not reach index %d within 5 minutes of its restart", target)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	res.CatchUpMS = millis(time.Since(restarted))
	return res, nil
}

// failover kills voter l (kill -9) and returns the time from the kill
// to the next write acknowledged through voter f, retried every 50 ms.
func (w *wanCluster) failover(l, f int) (time.Duration, error) {
	killed := time.Now()
	_ = w.nodes[l].cmd.Process.Kill()
	<-w.nodes[l].exited
	deadline := killed.Add(2 * time.Minute)
	for {
		if _, err := w.write(f); err == nil {
			return time.Since(killed), nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("no write acknowledged within 2 minutes of killing the leader")
		}
		time.Sleep(50 * time.Millisecond) // retry interval
	}
}

// storeMax raises *p to v if v is higher, atomically.
func storeMax(p *uint64, v uint64) {
	for {
		old := atomic.LoadUint64(p)
		if v <= old || atomic.CompareAndSwapUint64(p, old, v) {
			return
		}
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printWAN prints the --rtt figures through w, which keeps the first
// write error.
func printWAN(w *errWriter, rs []wanResult) {
	for _, r := range rs {
		w.Printf("Across regions: RTT %.0f ms (%.0f ms one way, jitter up to %.0f ms), 3 voters + 1 replica, raft heartbeat and election timeouts %.0f ms\n", r.RTTMS, r.OneWayMS, r.JitterMS, r.TimingMS)
		w.Printf("  %-26s %5s %9s %9s\n", "", "n", "p50 ms", "p99 ms")
		for _, x := range r.Writes {
			w.Printf("  %-26s %5d %9.1f %9.1f\n", "write via "+x.Name, x.N, x.P50MS, x.P99MS)
		}
		for _, x := range r.Reads {
			w.Printf("  %-26s %5d %9.1f %9.1f\n", "read "+x.Name, x.N, x.P50MS, x.P99MS)
		}
		w.Printf("  failover (kill -9 leader to next acked write): %.0f ms\n", r.FailoverMS)
		w.Printf("  replica catch-up after restart (%d entries behind): %.0f ms\n\n", r.CatchUpEntries, r.CatchUpMS)
	}
}
