package node

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/trustreg/trustreg/configs"
	"github.com/trustreg/trustreg/gateway"
	"github.com/trustreg/trustreg/registry/record"
)

// replicaRead is one GET at a node: its status and the index and lag
// headers it answered with.
type replicaRead struct {
	status     int
	index, lag uint64
	hasLag     bool
}

func readAt(t *testing.T, n *Node, path string) replicaRead {
	t.Helper()
	resp, err := http.Get(n.GatewayURL() + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := replicaRead{status: resp.StatusCode}
	r.index, _ = strconv.ParseUint(resp.Header.Get(gateway.IndexHeader), 10, 64)
	if v := resp.Header.Get(gateway.LagHeader); v != "" {
		r.hasLag = true
		if r.lag, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: %q", gateway.LagHeader, v)
		}
	}
	return r
}

// lagMetric is node n's trustd_raft_lag_entries.
func lagMetric(t *testing.T, n *Node) float64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "trustd_raft_lag_entries" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no trustd_raft_lag_entries metric")
	return 0
}

// TestReplicaBehindADelayedLink: a read replica 150 ms from its voter
// each way (p2p.test_delay on both), restarted after the voter committed
// hundreds of entries, catches up in batches a round trip apart. While
// it does, it answers local reads at once from the state it has (an
// index below the voter's), and X-Trustreg-Lag and
// trustd_raft_lag_entries say how many entries it lacks of those the
// voter has told it are committed; caught up, both say 0. A min_index
// read of a write just acknowledged by the voter is answered once the
// replica has applied it.
func TestReplicaBehindADelayedLink(t *testing.T) {
	if testing.Short() {
		t.Skip("writes hundreds of entries and waits on 300 ms round trips")
	}
	const delay = 150 * time.Millisecond
	c := soloVoterWithReplica(t, func(voter, replica *configs.Config) {
		voter.P2P.TestDelay = delay
		replica.P2P.TestDelay = delay
	})
	c.start(1)
	c.converged(c.node(0).State.AppliedIndex())
	path := "/v1/frameworks/" + url.PathEscape(c.fw)

	c.stop(1)
	// Over two batches of raft's 256 entries, so the replica learns the
	// voter's commit index a round trip before it has every entry.
	for i := range 600 {
		c.mustSubmit(0, c.govOp(record.OpCreateFramework, map[string]any{
			"id": fmt.Sprintf("https://example.org/far/%d", i), "name": "far", "roots": []string{c.root.DID}}))
	}
	target := c.node(0).State.AppliedIndex()
	c.start(1)
	replica := c.node(1)
	var sawLag, sawMetric, sawStale bool
	deadline := time.Now().Add(60 * time.Second)
	for replica.State.AppliedIndex() < target {
		if time.Now().After(deadline) {
			t.Fatalf("replica applied %d of %d after 60 s", replica.State.AppliedIndex(), target)
		}
		r := readAt(t, replica, path)
		if !r.hasLag {
			t.Fatalf("a replica's answer has no %s", gateway.LagHeader)
		}
		if r.status == http.StatusOK && r.index < target {
			sawStale = true
		}
		sawLag = sawLag || r.lag > 0
		sawMetric = sawMetric || lagMetric(t, replica) > 0
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if !sawStale {
		t.Error("the replica answered no local read while behind")
	}
	if !sawLag || !sawMetric {
		t.Errorf("while catching up: lag header seen non-zero %v, metric %v; want both", sawLag, sawMetric)
	}
	waitFor(t, "the replica's lag to be 0", 30*time.Second, func() bool {
		return readAt(t, replica, path).lag == 0 && lagMetric(t, replica) == 0
	})

	res := c.mustSubmit(0, c.govOp(record.OpCreateFramework, map[string]any{
		"id": "https://example.org/far/last", "name": "far", "roots": []string{c.root.DID}}))
	r := readAt(t, replica, fmt.Sprintf("%s?min_index=%d", path, res.Index))
	if r.status != http.StatusOK || r.index < res.Index {
		t.Fatalf("min_index=%d at the replica: status %d at index %d", res.Index, r.status, r.index)
	}
}
