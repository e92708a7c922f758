package node

import (
	"fmt"
	"testing"
	"time"
)

// TestRestoredMemberForkAfterMoreElections: a member restored under its
// own identity and run alone through elections of its own writes at an
// index the cluster, also through more elections, wrote something else at.
// Had the restored history counted its terms from 1 again, as the cluster
// did, the two entries could carry the same index and term (raft, and the
// fork check, tell entries apart by them): the leader's append would agree
// with the forked log, and the member apply the cluster's next entries
// over its own write. A seeded history starts its terms at a random one
// past 2^40 (seedTerm), and the fork is found.
func TestRestoredMemberForkAfterMoreElections(t *testing.T) {
	c := mustNewCluster(t, 3)
	var last uint64
	for i := range 5 {
		last = c.mustSubmit(0, c.accreditOp(fmt.Sprintf("did:web:b%d.example", i))).Index
	}
	c.converged(last)
	t0 := c.node(c.leader()).cluster.Status().Term
	c.restoreMemberAlone(2)
	// The restored member leads alone through two elections.
	var term uint64
	for range 2 {
		c.start(2)
		waitFor(t, "the restored member to lead", 15*time.Second, func() bool { return c.node(2).cluster.IsLeader() })
		term = c.node(2).cluster.Status().Term
		c.stop(2)
	}
	if term <= 1<<40 {
		t.Fatalf("the restored history's term is %d: not one of its own", term)
	}
	c.start(2)
	waitFor(t, "the restored member to lead", 15*time.Second, func() bool { return c.node(2).cluster.IsLeader() })
	forked := c.mustSubmit(2, c.accreditOp("did:web:forked.example"))
	t.Logf("cluster term was %d; forked write at %d in term %d", t0, forked.Index, term)
	c.stop(2)

	// The cluster comes back in term t0+1 and writes past the forked index.
	c.start(0)
	c.start(1)
	w := c.waitLeader()
	t.Logf("cluster leader %d in term %d", w, c.node(w).cluster.Status().Term)
	for i := 0; last <= forked.Index+2; i++ {
		last = c.mustSubmit(w, c.accreditOp(fmt.Sprintf("did:web:c%d.example", i))).Index
	}
	c.stop(0)
	c.stop(1)
	c.start(0)
	c.start(1)
	w = c.waitLeader()
	t.Logf("cluster leader %d in term %d", w, c.node(w).cluster.Status().Term)
	c.start(2)
	last = c.mustSubmit(w, c.accreditOp("did:web:after.example")).Index
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.node(2).Ready(); err != nil && c.node(2).cluster.Forked() != nil {
			t.Logf("fork found: %v", err)
			return
		}
		if c.node(2).State.AppliedIndex() >= last {
			d0, _ := c.node(0).State.StateDigest()
			d2, _ := c.node(2).State.StateDigest()
			t.Fatalf("fork missed: the restored member applied up to %d over its forked write (has it: %v; cluster has it: %v); digests equal: %v, ready: %v",
				c.node(2).State.AppliedIndex(), c.hasOperation(2, forked.CID), c.hasOperation(0, forked.CID), d0 == d2, c.node(2).Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("neither: applied %d, state %s", c.node(2).State.AppliedIndex(), c.node(2).cluster.State())
}
