package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/registry"
	"github.com/trustreg/trustreg/registry/record"
	"github.com/trustreg/trustreg/test/smallfs"
)

// TestNodeOnAFullDiskIsNotReadyUntilSpaceReturns starts a node on a small
// filesystem with less free space than the state keeps in reserve: it
// reaches the gateway, answers /readyz 503 saying the disk is full and
// shows trustd_disk_full 1, applies nothing; once the filesystem grows it
// becomes ready and applies what waited.
func TestNodeOnAFullDiskIsNotReadyUntilSpaceReturns(t *testing.T) {
	dir := smallfs.Mount(t, "100m")
	n, err := New(LoopbackConfig(dir), Options{})
	if err != nil {
		t.Fatalf("start on a full disk: %v", err)
	}
	defer n.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(n.GatewayURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		t.Fatalf("/readyz on a full disk: %d %s", code, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "\ntrustd_disk_full 1\n") {
		t.Fatalf("metrics on a full disk lack trustd_disk_full 1")
	}
	if lvl := n.State.ClusterFeatureLevel(); lvl == registry.FeatureLevel && registry.FeatureLevel != registry.FeatureLevelBase {
		t.Fatalf("the state applied the leader's feature level with the disk full")
	}

	if out, err := exec.Command("mount", "-o", "remount,size=400m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for code, body = get("/readyz"); code != http.StatusOK; code, body = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz once space returned: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "\ntrustd_disk_full 0\n") {
		t.Fatalf("metrics once space returned lack trustd_disk_full 0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.State.WaitFeatureLevel(ctx, registry.FeatureLevel); err != nil {
		t.Fatalf("the apply did not resume once space returned: %v", err)
	}
}

// TestReplicaServesThroughASnapshotRestore stops a replica, moves the
// cluster on past its log, and starts the replica again while readers ask
// its gateway about an issuer it knew: while it catches up from a snapshot,
// every answer is "authorized, active" (from the state before the restore
// or after it) or a clean 503, never unknown_framework from a half or
// empty state.
func TestReplicaServesThroughASnapshotRestore(t *testing.T) {
	c := soloVoterWithReplica(t, func(voter, _ *configs.Config) {
		voter.Raft.SnapshotThreshold = 1024
		voter.Raft.TrailingLogs = 64
	})
	known := "did:web:known.example"
	first := c.mustSubmit(0, c.accreditOp(known)).Index
	c.start(1)
	c.converged(first)
	c.stop(1)
	// Enough records that the restore takes a while.
	const later, workers = 3000, 16
	var last atomic.Uint64
	var subs sync.WaitGroup
	for w := range workers {
		subs.Add(1)
		go func() {
			defer subs.Done()
			for i := w; i < later; i += workers {
				res, err := c.submit(0, c.accreditOp(fmt.Sprintf("did:web:later-%d.example", i)))
				if err != nil || !res.Accepted {
					t.Errorf("submit %d: %v %+v", i, err, res)
					return
				}
				for old := last.Load(); old < res.Index && !last.CompareAndSwap(old, res.Index); old = last.Load() {
				}
			}
		}()
	}
	subs.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := c.node(0).cluster.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	waitFor(t, "the leader's log to be compacted past the replica", 30*time.Second, func() bool {
		f, _, err := c.node(0).cluster.LogBounds()
		return err == nil && f > first+1
	})

	// The readers start before the replica does, so they are there when
	// the snapshot arrives; until its gateway listens they find nobody.
	url := "http://" + c.cfgs[1].HTTP.Addr + "/v1/trust?entity=" + known + "&framework=" + c.fw + "&action=issue"
	stop := make(chan struct{})
	bad := make(chan string, 2)
	var wg sync.WaitGroup
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Each question at a valid time of its own, so that none is
				// answered from the gateway's answer cache.
				at := base.Add(time.Duration(r*1_000_000+i) * time.Second).Format(time.RFC3339)
				resp, err := http.Get(url + "&at=" + at)
				if err != nil {
					continue // not listening yet
				}
				var d struct {
					Authorized bool   `json:"authorized"`
					Reason     string `json:"reason"`
				}
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					continue
				}
				if err != nil || resp.StatusCode != http.StatusOK || !d.Authorized || d.Reason != record.ReasonActive {
					bad <- fmt.Sprintf("%d authorized=%t reason=%q %v", resp.StatusCode, d.Authorized, d.Reason, err)
					return
				}
			}
		}()
	}
	c.start(1)
	c.converged(last.Load())
	close(stop)
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Fatalf("an answer while the replica caught up: %s", b)
	}
	// It caught up from a snapshot, not from the log: raft keeps the one
	// it was sent (the replica takes none of its own this small).
	snaps, err := os.ReadDir(filepath.Join(c.cfgs[1].DataDir, "raft", "snapshots"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("the replica holds no snapshot (%v): it did not catch up from one", err)
	}
}
