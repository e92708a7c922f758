package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/trustreg/trustreg/registry/record"
)

// A write acknowledged by the old leader is in the new leader's log, but
// the new leader applies it only after committing an entry of its own
// term. An operation that depends on it, sent to the new leader as soon
// as it leads, must not be checked (State.Check) against a state without
// it: the leader checks only once it has applied what came before its
// term (consensus.Cluster.decide), and the operation is accepted.
func TestNewLeaderChecksAfterApplyingAcknowledgedWrites(t *testing.T) {
	c := mustNewCluster(t, 3)
	refused := 0
	for round := range 4 {
		old := c.waitLeader()
		a, b := (old+1)%3, (old+2)%3
		fw := fmt.Sprintf("https://example.org/frameworks/leader-%d", round)
		res := c.mustSubmit(old, c.govOp(record.OpCreateFramework, map[string]any{"id": fw, "name": "Before"}))
		c.cut(old, a)
		c.cut(old, b)
		newLeader := -1
		for deadline := time.Now().Add(15 * time.Second); newLeader < 0 && time.Now().Before(deadline); {
			for _, i := range []int{a, b} {
				if c.node(i).cluster.IsLeader() {
					newLeader = i
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
		if newLeader < 0 {
			t.Fatalf("round %d: no new leader", round)
		}
		applied := c.node(newLeader).State.AppliedIndex()
		got, err := c.submit(newLeader, c.govOp(record.OpUpdateFramework, map[string]any{"id": fw, "name": "After"}))
		switch {
		case err != nil:
			t.Logf("round %d: update on the new leader: %v", round, err)
		case !got.Accepted && got.Index == 0:
			refused++
			t.Logf("round %d: createFramework acknowledged at index %d; the new leader (applied %d when it led) refused the update without proposing it: %s: %s",
				round, res.Index, applied, got.Code, got.Reason)
		default:
			t.Logf("round %d: update accepted=%v at %d (new leader had applied %d)", round, got.Accepted, got.Index, applied)
		}
		c.heal(old, a)
		c.heal(old, b)
		c.converged(res.Index)
	}
	if refused > 0 {
		t.Errorf("in %d of 4 rounds the new leader refused an operation that depends on a write acknowledged before it led", refused)
	}
}
