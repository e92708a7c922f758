package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	nodes []*trustdNode
	bases []string
	procs []*process
	pool  *opPool
}

// startHeldCluster starts the cluster in dir/writes-held, loads the same
// framework and chains as the first.
func startHeldCluster(ctx context.Context, c config, dir string) (*heldCluster, error) {
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
		n.name = "held-" + n.name // in what settle prints
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
	h.pool = newOpPool(fmt.Sprintf("the cluster held at feature level %d", heldLevel), d)
	return h, nil
}

// run writes to the held cluster closed loop as the first cluster's run
// does, and returns the run's stats with its CPU and minor faults per
// acknowledged write. With profile (the first round), each node is
// profiled over the run (with --profile), as the first cluster's are.
func (h *heldCluster) run(ctx context.Context, c config, clients int, profile bool) (s stats, cpuMs, faults float64) {
	h.pool.refill(c.duration.Seconds())
	next := h.pool.nextFor(h.bases)
	s, cpuMs, faults = measured(ctx, c, h.procs, func() stats {
		if profile {
			defer c.profileCluster(h.nodes, fmt.Sprintf("writes-%d-held", clients))()
		}
		return closedLoop(ctx, clients, c.duration, next, func(st int) bool { return st == 201 })
	})
	return s, cpuMs, faults
}

func (h *heldCluster) stop() {
	if h == nil {
		return
	}
	h.pool.report()
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
