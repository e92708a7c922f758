package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchScale loads c.scale entities into a node, measures trust-query
// latency as it grows, the state's size on disk, how long a new node takes
// to catch up from a snapshot, and the node's peak memory.
func benchScale(ctx context.Context, c config, dir string, rep *report) error {
	n, d, err := startDataNode(ctx, c, dir, "scale", false)
	if err != nil {
		return err
	}
	defer n.stop()
	base := filepath.Join(dir, "scale")
	res := &scaleResult{Entities: c.scale}
	var loading time.Duration
	for _, step := range []int{10_000, 100_000, c.scale} {
		if step > c.scale {
			continue
		}
		t0 := time.Now()
		if err := d.loadColleges(ctx, []string{n.url}, step); err != nil {
			return err
		}
		loading += time.Since(t0)
		settle(ctx, n.process, c.settleLimit())
		urls := d.trustURLs(n.url, 1024)
		// The lowest p99 of the rounds, as the other rows keep each side's
		// best: one 5-s loop's p99 moves with the machine, and the
		// flatness row divides one count's by another's.
		next := func(w int, i int64) (request, bool) {
			return request{method: "GET", url: urls[i%int64(len(urls))]}, true
		}
		p := point{Entities: step}
		for round := range c.rounds {
			s := closedLoop(ctx, 8, 5*time.Second, next, func(s int) bool { return s == 200 })
			p.RoundP99s = append(p.RoundP99s, s.P99)
			if round == 0 || s.P99 < p.P99 {
				p.P50, p.P99 = s.P50, s.P99
			}
		}
		res.P99At = append(res.P99At, p)
	}
	res.LoadOpsPerSec = float64(c.scale) / loading.Seconds()
	res.PebbleMiB = dirMiB(filepath.Join(n.dataDir, "state"))

	// The queries above ask 1,024 questions, which the node's caches hold
	// at once; the peak memory must also cover a node asked about a great
	// many colleges (its record and answer caches full). Each is asked
	// once, up to distinctQuestions, within distinctLimit.
	distinct := d.trustURLs(n.url, min(c.scale, distinctQuestions))
	s := closedLoop(ctx, c.conns, distinctLimit, func(w int, i int64) (request, bool) {
		if i > int64(len(distinct)) {
			return request{}, false
		}
		return request{method: "GET", url: distinct[i-1]}, true
	}, func(s int) bool { return s == 200 })
	res.Distinct = distinctPass{Questions: len(distinct), Answered: s.Requests, Errors: s.Errors, PerSecond: s.PerSecond, P50: s.P50, P99: s.P99}
	if s.Errors > 0 {
		return fmt.Errorf("%d of %d distinct trust questions were not answered with 200", s.Errors, len(distinct))
	}

	// A new node joins as a non-voter and is sent a snapshot.
	if _, err := http.Post("http://"+n.admin+"/admin/v1/snapshot", "", nil); err != nil {
		return err
	}
	newDir := filepath.Join(base, "catchup")
	out, err := execOutput(c.trustd, "identity", "--data-dir", newDir)
	if err != nil {
		return err
	}
	newID := strings.TrimSpace(out)
	newP2P := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort())
	newURL := fmt.Sprintf("http://127.0.0.1:%d", freePort())
	cfg := fmt.Sprintf("data_dir: %s\ngenesis: %s\nhttp:\n  addr: %s\nadmin:\n  addr: 127.0.0.1:%d\np2p:\n  listen:\n    - %s\n  peers:\n    - %s/p2p/%s\nraft:\n  bootstrap: false\nlog:\n  level: info\n",
		newDir, filepath.Join(base, "genesis.json"), strings.TrimPrefix(newURL, "http://"), freePort(), newP2P, n.p2p, n.peerID)
	cfgPath := filepath.Join(base, "catchup.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	p, err := start(base, "catchup", c.trustd, "--config", cfgPath)
	if err != nil {
		return err
	}
	defer p.stop()
	// The operator starts the node, then adds it: the clock starts at the add.
	if err := p.waitReady(newURL+"/v1/status", time.Minute); err != nil {
		return fmt.Errorf("the new node did not start: %w", err)
	}
	leaderApplied := applied(n.url)
	body := fmt.Sprintf(`{"addr":"%s/p2p/%s"}`, newP2P, newID)
	t0 := time.Now()
	resp, err := http.Post("http://"+n.admin+"/admin/v1/cluster/add-nonvoter", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	closeRead(resp.Body)
	for applied(newURL) < leaderApplied {
		if time.Since(t0) > 10*time.Minute {
			return fmt.Errorf("the new node did not catch up within 10 minutes")
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	res.CatchUpSec = time.Since(t0).Seconds()
	// The snapshot as sent: the loaded node keeps its own as a checkpoint
	// and streams it when it sends it; the new node keeps what it received
	// (its own, if it took one, are checkpoint references of a few bytes).
	res.SnapshotMiB = largestSnapshotMiB(filepath.Join(newDir, "raft", "snapshots"))
	res.PeakRSSMiB = n.peakRSS()
	m, err := readMetrics(n.url, trustRoute)
	if err != nil {
		return err
	}
	res.GoRuntimeMiB = m.sysBytes / (1 << 20)
	rep.Scale = res

	// Last, with the figures above kept whatever happens: the loaded
	// node restarts alone (the new node stopped, so the audit has the
	// machine) and audits its whole state against its commitment.
	p.stop()
	res.SelfAuditSec, err = startupAudit(ctx, base, n, c.trustd)
	defer n.stop() // the restarted process (the deferred stop above is the first one's)
	// The state's parts on disk, from the restarted node: nothing was
	// written since the load, and opening the state flushed into sstables
	// what the load had left in the memtable, which no part counts.
	parts, perr := stateDiskUsage(n.url)
	if perr == nil {
		res.StateMiBByPart, res.CommitmentShare = parts, commitmentShare(parts)
	}
	return errors.Join(err, perr)
}

// distinctQuestions bounds the scale run's pass over distinct questions:
// more colleges than trustd's record cache holds (120,000 entries, one
// per college), so the peak memory is read with the cache full.
// distinctLimit bounds its time.
const (
	distinctQuestions = 250_000
	distinctLimit     = 2 * time.Minute
)

// distinctPass is the scale run's pass over distinct trust questions.
type distinctPass struct {
	Questions int     `json:"questions"`
	Answered  int64   `json:"answered"`
	Errors    int64   `json:"errors"`
	PerSecond float64 `json:"per_second"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
}

func applied(base string) uint64 {
	resp, err := http.Get(base + "/v1/status")
	if err != nil {
		return 0
	}
	defer closeRead(resp.Body)
	var st struct {
		AppliedIndex uint64 `json:"applied_index"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0 // as a node that does not answer
	}
	return st.AppliedIndex
}

func dirMiB(dir string) float64 {
	var total int64
	// The walk skips entries it cannot read and its function never fails,
	// so it returns no error: the size is of what could be read.
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return float64(total) / (1 << 20)
}

// largestSnapshotMiB is the size of the largest raft snapshot in dir.
func largestSnapshotMiB(dir string) float64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	largest := 0.0
	for _, e := range entries {
		if e.IsDir() {
			largest = max(largest, dirMiB(filepath.Join(dir, e.Name())))
		}
	}
	return largest
}
