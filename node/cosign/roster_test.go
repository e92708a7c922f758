package cosign

import (
	"errors"
	"slices"
	"testing"

	"github.com/trustreg/trustreg/registry/tlog"
)

// A change of the cosigner set takes effect at the log size it names: the
// leader collects from the new set with its quorum, a node whose key left
// the set stops cosigning, a node whose key joined starts (without a
// restart), and a follower verifies the fetched checkpoint against the
// set in force at its size.
func TestCosignerSetChangeAtASize(t *testing.T) {
	c := mustNewClusterOf(t, 4, 3) // genesis: members 0, 1, 2, quorum 2; member 3 not a cosigner
	leader, one, two, joiner := c.nodes[0], c.nodes[1], c.nodes[2], c.nodes[3]
	newSet := Roster{Cosigners: []tlog.CosignerKey{one.key, joiner.key}, Quorum: 2}
	c.changeSet(7, newSet)
	ctx := testCtx(t)

	if !leader.svc.IsCosigner() || joiner.svc.IsCosigner() {
		t.Fatalf("at size 5: leader cosigns %v, joiner %v", leader.svc.IsCosigner(), joiner.svc.IsCosigner())
	}
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	note, v5, err := leader.svc.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.verifier().Verify(note); err != nil || len(v.Cosignatures) != 3 {
		t.Fatalf("size 5 against the genesis set: %+v, %v", v, err)
	}

	for _, nd := range c.nodes {
		nd.log.add(t, leaves("entry", 5, 3)...)
	}
	if leader.svc.IsCosigner() || two.svc.IsCosigner() || !joiner.svc.IsCosigner() {
		t.Fatalf("at size 8: leader cosigns %v, member 2 %v, joiner %v", leader.svc.IsCosigner(), two.svc.IsCosigner(), joiner.svc.IsCosigner())
	}
	if _, err := two.svc.cosign(ctx, checkpointOf(t, two.log), 5, nil); !errors.Is(err, ErrNotCosigner) {
		t.Fatalf("member 2, out of the set, asked to cosign size 8: %v", err)
	}
	// The checkpoint of size 5, from before the change, again: cosigned
	// now it would look fresh to a verifier that the old set convinces,
	// and carry none of the change. No member cosigns it any more, neither
	// one the change removed (2) nor one it kept (1).
	for name, nd := range map[string]*node{"member 2, removed": two, "member 1, kept": one} {
		if _, err := nd.svc.cosign(ctx, v5.Checkpoint, 5, nil); !errors.Is(err, ErrNotCosigner) {
			t.Fatalf("%s, asked to cosign size 5 again after the change at 7: %v", name, err)
		}
	}
	if err := leader.svc.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	note, v, err := leader.svc.Latest()
	if err != nil || v.Checkpoint.Size != 8 {
		t.Fatalf("latest after the change: %+v, %v", v, err)
	}
	names := make([]string, 0, len(v.Cosignatures))
	for _, s := range v.Cosignatures {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{one.key.Name, joiner.key.Name}) {
		t.Fatalf("size 8 cosigned by %q, want the new set", names)
	}
	nv, err := tlog.NewVerifier(testOrigin, newSet.Cosigners, newSet.Quorum)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nv.Verify(note); err != nil {
		t.Fatalf("size 8 against the new set: %v", err)
	}
	if _, err := c.verifier().Verify(note); !errors.Is(err, tlog.ErrTooFewCosignatures) && !errors.Is(err, tlog.ErrUnknownKey) {
		t.Fatalf("size 8 against the genesis set: %v, want too few", err)
	}
	if err := two.svc.Fetch(ctx); err != nil {
		t.Fatalf("a follower fetching the checkpoint of the new set: %v", err)
	}
	if _, fv, err := two.svc.Latest(); err != nil || fv.Checkpoint.Size != 8 {
		t.Fatalf("the follower holds %+v, %v", fv, err)
	}
}
