package cosign

import (
	"errors"
	"fmt"
	"testing"

	"github.com/trustreg/trustreg/registry/tlog"
)

// TestCorruptStateIsRefusedAndQuorumHolds: a member whose state failed its
// audit refuses to cosign, through the protocol, with RefusedStateCorrupt
// even though its log's root agrees; as leader it does not cosign its own
// checkpoint either; the two others still make the quorum.
func TestCorruptStateIsRefusedAndQuorumHolds(t *testing.T) {
	c := mustNewCluster(t, 3)
	ctx := testCtx(t)
	leader, odd := c.nodes[0], c.nodes[2]
	odd.svc.Close()
	odd.audit = fmt.Errorf("%w: record \"x\" differs", ErrStateCorrupt)
	c.startService(odd)

	cp := checkpointOf(t, leader.log)
	_, err := leader.svc.call(ctx, memberOf(t, leader.svc, odd), cp, tlog.AddCheckpointRequest{Checkpoint: tlog.SignedNote(cp)})
	var refusal *RefusalError
	if !errors.Is(err, ErrStateCorrupt) || !errors.As(err, &refusal) || refusal.Reason != RefusedStateCorrupt {
		t.Fatalf("asking the corrupt member: %v, want a refusal for state corrupt", err)
	}
	if refusal.Reason.String() != "state corrupt" {
		t.Fatalf("refusal reads %q", refusal.Reason)
	}

	for _, collector := range []*node{leader, odd} {
		c.leader = collector.peer
		if err := collector.svc.Collect(ctx); err != nil {
			t.Fatalf("collecting at %s with one corrupt member: %v", collector.key.Name, err)
		}
		note, _, err := collector.svc.Latest()
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.verifier().Verify(note)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Cosignatures) != 2 {
			t.Fatalf("%d cosignatures, want the two honest members':\n%s", len(v.Cosignatures), note)
		}
		for _, s := range v.Cosignatures {
			if s.Name == odd.key.Name {
				t.Fatalf("the corrupt member cosigned:\n%s", note)
			}
		}
	}
}
