package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/trustreg/trustreg/registry"
)

// heldLevel is the feature level of the --commitment-cost cluster: the one
// below the state commitment's (issue #32 allows the commitment at most
// 15 % of the write rate).
const heldLevel = registry.FeatureLevelCommitment - 1

// heldCluster is a second three-node trustd cluster of the same build,
// held at heldLevel by raft.max_feature_level, which the write runs drive
// round by round beside the first: their rates' ratio is what the
// commitment costs a write, measured side by side.
type heldCluster struct {
	nodes     []*trustdNode
	bases     []string
	procs     []*process
	pool      [][]byte
	used      int64
	exhausted atomic.Bool
}

// startHeldCluster starts the cluster in dir/writes-held, loads the same
// framework and chains as the first, and signs poolSize operations for it.
func startHeldCluster(ctx context.Context, c config, dir string, poolSize int) (*heldCluster, error) {
	sub, err := mkdir(dir, "writes-held")
	if err != nil {
		return nil, err
	}
	h := &heldCluster{}
	nodes, gov, err := startTrustdCluster(ctx, c.trustd, sub, 3, false, heldLevel)
	h.nodes = nodes
	if err != nil {
		return h, err
	}
	for _, n := range nodes {
		h.bases = append(h.bases, n.url)
		h.procs = append(h.procs, n.process)
	}
	d, err := newDataset(h.bases[0], gov)
	if err != nil {
		return h, err
	}
	if err := waitFeatureLevel(ctx, h.bases[0], heldLevel, true); err != nil {
		return h, err
	}
	fmt.Fprintf(os.Stderr, "writes: signing %d accredit operations for the cluster held at feature level %d\n", poolSize, heldLevel)
	h.pool = make([][]byte, poolSize)
	for i := range h.pool {
		h.pool[i], _ = d.collegeOp(i)
	}
	return h, nil
}

// run writes to the held cluster closed loop as the first cluster's run
// does, and returns the run's stats with its CPU and minor faults per
// acknowledged write.
func (h *heldCluster) run(ctx context.Context, c config, clients int) (s stats, cpuMs, faults float64) {
	start := h.used
	next := func(w int, i int64) (request, bool) {
		j := start + i - 1
		if j >= int64(len(h.pool)) {
			h.exhausted.Store(true)
			return request{}, false
		}
		return request{method: "POST", url: h.bases[w%len(h.bases)] + "/v1/operations", contentType: "application/jose", body: h.pool[j]}, true
	}
	s, cpuMs, faults = measured(ctx, c, h.procs, func() stats {
		return closedLoop(ctx, clients, c.duration, next, func(st int) bool { return st == 201 })
	})
	h.used += s.Requests + s.Errors + int64(clients)
	return s, cpuMs, faults
}

func (h *heldCluster) stop() {
	if h == nil {
		return
	}
	if h.exhausted.Load() {
		fmt.Fprintf(os.Stderr, "writes: the %d pre-signed operations of the held cluster ran out before a run ended; that run's rate is over its shorter length\n", len(h.pool))
	}
	stopAll(h.nodes)
}

// errFeatureLevel: a cluster of the commitment-cost comparison is not at
// the feature level it is measured at.
var errFeatureLevel = errors.New("writes: a cluster is not at the feature level it is measured at")

// waitFeatureLevel waits (up to 15 s) until the cluster behind base
// reports feature level want (exact), or at least want (not exact): the
// comparison is only what it says when each side runs at its level.
func waitFeatureLevel(ctx context.Context, base string, want int, exact bool) error {
	client := newClient(1)
	deadline := time.Now().Add(15 * time.Second)
	var got int
	for {
		var v struct {
			FeatureLevel int `json:"feature_level"`
		}
		resp, err := client.Get(base + "/v1/version")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			closeRead(resp.Body)
			err = json.Unmarshal(body, &v)
		}
		got = v.FeatureLevel
		if err == nil && (got == want || !exact && got > want) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w: %s is at feature level %d, want %d (err %v)", errFeatureLevel, base, got, want, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
